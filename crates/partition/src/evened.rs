//! Evening out owners after departures.
//!
//! When an owner leaves, [`PartitionTable::rebalanced`] promotes a backup of
//! each of its partitions, which has the data, even when that takes the
//! backup one partition over its share: the alternative is copying the
//! partition to a member under its share while it has one replica fewer.
//! Over several departures those overs add up (56/55/55/55/50 owned at 5
//! members with 2 backups after a 6-member cluster lost one member at a
//! time), and with the members unchanged nothing evens them out: the
//! member owning the most serves the most operations.
//!
//! [`PartitionTable::evened`] is the table to move to once the cluster is
//! in sync again (the master asks when every member holds every replica of
//! the current table). It gives a partition of the member owning the most
//! to the member owning the fewest until they are at most one apart, and
//! prefers a partition whose backup the receiving member already is: the
//! two swap roles, so nothing is copied and every member keeps as many
//! replicas as before.

use crate::PartitionTable;
use uuid::Uuid;

impl PartitionTable {
    /// This table with owners at most one partition apart, or this very
    /// table (same version) when they are, or when it is not settled on
    /// exactly `members` with `backups` backups each (the master rebalances
    /// that table first).
    pub fn evened(&self, members: &[Uuid], backups: usize) -> PartitionTable {
        let mut next = self.clone();
        let n = members.len();
        let slots = (1 + backups).min(n);
        let settled = self
            .replicas
            .iter()
            .all(|r| r.len() == slots && r.iter().all(|u| members.contains(u)))
            && members
                .iter()
                .all(|m| self.replicas.iter().any(|r| r.contains(m)));
        if n < 2 || !settled {
            return next;
        }
        let index = |u: &Uuid| members.iter().position(|m| m == u).unwrap_or(0);
        let mut owned = vec![0usize; n];
        for r in &self.replicas {
            owned[index(&r[0])] += 1;
        }
        loop {
            let (hi, lo) = (0..n).fold((0, 0), |(hi, lo), i| {
                (
                    if owned[i] > owned[hi] { i } else { hi },
                    if owned[i] < owned[lo] { i } else { lo },
                )
            });
            if owned[hi] - owned[lo] <= 1 {
                break;
            }
            let (from, to) = (members[hi], members[lo]);
            let of_hi = || next.replicas.iter().position(|r| r[0] == from);
            // A partition `lo` backs up: swap the two (no copy). Else any
            // of `hi`'s: `lo` takes it and copies the data, `hi` keeps
            // nothing of it (one replica moves, as in a join).
            let swap = next
                .replicas
                .iter()
                .position(|r| r[0] == from && r.contains(&to));
            match swap {
                Some(p) => {
                    let r = &mut next.replicas[p];
                    let at = r.iter().position(|u| *u == to).unwrap_or(0);
                    r.swap(0, at);
                }
                None => match of_hi() {
                    Some(p) => next.replicas[p][0] = to,
                    None => break,
                },
            }
            owned[hi] -= 1;
            owned[lo] += 1;
        }
        if next.replicas != self.replicas {
            next.version = self.version + 1;
            next.previous = self.replicas.clone();
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: u8) -> Vec<Uuid> {
        (1..=n).map(|i| Uuid::from_bytes([i; 16])).collect()
    }

    fn spread(v: &[usize]) -> usize {
        v.iter().max().unwrap_or(&0) - v.iter().min().unwrap_or(&0)
    }

    fn owned(t: &PartitionTable, ms: &[Uuid]) -> Vec<usize> {
        ms.iter().map(|m| t.owned_by(*m).len()).collect()
    }

    fn held(t: &PartitionTable, ms: &[Uuid]) -> Vec<usize> {
        ms.iter()
            .map(|m| (0..t.count()).filter(|p| t.is_replica(*p, *m)).count())
            .collect()
    }

    /// A cluster grown one member at a time to 6 and shrunk one at a time
    /// to 2: after each departure's table, owners drift apart; the evened
    /// table brings them within one by swapping owner and backup (nothing
    /// copied, every member keeping as many replicas), and is settled: the
    /// same members again change nothing, evened or rebalanced.
    #[test]
    fn owners_drifted_by_departures_are_evened_by_swapping_roles() {
        for backups in [1, 2] {
            let all = members(6);
            let mut t = PartitionTable::empty(271);
            let mut drifted = 0;
            for n in 1..=6 {
                t = t.rebalanced(&all[..n], backups);
                assert!(
                    t.evened(&all[..n], backups) == t,
                    "{n} members: joins leave owners even"
                );
            }
            for k in 1..=4 {
                let ms = &all[k..];
                t = t.rebalanced(ms, backups);
                let before = owned(&t, ms);
                drifted = drifted.max(spread(&before));
                let e = t.evened(ms, backups);
                assert!(
                    spread(&owned(&e, ms)) <= 1,
                    "{backups} backups, {ms:?}: {before:?} -> {:?}",
                    owned(&e, ms)
                );
                assert_eq!(held(&e, ms), held(&t, ms), "replicas per member unchanged");
                let copies = (0..271u32)
                    .filter(|p| e.owner(*p).is_some_and(|o| !t.is_replica(*p, o)))
                    .count();
                assert_eq!(copies, 0, "{backups} backups: owners moved by copying");
                if spread(&before) > 1 {
                    assert_eq!(e.version, t.version + 1);
                    assert!(e.previous == t.replicas);
                }
                assert!(e.evened(ms, backups) == e, "evened again");
                assert!(e.rebalanced(ms, backups) == e, "rebalanced again");
                t = e;
            }
            assert!(
                drifted > 1,
                "{backups} backups: the departures drifted owners by {drifted} only"
            );
        }
    }

    #[test]
    fn a_table_not_settled_on_the_members_is_left_to_rebalancing() {
        let ms = members(4);
        let t = PartitionTable::empty(271).rebalanced(&ms[..3], 1);
        // A member the table does not hold yet, and one it holds that left.
        assert!(t.evened(&ms, 1) == t, "a member without replicas");
        assert!(t.evened(&ms[1..3], 1) == t, "a replica on a member gone");
        // Owners skewed by hand in a settled table (no backups): moved
        // by copying, since no member holds another's data.
        let mut skewed = PartitionTable::empty(271).rebalanced(&ms, 0);
        for p in 0..40usize {
            skewed.replicas[p][0] = ms[0];
        }
        let e = skewed.evened(&ms, 0);
        assert!(spread(&owned(&e, &ms)) <= 1, "{:?}", owned(&e, &ms));
        assert!(e.evened(&ms, 0) == e, "evened again");
    }
}
