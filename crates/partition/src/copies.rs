//! Whole-partition copies on this member's side: the snapshot a holder
//! sends, installing one, and a backup promoted over a living owner, which
//! waits for that owner's copy (see `PartitionService::apply_table`) or
//! ends without it.

use crate::replica::{Change, PartitionState};
use crate::service::{from_wire, to_wire, PartitionData, PartitionService};
use crate::store::PartitionStore;
use crate::upgrade::{Upgrade, UpgradeLog};
use uuid::Uuid;

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
    /// Installed, but this replica moved up a place while the copy was
    /// in flight: an upgrade of table `version` is under way (see
    /// `PartitionState::copy_moved_up`); the server runs its copy.
    Upgrade {
        version: u64,
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

/// A partition's copy as it travels, from its locked state: the number of
/// its last change, the owner term its data continues (ours if we own it;
/// 0 when unknown), and the records.
fn snapshot_of(state: &PartitionState) -> (u64, u64, PartitionData) {
    let now = Instant::now();
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
            (name.to_string(), records)
        })
        .collect();
    let term = if state.owned {
        state.owner_term
    } else {
        state.data_term.unwrap_or(0)
    };
    (state.seq, term, data)
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
        snapshot_of(&self.state(p))
    }

    /// Installs a full copy of `p`, taken at change `seq` of owner term
    /// `term` (0: unknown), and releases the operations waiting for it. A
    /// replica that stopped waiting for it meanwhile (promoted, it copies
    /// from the members ahead of it or falls back on its own data; another
    /// copy landed first) keeps what it has: it may have applied, or as
    /// owner made, changes the copy lacks.
    pub fn install_copy(&self, p: u32, seq: u64, term: u64, data: PartitionData) -> Installed {
        self.install_copy_with_pending(p, seq, term, data, Vec::new())
    }

    /// [`install_copy`](Self::install_copy), with the changes the copy's
    /// member had taken ahead of their turn (acknowledged, not in its data
    /// yet): they wait here for theirs too, unless this replica has them.
    /// The copy counts as asked for at our current table.
    pub fn install_copy_with_pending(
        &self,
        p: u32,
        seq: u64,
        term: u64,
        data: PartitionData,
        source_pending: Vec<(u64, Vec<Change>)>,
    ) -> Installed {
        let asked_at = self.table_version();
        self.install_copy_asked_at(p, asked_at, seq, term, data, source_pending)
    }

    /// [`install_copy_with_pending`](Self::install_copy_with_pending) for a
    /// copy asked for at table `asked_at` (its source served it only once
    /// it had that table). A backup that moved up a place while an older
    /// copy travelled (`PartitionState::copy_moved_up`) takes it, then
    /// copies the maps again from the owner (`Installed::Upgrade`).
    pub fn install_copy_asked_at(
        &self,
        p: u32,
        asked_at: u64,
        seq: u64,
        term: u64,
        data: PartitionData,
        source_pending: Vec<(u64, Vec<Change>)>,
    ) -> Installed {
        let now = Instant::now();
        // Held while the copy goes in, so no table lands in between.
        let table = self.table_guard();
        let mut state = self.state(p);
        if state.synced || state.promotion.is_some() {
            tracing::debug!(
                "partition {p}: copy at change {seq} arrived after this replica stopped waiting for it (at change {}); not installed",
                state.seq
            );
            return Installed::NotWanted;
        }
        if !table.is_replica(p, self.me()) {
            // A newer table took the partition away while the copy
            // travelled. Installed, it would keep only the maps a backup
            // keeps (we are no owner now) and count as complete: a backup
            // promoted in our place asks us first and took that, without
            // the maps no backup keeps (`tests/partial_backups.rs`, 244 of
            // 2,000 entries). Left incomplete, we answer that we never
            // held it (see `serve.rs`).
            tracing::debug!(
                "partition {p}: copy at change {seq} arrived after a newer table took the partition away; not installed"
            );
            drop(state);
            drop(table);
            self.awaiting[p as usize].store(false, Ordering::SeqCst);
            self.changed.notify_waiters();
            return Installed::NotWanted;
        }
        let moved_up = state.copy_moved_up.take().filter(|v| asked_at < *v);
        let store = store_from_wire(data, now);
        let pending = state.pending_len();
        // A backup holding what it kept as the partition's last owner, at
        // the copy's change number: the copy (another backup's) lacks the
        // maps no backup keeps, and ours are current. They stay, served
        // with our copies until a change is numbered (see
        // `snapshot_for_copy`): the new owner may still have to copy them
        // from us. (Seen: a joiner promoted before its copy arrived copied
        // from the old owner after that one had taken a backup's copy, and
        // the map without backups was lost.)
        let places = self.map_places();
        let kept_unbacked =
            (!state.owned && state.retained && state.unbacked_maps_current() && seq == state.seq)
                .then(|| state.store.take_maps(|m| places(m) == 0));
        let diverged = state.install(seq, Some(term), store, now);
        let mut upgrade = None;
        if diverged.is_none() {
            // Our own waiting changes came from the owner for our place;
            // the source's fill the numbers we lack. (A diverged copy's
            // waiting changes continue an earlier owner: dropped.)
            let at = state.seq;
            for (s, changes) in source_pending.into_iter().filter(|(s, _)| *s > at) {
                state.pending.entry(s).or_insert(changes);
            }
            state.drain(now);
            if state.owned {
                // An owner's gaps are never filled by batches: what waits
                // is applied now, before it numbers changes of its own.
                state.promote(now);
            } else {
                state.drop_maps_kept_nowhere(&*places);
                if let Some(kept) = kept_unbacked.filter(|_| state.seq == seq) {
                    for (name, map) in kept {
                        state.store.put_map(name, map);
                    }
                    state.owned_until = Some(seq);
                }
                if let Some(version) = moved_up {
                    // Moved up while the copy travelled: it may miss
                    // changes we took as numbers only that the member
                    // that left held in full (see `copy_moved_up`).
                    let mut up = Upgrade::new(version, state.seq);
                    up.holds_all = true;
                    state.upgrade = Some(up);
                    upgrade = Some(version);
                }
            }
        }
        tracing::debug!(
            "partition {p}: copy installed at change {seq} ({pending} newer changes waiting), now at {}{}",
            state.seq,
            if upgrade.is_some() { "; moved up meanwhile: copying the maps again from the owner" } else { "" }
        );
        drop(state);
        self.awaiting[p as usize].store(false, Ordering::SeqCst);
        self.changed.notify_waiters();
        match (diverged, upgrade) {
            (Some(term), _) => Installed::Diverged { term },
            (None, Some(version)) => Installed::Upgrade { version },
            (None, None) => Installed::Done,
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
    /// copy taken at change `seq`, asked for at our current table. False
    /// when it ended otherwise meanwhile (promoted, moved, given up).
    pub fn finish_upgrade(&self, p: u32, version: u64, seq: u64, data: PartitionData) -> bool {
        let asked_at = self.table_version();
        self.finish_upgrade_from(p, version, None, asked_at, seq, data)
    }

    /// [`finish_upgrade`](Self::finish_upgrade) with a copy from `from`,
    /// taken only while `from` owns the partition in our table: a copy
    /// the old owner sent just before it failed may hold a change nobody
    /// else took, which the new owner's numbers then reuse. `asked_at`:
    /// the table version the copy was asked for at (the owner serves it
    /// only once it has that table); a copy asked for before a later move
    /// up is not taken (see `Upgrade::moved_at`).
    pub fn finish_upgrade_from(
        &self,
        p: u32,
        version: u64,
        from: Option<Uuid>,
        asked_at: u64,
        seq: u64,
        data: PartitionData,
    ) -> bool {
        let now = Instant::now();
        let store = store_from_wire(data, now);
        let table = self.table_guard();
        if from.is_some_and(|f| table.owner(p) != Some(f)) {
            tracing::debug!("partition {p}: upgrade copy from a member no longer owner; not taken");
            return false;
        }
        let mut st = self.state(p);
        let done = st.finish_upgrade(version, asked_at, seq, store, now);
        if done {
            st.drop_maps_kept_nowhere(&*self.map_places());
        }
        drop(st);
        drop(table);
        if done {
            self.changed.notify_waiters();
        }
        done
    }

    /// A new replica of `p` whose previous owner never held it complete
    /// (it took no write) serves the data it kept from when it last owned
    /// the partition, instead of copying, if that data is complete, nobody
    /// numbered a change since (see `PartitionState::owned_until`), and it
    /// is at least as far along as the copy `offered` (change number,
    /// entries) by a member of the table before: a backup's copy at the
    /// same change number lacks the maps no backup keeps. Without an offer
    /// there is nothing to tell whether an owner between then and now
    /// moved the partition on. True when it does.
    pub fn keep_own_if_current(&self, p: u32, offered: Option<(u64, usize)>) -> bool {
        let table = self.table_guard();
        let mut st = self.state(p);
        let ours = (st.seq, st.store.entry_count());
        let current = !st.synced
            && st.retained
            && st.promotion.is_none()
            && st.unbacked_maps_current()
            && table.is_replica(p, self.me())
            && offered.is_some_and(|o| o <= ours);
        if !current {
            return false;
        }
        st.synced = true;
        st.retained = false;
        st.copy_moved_up = None;
        st.promote(Instant::now());
        if !st.owned {
            // As any copy a backup installs.
            st.drop_maps_kept_nowhere(&*self.map_places());
        }
        drop(st);
        drop(table);
        self.awaiting[p as usize].store(false, Ordering::SeqCst);
        self.changed.notify_waiters();
        true
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
        match copy {
            Some((seq, data)) => self.finish_promotion_copy(p, version, seq, data, Vec::new()),
            None => self.finish_promotion_with_own(p, version, false),
        }
    }

    /// Ends the promotion of `p` by table `version` with this member's own
    /// data when every member ahead said it never held the partition
    /// complete (so it numbered no change): if nobody numbered a change
    /// since this member last owned the partition, the maps no backup
    /// keeps are current here and stay; otherwise they are dropped, as by
    /// [`Self::finish_promotion`]. (A member that joined and left before
    /// its copies arrived took the entries of those maps with it before
    /// 2026-11-27.)
    pub fn finish_promotion_keeping_current(&self, p: u32, version: u64) -> bool {
        self.finish_promotion_with_own(p, version, true)
    }

    fn finish_promotion_with_own(&self, p: u32, version: u64, keep_current: bool) -> bool {
        let mut st = self.state(p);
        if st.promotion != Some(version) {
            return false;
        }
        st.promotion = None;
        st.kept_log = None;
        st.synced = true;
        let current = keep_current && st.unbacked_maps_current();
        st.promote(Instant::now());
        if !current {
            // Without the old owner's copy, what we hold of maps no
            // backup keeps is stale: their entries died with it.
            st.drop_maps_kept_nowhere(&*self.map_places());
        }
        drop(st);
        self.released_after_promotion(p);
        true
    }

    /// Ends the promotion of `p` by table `version` with a member ahead's
    /// whole copy, taken at change `seq`, and the changes that member had
    /// taken ahead of their turn (`pending`, acknowledged but not in its
    /// data): the copy replaces our data, then those changes and our own
    /// waiting ones apply by number (the copy's member's first: it is at
    /// the lower place). False when a later table changed the partition.
    pub fn finish_promotion_copy(
        &self,
        p: u32,
        version: u64,
        seq: u64,
        data: PartitionData,
        pending: Vec<(u64, Vec<Change>)>,
    ) -> bool {
        let now = Instant::now();
        let mut st = self.state(p);
        if st.promotion != Some(version) {
            return false;
        }
        st.promotion = None;
        st.kept_log = None;
        // The source's waiting changes first (it is at the lower place, so
        // they hold at least what ours do), before `install` drains ours.
        for (s, changes) in pending.into_iter().filter(|(s, _)| *s > seq) {
            st.wait(s, changes);
        }
        // An owner's copy: it numbers the changes from here on.
        st.install(seq, None, store_from_wire(data, now), now);
        st.promote(now);
        drop(st);
        self.released_after_promotion(p);
        true
    }

    fn released_after_promotion(&self, p: u32) {
        self.awaiting[p as usize].store(false, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// The changes `p`'s replica took ahead of their turn (acknowledged,
    /// not in its data yet): they travel with a copy of it.
    pub fn pending_changes(&self, p: u32) -> Vec<(u64, Vec<Change>)> {
        let st = self.state(p);
        let seq = st.seq;
        st.pending
            .iter()
            .filter(|(s, _)| **s > seq)
            .map(|(s, c)| (*s, c.clone()))
            .collect()
    }

    /// What an upgrading backup of `p` (moved up a place, its copy not in
    /// yet) has logged since the move, and the changes it took ahead of
    /// their turn; `None` when it is not upgrading. A member promoted
    /// behind it merges this over its own data.
    pub fn upgrade_log(&self, p: u32) -> Option<UpgradeLog> {
        let st = self.state(p);
        let up = st.upgrade.as_ref().filter(|_| st.synced)?;
        let mut log = up.log().clone();
        for (s, c) in st.pending.iter().filter(|(s, _)| **s > st.seq) {
            log.changes.push((*s, c.clone()));
        }
        Some(log)
    }

    /// Ends the promotion of `p` by table `version` with the log of an
    /// upgrading member ahead of this one (it moved up a place; its copy
    /// was not in when the owner failed): applied over this member's own
    /// data, which holds the maps the log's member lacked as they were
    /// before its move. False when a later table changed the partition.
    pub fn finish_promotion_with_log(&self, p: u32, version: u64, log: UpgradeLog) -> bool {
        let place = self.previous_place(p, self.me());
        self.finish_merge(p, version, None, place, log)
    }

    /// Ends the promotion of `p` by table `version`, begun while this
    /// member was moving up a place: the changes it logged since go over
    /// the copy (taken at change `seq`) of `from`, a member behind it.
    /// Without such a log (not moving up after all) it serves its own
    /// data. False when a later table changed the partition.
    pub fn finish_promotion_over_base(
        &self,
        p: u32,
        version: u64,
        from: Uuid,
        seq: u64,
        data: PartitionData,
    ) -> bool {
        let log = self.state(p).kept_log.clone();
        match log {
            Some(log) => {
                let store = store_from_wire(data, Instant::now());
                let place = self.previous_place(p, from);
                self.finish_merge(p, version, Some((seq, store)), place, log)
            }
            None => self.finish_promotion(p, version, None),
        }
    }

    /// `member`'s place among `p`'s replicas in the table the current one
    /// was computed from (where it took changes); unknown: past the last,
    /// so a merge treats its data as lacking every map.
    fn previous_place(&self, p: u32, member: Uuid) -> usize {
        self.state(p)
            .promotion_prev
            .iter()
            .position(|m| *m == member)
            .unwrap_or(usize::MAX)
    }

    /// Whether this member's data of `p` can be the base of a merge for
    /// the promotion by table `promoted_by`: it holds data, complete for
    /// the place it had in the table that promotion was computed from. A
    /// member still upgrading for an earlier move holds only the maps of
    /// its place before that move (with three or more backups, two
    /// members can move up at once).
    pub fn serves_base(&self, p: u32, promoted_by: u64) -> bool {
        let st = self.state(p);
        st.synced && st.upgrade.as_ref().is_none_or(|u| u.version >= promoted_by)
    }

    /// A copy of `p` as it travels: the number of its last change, the
    /// owner term its data continues, its records, and the changes it
    /// took ahead of their turn, all under one lock.
    pub fn snapshot_for_copy(&self, p: u32) -> (u64, u64, PartitionData, Vec<(u64, Vec<Change>)>) {
        let st = self.state(p);
        let (seq, term, mut data) = snapshot_of(&st);
        if !st.owned && !st.unbacked_maps_current() {
            // A backup's maps no backup keeps (kept from when it owned the
            // partition) went stale with the first change numbered since.
            let places = self.map_places();
            data.retain(|(name, _)| places(name) > 0);
        }
        let pending = st
            .pending
            .iter()
            .filter(|(s, _)| **s > seq)
            .map(|(s, c)| (*s, c.clone()))
            .collect();
        (seq, term, data, pending)
    }

    fn finish_merge(
        &self,
        p: u32,
        version: u64,
        base: Option<(u64, PartitionStore)>,
        base_place: usize,
        log: UpgradeLog,
    ) -> bool {
        let places = self.map_places();
        let mut st = self.state(p);
        if st.promotion != Some(version) {
            return false;
        }
        st.merge(p, base, base_place, log, &*places, Instant::now());
        st.drop_maps_kept_nowhere(&*places);
        drop(st);
        self.released_after_promotion(p);
        true
    }
}
