//! The partition table: which member holds each replica of each partition.
//!
//! The master computes it from the member list and publishes it with a
//! version that grows with every change. Slot 0 of a partition's replicas is
//! its owner; later slots are backups (filled once backups exist). A new
//! table moves as few partitions as possible: owners that are still members
//! keep what they have up to their fair share (`count / members`, the first
//! `count % members` members in join order taking one more), and only the
//! surplus and the orphans move.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionTable {
    pub version: u64,
    /// `replicas[p][0]` owns partition `p`; empty when nobody does yet.
    pub replicas: Vec<Vec<Uuid>>,
    /// The replicas of the table this one was computed from: where a new
    /// replica copies its data from, even when it never saw that table.
    pub previous: Vec<Vec<Uuid>>,
}

impl PartitionTable {
    /// A table with no owners.
    pub fn empty(count: u32) -> Self {
        Self {
            version: 0,
            replicas: vec![Vec::new(); count as usize],
            previous: vec![Vec::new(); count as usize],
        }
    }

    pub fn count(&self) -> u32 {
        self.replicas.len() as u32
    }

    pub fn owner(&self, partition: u32) -> Option<Uuid> {
        self.replicas
            .get(partition as usize)
            .and_then(|r| r.first().copied())
    }

    /// Partitions owned by `member`, ascending.
    pub fn owned_by(&self, member: Uuid) -> Vec<u32> {
        (0..self.count())
            .filter(|p| self.owner(*p) == Some(member))
            .collect()
    }

    /// The balanced table for `members` (join order) with up to `backups`
    /// backup replicas per partition, moving as little data as possible:
    /// living owners keep their partitions up to their fair share; a
    /// partition whose owner is gone goes to its first living backup (which
    /// has the data); only what is left goes to the least loaded members.
    /// Backups are kept where they are when still valid and filled up on the
    /// members holding the fewest backups. The version is bumped only when a
    /// replica changes.
    pub fn rebalanced(&self, members: &[Uuid], backups: usize) -> PartitionTable {
        let mut next = self.clone();
        if members.is_empty() {
            return next;
        }
        let count = self.count() as usize;
        let n = members.len();
        let slots = (1 + backups).min(n);
        // Settled on these very members (every one holds replicas, every
        // partition has all its replicas, on them): nothing to move. The
        // shares below are met within a replica or two, and recomputing
        // would trade replicas between members for nothing.
        let full = self
            .replicas
            .iter()
            .all(|r| r.len() == slots && r.iter().all(|u| members.contains(u)));
        if full
            && members
                .iter()
                .all(|m| self.replicas.iter().any(|r| r.contains(m)))
        {
            return next;
        }
        let index = |u: &Uuid| members.iter().position(|m| m == u);
        let fair = |i: usize| count / n + usize::from(i < count % n);
        let alive_replicas: Vec<Vec<usize>> = self
            .replicas
            .iter()
            .map(|r| r.iter().filter_map(index).collect())
            .collect();

        // Owners: keep, then promote a backup, then fill.
        let mut owner: Vec<Option<usize>> = vec![None; count];
        let mut load = vec![0usize; n];
        for p in 0..count {
            if let (Some(o), Some(first)) = (
                self.replicas[p].first().and_then(index),
                alive_replicas[p].first(),
            ) {
                if o == *first && load[o] < fair(o) {
                    owner[p] = Some(o);
                    load[o] += 1;
                }
            }
        }
        for p in 0..count {
            if owner[p].is_none() {
                // A backup already has the data: when the owner is gone, let
                // it go one over its share rather than copy the data.
                let owner_gone = self.replicas[p].first().is_some_and(|o| index(o).is_none());
                let room = |b: usize| load[b] < fair(b) || (owner_gone && load[b] == fair(b));
                if let Some(b) = alive_replicas[p].iter().copied().find(|b| room(*b)) {
                    owner[p] = Some(b);
                    load[b] += 1;
                }
            }
        }
        for o in owner.iter_mut().filter(|o| o.is_none()) {
            if let Some(i) = (0..n).find(|i| load[*i] < fair(*i)) {
                *o = Some(i);
                load[i] += 1;
            }
        }

        // Backups: keep valid ones, then the least loaded members. Each
        // owner's partitions have their backups spread evenly over the other
        // members (`pair[o][b]`: backups on b of partitions o owns), which
        // also spreads the backups as a whole: after a join, the old members
        // would otherwise keep each other's backups up to their share and
        // leave the new member's partitions only each other to go to (a
        // cluster grown 1 -> 2 -> 3 had 136, 114 and 21 backups). When an
        // owner fails, its partitions' promotions spread over the others too.
        let backup_fair =
            |i: usize| (count * (slots - 1)) / n + usize::from(i < (count * (slots - 1)) % n);
        // `load` holds the partitions each member owns now.
        let pair_fair = |o: usize| (load[o] * (slots - 1)).div_ceil((n - 1).max(1));
        let mut pair = vec![vec![0usize; n]; n];
        let mut bload = vec![0usize; n];
        let mut chosen: Vec<Vec<usize>> = (0..count).map(|p| vec![owner[p].unwrap_or(0)]).collect();
        // One kept backup per partition per round: keeping all of a
        // partition's before the next one's would fill the old members'
        // shares with the first partitions, leaving the rest (with 2
        // backups) too few members to go to.
        for _ in 1..slots {
            for (p, set) in chosen.iter_mut().enumerate() {
                let o = set[0];
                // A little slack keeps a settled table stable.
                let keep = alive_replicas[p]
                    .iter()
                    .copied()
                    .filter(|b| {
                        !set.contains(b)
                            && bload[*b] < backup_fair(*b) + 2
                            && pair[o][*b] < pair_fair(o)
                    })
                    .min_by_key(|b| (pair[o][*b], bload[*b]));
                if let Some(b) = keep {
                    set.push(b);
                    bload[b] += 1;
                    pair[o][b] += 1;
                }
            }
        }
        // Missing backups: on a member still under its share, the one
        // holding the fewest of this owner's partitions' backups, then the
        // fewest backups; among equals, in turn from the owner.
        let mut turn = vec![0usize; n];
        for set in chosen.iter_mut() {
            let o = set[0];
            while set.len() < slots {
                let Some(b) = (0..n - 1)
                    .map(|t| (o + 1 + (turn[o] + t) % (n - 1)) % n)
                    .filter(|i| !set.contains(i))
                    .min_by_key(|i| (bload[*i] >= backup_fair(*i), pair[o][*i], bload[*i]))
                else {
                    break;
                };
                turn[o] += 1;
                set.push(b);
                bload[b] += 1;
                pair[o][b] += 1;
            }
        }
        for (p, mut set) in chosen.into_iter().enumerate() {
            // Kept backups in their old order (the first is promoted
            // first), new ones after them.
            let rank = |b: &usize| {
                alive_replicas[p]
                    .iter()
                    .position(|r| r == b)
                    .unwrap_or(usize::MAX)
            };
            set[1..].sort_by_key(rank);
            next.replicas[p] = set.into_iter().map(|i| members[i]).collect();
        }
        if next.replicas != self.replicas {
            next.version = self.version + 1;
            next.previous = self.replicas.clone();
        }
        next
    }

    /// Backups (slots 1..) of a partition.
    pub fn backups(&self, partition: u32) -> &[Uuid] {
        self.replicas
            .get(partition as usize)
            .map(|r| r.get(1..).unwrap_or(&[]))
            .unwrap_or(&[])
    }

    /// Whether `member` holds any replica of `partition`.
    pub fn is_replica(&self, partition: u32, member: Uuid) -> bool {
        self.replicas
            .get(partition as usize)
            .is_some_and(|r| r.contains(&member))
    }

    /// Partitions whose owner differs between `self` and `next`: (partition, old, new).
    pub fn moves(&self, next: &PartitionTable) -> Vec<(u32, Option<Uuid>, Option<Uuid>)> {
        (0..self.count().min(next.count()))
            .filter_map(|p| {
                let (a, b) = (self.owner(p), next.owner(p));
                (a != b).then_some((p, a, b))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: u8) -> Vec<Uuid> {
        (1..=n).map(|i| Uuid::from_bytes([i; 16])).collect()
    }

    fn loads(t: &PartitionTable, ms: &[Uuid]) -> Vec<usize> {
        ms.iter().map(|m| t.owned_by(*m).len()).collect()
    }

    #[test]
    fn balanced_for_every_cluster_size() {
        for n in 1..=12u8 {
            let ms = members(n);
            let t = PartitionTable::empty(271).rebalanced(&ms, 0);
            let l = loads(&t, &ms);
            assert_eq!(l.iter().sum::<usize>(), 271);
            let (min, max) = (l.iter().min().unwrap(), l.iter().max().unwrap());
            assert!(max - min <= 1, "{n} members: {l:?}");
            assert_eq!(t.version, 1);
        }
    }

    #[test]
    fn a_join_moves_only_the_new_members_share() {
        let ms = members(3);
        let t3 = PartitionTable::empty(271).rebalanced(&ms, 0);
        let ms4 = members(4);
        let t4 = t3.rebalanced(&ms4, 0);
        let moved = t3.moves(&t4);
        assert_eq!(moved.len(), t4.owned_by(ms4[3]).len());
        assert!(moved.iter().all(|(_, _, to)| *to == Some(ms4[3])));
        assert_eq!(t4.version, 2);
    }

    #[test]
    fn a_departure_moves_only_its_partitions() {
        let ms = members(4);
        let t4 = PartitionTable::empty(271).rebalanced(&ms, 0);
        let gone = ms[1];
        let rest: Vec<Uuid> = ms.iter().copied().filter(|m| *m != gone).collect();
        let t3 = t4.rebalanced(&rest, 0);
        let moved = t4.moves(&t3);
        assert!(moved.iter().all(|(_, from, _)| *from == Some(gone)));
        assert_eq!(moved.len(), t4.owned_by(gone).len());
        let l = loads(&t3, &rest);
        assert!(l.iter().max().unwrap() - l.iter().min().unwrap() <= 1);
    }

    #[test]
    fn backups_sit_on_other_members_and_are_balanced() {
        for n in 2..=6u8 {
            let ms = members(n);
            let t = PartitionTable::empty(271).rebalanced(&ms, 1);
            for p in 0..271 {
                let r = &t.replicas[p as usize];
                assert_eq!(r.len(), 2);
                assert_ne!(r[0], r[1]);
            }
            let b: Vec<usize> = ms
                .iter()
                .map(|m| (0..271).filter(|p| t.backups(*p).contains(m)).count())
                .collect();
            assert!(
                b.iter().max().unwrap() - b.iter().min().unwrap() <= 2,
                "{b:?}"
            );
        }
        // One member: no backup possible; two backups on three members.
        let t = PartitionTable::empty(271).rebalanced(&members(1), 1);
        assert!(t.replicas.iter().all(|r| r.len() == 1));
        let t = PartitionTable::empty(271).rebalanced(&members(3), 2);
        assert!(t.replicas.iter().all(|r| r.len() == 3));
    }

    /// Replicas (owned and backups) per member, in the order of `ms`.
    fn replica_loads(t: &PartitionTable, ms: &[Uuid]) -> (Vec<usize>, Vec<usize>) {
        let backups = ms
            .iter()
            .map(|m| (0..t.count()).filter(|p| t.backups(*p).contains(m)).count())
            .collect();
        (loads(t, ms), backups)
    }

    /// Members joining one at a time (a StatefulSet starting its pods, the
    /// usual way up) and leaving one at a time end with backups spread as
    /// evenly as a table built at once: the third member of a cluster
    /// grown 1 -> 2 -> 3 held 21 backups against the first one's 136 (the
    /// members the kept backups had filled were given the missing ones
    /// too, in turn, whatever they held).
    #[test]
    fn backups_stay_balanced_as_members_join_and_leave_one_at_a_time() {
        for backups in [1, 2] {
            let all = members(6);
            let mut t = PartitionTable::empty(271);
            // Joins, then the oldest members leave one by one.
            let joins = (1..=6).map(|n| (&all[..n], 1));
            // A backup promoted for a departed owner may go one over its
            // share (no copy), so others stay under theirs, and this adds
            // up over departures: owners here end up to 6 apart (without
            // the evened tables the master moves to once in sync again,
            // see `evened.rs`).
            let leaves = (1..=4).map(|k| (&all[k..], 6));
            for (ms, owned_spread) in joins.chain(leaves) {
                let n = ms.len();
                t = t.rebalanced(ms, backups);
                // Settled: the same members again change nothing.
                assert_eq!(t.rebalanced(ms, backups).version, t.version, "{n} members");
                let (owned, held) = replica_loads(&t, ms);
                let spread = |v: &[usize]| v.iter().max().unwrap() - v.iter().min().unwrap();
                assert!(
                    spread(&owned) <= owned_spread,
                    "{n} members: owned {owned:?}"
                );
                if n > backups {
                    assert!(
                        spread(&held) <= 8,
                        "{n} members, {backups} backups: {held:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_crash_promotes_backups_and_recreates_them() {
        let ms = members(4);
        let t = PartitionTable::empty(271).rebalanced(&ms, 1);
        let dead = ms[2];
        let rest: Vec<Uuid> = ms.iter().copied().filter(|m| *m != dead).collect();
        let t2 = t.rebalanced(&rest, 1);
        let mut promoted = 0;
        for p in 0..271u32 {
            if t.owner(p) == Some(dead) {
                promoted += usize::from(t2.owner(p) == Some(t.backups(p)[0]));
            } else {
                assert_eq!(t2.owner(p), t.owner(p), "partition {p} moved without need");
            }
            assert_eq!(t2.replicas[p as usize].len(), 2);
            assert!(!t2.is_replica(p, dead));
        }
        // Backups take over wherever their fair share allows (all but a few).
        let orphaned = t.owned_by(dead).len();
        assert!(
            promoted + 3 >= orphaned,
            "{promoted} of {orphaned} promoted"
        );
    }

    #[test]
    fn unchanged_members_keep_the_version() {
        let ms = members(3);
        let t = PartitionTable::empty(271).rebalanced(&ms, 1);
        assert_eq!(t.rebalanced(&ms, 1), t);
    }
}
