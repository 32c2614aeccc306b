//! The master's tables: a rebalanced one when members join or leave, and
//! an evened one when departures left owners apart and the cluster is in
//! sync again.

use super::Coordinator;
use ferrocast_cluster::ClusterSnapshot;
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// How long the master gathers intents to leave, and joins, before it
/// publishes a table for them. Kubernetes sends SIGTERM to every pod a
/// scale-down removes at once, and their intents arrive within a few ms of
/// each other; a table for each (4 leaving: versions 6 to 9 within 16 ms)
/// moved partitions onto members whose own intent came next, which then
/// had to copy them on again. Pods a scale-up adds start at once too, and
/// a table per join moved partitions to the first to join, some of them
/// on to the next a few ms later. A graceful leave, and a new member's
/// first partitions, take this much longer. Each join or intent extends
/// the wait (pods starting together join over a few hundred ms), up to
/// [`GATHER_MAX`] from the first. Members that left the list (or failed)
/// get a table at once: their partitions need new owners.
pub(super) const GATHER: Duration = Duration::from_millis(100);

/// The longest a join or intent waits for its table.
pub(super) const GATHER_MAX: Duration = Duration::from_secs(1);

/// Resolves at `due`, never without one: a branch of the coordinator's loop.
pub(super) async fn until(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Coordinator {
    /// Master: a table for the members listed, without those leaving,
    /// once no join or intent came for [`GATHER`], or [`GATHER_MAX`] after
    /// the first not yet in a table.
    pub(super) fn rebalance_soon(&mut self) {
        let now = Instant::now();
        let first = *self.gathering_since.get_or_insert(now);
        self.rebalance_due = Some((now + GATHER).min(first + GATHER_MAX));
    }

    /// The gathering time is over: publish (if still master).
    pub(super) fn rebalance_due_now(&mut self) {
        self.rebalance_due = None;
        self.gathering_since = None;
        let snap = self.snapshot();
        if snap.is_master() {
            self.rebalance(&snap);
        }
    }

    /// Master: the table for the members that stay.
    pub(super) fn rebalance(&mut self, snap: &ClusterSnapshot) {
        // Covers every join and intent so far.
        self.rebalance_due = None;
        self.gathering_since = None;
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
