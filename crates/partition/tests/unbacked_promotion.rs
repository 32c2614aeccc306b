//! A backup promoted while the member ahead of it never held the partition
//! complete: it joined, took the partition over, and left before its copy
//! arrived, so it numbered no change. The promoted member was the owner
//! before it; the maps no backup keeps (`nob`, `backup-count: 0`) are
//! still current on it and must stay, while after a change numbered
//! elsewhere they are stale and go, as in any promotion without the old
//! owner's copy.

mod common;
use common::members::*;

use ferrocast_partition::PartitionTable;

/// `nob` keeps no backup, `plain` one.
fn cluster() -> Cluster {
    Cluster::with(3, |m: &str| usize::from(m != "nob"))
}

/// t1 [A, B]: five `plain` keys (B full), three `nob` (B numbers only).
fn t1_with_data(c: &Cluster) -> PartitionTable {
    let t1 = c.t(1, &[A, B], &PartitionTable::empty(common::COUNT));
    for m in [A, B] {
        c.apply(m, &t1, &[A, B]);
    }
    for k in &c.keys[..5] {
        c.write("plain", set_to(k, b"p"), A, &[B], &[]);
    }
    for k in &c.keys[5..8] {
        c.write("nob", set_to(k, b"n"), A, &[], &[B]);
    }
    t1
}

/// t1, then t2 [C, A]: C joins as owner, its copy from A not yet in, A backs it up.
fn c_took_over(c: &Cluster) -> PartitionTable {
    let t1 = t1_with_data(c);
    let t2 = c.t(2, &[C, A], &t1);
    for m in [A, B, C] {
        c.apply(m, &t2, &[A, B, C]);
    }
    t2
}

fn entries(c: &Cluster, m: usize, map: &str) -> usize {
    c.contents(m)
        .into_iter()
        .find(|(n, _)| n == map)
        .map_or(0, |(_, r)| r.len())
}

#[test]
fn the_last_owner_keeps_its_unbacked_maps_when_nobody_numbered_a_change_since() {
    let c = cluster();
    let t2 = c_took_over(&c);
    // C leaves before its copy arrived: A, ahead of nobody else, is
    // promoted and first asks C, which never held it complete.
    let t3 = c.t(3, &[A, B], &t2);
    let change = c.apply(A, &t3, &[A, B, C]);
    assert!(
        change
            .promotion_copies
            .iter()
            .any(|(p, from, _)| *p == c.p && from.contains(&c.ids[C])),
        "{change:?}"
    );
    assert!(c.services[A].finish_promotion_keeping_current(c.p, 3));
    assert_eq!(
        entries(&c, A, "nob"),
        3,
        "nob's entries, current on A, kept"
    );
    assert_eq!(entries(&c, A, "plain"), 5);
}

#[test]
fn unbacked_maps_go_once_a_change_was_numbered_elsewhere() {
    let c = cluster();
    let t2 = c_took_over(&c);
    // This time C got its copy and changed `nob`: A took the number only.
    c.copy_from(A, C);
    c.write("nob", set_to(&c.keys[5], b"changed"), C, &[], &[A]);
    let t3 = c.t(3, &[A, B], &t2);
    c.apply(A, &t3, &[A, B, C]);
    assert!(c.services[A].finish_promotion_keeping_current(c.p, 3));
    assert_eq!(entries(&c, A, "nob"), 0, "A's nob is stale: dropped");
    assert_eq!(entries(&c, A, "plain"), 5);
}

#[test]
fn a_plain_promotion_without_the_old_owners_copy_drops_them_as_before() {
    let c = cluster();
    let t2 = c_took_over(&c);
    let t3 = c.t(3, &[A, B], &t2);
    c.apply(A, &t3, &[A, B, C]);
    assert!(c.services[A].finish_promotion(c.p, 3, None));
    assert_eq!(entries(&c, A, "nob"), 0);
}

/// t1 [A, B] with data; t2 [C, B]: C takes the partition over from A,
/// which releases it (keeping its data); t3 [A, B]: C left before its copy
/// arrived, and A, owner again, must copy. Returns t3.
fn a_owns_again(c: &Cluster) -> PartitionTable {
    let t1 = t1_with_data(c);
    let t2 = c.t(2, &[C, B], &t1);
    for m in [A, B, C] {
        c.apply(m, &t2, &[A, B, C]);
    }
    let t3 = c.t(3, &[A, B], &t2);
    let change = c.apply(A, &t3, &[A, B]);
    assert!(
        change.needs_copy.iter().any(|(p, _, _)| *p == c.p),
        "{change:?}"
    );
    t3
}

/// B's copy (the backup's) is at A's change number but lacks `nob`: A
/// keeps what it held (C, which took over, never held it complete).
#[test]
fn a_new_owner_keeps_its_own_data_over_a_backups_copy_at_the_same_change() {
    let c = cluster();
    a_owns_again(&c);
    let (seq, _) = c.services[B].snapshot(c.p);
    let offered = (seq, entries(&c, B, "plain") + entries(&c, B, "nob"));
    assert_eq!(offered.1, 5, "B, a backup, holds plain only");
    assert!(c.services[A].keep_own_if_current(c.p, Some(offered)));
    assert!(c.services[A].replica_status(c.p).1, "A serves its data");
    assert_eq!(entries(&c, A, "nob"), 3);
    assert_eq!(entries(&c, A, "plain"), 5);
}

/// A copy further along than A's (a change A never saw), or no copy at all
/// to compare with: A copies as usual.
#[test]
fn a_new_owner_copies_when_an_offer_is_further_or_missing() {
    let c = cluster();
    a_owns_again(&c);
    let (seq, _) = c.services[B].snapshot(c.p);
    assert!(!c.services[A].keep_own_if_current(c.p, Some((seq + 1, 5))));
    assert!(!c.services[A].keep_own_if_current(c.p, None));
    assert!(
        !c.services[A].replica_status(c.p).1,
        "still waiting for a copy"
    );
}
