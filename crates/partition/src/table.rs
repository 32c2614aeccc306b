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
}

impl PartitionTable {
    /// A table with no owners.
    pub fn empty(count: u32) -> Self {
        Self {
            version: 0,
            replicas: vec![Vec::new(); count as usize],
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

    /// The balanced table for `members` (join order) that moves the fewest
    /// partitions away from their current owners. The version is bumped only
    /// when an owner changes.
    pub fn rebalanced(&self, members: &[Uuid]) -> PartitionTable {
        let mut next = self.clone();
        if members.is_empty() {
            return next;
        }
        let count = self.count() as usize;
        let n = members.len();
        let fair = |i: usize| count / n + usize::from(i < count % n);
        let mut load = vec![0usize; n];
        let mut orphans = Vec::new();
        for (p, replicas) in next.replicas.iter_mut().enumerate() {
            match replicas
                .first()
                .and_then(|o| members.iter().position(|m| m == o))
            {
                Some(i) if load[i] < fair(i) => load[i] += 1,
                _ => {
                    replicas.clear();
                    orphans.push(p);
                }
            }
        }
        let mut orphans = orphans.into_iter();
        for (i, member) in members.iter().enumerate() {
            while load[i] < fair(i) {
                let Some(p) = orphans.next() else { break };
                next.replicas[p] = vec![*member];
                load[i] += 1;
            }
        }
        if next.replicas != self.replicas {
            next.version = self.version + 1;
        }
        next
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
            let t = PartitionTable::empty(271).rebalanced(&ms);
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
        let t3 = PartitionTable::empty(271).rebalanced(&ms);
        let ms4 = members(4);
        let t4 = t3.rebalanced(&ms4);
        let moved = t3.moves(&t4);
        assert_eq!(moved.len(), t4.owned_by(ms4[3]).len());
        assert!(moved.iter().all(|(_, _, to)| *to == Some(ms4[3])));
        assert_eq!(t4.version, 2);
    }

    #[test]
    fn a_departure_moves_only_its_partitions() {
        let ms = members(4);
        let t4 = PartitionTable::empty(271).rebalanced(&ms);
        let gone = ms[1];
        let rest: Vec<Uuid> = ms.iter().copied().filter(|m| *m != gone).collect();
        let t3 = t4.rebalanced(&rest);
        let moved = t4.moves(&t3);
        assert!(moved.iter().all(|(_, from, _)| *from == Some(gone)));
        assert_eq!(moved.len(), t4.owned_by(gone).len());
        let l = loads(&t3, &rest);
        assert!(l.iter().max().unwrap() - l.iter().min().unwrap() <= 1);
    }

    #[test]
    fn unchanged_members_keep_the_version() {
        let ms = members(3);
        let t = PartitionTable::empty(271).rebalanced(&ms);
        assert_eq!(t.rebalanced(&ms), t);
    }
}
