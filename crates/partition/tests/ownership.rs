//! A partition's ownership as operations see it: decided under the
//! partition's lock by the table applied last, so a write cannot land on a
//! member after the partition moved away (and after its copy was taken).

use bytes::Bytes;
use ferrocast_partition::PartitionTable;
use ferrocast_partition::{PartitionService, Received};
use ferrocast_protocol::data::partition_id;
use ferrocast_protocol::MapOp;
use uuid::Uuid;

const COUNT: u32 = 7;

fn table(version: u64, owner: Uuid, backup: Uuid, previous: &PartitionTable) -> PartitionTable {
    PartitionTable {
        version,
        replicas: vec![vec![owner, backup]; COUNT as usize],
        previous: previous.replicas.clone(),
    }
}

fn set(key: &Bytes) -> MapOp {
    MapOp::Set {
        key: key.clone(),
        value: Bytes::from_static(b"\0\0\0\0\xff\xff\xff\xf9\0\0\0\x01"),
        ttl: -1,
    }
}

/// Two members, the partition service of the first, and a key with its
/// partition.
fn two_members() -> (Uuid, Uuid, [Uuid; 2], PartitionService, Bytes, u32) {
    let (me, other) = (Uuid::new_v4(), Uuid::new_v4());
    let key = Bytes::from_static(b"\0\0\0\0\xff\xff\xff\xf9\0\0\0\x03abc");
    let p = partition_id(&key, COUNT);
    (
        me,
        other,
        [me, other],
        PartitionService::new(me, COUNT),
        key,
        p,
    )
}

#[test]
fn a_write_after_the_partition_moved_away_is_not_executed_here() {
    let (me, other, alive, service, key, p) = two_members();

    let t1 = table(1, me, other, &PartitionTable::empty(COUNT));
    service.apply_table(t1.clone(), &alive).expect("applied");
    let (_, _, batches, moved) = service.execute("m", &set(&key), &[p], true);
    assert!(moved.is_empty());
    assert_eq!(batches.len(), 1);

    // The other member takes over; this one stays its backup.
    service
        .apply_table(table(2, other, me, &t1), &alive)
        .expect("applied");
    let (seq_before, _, _) = service.replica_status(p);
    let (_, events, batches, moved) = service.execute("m", &set(&key), &[p], true);
    assert_eq!(moved, vec![p]);
    assert!(events.is_empty() && batches.is_empty());
    assert_eq!(
        service.replica_status(p).0,
        seq_before,
        "no change numbered here"
    );

    // A map-wide operation skips it too and says so.
    let (_, _, _, moved) =
        service.execute("m", &MapOp::Clear, &(0..COUNT).collect::<Vec<_>>(), true);
    assert_eq!(moved.len(), COUNT as usize);
}

#[test]
fn a_backup_promoted_before_its_copy_arrived_makes_operations_wait() {
    let (me, a, b) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let alive = [me, a, b];
    let service = PartitionService::new(me, COUNT);
    let t1 = table(1, a, b, &PartitionTable::empty(COUNT));
    service.apply_table(t1.clone(), &alive).expect("applied");
    // We become a's backup: a copy is due from a.
    let t2 = table(2, a, me, &t1);
    let change = service.apply_table(t2.clone(), &alive).expect("applied");
    assert_eq!(change.needs_copy.len(), COUNT as usize);
    assert!(!service.is_awaiting(0));
    // a leaves before the copy arrived: we are promoted without the data.
    service
        .apply_table(table(3, me, b, &t2), &alive)
        .expect("applied");
    assert!(service.is_awaiting(0), "operations must wait for the copy");
    // Even one that passed the waiting check a moment earlier is not run.
    let (_, _, batches, moved) = service.execute("m", &MapOp::Clear, &[0], true);
    assert_eq!(moved, vec![0]);
    assert!(batches.is_empty());
    service.install_copy(0, 5, 0, Vec::new());
    assert!(!service.is_awaiting(0));
    assert_eq!(service.replica_status(0).0, 5);
    let (_, _, batches, moved) = service.execute("m", &MapOp::Clear, &[0], true);
    assert!(moved.is_empty());
    assert_eq!(batches[0].seq, 6, "numbering goes on from the copy");
}

#[test]
fn a_member_never_holding_a_partition_has_nothing_to_serve() {
    let (me, a, b) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let service = PartitionService::new(me, COUNT);
    // Fresh: nothing held, so nothing may be served as a copy.
    assert!(!service.replica_status(0).1);
    // A table without us (one we may skip to, never having seen the one
    // that named us) leaves it so.
    let t1 = table(1, a, b, &PartitionTable::empty(COUNT));
    service.apply_table(t1, &[me, a, b]).expect("applied");
    assert!(!service.replica_status(0).1);
    // The founder of a cluster starts every partition empty and complete.
    let founder = PartitionService::new(a, COUNT);
    founder
        .apply_table(table(1, a, b, &PartitionTable::empty(COUNT)), &[a])
        .expect("applied");
    assert!(founder.replica_status(0).1);
}

/// Writes and table changes on the same partition at once, from two
/// threads. A write used to read the table (for its backups) while holding
/// the partition's lock, and a table change takes the table's lock, then
/// each partition's: the two could wait on each other forever.
#[test]
fn writes_during_table_changes_do_not_deadlock() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::{Duration, Instant};

    let (me, x, y) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let alive = [me, x, y];
    let service = Arc::new(PartitionService::new(me, COUNT));
    let key = Bytes::from_static(b"\0\0\0\0\xff\xff\xff\xf9\0\0\0\x03abc");
    let p = partition_id(&key, COUNT);
    let t1 = table(1, me, x, &PartitionTable::empty(COUNT));
    service.apply_table(t1.clone(), &alive).expect("applied");
    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = mpsc::channel();
    let writer = {
        let (service, stop, done) = (service.clone(), stop.clone(), done_tx.clone());
        std::thread::spawn(move || {
            let mut writes = 0u64;
            while !stop.load(Ordering::Relaxed) {
                service.execute("m", &set(&key), &[p], false);
                writes += 1;
            }
            let _ = done.send(("writes", writes));
        })
    };
    let tables = {
        let (service, stop, done) = (service.clone(), stop.clone(), done_tx);
        std::thread::spawn(move || {
            let mut previous = t1;
            let mut version = 1;
            while !stop.load(Ordering::Relaxed) {
                version += 1;
                // The backup alternates, so partition p changes every time.
                let backup = if version % 2 == 0 { y } else { x };
                let next = table(version, me, backup, &previous);
                service.apply_table(next.clone(), &alive).expect("applied");
                previous = next;
            }
            let _ = done.send(("tables", version));
        })
    };
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(10);
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(left) {
            Ok((what, n)) => assert!(n > 100, "only {n} {what}"),
            Err(_) => panic!("writer and table changes stopped: deadlocked"),
        }
    }
    writer.join().expect("writer");
    tables.join().expect("tables");
}

/// A change numbered by an owner belongs to the data it was made on: once
/// that replica is reset (the member was removed and rejoins), replaced by
/// a copy, or loses ownership, its epoch moves on, so the owner cannot
/// take a late acknowledgement of that change as "backed up" (the backup
/// may have taken or skipped it under a newer table naming this member
/// owner again, while the change itself is in no store any more).
#[test]
fn a_change_numbered_before_a_reset_or_a_move_belongs_to_an_older_epoch() {
    let (me, other, alive, service, key, p) = two_members();
    let t1 = table(1, me, other, &PartitionTable::empty(COUNT));
    service.apply_table(t1.clone(), &alive).expect("applied");
    let epoch_of = |service: &PartitionService| {
        let (_, _, batches, _) = service.execute("m", &set(&key), &[p], true);
        assert_eq!(batches.len(), 1, "executed here");
        assert_eq!(batches[0].epoch, service.epoch(p));
        batches[0].epoch
    };
    let first = epoch_of(&service);
    assert_eq!(epoch_of(&service), first, "writes keep the epoch");
    // A newer table that keeps this member owner keeps it too.
    let t2 = table(2, me, other, &t1);
    service.apply_table(t2.clone(), &alive).expect("applied");
    assert_eq!(service.epoch(p), first);

    // Removed from the cluster: everything is dropped.
    service.reset_all();
    assert_ne!(service.epoch(p), first, "a reset starts a new epoch");

    // Owner again: a fresh service state, then the move away and back.
    let fresh = PartitionService::new(me, COUNT);
    fresh.apply_table(t1.clone(), &alive).expect("applied");
    let before_move = epoch_of(&fresh);
    let t2 = table(2, other, me, &t1);
    fresh.apply_table(t2.clone(), &alive).expect("applied");
    assert_ne!(fresh.epoch(p), before_move, "ownership lost");
    let after_move = fresh.epoch(p);
    // Back as owner: its data continues the other owner's changes now.
    fresh
        .apply_table(table(3, me, other, &t2), &alive)
        .expect("applied");
    assert_eq!(fresh.epoch(p), after_move);
    // And a copy installed over it (the one from the old owner, which it
    // was promoted over) starts another.
    assert!(fresh.finish_promotion(p, 3, Some((40, Vec::new()))));
    assert_ne!(fresh.epoch(p), after_move, "replaced by a copy");
}

/// Owner A and backup B swap roles (a join that takes A over its share) while
/// A's write is on its way to B: B refuses it, and the write fails on A and
/// is retried on B. Without a copy, A kept that write under a change number
/// B then gave another client's write, which A (now B's backup) took for one
/// it had and skipped while acknowledging it: an acknowledged write on one
/// member only. B, promoted over a living owner, copies from it.
#[test]
fn a_backup_promoted_over_a_living_owner_copies_from_it_and_the_two_stay_identical() {
    let (a_id, b_id) = (Uuid::from_bytes([1; 16]), Uuid::from_bytes([2; 16]));
    let alive = [a_id, b_id];
    let (a, b) = (
        PartitionService::new(a_id, COUNT),
        PartitionService::new(b_id, COUNT),
    );
    let t1 = table(1, a_id, b_id, &PartitionTable::empty(COUNT));
    a.apply_table(t1.clone(), &alive).expect("applied");
    b.apply_table(t1.clone(), &alive).expect("applied");
    let key = |s: &str| {
        let mut k = b"\0\0\0\0\xff\xff\xff\xf9\0\0\0\x02".to_vec();
        k.extend_from_slice(s.as_bytes());
        Bytes::from(k)
    };
    let p = partition_id(&key("w1"), COUNT);
    // Three keys of that partition, as w1, w2 and w3.
    let names: Vec<String> = (0..)
        .map(|i| format!("{i:02}"))
        .filter(|n| partition_id(&key(n), COUNT) == p)
        .take(3)
        .collect();
    let name = |k: &str| names[(k.as_bytes()[1] - b'1') as usize].clone();
    let on = |s: &PartitionService, k: &str| s.execute("m", &set(&key(&name(k))), &[p], false).2;
    for batch in on(&a, "w1") {
        b.receive_backup_from(batch, a_id).expect("B backs A up");
    }
    let in_flight = on(&a, "w2");

    let t2 = table(2, b_id, a_id, &t1);
    let change = b.apply_table(t2.clone(), &alive).expect("applied");
    assert!(
        change.promotion_copies.contains(&(p, vec![a_id], 2)),
        "B copies from A: {:?}",
        change.promotion_copies
    );
    assert!(b.is_awaiting(p), "operations on B wait for the copy");
    for batch in in_flight {
        assert!(
            b.receive_backup_from(batch, a_id).is_err(),
            "B refuses A's batch"
        );
    }
    a.apply_table(t2, &alive).expect("applied");
    // The copy: A's snapshot, taken once A has the new table.
    assert!(b.finish_promotion(p, 2, Some(a.snapshot(p))));
    assert!(!b.is_awaiting(p));
    // Another client's write on B, then the retry of A's failed one.
    for k in ["w3", "w2"] {
        for batch in on(&b, k) {
            assert_eq!(
                a.receive_backup_from(batch, b_id).ok(),
                Some(Received::Taken),
                "A backs B up"
            );
        }
    }
    let keys = |s: &PartitionService| {
        let (seq, data) = s.snapshot(p);
        let keys: std::collections::BTreeSet<Bytes> = data
            .iter()
            .flat_map(|(_, r)| r.iter().map(|(k, _)| k.clone()))
            .collect();
        (seq, keys)
    };
    let (on_a, on_b) = (keys(&a), keys(&b));
    assert_eq!(on_a.1.len(), 3, "w1, w2 and w3 on A");
    assert_eq!(
        on_a, on_b,
        "A (backup) and B (owner) hold the same writes at the same change"
    );
}

/// The old owner cannot send its copy (it left, or holds the partition
/// incomplete): the promoted backup serves what it held, as any promotion
/// does, and never gives it up for another member's copy.
#[test]
fn a_promotion_whose_old_owner_sends_no_copy_serves_the_backups_own_data() {
    let (a_id, b_id) = (Uuid::from_bytes([1; 16]), Uuid::from_bytes([2; 16]));
    let alive = [a_id, b_id];
    let (a, b) = (
        PartitionService::new(a_id, COUNT),
        PartitionService::new(b_id, COUNT),
    );
    let t1 = table(1, a_id, b_id, &PartitionTable::empty(COUNT));
    a.apply_table(t1.clone(), &alive).expect("applied");
    b.apply_table(t1.clone(), &alive).expect("applied");
    let key = Bytes::from_static(b"\0\0\0\0\xff\xff\xff\xf9\0\0\0\x03abc");
    let p = partition_id(&key, COUNT);
    for batch in a.execute("m", &set(&key), &[p], false).2 {
        b.receive_backup_from(batch, a_id).expect("B backs A up");
    }
    let change = b
        .apply_table(table(2, b_id, a_id, &t1), &alive)
        .expect("applied");
    assert!(change.promotion_copies.contains(&(p, vec![a_id], 2)));
    let get = MapOp::Get { key: key.clone() };
    let (_, _, _, not_here) = b.execute("m", &get, &[p], false);
    assert_eq!(
        not_here,
        vec![p],
        "no operation before the copy or the fallback"
    );
    assert!(b.finish_promotion(p, 2, None));
    assert!(!b.is_awaiting(p));
    let (result, _, _, not_here) = b.execute("m", &get, &[p], false);
    assert!(not_here.is_empty());
    assert!(
        matches!(result, ferrocast_partition::MapResult::Data(Some(_))),
        "the backup's entry is served: {result:?}"
    );
}

/// A promotion still waiting for the old owner's copy when a later table
/// changes the partition again: the older task's end (copy or none) does
/// nothing, and the later table decides, here copying the partition anew
/// as a backup (the data held missed the changes since the promotion).
#[test]
fn a_later_table_ends_a_pending_promotion_and_its_copy_task_changes_nothing() {
    let (a_id, b_id) = (Uuid::from_bytes([1; 16]), Uuid::from_bytes([2; 16]));
    let alive = [a_id, b_id];
    let b = PartitionService::new(b_id, COUNT);
    let t1 = table(1, a_id, b_id, &PartitionTable::empty(COUNT));
    b.apply_table(t1.clone(), &alive).expect("applied");
    let t2 = table(2, b_id, a_id, &t1);
    let change = b.apply_table(t2.clone(), &alive).expect("applied");
    assert_eq!(change.promotion_copies.len(), COUNT as usize);
    let p = change.promotion_copies[0].0;
    assert!(b.promotion_pending(p, 2) && b.is_awaiting(p));
    // Back to A as owner: B, a backup again, copies the partition anew.
    let change = b
        .apply_table(table(3, a_id, b_id, &t2), &alive)
        .expect("applied");
    assert!(!b.promotion_pending(p, 2));
    assert!(
        change
            .needs_copy
            .iter()
            .any(|(q, owner, src)| *q == p && !*owner && *src == a_id),
        "{:?}",
        change.needs_copy
    );
    assert!(
        !b.finish_promotion(p, 2, None),
        "the older task's end is ignored"
    );
    assert!(!b.replica_status(p).1, "still waiting for the new copy");
}
