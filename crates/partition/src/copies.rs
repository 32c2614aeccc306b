//! Whole-partition copies on this member's side: the snapshot a holder
//! sends, installing one, and a backup promoted over a living owner, which
//! waits for that owner's copy (see `PartitionService::apply_table`) or
//! ends without it.

use crate::service::{from_wire, to_wire, PartitionData, PartitionService};
use crate::store::PartitionStore;
use crate::upgrade::UpgradeLog;

/// What became of a copy handed to [`PartitionService::install_copy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    Done,
    /// The replica had stopped waiting for it; it keeps what it has.
    NotWanted,
    /// Installed, but it went past the base of a newer owner term this
    /// replica has seen: the partition must be copied from its owner, as
    /// an upgrade of that term (see `PartitionState::install`).
    Diverged {
        term: u64,
    },
}
use std::sync::atomic::Ordering;
use std::time::Instant;

/// A partition's store built from a copy's records.
fn store_from_wire(data: PartitionData, now: Instant) -> PartitionStore {
    let mut store = PartitionStore::default();
    for (name, records) in data {
        let m = store.map_mut(&name);
        for (k, r) in records {
            m.install(k, from_wire(r, now));
        }
    }
    store
}

impl PartitionService {
    /// A full copy of partition `p` and the number of its last change.
    pub fn snapshot(&self, p: u32) -> (u64, PartitionData) {
        let (seq, _, data) = self.snapshot_with_term(p);
        (seq, data)
    }

    /// A full copy of partition `p` as a copy travels: the number of its
    /// last change, the owner term its data continues (ours if we own it;
    /// 0 when unknown), and the records.
    pub fn snapshot_with_term(&self, p: u32) -> (u64, u64, PartitionData) {
        let now = Instant::now();
        let state = self.state(p);
        let data = state
            .store
            .maps()
            .map(|(name, m)| {
                let records = m
                    .snapshot()
                    .into_iter()
                    .filter(|(_, r)| !r.is_expired(now))
                    .map(|(k, r)| (k, to_wire(&r, now)))
                    .collect();
                (name.clone(), records)
            })
            .collect();
        let term = if state.owned {
            state.owner_term
        } else {
            state.data_term.unwrap_or(0)
        };
        (state.seq, term, data)
    }

    /// Installs a full copy of `p`, taken at change `seq` of owner term
    /// `term` (0: unknown), and releases the operations waiting for it. A
    /// replica that stopped waiting for it meanwhile (promoted, it copies
    /// from the members ahead of it or falls back on its own data; another
    /// copy landed first) keeps what it has: it may have applied, or as
    /// owner made, changes the copy lacks.
    pub fn install_copy(&self, p: u32, seq: u64, term: u64, data: PartitionData) -> Installed {
        let now = Instant::now();
        let store = store_from_wire(data, now);
        let mut state = self.state(p);
        if state.synced || state.promotion.is_some() {
            tracing::debug!(
                "partition {p}: copy at change {seq} arrived after this replica stopped waiting for it (at change {}); not installed",
                state.seq
            );
            return Installed::NotWanted;
        }
        let pending = state.pending_len();
        let diverged = state.install(seq, Some(term), store, now);
        tracing::debug!(
            "partition {p}: copy installed at change {seq} ({pending} newer changes waiting), now at {}",
            state.seq
        );
        drop(state);
        self.awaiting[p as usize].store(false, Ordering::SeqCst);
        self.changed.notify_waiters();
        match diverged {
            Some(term) => Installed::Diverged { term },
            None => Installed::Done,
        }
    }

    /// Makes this member's replica of `p` its owner's. A backup still
    /// waiting for its copy (it became a replica moments ago) is promoted
    /// without its data: operations wait for the copy, or writes made now
    /// would be overwritten by it.
    pub(crate) fn promote(&self, p: u32, now: Instant) {
        let mut st = self.state(p);
        let promoted = st.promote(now);
        tracing::debug!(
            "partition {p}: promoted at change {} ({})",
            st.seq,
            if promoted {
                "data complete"
            } else {
                "waiting for its copy"
            }
        );
        drop(st);
        if !promoted {
            self.awaiting[p as usize].store(true, Ordering::SeqCst);
        }
    }

    /// Whether the upgrade of `p` started by table `version` (a backup
    /// moved up, see `table_change.rs`) still waits for the owner's copy.
    pub fn upgrade_pending(&self, p: u32, version: u64) -> bool {
        self.state(p).upgrade.as_ref().map(|u| u.version) == Some(version)
    }

    /// Ends the upgrade of `p` started by table `version` with the owner's
    /// copy taken at change `seq`. False when it ended otherwise meanwhile
    /// (promoted, moved, given up).
    pub fn finish_upgrade(&self, p: u32, version: u64, seq: u64, data: PartitionData) -> bool {
        let now = Instant::now();
        let store = store_from_wire(data, now);
        let done = self.state(p).finish_upgrade(version, seq, store, now);
        if done {
            self.changed.notify_waiters();
        }
        done
    }

    /// Gives up the upgrade of `p` started by table `version`: the backup
    /// keeps the maps it had.
    pub fn cancel_upgrade(&self, p: u32, version: u64) {
        let mut st = self.state(p);
        if st.upgrade.as_ref().map(|u| u.version) == Some(version) {
            st.upgrade = None;
        }
        drop(st);
        self.changed.notify_waiters();
    }

    /// Whether `p` still waits for a copy from `spawn_copy`'s sources: not
    /// complete, and no promotion copying it from the members ahead.
    pub fn copy_wanted(&self, p: u32) -> bool {
        let st = self.state(p);
        !st.synced && st.promotion.is_none()
    }

    /// Whether the promotion of `p` by table `version` still waits for
    /// the old owner's copy.
    pub fn promotion_pending(&self, p: u32, version: u64) -> bool {
        self.state(p).promotion == Some(version)
    }

    /// Ends the promotion of `p` by table `version`: with the old owner's
    /// copy (its change number and data), or without one (it left, or did
    /// not send it within the copy limit), serving the data this member
    /// held as its backup, as any promotion does. Nothing happens if a
    /// later table changed the partition since (false).
    pub fn finish_promotion(
        &self,
        p: u32,
        version: u64,
        copy: Option<(u64, PartitionData)>,
    ) -> bool {
        let now = Instant::now();
        let mut st = self.state(p);
        if st.promotion != Some(version) {
            return false;
        }
        st.promotion = None;
        st.kept_log = None;
        match copy {
            Some((seq, data)) => {
                // An owner's copy: it numbers the changes from here on.
                st.install(seq, None, store_from_wire(data, now), now);
            }
            None => {
                st.synced = true;
                st.promote(now);
            }
        }
        drop(st);
        self.awaiting[p as usize].store(false, Ordering::SeqCst);
        self.changed.notify_waiters();
        true
    }

    /// What an upgrading backup of `p` (moved up a place, its copy not in
    /// yet) has logged since the move; `None` when it is not upgrading.
    /// A member promoted behind it merges this over its own data.
    pub fn upgrade_log(&self, p: u32) -> Option<UpgradeLog> {
        let st = self.state(p);
        st.upgrade
            .as_ref()
            .filter(|_| st.synced)
            .map(|u| u.log().clone())
    }

    /// Whether this member holds data of `p` it can serve as the base of a
    /// merge: its replica's data, complete or still upgrading.
    pub fn holds_data(&self, p: u32) -> bool {
        self.state(p).synced
    }

    /// Ends the promotion of `p` by table `version` with the log of an
    /// upgrading member ahead of this one (it moved up a place; its copy
    /// was not in when the owner failed): applied over this member's own
    /// data, which holds the maps the log's member lacked as they were
    /// before its move. False when a later table changed the partition.
    pub fn finish_promotion_with_log(&self, p: u32, version: u64, log: UpgradeLog) -> bool {
        self.finish_merge(p, version, None, log)
    }

    /// Ends the promotion of `p` by table `version`, begun while this
    /// member was upgrading: the changes it logged since it moved up go
    /// over the copy (taken at change `seq`) of a member behind it. False
    /// when a later table changed the partition.
    pub fn finish_promotion_over_base(
        &self,
        p: u32,
        version: u64,
        seq: u64,
        data: PartitionData,
    ) -> bool {
        let log = self.state(p).kept_log.clone();
        match log {
            Some(log) => {
                let store = store_from_wire(data, Instant::now());
                self.finish_merge(p, version, Some((seq, store)), log)
            }
            None => self.finish_promotion(p, version, Some((seq, data))),
        }
    }

    fn finish_merge(
        &self,
        p: u32,
        version: u64,
        base: Option<(u64, PartitionStore)>,
        log: UpgradeLog,
    ) -> bool {
        let mut st = self.state(p);
        if st.promotion != Some(version) {
            return false;
        }
        st.synced = true;
        st.merge(p, base, log, Instant::now());
        drop(st);
        self.awaiting[p as usize].store(false, Ordering::SeqCst);
        self.changed.notify_waiters();
        true
    }
}
