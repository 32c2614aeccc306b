//! This member's share of the data: the partition table it follows and one
//! replica state per partition (records, change numbers), each behind its
//! own lock. What a newer table asks of this member (copies, promotions,
//! releases) is worked out in `table_change.rs`; the owner's changes reach
//! its backups as numbered batches (`replica.rs`). Whole-partition copies,
//! and promotions and upgrades that wait for one, are in `copies.rs`.

use crate::map_ops::MapEvent;
use crate::replica::{BackupBatch, Change, PartitionState, Received};
use crate::store::{PartitionStore, Record};
use crate::table::PartitionTable;
use bytes::Bytes;
use ferrocast_protocol::messages::responses::entry_event_type as ev;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use uuid::Uuid;

/// A record as it travels to another replica (the TTL left, not a deadline).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigratedRecord {
    pub value: Bytes,
    pub ttl_left_ms: Option<u64>,
    pub ttl_ms: Option<u64>,
    pub creation_time: i64,
    pub last_update_time: i64,
    pub last_access_time: i64,
    pub hits: i64,
    pub version: i64,
}

/// Everything one partition holds, by map.
pub type PartitionData = Vec<(String, Vec<(Bytes, MigratedRecord)>)>;

pub struct PartitionService {
    me: Uuid,
    pub(crate) table: RwLock<PartitionTable>,
    states: Vec<Mutex<PartitionState>>,
    pub(crate) awaiting: Vec<AtomicBool>,
    pub(crate) changed: Notify,
    events: OnceLock<EventSink>,
    /// Some map keeps fewer synchronous backups than the table has backup
    /// slots (`backup-count: 0`, asynchronous backups): a backup may lack
    /// that map's entries, or its latest changes.
    pub(crate) partial_backups: AtomicBool,
    /// For a map's name, the highest place among a partition's replicas
    /// that gets its entries (its synchronous and asynchronous backup
    /// counts added); every place when not set.
    map_places: RwLock<MapPlaces>,
}

/// See [`PartitionService::set_map_places`].
pub type MapPlaces = Arc<dyn Fn(&str) -> usize + Send + Sync>;

/// Receives the events of a change while its partition is still locked,
/// so the events of one key reach listeners in the order of its writes
/// (handed over after the lock, two writes' events could swap). It must
/// not block or take a partition's lock.
pub type EventSink = Box<dyn Fn(&[MapEvent]) + Send + Sync>;

impl PartitionService {
    pub fn new(me: Uuid, count: u32) -> Self {
        Self {
            me,
            table: RwLock::new(PartitionTable::empty(count)),
            states: (0..count)
                .map(|_| Mutex::new(PartitionState::new()))
                .collect(),
            awaiting: (0..count).map(|_| AtomicBool::new(false)).collect(),
            changed: Notify::new(),
            events: OnceLock::new(),
            partial_backups: AtomicBool::new(false),
            map_places: RwLock::new(Arc::new(|_: &str| usize::MAX)),
        }
    }

    /// Says whether some map keeps fewer synchronous backups than the
    /// table has backup slots; then a backup promoted over an owner that is
    /// still alive copies the partition from it (see `apply_table`).
    /// Tells which places get which maps' entries: for a map's name, the
    /// highest place that does (1: the owner and first backup).
    pub fn set_map_places(&self, places: MapPlaces) {
        if let Ok(mut p) = self.map_places.write() {
            *p = places;
        }
    }

    pub(crate) fn map_places(&self) -> MapPlaces {
        self.map_places
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|_| Arc::new(|_: &str| usize::MAX))
    }

    pub fn set_partial_backups(&self, partial: bool) {
        self.partial_backups.store(partial, Ordering::SeqCst);
    }

    pub fn me(&self) -> Uuid {
        self.me
    }

    pub fn partition_count(&self) -> u32 {
        self.states.len() as u32
    }

    pub fn table(&self) -> PartitionTable {
        self.table
            .read()
            .map(|t| t.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    pub fn table_version(&self) -> u64 {
        self.table.read().map(|t| t.version).unwrap_or(0)
    }

    pub fn owner(&self, partition: u32) -> Option<Uuid> {
        self.table.read().ok().and_then(|t| t.owner(partition))
    }

    /// Whether this member is one of `partition`'s replicas in its table
    /// (without cloning the table).
    pub fn is_replica_here(&self, partition: u32) -> bool {
        self.table_guard().is_replica(partition, self.me)
    }

    pub fn backups_of(&self, partition: u32) -> Vec<Uuid> {
        self.table
            .read()
            .map(|t| t.backups(partition).to_vec())
            .unwrap_or_default()
    }

    pub fn owned(&self) -> Vec<u32> {
        self.table
            .read()
            .map(|t| t.owned_by(self.me))
            .unwrap_or_default()
    }

    /// Partitions this member holds any replica of.
    pub fn replicated_here(&self) -> Vec<u32> {
        self.table
            .read()
            .map(|t| {
                (0..t.count())
                    .filter(|p| t.is_replica(*p, self.me))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Where events go from now on (set once, at start-up); without one,
    /// operations only return theirs.
    pub fn set_event_sink(&self, sink: EventSink) {
        let _ = self.events.set(sink);
    }

    /// Hands `events` to the sink; called with their partition locked.
    pub(crate) fn emit(&self, events: &[MapEvent]) {
        if let (false, Some(sink)) = (events.is_empty(), self.events.get()) {
            sink(events);
        }
    }

    /// The table, for reading while partitions are locked. Lock order:
    /// the table first, then a partition (as [`apply_table`](Self::apply_table)
    /// takes them); reading the table with a partition locked could wait
    /// forever on a table change waiting for that partition.
    pub(crate) fn table_guard(&self) -> RwLockReadGuard<'_, PartitionTable> {
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn state(&self, p: u32) -> MutexGuard<'_, PartitionState> {
        match self.states[p as usize].lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub(crate) fn with_store<R>(&self, p: u32, f: impl FnOnce(&mut PartitionStore) -> R) -> R {
        f(&mut self.state(p).store)
    }

    /// Whether operations on `p` must wait for its data to arrive.
    pub fn is_awaiting(&self, p: u32) -> bool {
        self.awaiting[p as usize].load(Ordering::SeqCst)
    }

    /// Gives up waiting for `p`'s data (nobody can send it).
    /// The changes that arrived meanwhile are applied in order: they were
    /// acknowledged, and nothing will fill the gaps before them. A
    /// promotion waiting for its own copy is left alone (it decides how it
    /// ends); a replica whose data is in meanwhile only stops waiting.
    pub fn stop_awaiting(&self, p: u32) {
        let mut st = self.state(p);
        if st.promotion.is_some() {
            return;
        }
        if !st.synced {
            st.synced = true;
            // Serving what it has: nothing more will come (a backup that
            // moved up meanwhile keeps the maps of its place before).
            st.copy_moved_up = None;
            st.promote(Instant::now());
        }
        drop(st);
        self.awaiting[p as usize].store(false, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Whether `p`'s store holds complete data from when we last held it,
    /// or all but the maps an upgrade is copying: what a member may serve
    /// as a last resort.
    pub fn is_retained(&self, p: u32) -> bool {
        let s = self.state(p);
        s.synced || s.retained
    }

    /// Stops copying `p` because a newer table took it away from us: nothing
    /// waits for it any more, and what we hold of it stays marked
    /// incomplete, so we never serve it as a copy to anyone.
    pub fn abandon_copy(&self, p: u32) {
        let mut st = self.state(p);
        st.synced = false;
        st.upgrade = None;
        st.copy_moved_up = None;
        drop(st);
        self.awaiting[p as usize].store(false, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Waits until the table changes or some partition's data arrives, at most `d`.
    pub async fn wait_for_change(&self, d: Duration) {
        let _ = tokio::time::timeout(d, self.changed.notified()).await;
    }

    /// A backup batch from the owner. False: this replica lost track.
    pub fn receive_backup(&self, batch: BackupBatch) -> bool {
        self.state(batch.partition)
            .receive_batch(batch, Instant::now())
            != Received::LostTrack
    }

    /// A backup batch from `from`, applied only if our table names `from`
    /// the partition's owner and this member one of its backups, checked
    /// and applied with the table held, so no table lands in between.
    /// `Err`: not ours to take (now).
    pub fn receive_backup_from(
        &self,
        batch: BackupBatch,
        from: Uuid,
    ) -> Result<Received, BackupBatch> {
        let table = self.table_guard();
        let p = batch.partition;
        if table.owner(p) != Some(from) || !table.backups(p).contains(&self.me) {
            tracing::debug!(
                "partition {p}: change {} from {from} refused: table {} names {:?}",
                batch.seq,
                table.version,
                table.replicas.get(p as usize)
            );
            return Err(batch);
        }
        let partial = self.partial_backups.load(Ordering::Relaxed);
        let mut state = self.state(p);
        if partial
            && state.synced
            && batch.seq <= state.seq
            && !batch.changes.is_empty()
            && state.data_term.is_none_or(|t| batch.term <= t)
            && state.numbers_only.contains(batch.seq)
        {
            // We took this change's number only (our place did not keep
            // its map then): skipped as seen, its content would be
            // acknowledged while on nobody but its owner. The owner sends
            // again until a copy taken after the change replaces our
            // data (an upgrade's), or the write fails and is retried.
            tracing::debug!(
                "partition {p}: change {} came as a number only; its content is not acknowledged before a copy holding it is in",
                batch.seq
            );
            return Err(batch);
        }
        let received = state.receive_batch_logging(batch, partial, table.version, Instant::now());
        drop(state);
        drop(table);
        Ok(received)
    }

    /// The epoch of `p`'s replica (see [`PartitionState::epoch`]).
    pub fn epoch(&self, p: u32) -> u64 {
        self.state(p).epoch
    }

    /// (sequence number, holds full data, has changes waiting for a gap) of
    /// `p`. A backup copying the maps it lacked at its old place (an
    /// upgrade) does not hold full data yet.
    pub fn replica_status(&self, p: u32) -> (u64, bool, bool) {
        let s = self.state(p);
        (s.seq, s.synced && s.upgrade.is_none(), s.has_gap())
    }

    pub fn mark_unsynced(&self, p: u32) {
        self.state(p).synced = false;
    }

    /// Forgets the table and every partition's data: this member was
    /// removed from the cluster (paused past the timeout, cut off) and
    /// rejoins as if new; what it holds is stale.
    pub fn reset_all(&self) {
        if let Ok(mut t) = self.table.write() {
            *t = PartitionTable::empty(t.count());
        }
        for p in 0..self.partition_count() {
            self.state(p).reset();
            self.awaiting[p as usize].store(false, Ordering::SeqCst);
        }
        self.changed.notify_waiters();
    }

    /// Candidates to copy `p` from, best first: the replicas of the table
    /// the current one was computed from, then the current replicas.
    pub fn copy_candidates(&self, p: u32, alive: &[Uuid]) -> Vec<Uuid> {
        let t = self.table();
        let mut out: Vec<Uuid> = Vec::new();
        let prev = t.previous.get(p as usize).cloned().unwrap_or_default();
        let cur = t.replicas.get(p as usize).cloned().unwrap_or_default();
        for m in prev.into_iter().chain(cur) {
            if m != self.me && alive.contains(&m) && !out.contains(&m) {
                out.push(m);
            }
        }
        out
    }

    /// Drops the data of a partition this member no longer replicates.
    pub fn release(&self, p: u32) {
        let table = self.table();
        if !table.is_replica(p, self.me) {
            self.state(p).reset();
        }
    }

    /// Removes expired entries of the partitions we own: EXPIRED events,
    /// and the batches that remove them from the backups too.
    pub fn purge_expired(&self) -> (Vec<MapEvent>, Vec<BackupBatch>) {
        let now = Instant::now();
        let mut events = Vec::new();
        let mut batches = Vec::new();
        for p in self.owned() {
            let mut state = self.state(p);
            if !state.serves_operations() {
                continue;
            }
            let mut changes = Vec::new();
            let events_before = events.len();
            for (name, m) in state.store.maps_mut() {
                for (key, value) in m.purge_expired(now) {
                    changes.push(Change::Remove {
                        map: name.to_string(),
                        key: key.clone(),
                    });
                    events.push(MapEvent {
                        map: name.to_string(),
                        event_type: ev::EXPIRED,
                        key,
                        value: None,
                        old_value: Some(value),
                        partition: p,
                    });
                }
            }
            if !changes.is_empty() {
                state.number_change();
                batches.push(state.batch(p, changes));
            }
            self.emit(&events[events_before..]);
        }
        (events, batches)
    }

    /// Drops a map everywhere on this member.
    pub fn destroy_map(&self, name: &str) {
        for p in 0..self.partition_count() {
            self.with_store(p, |s| s.remove_map(name));
        }
    }

    /// Entries held on this member (all maps, owned and backup replicas).
    pub fn local_entry_count(&self) -> usize {
        (0..self.partition_count())
            .map(|p| self.entry_count(p))
            .sum()
    }

    /// Entries of partition `p` held on this member, in all maps.
    pub fn entry_count(&self, p: u32) -> usize {
        self.with_store(p, |s| s.entry_count())
    }
}

pub(crate) fn to_wire(r: &Record, now: Instant) -> MigratedRecord {
    MigratedRecord {
        value: r.value.clone(),
        ttl_left_ms: r
            .expires_at
            .map(|e| e.saturating_duration_since(now).as_millis() as u64),
        ttl_ms: r.ttl.map(|d| d.as_millis() as u64),
        creation_time: r.creation_time,
        last_update_time: r.last_update_time,
        last_access_time: r.last_access_time,
        hits: r.hits,
        version: r.version,
    }
}

pub(crate) fn from_wire(w: MigratedRecord, now: Instant) -> Record {
    Record {
        value: w.value,
        ttl: w.ttl_ms.map(Duration::from_millis),
        expires_at: w.ttl_left_ms.map(|ms| now + Duration::from_millis(ms)),
        creation_time: w.creation_time,
        last_update_time: w.last_update_time,
        last_access_time: w.last_access_time,
        hits: w.hits,
        version: w.version,
    }
}
