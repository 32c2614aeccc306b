//! Cases a review of the first fix for re-sent content (c4efad8) found:
//! that fix judged "taken as a number only" from the backup's current
//! table and whether it was upgrading. `a_*` tests failed on it: content
//! acknowledged by a backup holding only the number (the owner two tables
//! ahead, an upgrade copy older than the change, a given-up upgrade), and
//! content the backup held in full refused until its whole upgrade copy
//! landed. Now the backup notes exactly which numbers it took without
//! content (`numbers_only.rs`). `ok_*` are sequences the review checked
//! and found correct.

mod common;
use common::members::*;
use common::*;

use bytes::Bytes;
use ferrocast_partition::PartitionTable;

// ---------------------------------------------------------------------
// Finding 1: the owner two tables ahead (early-log path). C is at a place
// that keeps `plain` in the table it follows, takes W's number only from
// an owner whose newer table put C at a place that does not, then
// acknowledges W's content when the owner re-sends it to C.
// ---------------------------------------------------------------------

#[test]
fn a_owner_two_tables_ahead_content_acked_by_a_backup_that_took_only_its_number() {
    let c = Cluster::new();
    let t1 = c.t1_with_data();
    // B leaves gracefully: C moves up to the first place and its upgrade
    // copy lands. C now keeps `plain`.
    let t2 = c.t(2, &[A, C], &t1);
    for m in [A, B, C] {
        c.apply(m, &t2, &[A, B, C]);
    }
    let (seq, data) = c.services[A].snapshot(c.p);
    assert!(c.services[C].finish_upgrade(c.p, 2, seq, data));
    // E joins ahead of C: t3 = [A, E, C]. A applies it; C not yet.
    let t3 = c.t(3, &[A, E, C], &t2);
    c.apply(A, &t3, &[A, C, E]);
    // A numbers W on t3: the content to E (first place), the number only
    // to C (second place, `plain` is not kept there). C, still on t2,
    // takes the number (its early log starts).
    let w_batches = c.exec("plain", set_to(&c.keys[8], b"w"), A);
    for b in &w_batches {
        c.deliver(b, A, C, false);
    }
    // E fails before taking W: t4 = [A, C]. A applies it and its send
    // loop sends W to the member now at index 0: C (still on t2).
    let t4 = c.t(4, &[A, C], &t3);
    c.apply(A, &t4, &[A, C]);
    let acked = acked_by(&c, C, A, &w_batches);
    assert!(
        !acked || c.value(C, "plain", &c.keys[8]) == Some(w()),
        "C acknowledged W's content (acked: {acked}) while it holds only W's number: W is on A alone"
    );
    assert!(
        !acked,
        "W's content is refused: the write fails and is retried"
    );
    // A failing now leaves C without W, which was never acknowledged.
}

// ---------------------------------------------------------------------
// Finding 2: an upgrade spanning two tables (three backups, two members
// leaving one after the other). The upgrade started by the first move
// "goes on" through the second; its copy, served at the owner before W,
// ends it, so the refusal lifts while C still lacks W.
// ---------------------------------------------------------------------

fn three_places(m: &str) -> usize {
    match m {
        "one" => 1,
        "two" => 2,
        _ => 3,
    }
}

#[test]
fn a_upgrade_copy_served_before_the_change_ends_the_refusal_three_backups() {
    let c = Cluster::with(5, three_places);
    // t1 = [A, B, E, C]: "one" on B, "two" on B and E, "three" on all.
    let t1 = c.t(1, &[A, B, E, C], &PartitionTable::empty(COUNT));
    for m in [A, B, E, C] {
        c.apply(m, &t1, &[A, B, E, C]);
    }
    for k in &c.keys[..3] {
        c.write("one", set(k), A, &[B], &[E, C]);
    }
    // E leaves gracefully: t2 = [A, B, C], C moves up from 3 to 2.
    let t2 = c.t(2, &[A, B, C], &t1);
    for m in [A, B, E, C] {
        c.apply(m, &t2, &[A, B, E, C]);
    }
    assert!(c.services[C].upgrade_pending(c.p, 2));
    // A, on t2, serves C's upgrade copy (C asked at version 2).
    let (seq, data) = c.services[A].snapshot(c.p);
    // B leaves gracefully: t3 = [A, C]; B applies it first.
    let t3 = c.t(3, &[A, C], &t2);
    c.apply(B, &t3, &[A, B, C]);
    // A numbers W ("one") on t2: B refuses, C (second place) gets the number.
    let w_batches = c.exec("one", set_to(&c.keys[8], b"w"), A);
    for b in &w_batches {
        assert!(c.services[B]
            .receive_backup_from(b.clone(), c.ids[A])
            .is_err());
        c.deliver(b, A, C, false);
    }
    // C moves up again: the upgrade of t2 goes on; its copy lands.
    assert!(c.apply(C, &t3, &[A, B, C]).upgrades.is_empty());
    assert!(c.services[C].finish_upgrade(c.p, 2, seq, data));
    // A on t3 sends W to index 0: C.
    c.apply(A, &t3, &[A, B, C]);
    let acked = acked_by(&c, C, A, &w_batches);
    assert!(
        !acked || c.value(C, "one", &c.keys[8]) == Some(w()),
        "C acknowledged W (acked: {acked}) after an upgrade copy older than W: W is on A alone"
    );
    assert!(
        !acked,
        "W's content is refused: the write fails and is retried"
    );
}

/// The same with two backup places: C and B swap, swap back before C's
/// upgrade copy (the upgrade of t2 stays), B leaves.
#[test]
fn a_upgrade_copy_served_before_the_change_ends_the_refusal_swap() {
    let c = Cluster::new();
    let t1 = c.t1_with_data();
    let t2 = c.t(2, &[A, C, B], &t1);
    for m in [A, B, C] {
        c.apply(m, &t2, &[A, B, C]);
    }
    assert!(c.services[C].upgrade_pending(c.p, 2));
    let t3 = c.t(3, &[A, B, C], &t2);
    for m in [A, B, C] {
        c.apply(m, &t3, &[A, B, C]);
    }
    assert!(c.services[C].upgrade_pending(c.p, 2), "C's upgrade goes on");
    let (seq, data) = c.services[A].snapshot(c.p);
    let t4 = c.t(4, &[A, C], &t3);
    c.apply(B, &t4, &[A, B, C]);
    let w_batches = c.exec("plain", set_to(&c.keys[8], b"w"), A);
    for b in &w_batches {
        assert!(c.services[B]
            .receive_backup_from(b.clone(), c.ids[A])
            .is_err());
        c.deliver(b, A, C, false);
    }
    c.apply(C, &t4, &[A, B, C]);
    assert!(c.services[C].finish_upgrade(c.p, 2, seq, data));
    c.apply(A, &t4, &[A, B, C]);
    let acked = acked_by(&c, C, A, &w_batches);
    assert!(
        !acked || c.value(C, "plain", &c.keys[8]) == Some(w()),
        "C acknowledged W (acked: {acked}) after an upgrade copy older than W"
    );
}

// ---------------------------------------------------------------------
// Finding 3: the upgrade given up (COPY_LIMIT) lifts the refusal.
// ---------------------------------------------------------------------

#[test]
fn a_cancelled_upgrade_acknowledges_content_taken_as_a_number_only() {
    let c = Cluster::new();
    let t1 = c.t1_with_data();
    let t2 = c.t(2, &[A, C], &t1);
    // C applies t2 first and upgrades; A still on t1 numbers W: B refuses,
    // C (index 1 of A's t1) gets the number.
    c.apply(B, &t2, &[A, B, C]);
    assert!(c.apply(C, &t2, &[A, B, C]).upgrades.contains(&(c.p, 2)));
    let w_batches = c.exec("plain", set_to(&c.keys[8], b"w"), A);
    for b in &w_batches {
        c.deliver(b, A, C, false);
    }
    c.apply(A, &t2, &[A, B, C]);
    assert!(!acked_by(&c, C, A, &w_batches));
    // The copy does not come within COPY_LIMIT (60 s, the default
    // operation timeout; W was numbered after the upgrade started).
    c.services[C].cancel_upgrade(c.p, 2);
    let acked = acked_by(&c, C, A, &w_batches);
    assert!(
        !acked || c.value(C, "plain", &c.keys[8]) == Some(w()),
        "C acknowledged W (acked: {acked}) after giving its upgrade up, without W"
    );
}

// ---------------------------------------------------------------------
// Finding 4 (too broad): content the backup took in full is refused
// while it upgrades; the write waits for the whole partition copy.
// ---------------------------------------------------------------------

#[test]
fn a_duplicate_of_content_taken_in_full_is_held_until_the_upgrade_copy() {
    let c = Cluster::new();
    let t1 = c.t1_with_data();
    let t2 = c.t(2, &[A, C], &t1);
    c.apply(B, &t2, &[A, B, C]);
    // A on t1 numbers a `critical` write: kept at both places, C takes it
    // in full, B refuses it.
    let x = c.exec("critical", set_to(&c.keys[9], b"x"), A);
    for b in &x {
        assert!(c.services[B]
            .receive_backup_from(b.clone(), c.ids[A])
            .is_err());
        c.deliver(b, A, C, true);
    }
    c.apply(A, &t2, &[A, B, C]);
    assert!(c.apply(C, &t2, &[A, B, C]).upgrades.contains(&(c.p, 2)));
    assert_eq!(
        c.value(C, "critical", &c.keys[9]),
        Some(Bytes::from_static(b"x"))
    );
    // A sends X again to index 0: C, which holds it.
    assert!(
        acked_by(&c, C, A, &x),
        "C holds X in full (its old place kept `critical`): refusing it makes the write wait for the whole upgrade copy"
    );
}

/// The same with every map alike (1 backup + 1 asynchronous: partial is
/// on, every place keeps every map): nothing was lacked, yet the
/// re-sent write waits for the upgrade copy.
#[test]
fn a_uniform_async_config_duplicate_held_until_the_upgrade_copy() {
    let c = Cluster::with(5, |_| 2);
    let t1 = c.t(1, &[A, B, C], &PartitionTable::empty(COUNT));
    for m in [A, B, C] {
        c.apply(m, &t1, &[A, B, C]);
    }
    let t2 = c.t(2, &[A, C], &t1);
    c.apply(B, &t2, &[A, B, C]);
    let x = c.exec("m", set_to(&c.keys[9], b"x"), A);
    for b in &x {
        c.deliver(b, A, C, true);
    }
    c.apply(A, &t2, &[A, B, C]);
    assert!(c.apply(C, &t2, &[A, B, C]).upgrades.contains(&(c.p, 2)));
    assert!(acked_by(&c, C, A, &x), "C holds every map's content");
}

// ---------------------------------------------------------------------
// Checked and found correct.
// ---------------------------------------------------------------------

/// Default configuration (every map the same backup count: partial off):
/// no upgrade, the check does not apply; a re-sent duplicate is acked.
#[test]
fn ok_partial_off_duplicate_acknowledged() {
    let c = Cluster::with(3, |_| 2);
    for s in &c.services {
        s.set_partial_backups(false);
    }
    let t1 = c.t(1, &[A, B, C], &PartitionTable::empty(COUNT));
    for m in [A, B, C] {
        c.apply(m, &t1, &[A, B, C]);
    }
    let t2 = c.t(2, &[A, C], &t1);
    c.apply(B, &t2, &[A, B, C]);
    let x = c.exec("m", set_to(&c.keys[9], b"x"), A);
    for b in &x {
        c.deliver(b, A, C, true);
    }
    c.apply(A, &t2, &[A, B, C]);
    assert!(c.apply(C, &t2, &[A, B, C]).upgrades.is_empty());
    assert!(acked_by(&c, C, A, &x));
}

/// The duplicate reaching C before the table that moves it up (C on t1,
/// second place; A on t2 sends W to index 0): refused; after t2, refused
/// while upgrading; after the copy (served on t2), acked and held.
#[test]
fn ok_duplicate_before_the_table_that_moves_the_backup_up() {
    let c = Cluster::new();
    let t1 = c.t1_with_data();
    let t2 = c.t(2, &[A, C], &t1);
    c.apply(B, &t2, &[A, B, C]);
    let w_batches = c.exec("plain", set_to(&c.keys[8], b"w"), A);
    for b in &w_batches {
        c.deliver(b, A, C, false);
    }
    c.apply(A, &t2, &[A, B, C]);
    assert!(!acked_by(&c, C, A, &w_batches), "C on t1 at place 2");
    assert!(c.apply(C, &t2, &[A, B, C]).upgrades.contains(&(c.p, 2)));
    assert!(!acked_by(&c, C, A, &w_batches), "upgrading");
    let (seq, data) = c.services[A].snapshot(c.p);
    assert!(c.services[C].finish_upgrade(c.p, 2, seq, data));
    assert!(acked_by(&c, C, A, &w_batches));
    assert_eq!(c.value(C, "plain", &c.keys[8]), Some(w()));
}

/// Early log: A on t2 numbers W2 after W (numbered on t1, refused by B,
/// number at C); C, still on t1, takes W2 in full (early log) and refuses
/// W's content; after t2 the early log starts the upgrade; the copy (A on
/// t2) holds W.
#[test]
fn ok_early_log_then_upgrade() {
    let c = Cluster::new();
    let (t2, w_batches) = c.w_numbered_on_t1();
    c.apply(A, &t2, &[A, B, C]);
    c.write("plain", set_to(&c.keys[10], b"w2"), A, &[C], &[]);
    assert!(!acked_by(&c, C, A, &w_batches));
    assert!(c.apply(C, &t2, &[A, B, C]).upgrades.contains(&(c.p, 2)));
    assert!(!acked_by(&c, C, A, &w_batches));
    let (seq, data) = c.services[A].snapshot(c.p);
    assert!(c.services[C].finish_upgrade(c.p, 2, seq, data));
    assert!(acked_by(&c, C, A, &w_batches));
    assert_eq!(c.contents(C), c.contents(A));
}

/// Three backups, a single move: E leaves, C moves 3 -> 2 and B stays. A
/// "two" write numbered on t1 (E refused, C number only) is re-sent to
/// index 1 (C): refused until C's copy, then acked and held.
#[test]
fn ok_three_backups_single_move() {
    let c = Cluster::with(5, three_places);
    let t1 = c.t(1, &[A, B, E, C], &PartitionTable::empty(COUNT));
    for m in [A, B, E, C] {
        c.apply(m, &t1, &[A, B, E, C]);
    }
    let t2 = c.t(2, &[A, B, C], &t1);
    c.apply(E, &t2, &[A, B, E, C]);
    let w_batches = c.exec("two", set_to(&c.keys[8], b"w"), A);
    for b in &w_batches {
        c.deliver(b, A, B, true);
        assert!(c.services[E]
            .receive_backup_from(b.clone(), c.ids[A])
            .is_err());
        c.deliver(b, A, C, false);
    }
    c.apply(A, &t2, &[A, B, E, C]);
    c.apply(B, &t2, &[A, B, E, C]);
    assert!(!acked_by(&c, C, A, &w_batches));
    assert!(c.apply(C, &t2, &[A, B, E, C]).upgrades.contains(&(c.p, 2)));
    assert!(!acked_by(&c, C, A, &w_batches));
    let (seq, data) = c.services[A].snapshot(c.p);
    assert!(c.services[C].finish_upgrade(c.p, 2, seq, data));
    assert!(acked_by(&c, C, A, &w_batches));
    assert_eq!(c.value(C, "two", &c.keys[8]), Some(w()));
}

// ---------------------------------------------------------------------
// An upgrade spanning two moves, with a write acknowledged by the member
// that left: E leaves (C moves from place 3 to 2, upgrades) and C asks A
// for its copy on t2; B leaves (C moves up again, the upgrade goes on)
// while A, still on t2, numbers Y: B takes it in full and acknowledges it,
// C only its number. The copy A served on t2 lacks Y; taken, it ended the
// upgrade with Y on A alone, and A failing next lost it. Now only a copy
// asked for at the table that last moved C up ends the upgrade.

#[test]
fn a_copy_asked_for_before_a_second_move_does_not_end_the_upgrade() {
    let c = Cluster::with(5, three_places);
    let t1 = c.t(1, &[A, B, E, C], &PartitionTable::empty(COUNT));
    for m in [A, B, E, C] {
        c.apply(m, &t1, &[A, B, E, C]);
    }
    for k in &c.keys[..3] {
        c.write("one", set(k), A, &[B], &[E, C]);
    }
    let t2 = c.t(2, &[A, B, C], &t1);
    for m in [A, B, E, C] {
        c.apply(m, &t2, &[A, B, E, C]);
    }
    assert!(c.services[C].upgrade_pending(c.p, 2));
    let asked_at = c.services[C].table_version();
    let (seq, data) = c.services[A].snapshot(c.p);
    let y = c.exec("one", set_to(&c.keys[8], b"y"), A);
    for b in &y {
        c.deliver(b, A, B, true);
        c.deliver(b, A, C, false);
    }
    let t3 = c.t(3, &[A, C], &t2);
    c.apply(B, &t3, &[A, B, C]);
    c.apply(C, &t3, &[A, B, C]);
    c.apply(A, &t3, &[A, B, C]);
    assert!(
        !c.services[C].finish_upgrade_from(c.p, 2, Some(c.ids[A]), asked_at, seq, data),
        "a copy asked for on t2 misses what A numbered there before t3 (Y)"
    );
    assert!(c.services[C].upgrade_pending(c.p, 2), "asked again");
    let (seq, data) = c.services[A].snapshot(c.p);
    let asked_at = c.services[C].table_version();
    assert!(c.services[C].finish_upgrade_from(c.p, 2, Some(c.ids[A]), asked_at, seq, data));
    // A fails: C, promoted, holds Y.
    let t4 = c.t(4, &[C], &t3);
    c.apply(C, &t4, &[B, C]);
    assert_eq!(
        c.value(C, "one", &c.keys[8]),
        Some(Bytes::from_static(b"y")),
        "Y, acknowledged by A's backup B before it left"
    );
}
