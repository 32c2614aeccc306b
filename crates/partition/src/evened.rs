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
//! to the member owning the fewest, one that member holds no replica of,
//! until they are at most one apart. The receiver copies the partition
//! from its old owner, as a member that joins does.
//!
//! Why not swap an owner with its backup: a backup promoted over a living
//! owner copies from it anyway (a backup holds only the maps that keep
//! backups, and a write racing the change could otherwise stay on the old
//! owner alone; see `PartitionService::apply_table`), so a swap would cost
//! the same copy, and the first version of this, which swapped without
//! one, lost entries of a map with `backup-count: 0` (found in review).

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
            // One of `hi`'s partitions `lo` holds nothing of: `lo` takes
            // it and copies it from `hi`, which keeps nothing of it.
            let Some(p) = next
                .replicas
                .iter()
                .position(|r| r[0] == from && !r.contains(&to))
            else {
                break;
            };
            next.replicas[p][0] = to;
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

    /// A cluster grown one member at a time to 6 and shrunk one at a time
    /// to 2: after each departure's table, owners drift apart; the evened
    /// table brings them within one, each move a partition copied to a
    /// member that held none of it (as a join moves one), and is settled:
    /// the same members again change nothing, evened or rebalanced.
    #[test]
    fn owners_drifted_by_departures_are_evened_by_moving_as_few_as_possible() {
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
                let after = owned(&e, ms);
                // 2 backups on 3 members: every member holds every
                // partition, so nothing can move without a swap.
                if ms.len() > backups + 1 {
                    assert!(
                        spread(&after) <= 1,
                        "{backups} backups, {ms:?}: {before:?} -> {after:?}"
                    );
                }
                let moved = t.moves(&e);
                let excess: usize = before
                    .iter()
                    .map(|o| o.saturating_sub(271 / ms.len() + 1))
                    .sum();
                assert!(
                    moved.len() <= excess.max(spread(&before)),
                    "{} moves for {before:?}",
                    moved.len()
                );
                for (p, from, to) in moved {
                    assert!(
                        !t.is_replica(p, to.unwrap()),
                        "partition {p} moved to one of its replicas"
                    );
                    assert!(
                        !e.is_replica(p, from.unwrap()),
                        "partition {p}: its old owner kept a replica"
                    );
                    assert_eq!(e.replicas[p as usize].len(), t.replicas[p as usize].len());
                }
                if spread(&before) > 1 && spread(&after) < spread(&before) {
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
        // Owners skewed by hand in a settled table (no backups).
        let mut skewed = PartitionTable::empty(271).rebalanced(&ms, 0);
        for p in 0..40usize {
            skewed.replicas[p][0] = ms[0];
        }
        let e = skewed.evened(&ms, 0);
        assert!(spread(&owned(&e, &ms)) <= 1, "{:?}", owned(&e, &ms));
        assert!(e.evened(&ms, 0) == e, "evened again");
    }
}
