//! Cases a fourth review (of 9ecd228) found around a replica whose copy is
//! in flight when the table changes its place. `a_*` failed on 9ecd228: a
//! replica made owner while its copy travelled installed a copy served
//! before a write that the member ahead acknowledged and it took as a
//! number only (older than the notes: the copy was taken as the owner's
//! data, the write lost); and a later, fresh copy still started an upgrade
//! (the mark of the move outlived the copy it was about). Now a copy is
//! judged by the table it was asked for at: as owner an older one is not
//! taken and the copy is asked for again (`Installed::Stale`), as backup
//! it is followed by an upgrade.

mod common;
use common::members::*;

use bytes::Bytes;
use ferrocast_partition::{BackupBatch, Change, Installed, PartitionData, PartitionTable};

fn acked_by(c: &Cluster, m: usize, from: usize, w: &[BackupBatch]) -> bool {
    w.iter().all(|b| {
        c.services[m]
            .receive_backup_from(b.clone(), c.ids[from])
            .is_ok()
    })
}

fn w() -> Bytes {
    Bytes::from_static(b"w")
}

type Copy = (u64, u64, PartitionData, Vec<(u64, Vec<Change>)>);

/// t2 = [A, B, E]: E joins at place 2 and A serves its copy (returned,
/// still in flight, asked for at t2); A numbers W (`plain`), B acknowledges
/// it in full, E takes its number. t3 = [A, E]: B leaves, E moves up.
fn e_moves_up_copy_in_flight(c: &Cluster) -> (PartitionTable, Copy) {
    let t1 = c.t1_with_data();
    let t2 = c.t(2, &[A, B, E], &t1);
    for m in [A, B, E] {
        c.apply(m, &t2, &[A, B, E]);
    }
    let copy = c.services[A].snapshot_for_copy(c.p);
    let w_batches = c.exec("plain", set_to(&c.keys[8], b"w"), A);
    assert!(acked_by(c, B, A, &w_batches), "B, place 1, acknowledges W");
    for b in &w_batches {
        c.deliver(b, A, E, false);
    }
    let t3 = c.t(3, &[A, E], &t2);
    for m in [A, B, E] {
        c.apply(m, &t3, &[A, B, E]);
    }
    (t3, copy)
}

/// E, owner by `version`, is offered the old copy (refused), then a copy
/// of `from` asked for at its current table.
fn owner_takes_a_fresh_copy(c: &Cluster, old: Copy, from: usize) {
    let (seq, term, data, pending) = old;
    assert_eq!(
        c.services[E].install_copy_asked_at(c.p, 2, seq, term, data, pending),
        Installed::Stale,
        "a copy asked for before E became owner is not the owner's data"
    );
    let (seq, term, data, pending) = c.services[from].snapshot_for_copy(c.p);
    let asked_at = c.services[E].table_version();
    assert_eq!(
        c.services[E].install_copy_asked_at(c.p, asked_at, seq, term, data, pending),
        Installed::Done
    );
}

/// A fails; B, leaving gracefully, is alive and holds W.
#[test]
fn a_promoted_while_the_copy_travels_owner_fails() {
    let c = Cluster::new();
    let (t3, old) = e_moves_up_copy_in_flight(&c);
    let acked = c.contents(A);
    let t4 = c.t(4, &[E], &t3);
    c.apply(E, &t4, &[B, E]);
    c.apply(B, &t4, &[B, E]);
    owner_takes_a_fresh_copy(&c, old, B);
    assert_eq!(
        c.value(E, "plain", &c.keys[8]),
        Some(w()),
        "W, acknowledged"
    );
    assert_eq!(c.contents(E), acked);
}

/// A leaves gracefully too.
#[test]
fn a_promoted_while_the_copy_travels_owner_leaves() {
    let c = Cluster::new();
    let (t3, old) = e_moves_up_copy_in_flight(&c);
    let acked = c.contents(A);
    let t4 = c.t(4, &[E], &t3);
    for m in [E, A, B] {
        c.apply(m, &t4, &[A, B, E]);
    }
    owner_takes_a_fresh_copy(&c, old, A);
    assert_eq!(
        c.value(E, "plain", &c.keys[8]),
        Some(w()),
        "W, acknowledged"
    );
    assert_eq!(c.contents(E), acked);
}

/// No move up: E, at place 2 with its copy in flight, is made owner as A
/// and B leave together.
#[test]
fn a_unsynced_place_two_promoted_takes_no_older_copy() {
    let c = Cluster::new();
    let t1 = c.t1_with_data();
    let t2 = c.t(2, &[A, B, E], &t1);
    for m in [A, B, E] {
        c.apply(m, &t2, &[A, B, E]);
    }
    let old = c.services[A].snapshot_for_copy(c.p);
    c.write("plain", set_to(&c.keys[8], b"w"), A, &[B], &[E]);
    let acked = c.contents(A);
    let t3 = c.t(3, &[E], &t2);
    for m in [E, A, B] {
        c.apply(m, &t3, &[A, B, E]);
    }
    owner_takes_a_fresh_copy(&c, old, A);
    assert_eq!(c.contents(E), acked);
}

/// Moved away and back: a copy asked for at the table that brought E
/// back starts no upgrade.
#[test]
fn a_fresh_copy_after_a_move_away_and_back_starts_no_upgrade() {
    let c = Cluster::new();
    let (t3, _old) = e_moves_up_copy_in_flight(&c);
    let t4 = c.t(4, &[A, B], &t3);
    for m in [A, B, E] {
        c.apply(m, &t4, &[A, B, E]);
    }
    c.services[E].abandon_copy(c.p);
    let t5 = c.t(5, &[A, B, E], &t4);
    for m in [A, B, E] {
        c.apply(m, &t5, &[A, B, E]);
    }
    let (seq, term, data, pending) = c.services[A].snapshot_for_copy(c.p);
    assert_eq!(
        c.services[E].install_copy_asked_at(c.p, 5, seq, term, data, pending),
        Installed::Done
    );
    assert!(c.services[E].replica_status(c.p).1);
}

/// A copy asked for after the move (E's copy task asks at its current
/// table) starts no upgrade either.
#[test]
fn ok_a_copy_asked_for_after_the_move_starts_no_upgrade() {
    let c = Cluster::new();
    let (_t3, _old) = e_moves_up_copy_in_flight(&c);
    let (seq, term, data, pending) = c.services[A].snapshot_for_copy(c.p);
    assert_eq!(
        c.services[E].install_copy_asked_at(c.p, 3, seq, term, data, pending),
        Installed::Done
    );
    assert_eq!(c.value(E, "plain", &c.keys[8]), Some(w()));
    assert_eq!(c.contents(E), c.contents(A));
}
