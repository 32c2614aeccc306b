//! This member's share of the data: the partition table it follows, one
//! record store per partition (each behind its own lock), and the state of
//! partitions whose data is on its way here.

use crate::map_ops::MapEvent;
use crate::store::{PartitionStore, Record};
use crate::table::PartitionTable;
use bytes::Bytes;
use ferrocast_protocol::messages::responses::entry_event_type as ev;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use uuid::Uuid;

/// A record as it travels during a migration (the TTL left, not a deadline).
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

/// What a new table changed for this member.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TableChange {
    /// Partitions we owned and must hand to the new owner.
    pub lost: Vec<(u32, Uuid)>,
    /// Partitions we now own whose data comes from their previous owner.
    pub gained: Vec<(u32, Uuid)>,
}

pub struct PartitionService {
    me: Uuid,
    table: RwLock<PartitionTable>,
    stores: Vec<Mutex<PartitionStore>>,
    awaiting: Vec<AtomicBool>,
    changed: Notify,
}

impl PartitionService {
    pub fn new(me: Uuid, count: u32) -> Self {
        Self {
            me,
            table: RwLock::new(PartitionTable::empty(count)),
            stores: (0..count).map(|_| Mutex::default()).collect(),
            awaiting: (0..count).map(|_| AtomicBool::new(false)).collect(),
            changed: Notify::new(),
        }
    }

    pub fn me(&self) -> Uuid {
        self.me
    }

    pub fn partition_count(&self) -> u32 {
        self.stores.len() as u32
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

    pub fn owned(&self) -> Vec<u32> {
        self.table
            .read()
            .map(|t| t.owned_by(self.me))
            .unwrap_or_default()
    }

    pub(crate) fn with_store<R>(&self, p: u32, f: impl FnOnce(&mut PartitionStore) -> R) -> R {
        let mut guard = match self.stores[p as usize].lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Installs a newer table. `alive` are the current members: a partition
    /// whose previous owner is gone has no data to wait for.
    pub fn apply_table(&self, next: PartitionTable, alive: &[Uuid]) -> Option<TableChange> {
        let mut table = self.table.write().ok()?;
        if next.version <= table.version || next.count() != table.count() {
            return None;
        }
        let mut change = TableChange::default();
        for (p, from, to) in table.moves(&next) {
            match (from, to) {
                (Some(f), Some(t)) if f == self.me => change.lost.push((p, t)),
                (Some(f), Some(t)) if t == self.me && alive.contains(&f) => {
                    self.awaiting[p as usize].store(true, Ordering::SeqCst);
                    change.gained.push((p, f));
                }
                _ => {}
            }
        }
        *table = next;
        drop(table);
        self.changed.notify_waiters();
        Some(change)
    }

    /// Whether operations on `p` must wait for its data to arrive.
    pub fn is_awaiting(&self, p: u32) -> bool {
        self.awaiting[p as usize].load(Ordering::SeqCst)
    }

    /// Gives up waiting for `p`'s data (its sender is gone).
    pub fn stop_awaiting(&self, p: u32) {
        self.awaiting[p as usize].store(false, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Waits until the table changes or some partition's data arrives, at most `d`.
    pub async fn wait_for_change(&self, d: Duration) {
        let _ = tokio::time::timeout(d, self.changed.notified()).await;
    }

    /// Takes a partition's data out of this member, for its new owner.
    pub fn take_partition(&self, p: u32) -> PartitionData {
        let now = Instant::now();
        self.with_store(p, |store| {
            let data = store
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
            store.clear();
            data
        })
    }

    /// Puts a partition's data back (a migration that could not be delivered).
    pub fn restore_partition(&self, p: u32, data: PartitionData) {
        self.install(p, data, false);
    }

    /// Installs migrated data for `p` and releases the operations waiting for it.
    pub fn install_partition(&self, p: u32, data: PartitionData) {
        self.install(p, data, true);
    }

    fn install(&self, p: u32, data: PartitionData, release: bool) {
        let now = Instant::now();
        self.with_store(p, |store| {
            for (name, records) in data {
                let m = store.map_mut(&name);
                for (k, r) in records {
                    m.install(k, from_wire(r, now));
                }
            }
        });
        if release {
            self.awaiting[p as usize].store(false, Ordering::SeqCst);
        }
        self.changed.notify_waiters();
    }

    /// Removes expired entries of the partitions we own; returns EXPIRED events.
    pub fn purge_expired(&self) -> Vec<MapEvent> {
        let now = Instant::now();
        let mut events = Vec::new();
        for p in self.owned() {
            self.with_store(p, |store| {
                for (name, m) in store.maps_mut() {
                    for (key, value) in m.purge_expired(now) {
                        events.push(MapEvent {
                            map: name.clone(),
                            event_type: ev::EXPIRED,
                            key,
                            value: None,
                            old_value: Some(value),
                            partition: p,
                        });
                    }
                }
            });
        }
        events
    }

    /// Drops a map everywhere on this member.
    pub fn destroy_map(&self, name: &str) {
        for p in 0..self.partition_count() {
            self.with_store(p, |s| s.remove_map(name));
        }
    }

    /// Entries held on this member (all maps).
    pub fn local_entry_count(&self) -> usize {
        (0..self.partition_count())
            .map(|p| self.with_store(p, |s| s.maps().map(|(_, m)| m.len()).sum::<usize>()))
            .sum()
    }
}

fn to_wire(r: &Record, now: Instant) -> MigratedRecord {
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

fn from_wire(w: MigratedRecord, now: Instant) -> Record {
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
