//! IMap operations on the partitions this member owns. Each operation runs
//! under its partition's lock only (no global lock); operations spanning the
//! map (size, clear, key set, ...) visit the given partitions one by one and
//! their partial results are merged by [`MapResult::merge`].

use crate::replica::{BackupBatch, Change, PartitionState};
use crate::service::{to_wire, PartitionService};
use crate::store::Record;
use bytes::Bytes;
use ferrocast_protocol::data::partition_id;
use ferrocast_protocol::messages::responses::entry_event_type as ev;
use ferrocast_protocol::MapOp;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// What an operation returns, before it becomes a client response; partial
/// results from several members merge into one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MapResult {
    Unit,
    Data(Option<Bytes>),
    Bool(bool),
    Int(i64),
    List(Vec<Bytes>),
    Entries(Vec<(Bytes, Bytes)>),
    View(Option<ViewRecord>),
}

/// An entry view's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewRecord {
    pub key: Bytes,
    pub value: Bytes,
    pub creation_time: i64,
    pub expiration_time: i64,
    pub hits: i64,
    pub last_access_time: i64,
    pub last_update_time: i64,
    pub version: i64,
    pub ttl: i64,
}

/// A change to report to entry listeners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapEvent {
    pub map: String,
    pub event_type: i32,
    pub key: Bytes,
    pub value: Option<Bytes>,
    pub old_value: Option<Bytes>,
    pub partition: u32,
}

impl MapResult {
    /// Folds the partial result of another member into this one.
    pub fn merge(self, other: MapResult, op: &MapOp) -> MapResult {
        use MapResult::*;
        match (self, other) {
            (Int(a), Int(b)) => Int(a + b),
            (Bool(a), Bool(b)) => Bool(if matches!(op, MapOp::IsEmpty) {
                a && b
            } else {
                a || b
            }),
            (List(mut a), List(b)) => {
                a.extend(b);
                List(a)
            }
            (Entries(mut a), Entries(b)) => {
                a.extend(b);
                Entries(a)
            }
            (a, _) => a,
        }
    }
}

/// A client TTL in milliseconds: positive expires, zero or negative never.
pub fn ttl_from_millis(ttl: i64) -> Option<Duration> {
    (ttl > 0).then(|| Duration::from_millis(ttl as u64))
}

fn view(key: &Bytes, r: &Record) -> ViewRecord {
    ViewRecord {
        key: key.clone(),
        value: r.value.clone(),
        creation_time: r.creation_time,
        expiration_time: r.expiration_time(),
        hits: r.hits,
        last_access_time: r.last_access_time,
        last_update_time: r.last_update_time,
        version: r.version,
        ttl: r.ttl.map(|d| d.as_millis() as i64).unwrap_or(i64::MAX),
    }
}

impl PartitionService {
    /// Runs `op` on map `name` over `partitions`. Returns the result, the
    /// events it caused, the changes for the backups, and the partitions it
    /// skipped because this member no longer owns them (checked under each
    /// partition's lock, so nothing lands after a hand-over's copy).
    pub fn execute(
        &self,
        name: &str,
        op: &MapOp,
        partitions: &[u32],
        want_events: bool,
    ) -> (MapResult, Vec<MapEvent>, Vec<BackupBatch>, Vec<u32>) {
        let now = Instant::now();
        let count = self.partition_count();
        let mut events = Events {
            list: Vec::new(),
            want: want_events,
            changed: false,
        };
        let mut batches = Vec::new();
        if let Some(key) = op.key() {
            let p = partition_id(key, count);
            // A write holds the table until its change is numbered: whether
            // it has backups is decided by a table no other can replace
            // meanwhile (taken before the partition's lock: see
            // `table_guard`). Reads need no table.
            let table = op.is_write().then(|| self.table_guard());
            let mut state = self.state(p);
            if !state.serves_operations() {
                return (MapResult::Unit, Vec::new(), batches, vec![p]);
            }
            let mut ttl_changed = false;
            // The entry a put or set wrote, for its backups.
            let mut written = None;
            let result = {
                let m = state.store.map_mut(name);
                match op {
                    MapOp::Put { key, value, ttl }
                    | MapOp::PutTransient { key, value, ttl }
                    | MapOp::Set { key, value, ttl } => {
                        // The previous value only when someone needs it:
                        // a small one is copied out of the entry.
                        let keep = events.want || matches!(op, MapOp::Put { .. });
                        let w =
                            m.write(key.clone(), value.clone(), ttl_from_millis(*ttl), now, keep);
                        let t = if w.existed { ev::UPDATED } else { ev::ADDED };
                        events.push(name, p, t, key, Some(value.clone()), w.previous.clone());
                        written = Some(w.record);
                        match op {
                            MapOp::Put { .. } => MapResult::Data(w.previous),
                            _ => MapResult::Unit,
                        }
                    }
                    MapOp::PutIfAbsent { key, value, ttl } => match m.get(key, now) {
                        Some(existing) => MapResult::Data(Some(existing)),
                        None => {
                            m.put(key.clone(), value.clone(), ttl_from_millis(*ttl), now);
                            events.push(name, p, ev::ADDED, key, Some(value.clone()), None);
                            MapResult::Data(None)
                        }
                    },
                    MapOp::Get { key } => MapResult::Data(m.get(key, now)),
                    MapOp::ContainsKey { key } => MapResult::Bool(m.contains_key(key, now)),
                    MapOp::Remove { key } | MapOp::Delete { key } => {
                        let old = m.remove(key, now);
                        if let Some(o) = &old {
                            events.push(name, p, ev::REMOVED, key, None, Some(o.clone()));
                        }
                        match op {
                            MapOp::Remove { .. } => MapResult::Data(old),
                            _ => MapResult::Unit,
                        }
                    }
                    MapOp::RemoveIfSame { key, value } => {
                        if m.get(key, now).as_ref() == Some(value) {
                            m.remove(key, now);
                            events.push(name, p, ev::REMOVED, key, None, Some(value.clone()));
                            MapResult::Bool(true)
                        } else {
                            MapResult::Bool(false)
                        }
                    }
                    MapOp::Replace { key, value } => match m.record(key, now).map(|r| r.ttl) {
                        Some(ttl) => {
                            let old = m.put(key.clone(), value.clone(), ttl, now);
                            events.push(
                                name,
                                p,
                                ev::UPDATED,
                                key,
                                Some(value.clone()),
                                old.clone(),
                            );
                            MapResult::Data(old)
                        }
                        None => MapResult::Data(None),
                    },
                    MapOp::ReplaceIfSame {
                        key,
                        expected,
                        value,
                    } => match m.record(key, now) {
                        Some(r) if r.value == expected => {
                            let ttl = r.ttl;
                            m.put(key.clone(), value.clone(), ttl, now);
                            events.push(
                                name,
                                p,
                                ev::UPDATED,
                                key,
                                Some(value.clone()),
                                Some(expected.clone()),
                            );
                            MapResult::Bool(true)
                        }
                        _ => MapResult::Bool(false),
                    },
                    MapOp::SetTtl { key, ttl } => {
                        ttl_changed = m.set_ttl(key, ttl_from_millis(*ttl), now);
                        MapResult::Bool(ttl_changed)
                    }
                    MapOp::Evict { key } => match m.remove(key, now) {
                        Some(old) => {
                            events.push(name, p, ev::EVICTED, key, None, Some(old));
                            MapResult::Bool(true)
                        }
                        None => MapResult::Bool(false),
                    },
                    MapOp::GetEntryView { key } => {
                        MapResult::View(m.record(key, now).map(|r| view(key, &r)))
                    }
                    _ => MapResult::Unit,
                }
            };
            let touched = events.changed || ttl_changed;
            if touched {
                state.number_change();
                // Without backups there is nobody to send the change to;
                // building it would copy the value once more for nothing.
                debug_assert!(table.is_some(), "{op:?} changed an entry but is no write");
                if table.as_ref().is_some_and(|t| !t.backups(p).is_empty()) {
                    let change = match written {
                        Some(record) => Change::Put {
                            map: name.to_string(),
                            key: key.clone(),
                            record: to_wire(&record, now),
                        },
                        None => key_change(&mut state, name, key, now),
                    };
                    let changes = vec![change];
                    batches.push(state.batch(p, changes));
                }
            }
            self.emit(&events.list);
            drop(state);
            return (result, events.list, batches, Vec::new());
        }
        // Multi-key writes find the keys their backups need in the events.
        events.want = true;
        let mut acc: Option<MapResult> = None;
        let mut not_owned = Vec::new();
        for &p in partitions {
            let mut state = self.state(p);
            if !state.serves_operations() {
                not_owned.push(p);
                continue;
            }
            let events_before = events.list.len();
            let part = {
                let m = state.store.map_mut(name);
                match op {
                    MapOp::Size => MapResult::Int(m.live_len(now) as i64),
                    MapOp::IsEmpty => MapResult::Bool(m.live_len(now) == 0),
                    MapOp::ContainsValue { value } => {
                        MapResult::Bool(m.live_entries(now).any(|e| e.value_is(value)))
                    }
                    MapOp::KeySet => {
                        MapResult::List(m.live_entries(now).map(|e| e.key_bytes()).collect())
                    }
                    MapOp::Values => {
                        MapResult::List(m.live_entries(now).map(|e| e.value_bytes()).collect())
                    }
                    MapOp::EntrySet => MapResult::Entries(
                        m.live_entries(now)
                            .map(|e| (e.key_bytes(), e.value_bytes()))
                            .collect(),
                    ),
                    MapOp::Clear | MapOp::EvictAll => {
                        m.clear();
                        MapResult::Unit
                    }
                    MapOp::GetAll { keys } => MapResult::Entries(
                        keys.iter()
                            .filter(|k| partition_id(k, count) == p)
                            .filter_map(|k| m.get(k, now).map(|v| (k.clone(), v)))
                            .collect(),
                    ),
                    MapOp::PutAll { entries } => {
                        for (k, v) in entries.iter().filter(|(k, _)| partition_id(k, count) == p) {
                            let old = m.put(k.clone(), v.clone(), None, now);
                            let t = if old.is_some() {
                                ev::UPDATED
                            } else {
                                ev::ADDED
                            };
                            events.push(name, p, t, k, Some(v.clone()), old);
                        }
                        MapResult::Unit
                    }
                    _ => MapResult::Unit,
                }
            };
            let changes: Vec<Change> = match op {
                MapOp::Clear | MapOp::EvictAll => vec![Change::ClearMap {
                    map: name.to_string(),
                }],
                _ => {
                    let keys: Vec<Bytes> = events.list[events_before..]
                        .iter()
                        .map(|e| e.key.clone())
                        .collect();
                    keys.iter()
                        .map(|k| key_change(&mut state, name, k, now))
                        .collect()
                }
            };
            if !changes.is_empty() {
                state.number_change();
                batches.push(state.batch(p, changes));
            }
            self.emit(&events.list[events_before..]);
            drop(state);
            acc = Some(match acc {
                None => part,
                Some(a) => a.merge(part, op),
            });
        }
        let empty = match op {
            MapOp::Size => MapResult::Int(0),
            MapOp::IsEmpty => MapResult::Bool(true),
            MapOp::ContainsValue { .. } => MapResult::Bool(false),
            MapOp::KeySet | MapOp::Values => MapResult::List(Vec::new()),
            MapOp::EntrySet | MapOp::GetAll { .. } => MapResult::Entries(Vec::new()),
            _ => MapResult::Unit,
        };
        (acc.unwrap_or(empty), events.list, batches, not_owned)
    }
}

/// The events of one operation, and whether it changed anything (what the
/// backups go by). A single-key write builds its event only when an entry
/// listener is registered for the map (`want`): an event costs a String
/// and a few reference counts per write, for nobody otherwise.
struct Events {
    list: Vec<MapEvent>,
    want: bool,
    changed: bool,
}

impl Events {
    fn push(
        &mut self,
        map: &str,
        p: u32,
        t: i32,
        key: &Bytes,
        value: Option<Bytes>,
        old: Option<Bytes>,
    ) {
        self.changed = true;
        if self.want {
            self.list.push(MapEvent {
                map: map.to_string(),
                event_type: t,
                key: key.clone(),
                value,
                old_value: old,
                partition: p,
            });
        }
    }
}

/// The state of `key` after an operation, as a change for the backups.
fn key_change(state: &mut PartitionState, map: &str, key: &Bytes, now: Instant) -> Change {
    match state.store.map_mut(map).record(key, now) {
        Some(r) => Change::Put {
            map: map.to_string(),
            key: key.clone(),
            record: to_wire(&r, now),
        },
        None => Change::Remove {
            map: map.to_string(),
            key: key.clone(),
        },
    }
}
