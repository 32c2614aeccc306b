//! A backup promoted over a living owner waits for that owner's copy;
//! tables that change the partition again meanwhile end the promotion, and
//! the copy task's late end changes nothing (cases from a review).

mod common;
use common::*;

use ferrocast_partition::{PartitionService, PartitionTable};
use ferrocast_protocol::data::partition_id;
use uuid::Uuid;

/// A newer table takes the partition from B while its promotion copy is in
/// flight: the promotion task's end must not mark B's (backup-only) data
/// complete, or B would serve it as a complete copy to the next owner (a
/// review found the first version of the fallback did).
#[test]
fn keep_own_data_after_partition_moved_away_marks_released_data_complete() {
    let (a_id, b_id, c_id, d_id) = (
        Uuid::from_bytes([1; 16]),
        Uuid::from_bytes([2; 16]),
        Uuid::from_bytes([3; 16]),
        Uuid::from_bytes([4; 16]),
    );
    let alive = [a_id, b_id, c_id, d_id];
    let b = PartitionService::new(b_id, COUNT);
    b.set_partial_backups(true);
    let t1 = table(1, &[a_id, b_id], &PartitionTable::empty(COUNT));
    b.apply_table(t1.clone(), &alive).unwrap();
    let p = 0;
    // A leaves gracefully: B promoted, copies from A.
    let t2 = table(2, &[b_id, c_id], &t1);
    let change = b.apply_table(t2.clone(), &alive).unwrap();
    assert!(change.promotion_copies.contains(&(p, vec![a_id], 2)));
    // A join moves the partition on before A's copy is installed.
    let t3 = table(3, &[d_id, c_id], &t2);
    let change = b.apply_table(t3, &alive).unwrap();
    assert!(change.released.contains(&p));
    assert!(
        change.will_serve.contains(&(p, d_id)),
        "D copies from B first: {change:?}"
    );
    // What spawn_promotion_copy does: the answer's `is_replica` guard fails.
    assert!(
        !b.finish_promotion(p, 2, None),
        "the T2 task's end is ignored"
    );
    assert!(
        !b.replica_status(p).1,
        "B's backup-only data must not count as a complete copy"
    );
}

/// A stale promotion task ends after newer tables gave B the partition
/// again by a regular copy: it must not release operations on the retained
/// (stale) data, which the regular copy would then overwrite (a review found
/// the first version of the fallback did).
#[test]
fn stale_promotion_fallback_releases_operations_before_the_regular_copy() {
    let ids: Vec<Uuid> = (1..=4u8).map(|i| Uuid::from_bytes([i; 16])).collect();
    let (a_id, b_id, c_id, d_id) = (ids[0], ids[1], ids[2], ids[3]);
    let b = PartitionService::new(b_id, COUNT);
    b.set_partial_backups(true);
    let t1 = table(1, &[a_id, b_id], &PartitionTable::empty(COUNT));
    b.apply_table(t1.clone(), &ids).unwrap();
    let p = partition_id(&key("00"), COUNT);
    let t2 = table(2, &[b_id, c_id], &t1);
    assert!(b
        .apply_table(t2.clone(), &ids)
        .unwrap()
        .promotion_copies
        .contains(&(p, vec![a_id], 2)));
    let t3 = table(3, &[c_id, d_id], &t2);
    b.apply_table(t3.clone(), &ids).unwrap();
    let t4 = table(4, &[b_id, d_id], &t3);
    let change = b.apply_table(t4, &ids).unwrap();
    assert!(
        change
            .needs_copy
            .iter()
            .any(|(q, owner, src)| *q == p && *owner && *src == c_id),
        "{change:?}"
    );
    assert!(b.is_awaiting(p));
    // The T2 promotion task gives up now (A paused, 10 s).
    assert!(
        !b.finish_promotion(p, 2, None),
        "the T2 task's end is ignored"
    );
    let (_, _, batches, not_here) = b.execute("m", &set(&key("00")), &[p], false);
    assert!(
        !b.replica_status(p).1 || !not_here.is_empty(),
        "a write ran (and would be acknowledged: {} batch(es)) before T4's copy from C, which replaces it",
        batches.len()
    );
}

/// A newer table that keeps B owner (its backup replaced, say) does not end
/// B's promotion: nobody changed the partition meanwhile, so B goes on
/// waiting for the copy from the member ahead of it, with its own data to
/// fall back on. Ending it made B copy anew from whoever answered; after a
/// second failure nobody had it complete, and a copy another member had
/// kept since the cluster formed replaced B's data (the chaos per-map test
/// lost 172 of the 2-backup map's entries under load).
#[test]
fn a_table_keeping_the_promoted_member_owner_keeps_its_promotion() {
    let ids: Vec<Uuid> = (1..=4u8).map(|i| Uuid::from_bytes([i; 16])).collect();
    let (a_id, b_id, c_id, d_id) = (ids[0], ids[1], ids[2], ids[3]);
    let b = PartitionService::new(b_id, COUNT);
    b.set_partial_backups(true);
    let t1 = table(1, &[a_id, b_id, c_id], &PartitionTable::empty(COUNT));
    b.apply_table(t1.clone(), &ids).unwrap();
    let p = partition_id(&key("00"), COUNT);
    let t2 = table(2, &[b_id, c_id, d_id], &t1);
    assert!(b
        .apply_table(t2.clone(), &ids)
        .unwrap()
        .promotion_copies
        .contains(&(p, vec![a_id], 2)));
    // C fails: B stays owner.
    let t3 = table(3, &[b_id, d_id], &t2);
    let change = b.apply_table(t3, &[a_id, b_id, d_id]).unwrap();
    assert!(
        !change.needs_copy.iter().any(|(q, _, _)| *q == p),
        "{change:?}"
    );
    assert!(b.promotion_pending(p, 2), "still waiting for A's copy");
    assert!(b.is_awaiting(p));
    assert!(b.finish_promotion(p, 2, None), "ends with B's own data");
    assert!(b.replica_status(p).1);
    assert!(!b.is_awaiting(p));
}

/// A member that missed a table keeps no stale promotion: C, promoted by
/// table 2 and copying from B, misses table 3 (the partition moved to D,
/// which took a write Y that E acknowledged), then gets table 4, computed
/// from 3, which makes it owner again. Table 4 must end the old promotion
/// (its sources predate D's writes) and make C copy anew (found by a review
/// of the change that keeps promotions across tables keeping the owner).
#[test]
fn a_member_that_missed_a_table_does_not_keep_a_stale_promotion() {
    let ids = [1u8, 2, 3, 4, 5].map(|b| Uuid::from_bytes([b; 16]));
    let [a, b, c, d, e] = ids;
    let services = ids.map(|id| {
        let s = PartitionService::new(id, COUNT);
        s.set_partial_backups(true);
        s
    });
    let [sa, sb, sc, sd, se] = &services;
    let p = partition_id(&key("0000"), COUNT);
    let in_p: Vec<_> = (0..)
        .map(|i| key(&format!("{i:04}")))
        .filter(|k| partition_id(k, COUNT) == p)
        .take(2)
        .collect();
    let t1 = table(1, &[a, b, c], &PartitionTable::empty(COUNT));
    for s in &services {
        s.apply_table(t1.clone(), &ids).unwrap();
    }
    let (_, _, batches, _) = sa.execute("m", &set(&in_p[0]), &[p], false);
    for batch in batches {
        sb.receive_backup_from(batch.clone(), a).unwrap();
        sc.receive_backup_from(batch, a).unwrap();
    }
    let t2 = table(2, &[c, b], &t1);
    let change = sc.apply_table(t2.clone(), &ids).unwrap();
    assert!(change.promotion_copies.contains(&(p, vec![a, b], 2)));
    sb.apply_table(t2.clone(), &ids).unwrap();
    // Table 3, which C misses: the partition on D and E, copied from B.
    let t3 = table(3, &[d, e], &t2);
    for s in [sb, sd, se] {
        s.apply_table(t3.clone(), &ids).unwrap();
    }
    let (seq, term, data) = sb.snapshot_with_term(p);
    sd.install_copy(p, seq, term, data.clone());
    se.install_copy(p, seq, term, data);
    let (_, _, batches, _) = sd.execute("m", &set(&in_p[1]), &[p], false);
    for batch in batches {
        se.receive_backup_from(batch, d).unwrap();
    }
    // Table 4, from 3: C owns it again.
    let t4 = table(4, &[c, e], &t3);
    let change = sc.apply_table(t4.clone(), &ids).unwrap();
    assert!(!sc.promotion_pending(p, 2), "the table-2 promotion is over");
    assert!(
        change.needs_copy.contains(&(p, true, d)),
        "C copies from D: {change:?}"
    );
    assert!(!sc.finish_promotion(p, 2, Some(sb.snapshot(p))));
    sd.apply_table(t4.clone(), &ids).unwrap();
    let (seq, term, data) = sd.snapshot_with_term(p);
    sc.install_copy(p, seq, term, data);
    let (_, data) = sc.snapshot(p);
    let held: Vec<_> = data
        .iter()
        .flat_map(|(_, r)| r.iter().map(|(k, _)| k.clone()))
        .collect();
    assert!(
        held.contains(&in_p[1]),
        "C holds Y, which D wrote and E acknowledged"
    );
}

/// A regular copy task that gives up (copy limit, nobody left) while the
/// member now waits for a promotion copy leaves the promotion alone: it
/// must not release operations on data the promotion copy then replaces
/// (found by the same review, reasoned).
#[test]
fn a_regular_copy_giving_up_leaves_a_pending_promotion_alone() {
    let ids: Vec<Uuid> = (1..=3u8).map(|i| Uuid::from_bytes([i; 16])).collect();
    let (a_id, b_id, c_id) = (ids[0], ids[1], ids[2]);
    let b = PartitionService::new(b_id, COUNT);
    b.set_partial_backups(true);
    let t1 = table(1, &[a_id, b_id], &PartitionTable::empty(COUNT));
    b.apply_table(t1.clone(), &ids).unwrap();
    let p = partition_id(&key("00"), COUNT);
    let t2 = table(2, &[b_id, c_id], &t1);
    assert!(b
        .apply_table(t2, &ids)
        .unwrap()
        .promotion_copies
        .contains(&(p, vec![a_id], 2)));
    b.stop_awaiting(p);
    assert!(b.promotion_pending(p, 2));
    assert!(b.is_awaiting(p), "operations still wait for A's copy");
    assert!(b.finish_promotion(p, 2, None));
    assert!(!b.is_awaiting(p));
}
