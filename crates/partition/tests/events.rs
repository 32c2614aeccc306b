//! Events reach the event sink in the order their writes were applied:
//! each update's previous value is the value of the event before it, even
//! with two threads writing one key at once.

use bytes::Bytes;
use ferrocast_partition::{MapEvent, PartitionService, PartitionTable};
use ferrocast_protocol::data::partition_id;
use ferrocast_protocol::MapOp;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

const COUNT: u32 = 7;

#[test]
fn events_of_one_key_are_emitted_in_the_order_of_its_writes() {
    let me = Uuid::new_v4();
    let service = Arc::new(PartitionService::new(me, COUNT));
    let table = PartitionTable {
        version: 1,
        replicas: vec![vec![me]; COUNT as usize],
        previous: PartitionTable::empty(COUNT).replicas,
    };
    service.apply_table(table, &[me]).expect("applied");
    let seen: Arc<Mutex<Vec<MapEvent>>> = Arc::default();
    let sink = seen.clone();
    service.set_event_sink(Box::new(move |events| {
        sink.lock().unwrap().extend_from_slice(events);
    }));
    let key = Bytes::from_static(b"\0\0\0\0\xff\xff\xff\xf9\0\0\0\x03abc");
    let p = partition_id(&key, COUNT);
    let writers: Vec<_> = (0..2u8)
        .map(|t| {
            let (service, key) = (service.clone(), key.clone());
            std::thread::spawn(move || {
                for i in 0..20_000u32 {
                    let mut value = vec![t];
                    value.extend_from_slice(&i.to_be_bytes());
                    let op = MapOp::Put {
                        key: key.clone(),
                        value: Bytes::from(value),
                        ttl: -1,
                    };
                    service.execute("m", &op, &[p], true);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 40_000);
    assert_eq!(seen[0].old_value, None);
    for (i, pair) in seen.windows(2).enumerate() {
        assert_eq!(
            pair[1].old_value,
            pair[0].value,
            "event {} does not follow event {i}",
            i + 1
        );
    }
}
