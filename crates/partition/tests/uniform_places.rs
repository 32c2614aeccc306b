//! The sequences of `resent_content_review4.rs` that lose a write when
//! maps keep different backup counts (the ignored `open_*` cases), run as
//! the server's default `backup-places: uniform` runs them: every backup
//! place keeps every map with backups and acknowledges its changes, so no
//! replica holds a change as a number only and the service runs without
//! partial backups. A replica made owner while its copy travels holds the
//! acknowledged write among the changes it keeps for after that copy.

mod common;
use common::members::*;

use ferrocast_partition::{Installed, PartitionTable};

/// Members whose every backup place keeps every map (`critical` and
/// `plain` alike, two places), as `BackupCounts::uniform` makes them.
fn uniform() -> Cluster {
    let c = Cluster::with(5, |_: &str| 2);
    for s in &c.services {
        s.set_partial_backups(false);
    }
    c
}

/// Table 1 [A, B, C]: five `plain` keys and three `critical`, each
/// acknowledged by both backups.
fn t1_with_data(c: &Cluster) -> PartitionTable {
    let t1 = c.t(1, &[A, B, C], &PartitionTable::empty(common::COUNT));
    for m in [A, B, C] {
        c.apply(m, &t1, &[A, B, C]);
    }
    for k in &c.keys[..5] {
        c.write("plain", set_to(k, b"p"), A, &[B, C], &[]);
    }
    for k in &c.keys[5..8] {
        c.write("critical", set_to(k, b"c"), A, &[B, C], &[]);
    }
    t1
}

/// t2 = [A, B, E]: E joins at place 2 and A serves its copy (still in
/// flight); A writes W (`plain`), and B and E acknowledge it, E keeping it
/// for after its copy. t3 = [A, E]: B leaves, E moves up.
fn e_moves_up_copy_in_flight(c: &Cluster) -> (PartitionTable, Copy) {
    let t1 = t1_with_data(c);
    let t2 = c.t(2, &[A, B, E], &t1);
    for m in [A, B, E] {
        c.apply(m, &t2, &[A, B, E]);
    }
    let copy = c.services[A].snapshot_for_copy(c.p);
    let w_batches = c.exec("plain", set_to(&c.keys[8], b"w"), A);
    assert!(acked_by(c, B, A, &w_batches), "B, place 1, acknowledges W");
    assert!(acked_by(c, E, A, &w_batches), "E, place 2, acknowledges W");
    let t3 = c.t(3, &[A, E], &t2);
    for m in [A, B, E] {
        c.apply(m, &t3, &[A, B, E]);
    }
    (t3, copy)
}

type Copy = (
    u64,
    u64,
    ferrocast_partition::PartitionData,
    Vec<(u64, Vec<ferrocast_partition::Change>)>,
);

fn owner_takes_the_copy_in_flight(c: &Cluster, (seq, term, data, pending): Copy) {
    assert_eq!(
        c.services[E].install_copy_asked_at(c.p, 2, seq, term, data, pending),
        Installed::Done
    );
}

/// t4 = [E], applied by `appliers` with `alive` in the member list: E,
/// owner, installs the copy served before W, and holds everything A
/// acknowledged.
fn promoted_while_the_copy_travels(appliers: &[usize], alive: &[usize]) {
    let c = uniform();
    let (t3, old) = e_moves_up_copy_in_flight(&c);
    let acked = c.contents(A);
    let t4 = c.t(4, &[E], &t3);
    for m in appliers {
        c.apply(*m, &t4, alive);
    }
    owner_takes_the_copy_in_flight(&c, old);
    assert_eq!(
        c.value(E, "plain", &c.keys[8]),
        Some(w()),
        "W, acknowledged"
    );
    assert_eq!(c.contents(E), acked);
}

/// A fails after B left.
#[test]
fn promoted_while_the_copy_travels_owner_fails_keeps_the_write() {
    promoted_while_the_copy_travels(&[E, B], &[B, E]);
}

/// A leaves gracefully too.
#[test]
fn promoted_while_the_copy_travels_owner_leaves_keeps_the_write() {
    promoted_while_the_copy_travels(&[E, A, B], &[A, B, E]);
}

/// No move up: E, at place 2 with its copy in flight, is made owner as A
/// and B leave together.
#[test]
fn unsynced_place_two_promoted_keeps_the_write() {
    let c = uniform();
    let t1 = t1_with_data(&c);
    let t2 = c.t(2, &[A, B, E], &t1);
    for m in [A, B, E] {
        c.apply(m, &t2, &[A, B, E]);
    }
    let old = c.services[A].snapshot_for_copy(c.p);
    c.write("plain", set_to(&c.keys[8], b"w"), A, &[B, E], &[]);
    let acked = c.contents(A);
    let t3 = c.t(3, &[E], &t2);
    for m in [E, A, B] {
        c.apply(m, &t3, &[A, B, E]);
    }
    owner_takes_the_copy_in_flight(&c, old);
    assert_eq!(c.contents(E), acked);
}

/// Places that keep the same maps: a backup that moves up holds what its
/// new place keeps and starts no copy; the owner failing next loses
/// nothing, with every write after the move acknowledged by it alone.
#[test]
fn a_backup_moving_up_needs_no_copy() {
    let c = uniform();
    let t1 = t1_with_data(&c);
    let t2 = c.t(2, &[A, C], &t1);
    for m in [A, B, C] {
        let change = c.apply(m, &t2, &[A, C]);
        assert!(
            change.needs_copy.is_empty() && change.upgrades.is_empty(),
            "member {m}: a copy asked for ({:?}, {:?})",
            change.needs_copy,
            change.upgrades
        );
    }
    c.write("plain", set_to(&c.keys[9], b"x"), A, &[C], &[]);
    let acked = c.contents(A);
    let t3 = c.t(3, &[C], &t2);
    c.apply(C, &t3, &[C]);
    assert_eq!(c.contents(C), acked);
}
