//! A case the last review of this session found (on 3f02697): a backup
//! that moved up while its copy travelled installs that copy, a whole copy
//! from the owner, and upgrades (`Installed::Upgrade`). Promoted before
//! the upgrade landed, it merged its log over the data of a member behind
//! it, which keeps fewer maps, and lost the maps its own copy held (a
//! single crash). Now such an upgrade marks the store as holding every map
//! (`Upgrade::holds_all`), and a promotion keeps it.

mod common;
use common::members::*;

use bytes::Bytes;
use ferrocast_partition::{Installed, PartitionTable};

#[test]
fn promoted_after_an_upgrade_from_a_copy_in_flight_keeps_its_own_maps() {
    let c = Cluster::with(5, |m: &str| if m == "critical" { 3 } else { 1 });
    let t1 = c.t(1, &[A, B, F, C], &PartitionTable::empty(common::COUNT));
    for m in [A, B, F, C] {
        c.apply(m, &t1, &[A, B, C, F]);
    }
    for k in &c.keys[..5] {
        c.write("plain", set_to(k, b"p"), A, &[B], &[F, C]);
    }
    for k in &c.keys[5..8] {
        c.write("critical", set_to(k, b"c"), A, &[B, F, C], &[]);
    }
    // F leaves, E joins at place 2; A serves E's copy, still in flight.
    let t2 = c.t(2, &[A, B, E, C], &t1);
    for m in [A, B, E, C] {
        c.apply(m, &t2, &[A, B, C, E]);
    }
    let (seq, term, data, pending) = c.services[A].snapshot_for_copy(c.p);
    // B leaves gracefully: E moves up to place 1; F comes back at place 2.
    let t3 = c.t(3, &[A, E, F, C], &t2);
    for m in [A, B, E, F, C] {
        c.apply(m, &t3, &[A, B, C, E, F]);
    }
    assert_eq!(
        c.services[E].install_copy_asked_at(c.p, 2, seq, term, data, pending),
        Installed::Upgrade { version: 3 }
    );
    let acked = c.contents(A);
    // A crashes before E's upgrade copy.
    let t4 = c.t(4, &[E, F, C], &t3);
    let change = c.apply(E, &t4, &[B, C, E, F]);
    assert!(
        change.promotion_bases.contains(&(c.p, vec![c.ids[B]])),
        "only B, which left from the place ahead, may be a better base than E's own whole copy: {change:?}"
    );
    c.apply(B, &t4, &[B, C, E, F]);
    let (bseq, bdata) = c.services[B].snapshot(c.p);
    assert!(c.services[E].finish_promotion_over_base(c.p, 4, c.ids[B], bseq, bdata));
    for k in &c.keys[..5] {
        assert_eq!(
            c.value(E, "plain", k),
            Some(Bytes::from_static(b"p")),
            "acknowledged `plain` entry on the new owner"
        );
    }
    assert_eq!(c.contents(E), acked);
}

/// The same with B gone too (two failures): no base at all; E serves its
/// own whole copy instead of C's, which has no `plain`.
#[test]
fn promoted_after_an_upgrade_from_a_copy_in_flight_takes_no_base_behind() {
    let c = Cluster::with(5, |m: &str| if m == "critical" { 3 } else { 1 });
    let t1 = c.t(1, &[A, B, F, C], &PartitionTable::empty(common::COUNT));
    for m in [A, B, F, C] {
        c.apply(m, &t1, &[A, B, C, F]);
    }
    for k in &c.keys[..5] {
        c.write("plain", set_to(k, b"p"), A, &[B], &[F, C]);
    }
    let t2 = c.t(2, &[A, B, E, C], &t1);
    for m in [A, B, E, C] {
        c.apply(m, &t2, &[A, B, C, E]);
    }
    let (seq, term, data, pending) = c.services[A].snapshot_for_copy(c.p);
    let t3 = c.t(3, &[A, E, F, C], &t2);
    for m in [A, B, E, F, C] {
        c.apply(m, &t3, &[A, B, C, E, F]);
    }
    assert_eq!(
        c.services[E].install_copy_asked_at(c.p, 2, seq, term, data, pending),
        Installed::Upgrade { version: 3 }
    );
    let acked = c.contents(A);
    let t4 = c.t(4, &[E, F, C], &t3);
    let change = c.apply(E, &t4, &[C, E, F]);
    assert!(
        change.promotion_bases.iter().all(|(p, _)| *p != c.p),
        "{change:?}"
    );
    assert_eq!(c.contents(E), acked);
}
