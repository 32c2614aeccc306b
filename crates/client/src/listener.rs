//! Entry listeners. With smart routing a listener is registered on every
//! member (each sends the events of the partitions it owns); members that
//! join later get the registration too.

use crate::client::Client;
use crate::connection::Connection;
use crate::error::ClientError;
use bytes::Bytes;
use ferrocast_protocol::messages::client_side::{self, MapResponse};
use ferrocast_protocol::messages::responses::entry_event_type as ev;
use ferrocast_protocol::MapOp;
use std::collections::HashMap;
use tokio::sync::mpsc;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryEventKind {
    Added,
    Removed,
    Updated,
    Evicted,
    Expired,
    Other(i32),
}

impl EntryEventKind {
    fn from_code(code: i32) -> Self {
        match code {
            ev::ADDED => Self::Added,
            ev::REMOVED => Self::Removed,
            ev::UPDATED => Self::Updated,
            ev::EVICTED => Self::Evicted,
            ev::EXPIRED => Self::Expired,
            other => Self::Other(other),
        }
    }
}

/// One change to a map entry. Values are present when the listener asked for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryEvent {
    pub kind: EntryEventKind,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub old_value: Option<Bytes>,
}

pub(crate) struct ListenerSpec {
    pub id: Uuid,
    pub map: String,
    pub key: Option<Bytes>,
    pub include_value: bool,
    pub sink: mpsc::UnboundedSender<EntryEvent>,
    /// Member -> this listener's registration there.
    pub registrations: HashMap<Uuid, Registration>,
}

/// A listener's registration on one member.
pub(crate) enum Registration {
    /// Being registered by one `register_missing` call (so a concurrent one
    /// does not register it twice); removed again if that fails.
    Claimed,
    /// Registered over `conn`, which the member gave the id `id`. Gone with
    /// that connection: a member reached again over a new connection no
    /// longer has it (it drops a connection's listeners when it closes).
    On { id: Uuid, conn: Connection },
}

impl Registration {
    /// Whether the member still has it (or is being given it).
    fn holds(&self) -> bool {
        match self {
            Registration::Claimed => true,
            Registration::On { conn, .. } => !conn.is_closed(),
        }
    }
}

/// Every event kind ferrocast sends.
pub(crate) const ALL_EVENTS: i32 =
    ev::ADDED | ev::REMOVED | ev::UPDATED | ev::EVICTED | ev::EXPIRED;

pub(crate) async fn register_on(
    client: &Client,
    conn: &Connection,
    map: &str,
    key: Option<Bytes>,
    include_value: bool,
    sink: mpsc::UnboundedSender<EntryEvent>,
) -> Result<Uuid, ClientError> {
    let correlation = client.next_correlation();
    let (tx, mut rx) = mpsc::unbounded_channel();
    conn.on_events(correlation, tx);
    let op = MapOp::AddEntryListener {
        key,
        include_value,
        flags: ALL_EVENTS,
        local_only: client.inner.cfg.smart_routing,
    };
    let resp = conn
        .request(
            client_side::map_request(map, &op, -1),
            correlation,
            client.inner.cfg.connect_timeout,
        )
        .await?;
    let MapResponse::Uuid(id) = client_side::map_response(&op, &resp)? else {
        return Err(ClientError::Serialization(
            "listener registration without id".into(),
        ));
    };
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if let Ok((code, key, value, old_value)) = client_side::entry_event(&msg) {
                let event = EntryEvent {
                    kind: EntryEventKind::from_code(code),
                    key,
                    value,
                    old_value,
                };
                if sink.send(event).is_err() {
                    break;
                }
            }
        }
    });
    Ok(id)
}

/// One listener to register on one member.
struct Missing {
    id: Uuid,
    member: Uuid,
    map: String,
    key: Option<Bytes>,
    include_value: bool,
    sink: mpsc::UnboundedSender<EntryEvent>,
}

/// Registers every listener on every connected member that lacks it.
pub(crate) async fn register_missing(client: &Client) {
    let live = client.live_connections();
    // Claimed under the lock (a nil placeholder), so two concurrent calls
    // never register the same listener twice on one member.
    let work: Vec<Missing> = match client.inner.listeners.lock() {
        Ok(mut l) => l
            .iter_mut()
            .flat_map(|s| {
                let missing: Vec<Uuid> = live
                    .iter()
                    .filter(|m| !s.registrations.get(m).is_some_and(Registration::holds))
                    .copied()
                    .collect();
                missing
                    .into_iter()
                    .map(|m| {
                        s.registrations.insert(m, Registration::Claimed);
                        Missing {
                            id: s.id,
                            member: m,
                            map: s.map.clone(),
                            key: s.key.clone(),
                            include_value: s.include_value,
                            sink: s.sink.clone(),
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect(),
        Err(_) => return,
    };
    for w in work {
        let outcome = match client.connection_to(w.member) {
            Some(conn) => register_on(client, &conn, &w.map, w.key, w.include_value, w.sink)
                .await
                .map(|id| Registration::On { id, conn }),
            None => Err(ClientError::NoMember),
        };
        let Ok(mut l) = client.inner.listeners.lock() else {
            return;
        };
        // The listener may have been removed meanwhile.
        let Some(s) = l.iter_mut().find(|s| s.id == w.id) else {
            continue;
        };
        match outcome {
            Ok(reg) => {
                s.registrations.insert(w.member, reg);
            }
            Err(e) => {
                // Unclaimed, so the next round (the client's maintenance
                // loop) tries again.
                s.registrations.remove(&w.member);
                tracing::debug!("listener registration on {} failed: {e}", w.member);
            }
        }
    }
}
