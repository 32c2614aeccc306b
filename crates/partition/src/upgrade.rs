//! A backup moving up a place among a partition's replicas (the one ahead
//! of it left) while maps keep different backup counts: it holds the maps
//! of its old place and copies the others from the owner (an upgrade),
//! logging the changes it applies meanwhile. When the owner fails before
//! that copy arrives, the log is what a promoted member merges over data
//! that holds the other maps as they were before the move.

use crate::replica::{Change, PartitionState};
use crate::store::PartitionStore;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// A backup's copy for the maps it lacked at its old place, under way.
#[derive(Debug)]
pub struct Upgrade {
    /// The table that moved the backup up.
    pub version: u64,
    /// The changes applied since, with their numbers.
    pub(crate) log: UpgradeLog,
}

impl Upgrade {
    /// An upgrade of table `version` by a replica at change `from`.
    pub fn new(version: u64, from: u64) -> Self {
        Self {
            version,
            log: UpgradeLog {
                from,
                seq: from,
                changes: Vec::new(),
            },
        }
    }

    pub fn log(&self) -> &UpgradeLog {
        &self.log
    }

    pub fn into_log(self) -> UpgradeLog {
        self.log
    }
}

/// The changes a backup applied since it moved up a place (changes
/// `from + 1 ..= seq`, in order). For every map it holds them in full,
/// including those it lacked before the move, so applied over data that
/// holds those maps as they were before the move (a member behind it
/// copied them then) they make the partition whole again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeLog {
    pub from: u64,
    pub seq: u64,
    pub changes: Vec<(u64, Vec<Change>)>,
}

impl PartitionState {
    /// Ends the upgrade with the owner's copy taken at change `seq`: the
    /// copy replaces the store, then the changes logged after `seq` are
    /// applied again (each sets a key's resulting state, so applying one
    /// twice does no harm), and those still waiting follow. False when no
    /// upgrade of table `version` is under way.
    pub fn finish_upgrade(
        &mut self,
        version: u64,
        seq: u64,
        store: PartitionStore,
        now: Instant,
    ) -> bool {
        if self.upgrade.as_ref().map(|u| u.version) != Some(version) {
            return false;
        }
        let Some(up) = self.upgrade.take() else {
            return false;
        };
        self.store = store;
        for (s, changes) in up.log.changes {
            if s > seq {
                self.apply(changes, now);
            }
        }
        self.seq = self.seq.max(seq);
        self.drain(now);
        true
    }

    /// A promoted replica whose data no single member holds whole: `base`
    /// (a copy from a member behind it, taken at change `seq`; `None`: this
    /// replica's own data) holds every map, those kept at fewer places as
    /// they were before `log`'s backup moved up; `log` holds every change
    /// since, for all maps. Its changes are applied in order over the base,
    /// so each key it touches ends in its state at `log.seq` and every
    /// other key keeps the base's. Changes the base holds and the log does
    /// not reach back to (the log starts after the base's number) are the
    /// base's as they are; that is logged.
    pub fn merge(
        &mut self,
        partition: u32,
        base: Option<(u64, PartitionStore)>,
        log: UpgradeLog,
        now: Instant,
    ) {
        self.epoch = self.epoch.wrapping_add(1);
        let base_seq = match base {
            Some((seq, store)) => {
                self.store = store;
                seq
            }
            None => self.seq,
        };
        if log.from > base_seq {
            tracing::warn!(
                "partition {partition}: merging a log of changes {}..={} over data at change {base_seq}: changes in between are only as the data holds them",
                log.from + 1,
                log.seq
            );
        }
        let n = log.changes.len();
        for (_, changes) in log.changes {
            self.apply(changes, now);
        }
        self.seq = self.seq.max(base_seq).max(log.seq);
        tracing::info!(
            "partition {partition}: promoted; merged {n} logged changes over data at change {base_seq}: now at change {}",
            self.seq
        );
        self.synced = true;
        self.retained = false;
        self.promotion = None;
        self.upgrade = None;
        self.kept_log = None;
        self.term_base = None;
        self.drain(now);
        self.promote(now);
    }
}
