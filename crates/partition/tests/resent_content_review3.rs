//! A case a third review of the notes of numbers taken without content
//! (dc040f7) found, failing since before them: a member copying a partition
//! (it just joined) moves up a place while its copy is in flight. The copy,
//! served before the move, lacks a write the owner numbered next, which the
//! member that left took in full and acknowledged, while the copying member
//! took its number only. Installed, the copy left that write on the owner
//! alone, and nothing copied it again. Now a replica that moves up while
//! its copy travels runs an upgrade once the copy is in
//! (`PartitionState::copy_moved_up`, `Installed::Upgrade`).

mod common;
use common::members::*;

use ferrocast_partition::{Installed, PartitionTable};

/// t2 = [A, B, E]: E joins at place 2 (`plain` as numbers only) and A
/// serves its copy; A numbers W, B acknowledges it in full, E takes its
/// number. t3 = [A, E]: B leaves, E moves up with its copy in flight; the
/// copy is installed. Returns t3.
fn e_moves_up_while_its_copy_travels(c: &Cluster) -> PartitionTable {
    let t1 = c.t1_with_data();
    let t2 = c.t(2, &[A, B, E], &t1);
    for m in [A, B, E] {
        c.apply(m, &t2, &[A, B, E]);
    }
    let (seq, term, data, pending) = c.services[A].snapshot_for_copy(c.p);
    let w_batches = c.exec("plain", set_to(&c.keys[8], b"w"), A);
    assert!(acked_by(c, B, A, &w_batches), "B, place 1, acknowledges W");
    for b in &w_batches {
        c.deliver(b, A, E, false);
    }
    let t3 = c.t(3, &[A, E], &t2);
    c.apply(A, &t3, &[A, B, E]);
    c.apply(B, &t3, &[A, B, E]);
    c.apply(E, &t3, &[A, B, E]);
    assert_eq!(
        c.services[E].install_copy_asked_at(c.p, 2, seq, term, data, pending),
        Installed::Upgrade { version: 3 },
        "moved up while the copy travelled: the maps are copied again"
    );
    assert!(
        !c.services[E].replica_status(c.p).1,
        "not in sync until then"
    );
    t3
}

#[test]
fn a_copy_in_flight_across_a_move_up_is_followed_by_an_upgrade() {
    let c = Cluster::new();
    e_moves_up_while_its_copy_travels(&c);
    let (seq, data) = c.services[A].snapshot(c.p);
    let asked_at = c.services[E].table_version();
    assert!(c.services[E].finish_upgrade_from(c.p, 3, Some(c.ids[A]), asked_at, seq, data));
    assert_eq!(c.value(E, "plain", &c.keys[8]), Some(w()));
    assert_eq!(c.contents(E), c.contents(A));
}

/// A fails before the upgrade copy: E, promoted while upgrading, merges
/// its log over the data of B, which is leaving gracefully (alive until
/// the others are in sync) and holds W.
#[test]
fn a_copy_in_flight_across_a_move_up_then_the_owner_fails_keeps_the_write() {
    let c = Cluster::new();
    let t3 = e_moves_up_while_its_copy_travels(&c);
    let acked = c.contents(A);
    let t4 = c.t(4, &[E], &t3);
    let change = c.apply(E, &t4, &[B, E]);
    assert!(
        change.promotion_bases.contains(&(c.p, vec![c.ids[B]])),
        "{change:?}"
    );
    c.apply(B, &t4, &[B, E]);
    let (seq, data) = c.services[B].snapshot(c.p);
    assert!(c.services[E].finish_promotion_over_base(c.p, 4, c.ids[B], seq, data));
    assert_eq!(
        c.value(E, "plain", &c.keys[8]),
        Some(w()),
        "W, acknowledged"
    );
    assert_eq!(c.contents(E), acked);
}
