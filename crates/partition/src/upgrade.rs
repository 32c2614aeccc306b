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
    /// The newest table that moved the backup up while this upgrade ran
    /// (it goes on across moves): only a copy asked for at that table or
    /// later ends it. A copy the owner served on an earlier table misses
    /// the changes it numbered there, whose content went to the member
    /// ahead of us that has left since, and we took only as numbers.
    pub(crate) moved_at: u64,
    /// Started after a whole copy from the owner that was asked for before
    /// the move (`Installed::Upgrade`): the store holds every map, as of
    /// that copy. Promoted before the upgrade lands, this replica keeps its
    /// own data; a member behind, which keeps fewer maps, is no better base.
    pub(crate) holds_all: bool,
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
            moved_at: version,
            holds_all: false,
        }
    }

    /// An upgrade of table `version` whose log starts with `early`, the
    /// changes this replica applied from an owner already on that table.
    pub fn with_log(version: u64, early: UpgradeLog) -> Self {
        Self {
            version,
            log: early,
            moved_at: version,
            holds_all: false,
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
    /// Ends the upgrade with the owner's copy taken at change `seq`, asked
    /// for at table `asked_at`: the copy replaces the store, then the
    /// changes logged after `seq` are applied again (each sets a key's
    /// resulting state, so applying one twice does no harm), and those
    /// still waiting follow. False when no upgrade of table `version` is
    /// under way, or the copy was asked for before the table that last
    /// moved this backup up (another is asked for).
    pub fn finish_upgrade(
        &mut self,
        version: u64,
        asked_at: u64,
        seq: u64,
        store: PartitionStore,
        now: Instant,
    ) -> bool {
        match self.upgrade.as_ref() {
            Some(up) if up.version == version && asked_at >= up.moved_at => {}
            Some(up) if up.version == version => {
                tracing::debug!(
                    "upgrade copy asked for at table {asked_at}; moved up again by table {}: asking again",
                    up.moved_at
                );
                return false;
            }
            _ => return false,
        }
        let Some(up) = self.upgrade.take() else {
            return false;
        };
        self.store = store;
        self.numbers_only.covered_to(seq);
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
    /// replica's own data) is complete at its number for the maps kept at
    /// `base_place` (`places(map)`: the highest place that gets the map's
    /// entries) and holds the others as they were before `log`'s backup
    /// moved up; `log` holds every change since, for all maps, and the
    /// changes that backup took ahead of their turn. They are applied by
    /// number together with this replica's own waiting changes (the log's
    /// first where both have a number: its backup is at the lower place):
    /// at or below the base's number only to the maps the base lacks (it
    /// is newer for the others), above it to all. Each change sets a key's
    /// resulting state, so every key ends as the newest change that
    /// reached either member left it.
    #[allow(clippy::too_many_arguments)]
    pub fn merge(
        &mut self,
        partition: u32,
        base: Option<(u64, PartitionStore)>,
        base_place: usize,
        log: UpgradeLog,
        places: &dyn Fn(&str) -> usize,
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
                "partition {partition}: merging a log of changes from {} over data at change {base_seq}: changes in between are only as the data holds them",
                log.from + 1
            );
        }
        let mut changes = std::mem::take(&mut self.pending);
        let n = log.changes.len();
        for (s, c) in log.changes {
            if c.is_empty() {
                // Our own content for it stays (see `wait`).
                changes.entry(s).or_insert(c);
            } else {
                changes.insert(s, c);
            }
        }
        let mut seq = base_seq;
        for (s, c) in changes {
            if s <= base_seq {
                let lacked: Vec<Change> = c
                    .into_iter()
                    .filter(|c| places(c.map()) < base_place)
                    .collect();
                self.apply(lacked, now);
            } else {
                self.apply(c, now);
                seq = s;
            }
        }
        self.seq = seq;
        tracing::info!(
            "partition {partition}: promoted; merged {n} logged changes over data at change {base_seq}: now at change {seq}"
        );
        self.synced = true;
        self.retained = false;
        self.promotion = None;
        self.upgrade = None;
        self.kept_log = None;
        self.early_log = None;
        self.term_base = None;
        self.numbers_only.clear();
    }
}
