//! The owner fails while its first backup, moved up a place, still waits
//! for the maps it lacked (its upgrade). Nobody then holds the partition
//! whole: the moved-up backup (C) holds the maps it had and every change
//! since its move; the member behind it (E, which copied the partition
//! from the owner when it joined) holds the maps of fewer backups as they
//! were then. Whichever of the two is promoted merges C's log of changes
//! over E's data. Without it the promoted member and C waited on each
//! other until the copy limit (60 s), then served data without `plain`'s
//! older entries, or without its newer ones.
//!
//! Four members' services, batches carried by hand as the server does:
//! `critical` keeps 2 backups, `plain` 1.

mod common;
use common::members::*;
use common::*;

use ferrocast_partition::{Installed, PartitionTable};
use ferrocast_protocol::MapOp;

impl Cluster {
    /// Table 1 [A, B, C]: five `plain` and three `critical` keys. Table 2
    /// [A, C, E] (B left): C moves up (its upgrade from A pending), E
    /// copies the partition from A. Then A writes a new `plain` key,
    /// removes an old one and writes a `critical` key: C takes the
    /// changes of both maps, E only `critical`'s. Returns table 2 and
    /// what A holds: every acknowledged write. `c_late`: C applies table 2
    /// only after A's `plain` writes (A and E applied it first, and E's
    /// copy from A was taken before them), so it takes them before its
    /// upgrade starts.
    fn b_leaves_then_writes(&self, c_late: bool) -> (PartitionTable, Contents) {
        let t1 = self.t1_with_data();
        let t2 = table(2, &[self.ids[A], self.ids[C], self.ids[E]], &t1);
        self.apply(A, &t2, &[A, C, E]);
        let c_applies = || {
            let change = self.apply(C, &t2, &[A, C, E]);
            assert!(change.upgrades.contains(&(self.p, 2)), "{change:?}");
        };
        if !c_late {
            c_applies();
        }
        let change = self.apply(E, &t2, &[A, C, E]);
        assert!(change.needs_copy.contains(&(self.p, false, self.ids[A])));
        let (seq, term, data) = self.services[A].snapshot_with_term(self.p);
        assert_eq!(
            self.services[E].install_copy(self.p, seq, term, data),
            Installed::Done
        );
        self.write("plain", set(&self.keys[8]), A, &[C], &[E]);
        let removed = MapOp::Remove {
            key: self.keys[0].clone(),
        };
        self.write("plain", removed, A, &[C], &[E]);
        if c_late {
            c_applies();
        }
        self.write("critical", set(&self.keys[9]), A, &[C, E], &[]);
        let acknowledged = self.contents(A);
        assert_eq!(acknowledged[1].1.len(), 5, "plain: 4 old keys, 1 new");
        assert_eq!(acknowledged[0].1.len(), 4, "critical");
        assert_ne!(self.contents(C), acknowledged, "C lacks plain's old keys");
        assert_ne!(self.contents(E), acknowledged, "E lacks plain's new ones");
        (t2, acknowledged)
    }
}

/// A fails; the master promotes E, as C has no room for another owned
/// partition. E asks C, the member ahead of it: C, still upgrading, sends
/// its log, which E applies over its own data. C's upgrade then gets its
/// copy from E, the owner now.
#[test]
fn a_member_promoted_behind_an_upgrading_backup_merges_its_log() {
    for c_late in [false, true] {
        member_behind_merges(c_late);
    }
}

/// E promoted behind C; `c_late` as in `b_leaves_then_writes`.
fn member_behind_merges(c_late: bool) {
    let c = Cluster::new();
    let (t2, acknowledged) = c.b_leaves_then_writes(c_late);
    let t3 = table(3, &[c.ids[E], c.ids[C]], &t2);
    let change = c.apply(E, &t3, &[C, E]);
    assert!(
        change.promotion_copies.contains(&(c.p, vec![c.ids[C]], 3)),
        "{change:?}"
    );
    assert!(change.promotion_bases.is_empty(), "{change:?}");
    assert!(c.services[E].is_awaiting(c.p));
    let change = c.apply(C, &t3, &[C, E]);
    assert!(change.upgrades.is_empty(), "{change:?}");
    assert!(c.services[C].upgrade_pending(c.p, 2), "C still upgrading");
    assert!(!c.services[C].replica_status(c.p).1, "so it sends no copy");
    let log = c.services[C].upgrade_log(c.p).expect("but its log");
    assert_eq!(log.changes.len(), 3, "the changes since its move");
    assert!(c.services[E].finish_promotion_with_log(c.p, 3, log));
    assert!(!c.services[E].is_awaiting(c.p));
    assert_eq!(
        c.contents(E),
        acknowledged,
        "E holds every write (C applied table 2 late: {c_late})"
    );
    // C's upgrade copies from its owner, E.
    let (seq, data) = c.services[E].snapshot(c.p);
    assert!(c.services[C].finish_upgrade(c.p, 2, seq, data));
    assert_eq!(c.contents(C), acknowledged);
    assert!(c.services[C].replica_status(c.p).1);
    // The two go on as owner and backup.
    c.write("plain", set(&c.keys[10]), E, &[C], &[]);
    assert_eq!(c.contents(C), c.contents(E));
}

/// A fails; the master promotes C, the upgrading first backup. Nobody
/// ahead of it is left, so it merges its log over a copy from E, the
/// member behind it (which moved up and is upgrading now too: it still
/// serves its data as a base). E's upgrade then copies from C.
#[test]
fn an_upgrading_backup_promoted_merges_its_log_over_the_member_behind() {
    for c_late in [false, true] {
        promoted_upgrading_backup_merges(c_late);
    }
}

/// C, the upgrading first backup, promoted; `c_late`: it applied the
/// table that moved it up after taking two of A's changes under it.
fn promoted_upgrading_backup_merges(c_late: bool) {
    let c = Cluster::new();
    let (t2, acknowledged) = c.b_leaves_then_writes(c_late);
    let t3 = table(3, &[c.ids[C], c.ids[E]], &t2);
    // C's member list may still hold A.
    let change = c.apply(C, &t3, &[A, C, E]);
    assert!(
        change.promotion_copies.contains(&(c.p, vec![c.ids[A]], 3)),
        "{change:?}"
    );
    assert!(
        change.promotion_bases.contains(&(c.p, vec![c.ids[E]])),
        "{change:?}"
    );
    assert!(c.services[C].is_awaiting(c.p));
    let change = c.apply(E, &t3, &[C, E]);
    assert!(change.upgrades.contains(&(c.p, 3)), "{change:?}");
    assert!(
        c.services[E].serves_base(c.p, 3),
        "E serves its data as a base (its upgrade is table 3's)"
    );
    let (seq, data) = c.services[E].snapshot(c.p);
    assert!(c.services[C].finish_promotion_over_base(c.p, 3, c.ids[E], seq, data));
    assert!(!c.services[C].is_awaiting(c.p));
    assert_eq!(
        c.contents(C),
        acknowledged,
        "C holds every write (C applied table 2 late: {c_late})"
    );
    let (seq, data) = c.services[C].snapshot(c.p);
    assert!(c.services[E].finish_upgrade(c.p, 3, seq, data));
    assert_eq!(c.contents(E), acknowledged);
    c.write("plain", set(&c.keys[10]), C, &[E], &[]);
    c.write("critical", set(&c.keys[11]), C, &[E], &[]);
    assert_eq!(c.contents(E), c.contents(C));
}

/// Same, but the old owner leaves gracefully and is still there: its copy
/// is whole, and it replaces C's data; no merge.
#[test]
fn an_upgrading_backup_promoted_takes_a_whole_copy_from_ahead_first() {
    let c = Cluster::new();
    let (t2, acknowledged) = c.b_leaves_then_writes(false);
    let t3 = table(3, &[c.ids[C], c.ids[E]], &t2);
    c.apply(A, &t3, &[A, C, E]);
    let change = c.apply(C, &t3, &[A, C, E]);
    assert!(change.promotion_copies.contains(&(c.p, vec![c.ids[A]], 3)));
    let (seq, data) = c.services[A].snapshot(c.p);
    assert!(c.services[C].finish_promotion(c.p, 3, Some((seq, data))));
    assert_eq!(c.contents(C), acknowledged);
    // A base arriving late is not merged any more.
    let (seq, data) = c.services[E].snapshot(c.p);
    assert!(!c.services[C].finish_promotion_over_base(c.p, 3, c.ids[E], seq, data));
    assert_eq!(c.contents(C), acknowledged);
}
