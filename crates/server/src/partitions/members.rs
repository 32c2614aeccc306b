//! What the coordinator does when the member list changes: a member that
//! is no longer in the cluster (it left, or was removed) drops its data;
//! the master publishes a table for the members listed, at once when a
//! member is gone (its partitions need new owners), gathered when members
//! joined (see `balance::GATHER`).

use super::Coordinator;

impl Coordinator {
    pub(super) fn on_members(&mut self) {
        let snap = self.snapshot();
        let rejoined = snap.joins > self.joins_seen && self.joins_seen > 0;
        self.joins_seen = self.joins_seen.max(snap.joins);
        if !snap.joined || rejoined {
            if self.data.service.table_version() > 0 {
                if snap.left {
                    // A deliberate leave (shutdown) handed its partitions
                    // over first; there is no cluster to merge back into.
                    // Copying every entry for a merge here only made a
                    // stopping member's memory peak at ~3x its data.
                    tracing::info!("left the cluster: dropping this member's partitions");
                } else {
                    tracing::warn!("no longer in the cluster: dropping this member's partitions, which are stale now");
                    self.offer_for_merge();
                }
                self.data.service.reset_all();
                self.copying.clear();
                self.released.clear();
                self.behind.clear();
            }
            if !snap.joined {
                return;
            }
        }
        let alive = self.alive();
        if let Some(t) = self.deferred.take() {
            self.consider(t);
        }
        // The hand-over's copy keeps them (see `HandOver::leaving`).
        self.leaving.retain(|u| alive.contains(u));
        self.copy_permits.retain(|u, _| alive.contains(u));
        if let Ok(mut s) = self.hand_over.in_sync.lock() {
            s.retain(|m, _| alive.contains(m));
        }
        let departed = self.listed.iter().any(|u| !alive.contains(u));
        self.listed = alive;
        if snap.is_master() {
            // Partitions of a member that is gone need new owners now; the
            // first table too (a founding member serves clients with it).
            if departed || self.data.service.table_version() == 0 {
                self.rebalance(&snap);
            } else {
                self.rebalance_soon();
            }
        }
    }
}
