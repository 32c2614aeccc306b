//! Cases a second review of the merge (a334651) found, each failing
//! before its fix, with controls: a promotion copy applies its source's
//! waiting changes before our own numbers-only ones; a merge reads places
//! from the table its promotion was computed from, not a later one; only
//! the table an early log waits for takes it; with three backups a member
//! still upgrading for an earlier move is no base; a new owner applies a
//! copy's waiting changes at once. `critical` keeps 2 backups, `plain` 1
//! (`mid` 2 and `critical` 3 in the 4-place case); batches by hand.

mod common;
use common::members::*;
use common::*;

use ferrocast_partition::{Installed, PartitionTable};
use ferrocast_protocol::MapOp;

impl Cluster {
    /// upgrade_review.rs's `b_leaves`: t1 [A,B,C]; writes; t2 [A,C,E]
    /// (C upgrading, E copied from A).
    fn b_leaves(&self) -> PartitionTable {
        let t1 = self.t(1, &[A, B, C], &PartitionTable::empty(COUNT));
        for m in [A, B, C] {
            self.apply(m, &t1, &[A, B, C]);
        }
        for k in &self.keys[..5] {
            self.write("plain", set(k), A, &[B], &[C]);
        }
        let t2 = self.t(2, &[A, C, E], &t1);
        self.apply(A, &t2, &[A, C, E]);
        assert!(self
            .apply(C, &t2, &[A, C, E])
            .upgrades
            .contains(&(self.p, 2)));
        self.apply(E, &t2, &[A, C, E]);
        self.copy_from(A, E);
        t2
    }
}

/// R1: finish_promotion_copy installs the source's copy, and `install`
/// drains the promoted member's OWN waiting (numbers-only) changes before
/// the source's waiting changes are added; those at or below the drained
/// number are then filtered out (`s > at`). An acknowledged `plain`
/// write waiting at C is lost on the new owner E.
#[test]
fn a_promotion_copy_applies_the_sources_waiting_changes_before_its_own() {
    let c = Cluster::new();
    let t1 = c.t(1, &[A, C, E], &PartitionTable::empty(COUNT));
    for m in [A, C, E] {
        c.apply(m, &t1, &[A, C, E]);
    }
    for k in &c.keys[..3] {
        c.write("plain", set(k), A, &[C], &[E]);
    }
    let p0 = c.exec("plain", set(&c.keys[9]), A); // n+1
    let p1 = c.exec("plain", set(&c.keys[10]), A); // n+2
    let p2 = c.exec("plain", set(&c.keys[11]), A); // n+3
    c.deliver(&p0[0], A, C, true); // C applies n+1: P0 acknowledged
                                   // P0's number to E never arrives (A fails); P1 never reaches C.
    c.deliver(&p1[0], A, E, false); // E: pending n+2
    c.deliver(&p2[0], A, E, false); // E: pending n+3
    c.deliver(&p2[0], A, C, true); // C: pending n+3, P2 acknowledged
    let t2 = c.t(2, &[E, C], &t1);
    let change = c.apply(E, &t2, &[C, E]);
    assert!(change.promotion_copies.contains(&(c.p, vec![c.ids[C]], 2)));
    c.apply(C, &t2, &[C, E]);
    let (seq, data) = c.services[C].snapshot(c.p);
    let pending = c.services[C].pending_changes(c.p);
    assert_eq!(pending.len(), 1, "C carries P2");
    assert!(c.services[E].finish_promotion_copy(c.p, 2, seq, data, pending));
    assert!(c.value(E, "plain", &c.keys[9]).is_some(), "P0");
    assert!(
        c.value(E, "plain", &c.keys[11]).is_some(),
        "acknowledged P2 (pending at C) lost on the new owner E"
    );
}

/// R2a: a table that keeps E owner (a member joins as a backup) lands
/// while E's promotion waits (promotion kept: `keeps_owning`). The merge
/// then takes E's place from the *current* table's `previous` (table 3's
/// replicas: E is owner there, place 0), so no logged change at or below
/// E's number is applied: `plain` writes E took as numbers only are lost.
#[test]
fn a_merge_over_own_data_reads_places_from_the_promotions_table() {
    let c = Cluster::new();
    let t2 = c.b_leaves();
    c.write("plain", set(&c.keys[8]), A, &[C], &[E]); // acknowledged
    let t3 = c.t(3, &[E, C], &t2);
    c.apply(E, &t3, &[C, E]);
    c.apply(C, &t3, &[C, E]);
    // F joins: a new backup of the partition.
    let t4 = c.t(4, &[E, C, F], &t3);
    c.apply(E, &t4, &[C, E, F]);
    assert!(c.services[E].promotion_pending(c.p, 3), "promotion goes on");
    c.apply(C, &t4, &[C, E, F]);
    let log = c.services[C].upgrade_log(c.p).expect("log");
    assert!(c.services[E].finish_promotion_with_log(c.p, 3, log));
    assert!(c.value(E, "plain", &c.keys[0]).is_some(), "old plain key");
    assert!(
        c.value(E, "plain", &c.keys[8]).is_some(),
        "acknowledged plain write lost: base place taken from table 4's previous"
    );
}

/// R2b: same, C promoted over E's base: E's place read from table 4's
/// previous ([C, E]: place 1, which keeps `plain`), so C's logged `plain`
/// changes at or below E's number are skipped.
#[test]
fn a_merge_over_a_base_reads_places_from_the_promotions_table() {
    let c = Cluster::new();
    let t2 = c.b_leaves();
    c.write("plain", set(&c.keys[8]), A, &[C], &[E]); // acknowledged
    let t3 = c.t(3, &[C, E], &t2);
    let change = c.apply(C, &t3, &[C, E]);
    assert!(change.promotion_bases.contains(&(c.p, vec![c.ids[E]])));
    c.apply(E, &t3, &[C, E]);
    let t4 = c.t(4, &[C, E, F], &t3);
    c.apply(C, &t4, &[C, E, F]);
    assert!(c.services[C].promotion_pending(c.p, 3), "promotion goes on");
    c.apply(E, &t4, &[C, E, F]);
    let (seq, data) = c.services[E].snapshot(c.p);
    assert!(c.services[C].finish_promotion_over_base(c.p, 3, c.ids[E], seq, data));
    assert!(
        c.value(C, "plain", &c.keys[8]).is_some(),
        "acknowledged plain write lost: base place taken from table 4's previous"
    );
}

/// Table 1 [A, B, C] with five `plain` keys; t2 changes only another
/// partition, t3 (from t2) moves C up in ours: [A, C, E]. A and E apply
/// both, E copies from A; C stays on t1.
fn unrelated_table_then_move(c: &Cluster) -> (PartitionTable, PartitionTable) {
    let t1 = c.t(1, &[A, B, C], &PartitionTable::empty(COUNT));
    for m in [A, B, C] {
        c.apply(m, &t1, &[A, B, C]);
    }
    for k in &c.keys[..5] {
        c.write("plain", set(k), A, &[B], &[C]);
    }
    let q = (c.p + 1) % COUNT;
    let mut t2 = t1.clone();
    t2.version = 2;
    t2.previous = t1.replicas.clone();
    t2.replicas[q as usize] = vec![c.ids[A], c.ids[B]];
    let mut t3 = t2.clone();
    t3.version = 3;
    t3.previous = t2.replicas.clone();
    t3.replicas[c.p as usize] = vec![c.ids[A], c.ids[C], c.ids[E]];
    for t in [&t2, &t3] {
        c.apply(A, t, &[A, C, E]);
        c.apply(E, t, &[A, C, E]);
    }
    c.copy_from(A, E);
    (t2, t3)
}

/// R3: the early log is taken (and dropped) by ANY table applied, even one
/// older than the owner's `replicas_version` that does not touch the
/// partition. It then restarts at the next batch, after the changes it
/// was meant to hold: the c_late case of upgrade_merge.rs loses a write
/// again when an unrelated table lands in between.
#[test]
fn an_early_log_waits_for_its_table_through_older_ones() {
    let c = Cluster::new();
    let (t2, t3) = unrelated_table_then_move(&c);
    // C still on t1: A's batches carry replicas_version 3.
    c.write("plain", set(&c.keys[8]), A, &[C], &[E]); // early log starts
    c.apply(C, &t2, &[A, B, C, E]); // unrelated to p: early log dropped
    c.write(
        "plain",
        MapOp::Remove {
            key: c.keys[0].clone(),
        },
        A,
        &[C],
        &[E],
    );
    let change = c.apply(C, &t3, &[A, C, E]);
    assert!(change.upgrades.contains(&(c.p, 3)), "{change:?}");
    // A fails; E promoted, merges C's log over its own data.
    let t4 = c.t(4, &[E, C], &t3);
    c.apply(E, &t4, &[C, E]);
    c.apply(C, &t4, &[C, E]);
    let log = c.services[C].upgrade_log(c.p).expect("log");
    assert!(c.services[E].finish_promotion_with_log(c.p, 4, log));
    assert!(c.value(E, "plain", &c.keys[0]).is_none(), "removed key");
    assert!(
        c.value(E, "plain", &c.keys[8]).is_some(),
        "acknowledged plain write lost: early log restarted after it"
    );
}

/// R4: 3 backups (4 places). `mid` keeps 2, `plain` 1, `critical` 3.
/// B leaves: C moves 2->1, E 3->2 (both upgrading), F new. A fails; C
/// promoted merges its log over E's data as a base, with E's place taken
/// as 2 (table 2) although E, upgrading from place 3, never held `mid`
/// (it took only its numbers). `mid`'s entries written before the move,
/// which C held, are gone.
#[test]
fn with_three_backups_a_member_still_upgrading_for_an_earlier_move_is_no_base() {
    let c = Cluster::with(5, |m: &str| match m {
        "critical" => 3,
        "mid" => 2,
        _ => 1,
    });
    let t1 = c.t(1, &[A, B, C, E], &PartitionTable::empty(COUNT));
    for m in [A, B, C, E] {
        c.apply(m, &t1, &[A, B, C, E]);
    }
    c.write("mid", set(&c.keys[0]), A, &[B, C], &[E]); // acknowledged
    let t2 = c.t(2, &[A, C, E, F], &t1);
    c.apply(A, &t2, &[A, C, E, F]);
    assert!(c.apply(C, &t2, &[A, C, E, F]).upgrades.contains(&(c.p, 2)));
    assert!(c.apply(E, &t2, &[A, C, E, F]).upgrades.contains(&(c.p, 2)));
    c.apply(F, &t2, &[A, C, E, F]);
    c.copy_from(A, F);
    // A fails.
    let t3 = c.t(3, &[C, E, F], &t2);
    let change = c.apply(C, &t3, &[C, E, F]);
    assert!(
        change
            .promotion_bases
            .contains(&(c.p, vec![c.ids[E], c.ids[F]])),
        "{change:?}"
    );
    c.apply(E, &t3, &[C, E, F]);
    c.apply(F, &t3, &[C, E, F]);
    assert!(
        !c.services[E].serves_base(c.p, 3),
        "E, upgrading from place 3 since table 2, is no base for table 3"
    );
    assert!(
        c.services[F].serves_base(c.p, 3),
        "F, which copied at table 2, is"
    );
    let (seq, data) = c.services[F].snapshot(c.p);
    assert!(c.services[C].finish_promotion_over_base(c.p, 3, c.ids[F], seq, data));
    assert!(
        c.value(C, "mid", &c.keys[0]).is_some(),
        "acknowledged mid write lost"
    );
}

// ---- Controls: the same sequences without the trigger pass. ----

#[test]
fn control_r2a_without_the_later_table() {
    let c = Cluster::new();
    let t2 = c.b_leaves();
    c.write("plain", set(&c.keys[8]), A, &[C], &[E]);
    let t3 = c.t(3, &[E, C], &t2);
    c.apply(E, &t3, &[C, E]);
    c.apply(C, &t3, &[C, E]);
    let log = c.services[C].upgrade_log(c.p).expect("log");
    assert!(c.services[E].finish_promotion_with_log(c.p, 3, log));
    assert!(c.value(E, "plain", &c.keys[8]).is_some());
}

#[test]
fn control_r3_without_the_intermediate_table() {
    let c = Cluster::new();
    let (_, t3) = unrelated_table_then_move(&c);
    c.write("plain", set(&c.keys[8]), A, &[C], &[E]);
    c.write(
        "plain",
        MapOp::Remove {
            key: c.keys[0].clone(),
        },
        A,
        &[C],
        &[E],
    );
    let change = c.apply(C, &t3, &[A, C, E]); // straight to t3
    assert!(change.upgrades.contains(&(c.p, 3)), "{change:?}");
    let t4 = c.t(4, &[E, C], &t3);
    c.apply(E, &t4, &[C, E]);
    c.apply(C, &t4, &[C, E]);
    let log = c.services[C].upgrade_log(c.p).expect("log");
    assert!(c.services[E].finish_promotion_with_log(c.p, 4, log));
    assert!(c.value(E, "plain", &c.keys[0]).is_none());
    assert!(c.value(E, "plain", &c.keys[8]).is_some());
}

#[test]
fn control_r4_with_f_as_the_base() {
    let c = Cluster::with(5, |m: &str| match m {
        "critical" => 3,
        "mid" => 2,
        _ => 1,
    });
    let t1 = c.t(1, &[A, B, C, E], &PartitionTable::empty(COUNT));
    for m in [A, B, C, E] {
        c.apply(m, &t1, &[A, B, C, E]);
    }
    c.write("mid", set(&c.keys[0]), A, &[B, C], &[E]);
    let t2 = c.t(2, &[A, C, E, F], &t1);
    for m in [A, C, E, F] {
        c.apply(m, &t2, &[A, C, E, F]);
    }
    c.copy_from(A, F);
    let t3 = c.t(3, &[C, E, F], &t2);
    for m in [C, E, F] {
        c.apply(m, &t3, &[C, E, F]);
    }
    let (seq, data) = c.services[F].snapshot(c.p);
    assert!(c.services[C].finish_promotion_over_base(c.p, 3, c.ids[F], seq, data));
    assert!(c.value(C, "mid", &c.keys[0]).is_some());
}

/// R5: a new owner (not a previous replica) copies the partition from a
/// backup, the old owner gone. The copy carries the backup's waiting
/// change P2 (acknowledged: C is plain's sync backup), but behind a gap
/// (P1, unacknowledged, never reached C): install drains only in order,
/// so P2 stays in the new owner's `pending` forever (owners receive no
/// batches to fill the gap), and the new owner gives P2's number to its
/// own next write.
#[test]
fn a_new_owner_applies_a_copys_waiting_changes_at_once() {
    let c = Cluster::new();
    let t1 = c.t(1, &[A, C, E], &PartitionTable::empty(COUNT));
    for m in [A, C, E] {
        c.apply(m, &t1, &[A, C, E]);
    }
    for k in &c.keys[..3] {
        c.write("plain", set(k), A, &[C], &[E]);
    }
    let _p1 = c.exec("plain", set(&c.keys[10]), A); // lost
    let p2 = c.exec("plain", set(&c.keys[11]), A);
    c.deliver(&p2[0], A, C, true); // pending at C: acknowledged
    c.deliver(&p2[0], A, E, false);
    // A fails; B (holding nothing) is made owner.
    let t2 = c.t(2, &[B, C, E], &t1);
    let change = c.apply(B, &t2, &[B, C, E]);
    assert!(
        change.needs_copy.contains(&(c.p, true, c.ids[C])),
        "{change:?}"
    );
    c.apply(C, &t2, &[B, C, E]);
    c.apply(E, &t2, &[B, C, E]);
    let (seq, term, data) = c.services[C].snapshot_with_term(c.p);
    let pending = c.services[C].pending_changes(c.p);
    assert_eq!(pending.len(), 1, "C carries P2");
    assert_eq!(
        c.services[B].install_copy_with_pending(c.p, seq, term, data, pending),
        Installed::Done
    );
    assert!(
        c.value(B, "plain", &c.keys[11]).is_some(),
        "acknowledged P2 not applied on the new owner B (kept pending behind a gap)"
    );
}
