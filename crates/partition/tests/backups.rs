//! A backup holds what its owner holds: every write's change, applied on
//! the backup member, leaves the same entry (value, version, times, TTL)
//! as on the owner, whatever path the owner's write took (a new key, an
//! overwrite in place, one that changes the entry's layout, with or
//! without someone listening, a small or a big value).

use bytes::Bytes;
use ferrocast_partition::{PartitionService, PartitionTable, Received};
use ferrocast_protocol::data::partition_id;
use ferrocast_protocol::MapOp;
use uuid::Uuid;

const COUNT: u32 = 7;

fn value(len: usize, fill: u8) -> Bytes {
    Bytes::from(vec![fill; len])
}

#[test]
fn every_write_path_leaves_the_backup_equal_to_the_owner() {
    let (owner, backup) = (Uuid::new_v4(), Uuid::new_v4());
    let alive = [owner, backup];
    let table = PartitionTable {
        version: 1,
        replicas: vec![vec![owner, backup]; COUNT as usize],
        previous: PartitionTable::empty(COUNT).replicas,
    };
    let a = PartitionService::new(owner, COUNT);
    let b = PartitionService::new(backup, COUNT);
    a.apply_table(table.clone(), &alive).expect("applied");
    b.apply_table(table, &alive).expect("applied");
    let key = Bytes::from_static(b"\0\0\0\0\xff\xff\xff\xf9\0\0\0\x03abc");
    let p = partition_id(&key, COUNT);
    let writes = [
        (value(100, 1), -1, false),
        (value(100, 2), -1, false),    // in place
        (value(100, 3), -1, true),     // in place, listened to
        (value(40, 4), -1, false),     // new layout
        (value(40, 5), 60_000, false), // a TTL: new layout
        (value(4096, 6), -1, false),   // a big value
        (value(4096, 7), -1, true),    // in place, big
        (value(100, 8), -1, true),
    ];
    for (i, (v, ttl, listened)) in writes.into_iter().enumerate() {
        let op = if i % 2 == 0 {
            MapOp::Set {
                key: key.clone(),
                value: v,
                ttl,
            }
        } else {
            MapOp::Put {
                key: key.clone(),
                value: v,
                ttl,
            }
        };
        let (_, _, batches, moved) = a.execute("m", &op, &[p], listened);
        assert!(moved.is_empty());
        assert_eq!(batches.len(), 1, "write {i}");
        for batch in batches {
            assert!(b.receive_backup(batch), "write {i}");
        }
        let (_, mut on_owner) = a.snapshot(p);
        let (_, mut on_backup) = b.snapshot(p);
        let (o, k) = (&mut on_owner[0].1[0], &mut on_backup[0].1[0]);
        assert_eq!(o.0, k.0);
        // The remaining TTL is read at two moments.
        let (ol, kl) = (o.1.ttl_left_ms.take(), k.1.ttl_left_ms.take());
        assert_eq!(ol.is_some(), kl.is_some(), "write {i}");
        assert!(ol.unwrap_or(0).abs_diff(kl.unwrap_or(0)) <= 5, "write {i}");
        assert_eq!(o.1, k.1, "write {i}");
        assert_eq!(o.1.version, i as i64, "write {i}");
    }
}

/// A replica takes changes only from the owner its table names, and only
/// while it is one of that owner's backups; anything else is handed back
/// untouched.
#[test]
fn a_backup_takes_changes_only_from_the_owner_in_its_table() {
    let (owner, backup, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let alive = [owner, backup, other];
    let replicas = |r: Vec<Uuid>| PartitionTable {
        version: 0,
        replicas: vec![r; COUNT as usize],
        previous: PartitionTable::empty(COUNT).replicas,
    };
    let a = PartitionService::new(owner, COUNT);
    let b = PartitionService::new(backup, COUNT);
    let t1 = PartitionTable {
        version: 1,
        ..replicas(vec![owner, backup])
    };
    a.apply_table(t1.clone(), &alive).expect("applied");
    b.apply_table(t1.clone(), &alive).expect("applied");
    let key = Bytes::from_static(b"\0\0\0\0\xff\xff\xff\xf9\0\0\0\x03abc");
    let p = partition_id(&key, COUNT);
    let op = MapOp::Set {
        key: key.clone(),
        value: value(10, 1),
        ttl: -1,
    };
    let (_, _, mut batches, _) = a.execute("m", &op, &[p], false);
    let batch = batches.pop().expect("a batch");
    let batch = b
        .receive_backup_from(batch, other)
        .expect_err("not the owner");
    assert_eq!(b.replica_status(p).0, 0, "nothing applied");
    assert_eq!(
        b.receive_backup_from(batch.clone(), owner),
        Ok(Received::Taken)
    );
    assert_eq!(b.replica_status(p).0, 1);
    // A table in which this member is no longer a backup of p.
    let t2 = PartitionTable {
        version: 2,
        previous: t1.replicas.clone(),
        ..replicas(vec![owner, other])
    };
    b.apply_table(t2, &alive).expect("applied");
    assert!(b.receive_backup_from(batch, owner).is_err());
}
