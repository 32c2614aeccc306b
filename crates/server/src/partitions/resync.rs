//! A backup that no longer matches its owner copies the partition again:
//! one that stays behind the owner's change numbers across two reports, or
//! one that took back the numbers an earlier owner gave (see
//! `ferrocast_partition::Received::Diverged`).

use super::Coordinator;
use std::time::Instant;

impl Coordinator {
    /// Copies partition `p` from its owner for a backup that took back
    /// change numbers of an earlier owner (see `Received::Diverged`).
    pub(super) fn resync(&mut self, p: u32, term: u64) {
        self.copying.insert(p, Instant::now());
        self.spawn_upgrade_copy(p, term);
    }

    /// A backup compares its change numbers with its owner's; one that
    /// stays behind across two reports copies the partition again.
    pub(super) fn check_behind(&mut self, seqs: Vec<(u32, u64)>) {
        let version = self.data.service.table_version();
        for (p, owner_seq) in seqs {
            let (seq, synced, _) = self.data.service.replica_status(p);
            if !synced || self.copying.contains_key(&p) {
                continue;
            }
            if seq >= owner_seq {
                self.behind.remove(&p);
                continue;
            }
            match self.behind.get(&p) {
                Some(prev) if *prev == seq => {
                    self.behind.remove(&p);
                    if let Some(owner) = self.data.service.owner(p) {
                        tracing::warn!("partition {p}: backup at change {seq}, owner at {owner_seq}; copying again");
                        self.data.service.mark_unsynced(p);
                        self.copying.insert(p, Instant::now());
                        self.spawn_copy(p, false, owner, version);
                    }
                }
                _ => {
                    self.behind.insert(p, seq);
                }
            }
        }
    }
}
