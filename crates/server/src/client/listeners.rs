//! Client listener registrations on this member: entry listeners (events for
//! the partitions this member owns, which is what smart clients ask for by
//! registering on every member) and cluster view listeners.

use bytes::Bytes;
use ferrocast_partition::MapEvent;
use ferrocast_protocol::messages::responses::{self, EntryEvent};
use ferrocast_protocol::ClientMessage;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use uuid::Uuid;

/// Where messages for one client connection go.
pub type ClientSink = mpsc::Sender<ClientMessage>;

struct EntryListener {
    id: Uuid,
    connection: u64,
    map: String,
    key: Option<Bytes>,
    flags: i32,
    include_value: bool,
    request_type: u32,
    correlation: i64,
    sink: ClientSink,
    /// Events this listener lost since the last warning about it.
    dropped: u64,
    last_warning: Option<Instant>,
}

/// At most one warning per listener this often about the events it lost.
const DROP_WARNING_INTERVAL: Duration = Duration::from_secs(10);

struct ViewListener {
    connection: u64,
    correlation: i64,
    sink: ClientSink,
}

pub struct Listeners {
    member: Uuid,
    entry: Mutex<Vec<EntryListener>>,
    /// How many entry listeners `entry` holds, read without its lock by
    /// every write (none registered: the common case, one atomic load).
    entry_count: AtomicUsize,
    view: Mutex<Vec<ViewListener>>,
}

pub struct EntryRegistration {
    pub connection: u64,
    pub map: String,
    pub key: Option<Bytes>,
    pub flags: i32,
    pub include_value: bool,
    pub request_type: u32,
    pub correlation: i64,
    pub sink: ClientSink,
}

impl Listeners {
    pub fn new(member: Uuid) -> Self {
        Self {
            member,
            entry: Mutex::default(),
            entry_count: AtomicUsize::new(0),
            view: Mutex::default(),
        }
    }

    pub fn add_entry(&self, r: EntryRegistration) -> Uuid {
        let id = Uuid::new_v4();
        if let Ok(mut l) = self.entry.lock() {
            l.push(EntryListener {
                id,
                connection: r.connection,
                map: r.map,
                key: r.key,
                flags: r.flags,
                include_value: r.include_value,
                request_type: r.request_type,
                correlation: r.correlation,
                sink: r.sink,
                dropped: 0,
                last_warning: None,
            });
            self.entry_count.store(l.len(), Ordering::Release);
        }
        id
    }

    /// Whether an entry listener is registered for `map`: writes build
    /// their events only then. A listener is counted before its
    /// registration is answered, so every write its client sends after
    /// that answer reports to it.
    pub fn wants_entry_events(&self, map: &str) -> bool {
        if self.entry_count.load(Ordering::Acquire) == 0 {
            return false;
        }
        self.entry
            .lock()
            .map(|l| l.iter().any(|x| x.map == map))
            .unwrap_or(true)
    }

    pub fn remove_entry(&self, id: Uuid) -> bool {
        self.entry
            .lock()
            .map(|mut l| {
                let before = l.len();
                l.retain(|x| x.id != id);
                self.entry_count.store(l.len(), Ordering::Release);
                l.len() != before
            })
            .unwrap_or(false)
    }

    pub fn add_view(&self, connection: u64, correlation: i64, sink: ClientSink) {
        if let Ok(mut v) = self.view.lock() {
            v.push(ViewListener {
                connection,
                correlation,
                sink,
            });
        }
    }

    /// Forgets everything a closed connection registered.
    pub fn remove_connection(&self, connection: u64) {
        if let Ok(mut l) = self.entry.lock() {
            l.retain(|x| x.connection != connection);
            self.entry_count.store(l.len(), Ordering::Release);
        }
        if let Ok(mut v) = self.view.lock() {
            v.retain(|x| x.connection != connection);
        }
    }

    /// Sends events to the matching entry listeners. A client too slow to
    /// take its events loses them (counted, and logged at most every 10 s
    /// per listener), rather than stalling the map.
    pub fn dispatch(&self, events: &[MapEvent]) {
        if events.is_empty() {
            return;
        }
        let Ok(mut listeners) = self.entry.lock() else {
            return;
        };
        for e in events {
            for l in listeners.iter_mut() {
                if l.map != e.map || l.flags & e.event_type == 0 {
                    continue;
                }
                if l.key.as_ref().is_some_and(|k| *k != e.key) {
                    continue;
                }
                let msg = responses::entry_event(
                    l.request_type,
                    l.correlation,
                    &EntryEvent {
                        event_type: e.event_type,
                        member: self.member,
                        affected: 1,
                        key: Some(e.key.clone()),
                        value: if l.include_value {
                            e.value.clone()
                        } else {
                            None
                        },
                        old_value: if l.include_value {
                            e.old_value.clone()
                        } else {
                            None
                        },
                    },
                );
                // Closed: the connection is going away with its listeners.
                if let Err(mpsc::error::TrySendError::Full(_)) = l.sink.try_send(msg) {
                    l.dropped += 1;
                    let due = l
                        .last_warning
                        .is_none_or(|t| t.elapsed() >= DROP_WARNING_INTERVAL);
                    if due {
                        tracing::warn!(
                            "dropped {} entry event(s) of map '{}' for a client that does not keep up (listener {})",
                            l.dropped,
                            l.map,
                            l.id
                        );
                        l.dropped = 0;
                        l.last_warning = Some(Instant::now());
                    }
                }
            }
        }
    }

    /// Sends a view event (built per registration) to every view listener.
    pub fn send_views(&self, build: impl Fn(i64) -> Vec<ClientMessage>) {
        let Ok(v) = self.view.lock() else { return };
        for l in v.iter() {
            for msg in build(l.correlation) {
                let _ = l.sink.try_send(msg);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(map: &str, connection: u64, sink: &ClientSink) -> EntryRegistration {
        EntryRegistration {
            connection,
            map: map.to_string(),
            key: None,
            flags: -1,
            include_value: true,
            request_type: 0,
            correlation: 1,
            sink: sink.clone(),
        }
    }

    #[test]
    fn events_are_wanted_only_for_maps_someone_listens_to() {
        let (sink, _rx) = mpsc::channel(1);
        let l = Listeners::new(Uuid::nil());
        assert!(!l.wants_entry_events("a"));
        let id = l.add_entry(registration("a", 1, &sink));
        l.add_entry(registration("b", 2, &sink));
        assert!(l.wants_entry_events("a") && l.wants_entry_events("b"));
        assert!(!l.wants_entry_events("c"));
        assert!(l.remove_entry(id));
        assert!(!l.wants_entry_events("a"));
        l.remove_connection(2);
        assert!(!l.wants_entry_events("b"));
        assert_eq!(l.entry_count.load(Ordering::Acquire), 0);
    }
}
