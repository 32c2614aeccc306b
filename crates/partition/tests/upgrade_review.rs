//! Cases a review of the merge (upgrade_merge.rs, 7c0dd69) found, each
//! failing before its fix. Changes reach backups out of order (each
//! write's batches travel on their own), so a backup may acknowledge a
//! change it keeps waiting for an earlier one: merges and promotion copies
//! carry those waiting changes and apply them by number, and a merge
//! applies the log at or below its base's number only to the maps the
//! base lacks (it is newer for the others). A backup that missed the
//! table moving it up knows it lacks maps; an upgrade copy from a member
//! no longer owner is not taken. Same four members as upgrade_merge.rs:
//! `critical` keeps 2 backups, `plain` 1; batches delivered by hand.

mod common;
use common::members::*;
use common::*;

use bytes::Bytes;
use ferrocast_partition::{Installed, PartitionTable};

impl Cluster {
    /// As upgrade_merge.rs: t1 [A,B,C]; writes; t2 [A,C,E] (C upgrading,
    /// E copied from A); returns t2.
    fn b_leaves(&self) -> PartitionTable {
        let t1 = self.t1_with_data();
        let t2 = table(2, &[self.ids[A], self.ids[C], self.ids[E]], &t1);
        self.apply(A, &t2, &[A, C, E]);
        assert!(self
            .apply(C, &t2, &[A, C, E])
            .upgrades
            .contains(&(self.p, 2)));
        self.apply(E, &t2, &[A, C, E]);
        let (seq, term, data) = self.services[A].snapshot_with_term(self.p);
        assert_eq!(
            self.services[E].install_copy(self.p, seq, term, data),
            Installed::Done
        );
        t2
    }

    /// Two concurrent `plain` writes at A: P1 (keys[10]) numbered first,
    /// P2 (keys[11]) second. P1's batch to C is still in flight when A
    /// fails (P1 not acknowledged); P2's reached C first (kept pending
    /// there: acknowledged, C is plain's only sync backup). E got both
    /// numbers (sent without waiting).
    fn acked_plain_write_pending_at_c(&self) {
        let p1 = self.exec("plain", set(&self.keys[10]), A);
        let p2 = self.exec("plain", set(&self.keys[11]), A);
        self.deliver(&p2[0], A, C, true); // C: pending (gap at P1)
        self.deliver(&p1[0], A, E, false);
        self.deliver(&p2[0], A, E, false);
        // P1 -> C never arrives (A fails).
        assert!(self.services[C].replica_status(self.p).2, "C has a gap");
    }

    /// critical K=v1 (both), then a plain write P1 whose batch to C is
    /// in flight when A fails, then critical K=v2: reaches C (pending
    /// behind P1) and E: acknowledged.
    fn acked_critical_write_pending_at_c(&self) -> Bytes {
        let k = self.keys[12].clone();
        self.write("critical", set_to(&k, b"v1"), A, &[C, E], &[]);
        let p1 = self.exec("plain", set(&self.keys[10]), A);
        let k2 = self.exec("critical", set_to(&k, b"v2"), A);
        self.deliver(&p1[0], A, E, false);
        self.deliver(&k2[0], A, C, true); // pending at C
        self.deliver(&k2[0], A, E, true); // applied at E
        assert_eq!(self.value(A, "critical", &k).as_deref(), Some(&b"v2"[..]));
        k
    }
}

/// F1a: E promoted merges C's log; P2 (acknowledged, pending at C) is lost.
#[test]
fn a_change_waiting_at_the_upgrading_backup_reaches_the_member_promoted_behind_it() {
    let c = Cluster::new();
    let t2 = c.b_leaves();
    c.acked_plain_write_pending_at_c();
    let t3 = table(3, &[c.ids[E], c.ids[C]], &t2);
    c.apply(E, &t3, &[C, E]);
    c.apply(C, &t3, &[C, E]);
    let log = c.services[C].upgrade_log(c.p).expect("log");
    assert!(c.services[E].finish_promotion_with_log(c.p, 3, log));
    assert!(
        c.value(E, "plain", &c.keys[11]).is_some(),
        "acknowledged P2 lost on the new owner E"
    );
}

/// F1b: C promoted merges its kept log over E's base; its own pending P2
/// is skipped by promote() because the base's number (E got P2's number)
/// is already past it.
#[test]
fn the_upgrading_backup_promoted_applies_its_own_waiting_changes() {
    let c = Cluster::new();
    let t2 = c.b_leaves();
    c.acked_plain_write_pending_at_c();
    let t3 = table(3, &[c.ids[C], c.ids[E]], &t2);
    c.apply(C, &t3, &[C, E]);
    c.apply(E, &t3, &[C, E]);
    let (seq, data) = c.services[E].snapshot(c.p);
    assert!(c.services[C].finish_promotion_over_base(c.p, 3, c.ids[E], seq, data));
    assert!(
        c.value(C, "plain", &c.keys[11]).is_some(),
        "acknowledged P2 lost on the new owner C"
    );
}

/// F1c: E promoted; C's log (ending before the gap) is applied over E's
/// data, which is past it: the acknowledged critical K=v2 goes back to v1.
#[test]
fn a_merge_over_own_data_does_not_roll_back_a_newer_change() {
    let c = Cluster::new();
    let t2 = c.b_leaves();
    let k = c.acked_critical_write_pending_at_c();
    let t3 = table(3, &[c.ids[E], c.ids[C]], &t2);
    c.apply(E, &t3, &[C, E]);
    c.apply(C, &t3, &[C, E]);
    let log = c.services[C].upgrade_log(c.p).expect("log");
    assert!(c.services[E].finish_promotion_with_log(c.p, 3, log));
    assert_eq!(
        c.value(E, "critical", &k).as_deref(),
        Some(&b"v2"[..]),
        "acknowledged critical write regressed"
    );
}

/// F1d: C promoted; its log (ends at v1) over E's base (holds v2); its
/// pending v2 is dropped as already numbered.
#[test]
fn a_merge_over_a_base_does_not_roll_back_a_newer_change() {
    let c = Cluster::new();
    let t2 = c.b_leaves();
    let k = c.acked_critical_write_pending_at_c();
    let t3 = table(3, &[c.ids[C], c.ids[E]], &t2);
    c.apply(C, &t3, &[C, E]);
    c.apply(E, &t3, &[C, E]);
    let (seq, data) = c.services[E].snapshot(c.p);
    assert!(c.services[C].finish_promotion_over_base(c.p, 3, c.ids[E], seq, data));
    assert_eq!(
        c.value(C, "critical", &k).as_deref(),
        Some(&b"v2"[..]),
        "acknowledged critical write regressed"
    );
}

/// F2 (adjacent, pre-existing): C misses table 2 (e.g. deferred because
/// it named E before C's member list did, then replaced by table 3). At
/// table 3 C compares its place with table 2's (`prev`), not with the
/// place whose maps it holds (table 1's: place 2, `plain` numbers only),
/// so it starts no upgrade, counts as complete, and serves E a "complete"
/// copy without `plain`: E, promoted, installs it over its own data.
/// C (at place 2 in t1, so it never held `plain`) misses t2, which moved
/// it up; t3 = [E, C] after A fails. C must know it lacks `plain`: it
/// starts an upgrade (so it is not complete) and offers its log, which E
/// merges over its own data (E copied the partition from A at t2). C
/// promoted instead merges over E's data.
#[test]
fn a_backup_that_missed_the_move_upgrades_and_offers_its_log() {
    for c_promoted in [false, true] {
        let c = Cluster::new();
        let t1 = table(1, &c.ids[..3], &PartitionTable::empty(COUNT));
        for m in [A, B, C] {
            c.apply(m, &t1, &[A, B, C]);
        }
        for k in &c.keys[..5] {
            c.write("plain", set(k), A, &[B], &[C]);
        }
        let t2 = table(2, &[c.ids[A], c.ids[C], c.ids[E]], &t1);
        c.apply(A, &t2, &[A, C, E]);
        c.apply(E, &t2, &[A, C, E]);
        let (seq, term, data) = c.services[A].snapshot_with_term(c.p);
        assert_eq!(
            c.services[E].install_copy(c.p, seq, term, data),
            Installed::Done
        );
        // C never applies t2. A fails.
        if c_promoted {
            let t3 = table(3, &[c.ids[C], c.ids[E]], &t2);
            let change = c.apply(C, &t3, &[C, E]);
            assert!(
                change.promotion_bases.contains(&(c.p, vec![c.ids[E]])),
                "{change:?}"
            );
            c.apply(E, &t3, &[C, E]);
            let (seq, data) = c.services[E].snapshot(c.p);
            assert!(c.services[C].finish_promotion_over_base(c.p, 3, c.ids[E], seq, data));
            assert!(
                c.value(C, "plain", &c.keys[0]).is_some(),
                "plain kept on the new owner"
            );
        } else {
            let t3 = table(3, &[c.ids[E], c.ids[C]], &t2);
            let change = c.apply(E, &t3, &[C, E]);
            assert!(change.promotion_copies.contains(&(c.p, vec![c.ids[C]], 3)));
            let change = c.apply(C, &t3, &[C, E]);
            assert!(
                change.upgrades.contains(&(c.p, 3)),
                "an upgrade started: {change:?}"
            );
            assert!(
                !c.services[C].replica_status(c.p).1,
                "C does not claim to be complete"
            );
            let log = c.services[C].upgrade_log(c.p).expect("its log");
            assert!(c.services[E].finish_promotion_with_log(c.p, 3, log));
            assert!(
                c.value(E, "plain", &c.keys[0]).is_some(),
                "plain kept on the new owner"
            );
        }
    }
}

#[test]
fn a_late_upgrade_copy_from_the_failed_owner_is_not_taken() {
    let c = Cluster::new();
    let t2 = c.b_leaves();
    // P1: numbered by A, its batch to C lost (unacknowledged); E got the number.
    let p1 = c.exec("plain", set(&c.keys[10]), A);
    c.deliver(&p1[0], A, E, false);
    // C's upgrade request reached A: A's snapshot, answer in flight.
    let (a_seq, a_data) = c.services[A].snapshot(c.p);
    let t3 = table(3, &[c.ids[E], c.ids[C]], &t2);
    c.apply(E, &t3, &[C, E]);
    c.apply(C, &t3, &[C, E]);
    let log = c.services[C].upgrade_log(c.p).expect("log");
    assert!(c.services[E].finish_promotion_with_log(c.p, 3, log));
    // A's late answer: the upgrade of table 2 is still pending at C, but
    // A is not the owner any more.
    assert!(
        !c.services[C].finish_upgrade_from(
            c.p,
            2,
            Some(c.ids[A]),
            c.services[C].table_version(),
            a_seq,
            a_data
        ),
        "a copy from a member no longer owner is not taken"
    );
    let (seq, data) = c.services[E].snapshot(c.p);
    assert!(c.services[C].finish_upgrade_from(
        c.p,
        2,
        Some(c.ids[E]),
        c.services[C].table_version(),
        seq,
        data
    ));
    assert_eq!(
        c.services[C].replica_status(c.p).0,
        c.services[E].replica_status(c.p).0,
        "same change number"
    );
    assert_eq!(
        c.value(C, "plain", &c.keys[10]),
        c.value(E, "plain", &c.keys[10]),
        "backup C and owner E hold the same data"
    );
}

/// Related, pre-existing (no upgrade involved): a complete backup's copy
/// leaves out its pending (received, acknowledged) changes, so a member
/// promoted behind it that installs the copy loses them.
#[test]
fn a_promotion_copy_carries_the_changes_its_source_had_waiting() {
    let c = Cluster::new();
    let t1 = table(
        1,
        &[c.ids[A], c.ids[C], c.ids[E]],
        &PartitionTable::empty(COUNT),
    );
    for m in [A, C, E] {
        c.apply(m, &t1, &[A, C, E]);
    }
    for k in &c.keys[..3] {
        c.write("plain", set(k), A, &[C], &[E]);
    }
    let p1 = c.exec("plain", set(&c.keys[10]), A);
    let p2 = c.exec("plain", set(&c.keys[11]), A);
    c.deliver(&p2[0], A, C, true); // pending at C: P2 acknowledged
    c.deliver(&p1[0], A, E, false);
    c.deliver(&p2[0], A, E, false);
    let t2 = table(2, &[c.ids[E], c.ids[C]], &t1);
    let change = c.apply(E, &t2, &[C, E]);
    assert!(change.promotion_copies.contains(&(c.p, vec![c.ids[C]], 2)));
    c.apply(C, &t2, &[C, E]);
    assert!(c.services[C].replica_status(c.p).1);
    let (seq, data) = c.services[C].snapshot(c.p);
    let pending = c.services[C].pending_changes(c.p);
    assert!(c.services[E].finish_promotion_copy(c.p, 2, seq, data, pending));
    assert!(
        c.value(E, "plain", &c.keys[11]).is_some(),
        "acknowledged P2 lost"
    );
}
