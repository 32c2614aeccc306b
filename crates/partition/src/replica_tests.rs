//! Tests of a partition replica's state (`replica.rs`) without a service:
//! changes received out of order, copies, promotion.

use super::*;

fn put(k: &str, v: &str) -> Vec<Change> {
    vec![Change::Put {
        map: "m".into(),
        key: Bytes::copy_from_slice(k.as_bytes()),
        record: MigratedRecord {
            value: Bytes::copy_from_slice(v.as_bytes()),
            ttl_left_ms: None,
            ttl_ms: None,
            creation_time: 0,
            last_update_time: 0,
            last_access_time: 0,
            hits: 0,
            version: 0,
        },
    }]
}

fn get(s: &mut PartitionState, k: &str) -> Option<Bytes> {
    s.store.map_mut("m").get(k.as_bytes(), Instant::now())
}

#[test]
fn changes_apply_in_order_whatever_order_they_arrive_in() {
    let now = Instant::now();
    let mut s = PartitionState::new();
    s.start_empty();
    assert!(s.receive(2, put("a", "2"), now));
    assert_eq!(get(&mut s, "a"), None);
    assert!(s.receive(1, put("a", "1"), now));
    assert_eq!(get(&mut s, "a").as_deref(), Some(&b"2"[..]));
    assert_eq!(s.seq, 2);
    assert!(s.receive(1, put("a", "old"), now));
    assert_eq!(get(&mut s, "a").as_deref(), Some(&b"2"[..]));
}

#[test]
fn a_copy_then_the_changes_after_it() {
    let now = Instant::now();
    let mut s = PartitionState::new();
    s.synced = false;
    s.receive(5, put("b", "5"), now);
    s.receive(4, put("b", "4"), now);
    let mut copy = PartitionStore::default();
    copy.map_mut("m").put(
        Bytes::from_static(b"b"),
        Bytes::from_static(b"3"),
        None,
        now,
    );
    s.install(3, None, copy, now);
    assert_eq!(s.seq, 5);
    assert_eq!(get(&mut s, "b").as_deref(), Some(&b"5"[..]));
}

#[test]
fn promotion_applies_everything_received() {
    let now = Instant::now();
    let mut s = PartitionState::new();
    s.start_empty();
    s.receive(1, put("a", "1"), now);
    s.receive(3, put("c", "3"), now);
    assert!(s.has_gap());
    assert!(s.promote(now));
    assert_eq!(get(&mut s, "c").as_deref(), Some(&b"3"[..]));
    assert_eq!(s.seq, 3);
}

#[test]
fn a_backup_promoted_before_its_copy_arrived_keeps_waiting_for_it() {
    let now = Instant::now();
    let mut s = PartitionState::new();
    s.synced = false;
    s.receive(8, put("a", "8"), now);
    assert!(!s.promote(now));
    assert!(!s.synced);
    let mut copy = PartitionStore::default();
    copy.map_mut("m").put(
        Bytes::from_static(b"z"),
        Bytes::from_static(b"7"),
        None,
        now,
    );
    s.install(7, None, copy, now);
    assert_eq!(s.seq, 8);
    assert_eq!(get(&mut s, "a").as_deref(), Some(&b"8"[..]));
    assert_eq!(get(&mut s, "z").as_deref(), Some(&b"7"[..]));
}
