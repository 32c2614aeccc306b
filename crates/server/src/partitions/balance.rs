//! The master's tables: a rebalanced one when members join or leave, and
//! an evened one when departures left owners apart and the cluster is in
//! sync again.

use super::Coordinator;
use ferrocast_cluster::ClusterSnapshot;
use uuid::Uuid;

impl Coordinator {
    /// Master: the table for the members that stay.
    pub(super) fn rebalance(&mut self, snap: &ClusterSnapshot) {
        let owners: Vec<Uuid> = snap
            .view
            .members
            .iter()
            .map(|m| m.uuid)
            .filter(|u| !self.leaving.contains(u))
            .collect();
        if owners.is_empty() {
            return;
        }
        let current = self.data.service.table();
        let next = current.rebalanced(&owners, self.backup_count);
        self.publish(&current, next, "");
    }

    /// Master, once every member holds every replica of the current
    /// table: owners that departures left more than one partition apart
    /// are evened, each move a partition copied to a member that held none
    /// of it, from its old owner (see `PartitionTable::evened`).
    pub(super) fn even_owners(&mut self, snap: &ClusterSnapshot) {
        let members: Vec<Uuid> = snap.view.members.iter().map(|m| m.uuid).collect();
        let current = self.data.service.table();
        let next = current.evened(&members, self.backup_count);
        self.publish(&current, next, "owners evened, ");
    }

    /// Applies and broadcasts `next` if it differs from `current` (a new
    /// version), logging how many partitions change owner.
    fn publish(
        &mut self,
        current: &ferrocast_partition::PartitionTable,
        next: ferrocast_partition::PartitionTable,
        why: &str,
    ) {
        if next.version != current.version {
            tracing::info!(
                "partition table version {}: {why}{} partition(s) change owner",
                next.version,
                current.moves(&next).len()
            );
            self.apply(next.clone());
            self.broadcast(&next);
        }
    }
}
