//! The master's tables: a rebalanced one when members join or leave, and
//! an evened one when departures left owners apart and the cluster is in
//! sync again.

use super::Coordinator;
use ferrocast_cluster::ClusterSnapshot;
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// How long the master gathers intents to leave before it publishes a table
/// without those members. Kubernetes sends SIGTERM to every pod a
/// scale-down removes at once, and their intents arrive within a few ms of
/// each other; a table for each (4 leaving: versions 6 to 9 within 16 ms)
/// moved partitions onto members whose own intent came next, which then
/// had to copy them on again. A graceful leave takes this much longer.
/// Members that actually left (or failed) get a table at once.
pub(super) const LEAVE_GATHER: Duration = Duration::from_millis(100);

/// Resolves at `due`, never without one: a branch of the coordinator's loop.
pub(super) async fn until(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Coordinator {
    /// Master: a table without the members leaving, [`LEAVE_GATHER`] after
    /// the first intent not yet in a table.
    pub(super) fn rebalance_soon(&mut self) {
        self.rebalance_due
            .get_or_insert_with(|| Instant::now() + LEAVE_GATHER);
    }

    /// The gathering time is over: publish (if still master).
    pub(super) fn rebalance_due_now(&mut self) {
        self.rebalance_due = None;
        let snap = self.snapshot();
        if snap.is_master() {
            self.rebalance(&snap);
        }
    }

    /// Master: the table for the members that stay.
    pub(super) fn rebalance(&mut self, snap: &ClusterSnapshot) {
        // Covers every intent heard so far.
        self.rebalance_due = None;
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
