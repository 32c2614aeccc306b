//! Cases a review of the notes of numbers taken without content (0de2f9d)
//! found. `a_*` failed on it: a change's number-only batch replaced its
//! content waiting ahead of its turn, already acknowledged; a backup's
//! copy that stopped waiting cleared its notes with no copy in; numbers
//! taken back for a new owner's term kept their notes (content the backup
//! held was refused). `ok_*` are sequences the review checked and found
//! correct.

mod common;
use common::members::*;
use common::*;

use bytes::Bytes;
use ferrocast_partition::PartitionTable;

// Finding 1 (pre-existing, in the area): content acknowledged while it
// waits ahead of its turn is replaced by the same change's number-only
// batch arriving later (`receive` does `pending.insert`), then applied as
// a number only and noted: C acknowledged W, holds only its number.
#[test]
fn a_pending_content_replaced_by_its_number_only_batch() {
    let c = Cluster::new();
    let t1 = c.t1_with_data();
    let t2 = c.t(2, &[A, C], &t1);
    c.apply(B, &t2, &[A, B, C]);
    // A on t1 numbers V then W (plain): B refuses both; their number-only
    // batches to C are held up (e.g. refused at the router's fast path and
    // queued behind a table in C's coordinator).
    let v = c.exec("plain", set_to(&c.keys[9], b"v"), A);
    let w_batches = c.exec("plain", set_to(&c.keys[8], b"w"), A);
    // A applies t2 and sends the content to index 0: C. W first (V's
    // request still in flight): W waits for V's turn; acknowledged.
    c.apply(A, &t2, &[A, B, C]);
    assert!(
        acked_by(&c, C, A, &w_batches),
        "W's content taken ahead of its turn"
    );
    // The held-up number-only batch of W arrives, then V's content.
    assert!(acked_by(&c, C, A, &numbers_only(&w_batches)));
    assert!(acked_by(&c, C, A, &v));
    assert_eq!(
        c.value(C, "plain", &c.keys[8]),
        Some(w()),
        "C acknowledged W's content; its number-only duplicate replaced it while it waited"
    );
}

// Checked: the other order (number only waiting, then the content) ends
// with the content.
#[test]
fn ok_pending_number_only_then_its_content() {
    let c = Cluster::new();
    let t1 = c.t1_with_data();
    let t2 = c.t(2, &[A, C], &t1);
    c.apply(B, &t2, &[A, B, C]);
    let v = c.exec("plain", set_to(&c.keys[9], b"v"), A);
    let w_batches = c.exec("plain", set_to(&c.keys[8], b"w"), A);
    assert!(acked_by(&c, C, A, &numbers_only(&w_batches)));
    c.apply(A, &t2, &[A, B, C]);
    assert!(acked_by(&c, C, A, &w_batches));
    assert!(acked_by(&c, C, A, &v));
    assert_eq!(c.value(C, "plain", &c.keys[8]), Some(w()));
}

// Finding 2 (minor): `stop_awaiting` on a backup (spawn_copy's COPY_LIMIT
// or "nobody listed" path, also for a non-owner re-copy from
// check_behind) goes through `PartitionState::promote`, which clears the
// notes although no copy replaced the data.
#[test]
fn a_stop_awaiting_on_a_backup_clears_its_notes() {
    let c = Cluster::new();
    let (t2, w_batches) = c.w_numbered_on_t1();
    c.apply(A, &t2, &[A, B, C]);
    assert!(c.apply(C, &t2, &[A, B, C]).upgrades.contains(&(c.p, 2)));
    // The upgrade is given up (COPY_LIMIT): the notes stay, W is refused.
    c.services[C].cancel_upgrade(c.p, 2);
    assert!(!acked_by(&c, C, A, &w_batches));
    // Behind the owner (check_behind): re-copied; no copy within
    // COPY_LIMIT: the copy task stops waiting.
    c.services[C].mark_unsynced(c.p);
    c.services[C].stop_awaiting(c.p);
    let acked = acked_by(&c, C, A, &w_batches);
    assert!(
        !acked || c.value(C, "plain", &c.keys[8]) == Some(w()),
        "C acknowledged W (acked: {acked}) with no copy in: its notes were cleared by promote()"
    );
}

// Finding 3 (minor, over-refusal): numbers taken back on a new owner's
// term keep their notes; the new owner's change with that number, taken
// in full, is refused when sent again (its acknowledgement lost) until
// the term's copy lands.
#[test]
fn a_numbers_taken_back_keep_their_notes() {
    let c = Cluster::new();
    let t1 = c.t1_with_data();
    // A numbers W (plain): B refuses it (not acknowledged), C takes the
    // number only.
    let w_batches = c.exec("plain", set_to(&c.keys[8], b"w"), A);
    for b in &w_batches {
        c.deliver(b, A, C, false);
    }
    let at = c.services[C].replica_status(c.p).0;
    // A fails: B owner (term 2), base below W; C second.
    let t2 = c.t(2, &[B, C], &t1);
    c.apply(B, &t2, &[B, C]);
    c.apply(C, &t2, &[B, C]);
    // B's first change, critical (kept at C's place): W's number, content.
    let x = c.exec("critical", set_to(&c.keys[9], b"x"), B);
    assert_eq!(x[0].seq, at, "B reuses W's number");
    for b in &x {
        c.deliver(b, B, C, true);
    }
    assert_eq!(
        c.value(C, "critical", &c.keys[9]),
        Some(Bytes::from_static(b"x"))
    );
    // B's send loop sends X again (the first answer was lost).
    assert!(
        acked_by(&c, C, B, &x),
        "C holds X in full; the note is from A's change with that number, taken back"
    );
}

// Checked: an upgrade copy asked for before a second move, answered after
// it, is dropped and asked again; the second one ends the upgrade.
#[test]
fn ok_moved_at_copy_asked_again_finishes() {
    fn three_places(m: &str) -> usize {
        match m {
            "one" => 1,
            "two" => 2,
            _ => 3,
        }
    }
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
    let asked_at = c.services[C].table_version();
    let t3 = c.t(3, &[A, C], &t2);
    for m in [A, B, C] {
        c.apply(m, &t3, &[A, B, C]);
    }
    // A, on t3, serves the copy asked at t2: complete, yet dropped.
    let (seq, data) = c.services[A].snapshot(c.p);
    assert!(!c.services[C].finish_upgrade_from(c.p, 2, Some(c.ids[A]), asked_at, seq, data));
    let (seq, data) = c.services[A].snapshot(c.p);
    let asked_at = c.services[C].table_version();
    assert!(c.services[C].finish_upgrade_from(c.p, 2, Some(c.ids[A]), asked_at, seq, data));
    assert_eq!(c.contents(C), c.contents(A));
}
