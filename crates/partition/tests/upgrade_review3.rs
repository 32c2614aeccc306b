//! Cases a third review of the merge (f5cd456) found, reproduced at the
//! service level; each `a_*`/`with_*` test failed before its fix, the
//! `ok_*` tests are sequences it checked and found correct. A member
//! leaving gracefully (alive until the others are in sync) is a base for
//! a merge when nobody behind holds the data; a backup keeps no maps that
//! no backup place keeps (they go stale); with three or more backups a
//! change applied during an upgrade also goes to a running early log.
//! Open findings of that review (a released replica answering complete, an
//! early log over its limit, a re-syncing first backup taking a worse
//! place's copy) are described in docs/architecture.md.

mod common;
use common::members::*;
use common::*;

use ferrocast_partition::PartitionTable;

/// B leaves gracefully (3 members: t2 = [A, C], C moves up and upgrades);
/// A crashes before C's upgrade copy. Nobody is behind C, but B, alive
/// until the others are in sync, still holds the partition: C merges its
/// log over B's data instead of serving its own without `plain`'s older
/// entries. (A write A numbered on t1 after B applied t2, refused by B and
/// taken by C as a number only, is not acknowledged before C's upgrade
/// copy: `resent_content.rs`.)
#[test]
fn a_member_leaving_gracefully_is_a_base_for_a_merge() {
    let c = Cluster::new();
    let t1 = c.t1_with_data();
    let t2 = c.t(2, &[A, C], &t1);
    c.apply(B, &t2, &[A, B, C]);
    c.apply(A, &t2, &[A, B, C]);
    assert!(c.apply(C, &t2, &[A, B, C]).upgrades.contains(&(c.p, 2)));
    c.write("plain", set(&c.keys[8]), A, &[C], &[]);
    c.write("plain", remove(&c.keys[1]), A, &[C], &[]);
    let acked = c.contents(A);
    let t3 = c.t(3, &[C], &t2);
    let change = c.apply(C, &t3, &[B, C]);
    assert!(
        change.promotion_bases.contains(&(c.p, vec![c.ids[B]])),
        "{change:?}"
    );
    c.apply(B, &t3, &[B, C]);
    assert!(
        c.services[B].serves_base(c.p, 3),
        "B still holds its replica"
    );
    let (seq, data) = c.services[B].snapshot(c.p);
    assert!(c.services[C].finish_promotion_over_base(c.p, 3, c.ids[B], seq, data));
    assert_eq!(
        c.contents(C),
        acked,
        "every acknowledged write on the new owner"
    );
}

/// Same with four members: t2 = [A, C, E], and A crashes before E, the
/// new backup, has its copy. E holds nothing and is passed over; B, the
/// member leaving, is the base.
#[test]
fn a_base_without_data_is_passed_over_for_the_member_leaving() {
    let c = Cluster::new();
    let t1 = c.t1_with_data();
    let t2 = c.t(2, &[A, C, E], &t1);
    for m in [A, B, C, E] {
        c.apply(m, &t2, &[A, B, C, E]);
    }
    c.write("plain", set(&c.keys[8]), A, &[C], &[E]);
    let acked = c.contents(A);
    let t3 = c.t(3, &[C, E], &t2);
    let change = c.apply(C, &t3, &[B, C, E]);
    assert!(
        change
            .promotion_bases
            .contains(&(c.p, vec![c.ids[E], c.ids[B]])),
        "{change:?}"
    );
    c.apply(E, &t3, &[B, C, E]);
    c.apply(B, &t3, &[B, C, E]);
    assert!(
        !c.services[E].serves_base(c.p, 3),
        "E holds nothing: NoData"
    );
    assert!(c.services[B].serves_base(c.p, 3));
    let (seq, data) = c.services[B].snapshot(c.p);
    assert!(c.services[C].finish_promotion_over_base(c.p, 3, c.ids[B], seq, data));
    assert_eq!(c.contents(C), acked);
}

#[test]
fn a_promoted_backup_serves_no_stale_entries_of_a_map_without_backups() {
    let c = Cluster::with(3, |m: &str| if m == "zero" { 0 } else { 1 });
    let (a, cc) = (0, 2);
    let t1 = c.t(1, &[a], &PartitionTable::empty(COUNT));
    c.apply(a, &t1, &[a]);
    c.write("zero", set_to(&c.keys[0], b"old"), a, &[], &[]);
    c.write("zero", set_to(&c.keys[1], b"v1"), a, &[], &[]);
    let t2 = c.t(2, &[a, cc], &t1);
    c.apply(a, &t2, &[a, cc]);
    c.apply(cc, &t2, &[a, cc]);
    c.copy_from(a, cc);
    c.write("zero", remove(&c.keys[0]), a, &[], &[cc]);
    c.write("zero", set_to(&c.keys[1], b"v2"), a, &[], &[cc]);
    let t3 = c.t(3, &[cc], &t2);
    c.apply(cc, &t3, &[cc]);
    assert!(c.services[cc].replica_status(c.p).1, "C serves at once");
    let k0 = c.value(cc, "zero", &c.keys[0]);
    let k1 = c.value(cc, "zero", &c.keys[1]);
    assert!(
        k0.is_none() && k1.as_deref() != Some(&b"v1"[..]),
        "removed zero/K0 resurrected ({k0:?}) / zero/K1 rolled back to {k1:?}"
    );
}

#[test]
fn with_three_backups_an_early_log_taken_during_an_upgrade_has_no_hole() {
    let c = Cluster::with(6, |m: &str| match m {
        "critical" => 3,
        "mid" => 2,
        _ => 1,
    });
    const F: usize = 4;
    const G: usize = 5;
    let all = [A, B, C, E, F, G];
    let t1 = c.t(1, &[A, B, E, C], &PartitionTable::empty(COUNT));
    for m in [A, B, E, C] {
        c.apply(m, &t1, &all);
    }
    c.write("plain", set(&c.keys[0]), A, &[B], &[E, C]);
    let t2 = c.t(2, &[A, E, C, F], &t1);
    let t3 = c.t(3, &[A, C, F, G], &t2);
    c.apply(A, &t2, &all);
    c.apply(A, &t3, &all);
    c.apply(F, &t2, &all);
    c.copy_from(A, F);
    assert!(c.apply(F, &t3, &all).upgrades.contains(&(c.p, 3)));
    c.apply(G, &t3, &all);
    c.copy_from(A, G);
    // A on t3: backups [C, F, G]; C (still on t1) takes plain in full.
    c.write("plain", set_to(&c.keys[8], b"P0"), A, &[C], &[F, G]); // early log starts
    assert!(c.apply(C, &t2, &all).upgrades.contains(&(c.p, 2)));
    c.write("plain", set_to(&c.keys[9], b"P1"), A, &[C], &[F, G]); // upgrade v2 log
    let (s, d) = c.services[A].snapshot(c.p);
    assert!(c.services[C].finish_upgrade_from(
        c.p,
        2,
        Some(c.ids[A]),
        c.services[C].table_version(),
        s,
        d
    ));
    c.write("plain", set_to(&c.keys[10], b"P2"), A, &[C], &[F, G]); // stale early log
    assert!(c.apply(C, &t3, &all).upgrades.contains(&(c.p, 3)));
    // A crashes.
    let t4 = c.t(4, &[C, F, G], &t3);
    let change = c.apply(C, &t4, &all);
    assert!(
        change
            .promotion_bases
            .iter()
            .any(|(q, b)| *q == c.p && b.starts_with(&[c.ids[F], c.ids[G]])),
        "{change:?}"
    );
    c.apply(F, &t4, &all);
    c.apply(G, &t4, &all);
    assert!(!c.services[F].serves_base(c.p, 4));
    assert!(c.services[G].serves_base(c.p, 4));
    let (seq, data) = c.services[G].snapshot(c.p);
    assert!(c.services[C].finish_promotion_over_base(c.p, 4, c.ids[G], seq, data));
    assert!(c.value(C, "plain", &c.keys[0]).is_some());
    assert!(c.value(C, "plain", &c.keys[8]).is_some(), "P0");
    assert!(c.value(C, "plain", &c.keys[10]).is_some(), "P2");
    assert!(
        c.value(C, "plain", &c.keys[9]).is_some(),
        "acknowledged P1 lost: the t3 upgrade's log came from a stale early log"
    );
}

#[test]
fn ok_upgrade_over_an_owner_promoted_by_a_merge_settles_equal() {
    let c = Cluster::new();
    let t1 = c.t1_with_data();
    let t2 = c.t(2, &[A, C, E], &t1);
    for m in [A, C, E] {
        c.apply(m, &t2, &[A, C, E]);
    }
    c.copy_from(A, E);
    c.write("plain", set(&c.keys[8]), A, &[C], &[E]);
    c.write("plain", remove(&c.keys[0]), A, &[C], &[E]);
    c.write("critical", set(&c.keys[9]), A, &[C, E], &[]);
    let acked = c.contents(A);
    let t3 = c.t(3, &[E, C], &t2);
    c.apply(E, &t3, &[C, E]);
    c.apply(C, &t3, &[C, E]);
    let log = c.services[C].upgrade_log(c.p).expect("log");
    assert!(c.services[E].finish_promotion_with_log(c.p, 3, log));
    assert_eq!(c.contents(E), acked);
    // E writes; C takes them (term 3), still upgrading (t2's).
    c.write("plain", set(&c.keys[10]), E, &[C], &[]);
    c.write("plain", remove(&c.keys[1]), E, &[C], &[]);
    let (s, d) = c.services[E].snapshot(c.p);
    c.write("critical", set(&c.keys[11]), E, &[C], &[]); // after the snapshot
    assert!(c.services[C].finish_upgrade_from(
        c.p,
        2,
        Some(c.ids[E]),
        c.services[C].table_version(),
        s,
        d
    ));
    assert_eq!(c.contents(C), c.contents(E));
    assert_eq!(
        c.services[C].replica_status(c.p).0,
        c.services[E].replica_status(c.p).0
    );
}

/// C promoted merges its kept log over E's base; E's t3 upgrade copies
/// from C: identical, same numbers.

#[test]
fn ok_base_merge_then_upgrade_settles_equal() {
    let c = Cluster::new();
    let t1 = c.t1_with_data();
    let t2 = c.t(2, &[A, C, E], &t1);
    for m in [A, C, E] {
        c.apply(m, &t2, &[A, C, E]);
    }
    c.copy_from(A, E);
    c.write("plain", set(&c.keys[8]), A, &[C], &[E]);
    c.write("plain", remove(&c.keys[0]), A, &[C], &[E]);
    let acked = c.contents(A);
    let t3 = c.t(3, &[C, E], &t2);
    c.apply(C, &t3, &[C, E]);
    assert!(c.apply(E, &t3, &[C, E]).upgrades.contains(&(c.p, 3)));
    assert!(c.services[E].serves_base(c.p, 3));
    let (seq, data) = c.services[E].snapshot(c.p);
    assert!(c.services[C].finish_promotion_over_base(c.p, 3, c.ids[E], seq, data));
    assert_eq!(c.contents(C), acked);
    c.write("plain", set(&c.keys[10]), C, &[E], &[]);
    let (s, d) = c.services[C].snapshot(c.p);
    assert!(c.services[E].finish_upgrade_from(
        c.p,
        3,
        Some(c.ids[C]),
        c.services[E].table_version(),
        s,
        d
    ));
    assert_eq!(c.contents(C), c.contents(E));
    assert_eq!(
        c.services[C].replica_status(c.p).0,
        c.services[E].replica_status(c.p).0
    );
}

/// Owner A leaves gracefully while C upgrades: C promoted takes A's
/// complete copy (A still alive and ahead); no log, no loss.

#[test]
fn ok_graceful_owner_leave_while_a_backup_upgrades() {
    let c = Cluster::new();
    let t1 = c.t1_with_data();
    let t2 = c.t(2, &[A, C, E], &t1);
    for m in [A, C, E] {
        c.apply(m, &t2, &[A, C, E]);
    }
    c.copy_from(A, E);
    c.write("plain", set(&c.keys[8]), A, &[C], &[E]);
    let acked = c.contents(A);
    let t3 = c.t(3, &[C, E], &t2);
    let change = c.apply(C, &t3, &[A, C, E]);
    assert!(change.promotion_copies.contains(&(c.p, vec![c.ids[A]], 3)));
    c.apply(A, &t3, &[A, C, E]);
    c.apply(E, &t3, &[A, C, E]);
    assert!(c.services[A].replica_status(c.p).1);
    let (seq, _, data, pending) = c.services[A].snapshot_for_copy(c.p);
    assert!(c.services[C].finish_promotion_copy(c.p, 3, seq, data, pending));
    assert_eq!(c.contents(C), acked);
}
