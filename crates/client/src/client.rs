//! The client: connects to any member, keeps the cluster view (members and
//! partition owners) from the member's view events, opens one connection per
//! member (smart routing), sends each key operation to its partition's owner,
//! and retries on another connection when a member goes away.

use crate::clock::{CoarseClock, TICK};
use crate::connection::Connection;
use crate::error::ClientError;
use crate::listener::{self, ListenerSpec};
use ferrocast_protocol::messages::client_side::{self, MapResponse};
use ferrocast_protocol::messages::types::*;
use ferrocast_protocol::messages::AuthenticationRequest;
use ferrocast_protocol::{data, ClientMessage, MapOp};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Members to try first; the others are learned from the cluster.
    pub addresses: Vec<SocketAddr>,
    pub cluster_name: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// One connection per member and key operations sent to their owner.
    pub smart_routing: bool,
    /// Bound on one operation, retries included; kept to within 100 ms
    /// (deadlines are checked on a coarse clock, see `clock.rs`).
    pub invocation_timeout: Duration,
    pub connect_timeout: Duration,
    /// Pings on quiet connections, and how long a silent member is given.
    pub heartbeat: crate::Heartbeat,
}

impl ClientConfig {
    pub fn new(addresses: Vec<SocketAddr>) -> Self {
        Self {
            addresses,
            cluster_name: "dev".into(),
            username: None,
            password: None,
            smart_routing: true,
            invocation_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(5),
            heartbeat: crate::Heartbeat::default(),
        }
    }

    /// Cluster name and password, as a member with a group password expects them.
    pub fn credentials(mut self, cluster_name: &str, password: &str) -> Self {
        self.cluster_name = cluster_name.into();
        self.username = Some(cluster_name.into());
        self.password = Some(password.into());
        self
    }
}

#[derive(Default)]
struct View {
    members: Vec<(Uuid, SocketAddr)>,
    member_version: i32,
    owners: Vec<Option<Uuid>>,
    partition_version: i32,
}

pub(crate) struct Inner {
    pub(crate) cfg: ClientConfig,
    client_uuid: Uuid,
    correlation: AtomicI64,
    partition_count: AtomicU32,
    pub(crate) connections: Mutex<HashMap<Uuid, Connection>>,
    view: Mutex<View>,
    view_connection: Mutex<Option<Uuid>>,
    /// Connections the cluster view listener is registered on (it moves,
    /// and the old registration stays): moving back to one of them needs
    /// no new registration.
    view_registered: Mutex<Vec<Connection>>,
    view_changed: Notify,
    pub(crate) listeners: Mutex<Vec<ListenerSpec>>,
    closed: CancellationToken,
    /// Request deadlines; advanced by the connections' sweepers.
    clock: Arc<CoarseClock>,
}

/// A connected client; cheap to clone.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl Client {
    /// Connects, authenticates and waits for the cluster's partition table.
    pub async fn connect(cfg: ClientConfig) -> Result<Client, ClientError> {
        let inner = Arc::new(Inner {
            cfg,
            client_uuid: Uuid::new_v4(),
            correlation: AtomicI64::new(1),
            partition_count: AtomicU32::new(0),
            connections: Mutex::default(),
            view: Mutex::default(),
            view_connection: Mutex::default(),
            view_registered: Mutex::default(),
            view_changed: Notify::new(),
            listeners: Mutex::default(),
            closed: CancellationToken::new(),
            clock: Arc::default(),
        });
        let client = Client { inner };
        let mut last = ClientError::NoMember;
        for addr in client.inner.cfg.addresses.clone() {
            match client.open(addr).await {
                Ok(_) => {
                    last = ClientError::NoMember;
                    break;
                }
                Err(e @ ClientError::Authentication { .. }) => return Err(e),
                Err(e) => last = e,
            }
        }
        if client.live_connections().is_empty() {
            return Err(last);
        }
        client.ensure_view_listener().await?;
        let deadline = Instant::now() + client.inner.cfg.connect_timeout;
        loop {
            // Registered before the check, so a table arriving in between
            // wakes us at once rather than after the timeout.
            let changed = client.inner.view_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if client.owners_known() >= client.partition_count() || Instant::now() >= deadline {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), changed).await;
        }
        let maintenance = client.clone();
        tokio::spawn(async move { maintenance.maintain().await });
        Ok(client)
    }

    pub fn partition_count(&self) -> u32 {
        self.inner.partition_count.load(Ordering::Relaxed)
    }

    fn owners_known(&self) -> u32 {
        self.inner
            .view
            .lock()
            .map(|v| v.owners.iter().filter(|o| o.is_some()).count() as u32)
            .unwrap_or(0)
    }

    /// Members as the client knows them: (uuid, address).
    pub fn members(&self) -> Vec<(Uuid, SocketAddr)> {
        self.inner
            .view
            .lock()
            .map(|v| v.members.clone())
            .unwrap_or_default()
    }

    /// The owner of each partition, as the client knows it.
    pub fn partition_owners(&self) -> Vec<Option<Uuid>> {
        self.inner
            .view
            .lock()
            .map(|v| v.owners.clone())
            .unwrap_or_default()
    }

    /// Members this client has a live connection to.
    pub fn live_connections(&self) -> Vec<Uuid> {
        self.inner
            .connections
            .lock()
            .map(|c| {
                c.iter()
                    .filter(|(_, c)| !c.is_closed())
                    .map(|(u, _)| *u)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn map(&self, name: &str) -> crate::Map {
        crate::Map::new(self.clone(), name)
    }

    /// Closes every connection.
    pub fn shutdown(&self) {
        self.inner.closed.cancel();
        if let Ok(c) = self.inner.connections.lock() {
            c.values().for_each(Connection::close);
        }
    }

    pub(crate) fn next_correlation(&self) -> i64 {
        self.inner.correlation.fetch_add(1, Ordering::Relaxed)
    }

    async fn open(&self, addr: SocketAddr) -> Result<Connection, ClientError> {
        let cfg = &self.inner.cfg;
        let auth = AuthenticationRequest {
            client_uuid: Some(self.inner.client_uuid),
            serialization_version: 1,
            cluster_name: cfg.cluster_name.clone(),
            username: cfg.username.clone(),
            password: cfg.password.clone(),
            client_type: "RST".into(),
            client_version: env!("CARGO_PKG_VERSION").into(),
            client_name: format!(
                "ferrocast-client-{}",
                &self.inner.client_uuid.to_string()[..8]
            ),
            labels: Vec::new(),
        };
        let (conn, result) = Connection::open(
            addr,
            &auth,
            self.next_correlation(),
            cfg.connect_timeout,
            self.inner.clock.clone(),
            cfg.heartbeat,
        )
        .await?;
        self.inner
            .partition_count
            .store(result.partition_count.max(0) as u32, Ordering::Relaxed);
        if let Ok(mut v) = self.inner.view.lock() {
            if v.owners.len() != result.partition_count.max(0) as usize {
                v.owners = vec![None; result.partition_count.max(0) as usize];
            }
        }
        if let Ok(mut c) = self.inner.connections.lock() {
            c.insert(conn.member(), conn.clone());
        }
        tracing::debug!("connected to member {} at {addr}", conn.member());
        Ok(conn)
    }

    /// Registers the cluster view listener on some live connection if none
    /// has it, or on another one if its member went quiet: a paused member
    /// answers no ping, and until the heartbeat timeout (60 s by default)
    /// closed its connection the client would learn nothing of the cluster
    /// moving on without it, and keep sending it the writes of partitions
    /// others own by then. The old registration stays: a member that comes
    /// back sends views older than those the new one sent, which the
    /// version check drops.
    async fn ensure_view_listener(&self) -> Result<(), ClientError> {
        let current = self.inner.view_connection.lock().ok().and_then(|v| *v);
        // Pings go out after an interval without writes (checked once a
        // tick) and are answered at once: twice that without a byte, give or
        // take the clock's tick, is a member not answering.
        let quiet = self.inner.cfg.heartbeat.interval.max(TICK) * 2 + TICK;
        let conn = match current.and_then(|m| self.connection_to(m)) {
            Some(c) if c.silent_for() < quiet => return Ok(()),
            Some(c) => {
                let Some(other) = self.talking_connection(Some(c.member()), quiet) else {
                    return Ok(());
                };
                tracing::info!(
                    "member {} silent for {:?}: the cluster view listener moves to member {}",
                    c.member(),
                    c.silent_for(),
                    other.member()
                );
                other
            }
            None => self
                .talking_connection(None, Duration::MAX)
                .ok_or(ClientError::NoMember)?,
        };
        let registered = self.inner.view_registered.lock().ok().is_some_and(|mut r| {
            r.retain(|c| !c.is_closed());
            r.iter().any(|c| c.is(&conn))
        });
        if !registered {
            let correlation = self.next_correlation();
            let (tx, mut rx) = mpsc::unbounded_channel::<ClientMessage>();
            conn.on_events(correlation, tx);
            conn.request(
                client_side::bare(CLIENT_ADD_CLUSTER_VIEW_LISTENER),
                correlation,
                self.inner.cfg.connect_timeout,
            )
            .await?;
            if let Ok(mut r) = self.inner.view_registered.lock() {
                r.push(conn.clone());
            }
            let me = self.clone();
            tokio::spawn(async move {
                while let Some(ev) = rx.recv().await {
                    me.on_view_event(&ev);
                }
            });
        }
        if let Ok(mut v) = self.inner.view_connection.lock() {
            *v = Some(conn.member());
        }
        Ok(())
    }

    fn on_view_event(&self, ev: &ClientMessage) {
        let Ok(t) = ev.message_type() else { return };
        let Ok(mut v) = self.inner.view.lock() else {
            return;
        };
        if t == CLIENT_MEMBERS_VIEW_EVENT {
            if let Ok((version, members)) = client_side::members_view(ev) {
                if version >= v.member_version {
                    v.member_version = version;
                    v.members = members
                        .into_iter()
                        .filter_map(|(u, a)| {
                            format!("{}:{}", a.host, a.port)
                                .parse()
                                .ok()
                                .map(|s| (u, s))
                        })
                        .collect();
                }
            }
        } else if t == CLIENT_PARTITIONS_VIEW_EVENT {
            if let Ok((version, owners)) = client_side::partitions_view(ev) {
                if version >= v.partition_version {
                    v.partition_version = version;
                    for (member, parts) in owners {
                        for p in parts {
                            if let Some(slot) = v.owners.get_mut(p as usize) {
                                *slot = Some(member);
                            }
                        }
                    }
                }
            }
        }
        drop(v);
        self.inner.view_changed.notify_waiters();
    }

    /// Every second: drop dead connections, connect to members we lack,
    /// keep the view listener and the entry listeners registered.
    async fn maintain(&self) {
        loop {
            tokio::select! {
                _ = self.inner.closed.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = self.inner.view_changed.notified() => {}
            }
            let members = self.members();
            if let Ok(mut c) = self.inner.connections.lock() {
                c.retain(|u, conn| {
                    let keep = !conn.is_closed()
                        && (members.is_empty() || members.iter().any(|(m, _)| m == u));
                    // Closed, not just forgotten: the member would keep it
                    // (and the listeners on it) while its pings go on.
                    if !keep {
                        conn.close();
                    }
                    keep
                });
            }
            if self.inner.cfg.smart_routing {
                let live = self.live_connections();
                for (uuid, addr) in members {
                    if !live.contains(&uuid) {
                        if let Err(e) = self.open(addr).await {
                            tracing::debug!("cannot connect to member {addr}: {e}");
                        }
                    }
                }
            } else if self.live_connections().is_empty() {
                for addr in self.inner.cfg.addresses.clone() {
                    if self.open(addr).await.is_ok() {
                        break;
                    }
                }
            }
            if let Err(e) = self.ensure_view_listener().await {
                tracing::debug!("cluster view listener: {e}");
            }
            listener::register_missing(self).await;
        }
    }

    /// The live connection whose member spoke last, other than `except`'s,
    /// if it spoke within `quiet`.
    fn talking_connection(&self, except: Option<Uuid>, quiet: Duration) -> Option<Connection> {
        let c = self.inner.connections.lock().ok()?;
        c.values()
            .filter(|c| !c.is_closed() && Some(c.member()) != except)
            .min_by_key(|c| c.silent_for())
            .filter(|c| c.silent_for() < quiet)
            .cloned()
    }

    pub(crate) fn any_connection(&self) -> Option<Connection> {
        let c = self.inner.connections.lock().ok()?;
        c.values().find(|c| !c.is_closed()).cloned()
    }

    pub(crate) fn connection_to(&self, member: Uuid) -> Option<Connection> {
        let c = self.inner.connections.lock().ok()?;
        c.get(&member).filter(|c| !c.is_closed()).cloned()
    }

    fn connection_for(&self, partition: Option<u32>) -> Option<Connection> {
        if self.inner.cfg.smart_routing {
            if let Some(p) = partition {
                let owner = self
                    .inner
                    .view
                    .lock()
                    .ok()
                    .and_then(|v| v.owners.get(p as usize).copied().flatten());
                if let Some(conn) = owner.and_then(|o| self.connection_to(o)) {
                    return Some(conn);
                }
            }
        }
        self.any_connection()
    }

    /// Sends `msg` to the owner of `partition` (or any member), retrying
    /// retryable failures until the invocation timeout.
    pub(crate) async fn invoke(
        &self,
        msg: ClientMessage,
        partition: Option<u32>,
    ) -> Result<ClientMessage, ClientError> {
        let timeout = self.inner.cfg.invocation_timeout;
        let clock = &self.inner.clock;
        let deadline = clock.deadline(timeout);
        // Shared, not copied, between attempts: each goes out under its own
        // correlation id.
        let msg = Arc::new(msg);
        loop {
            let left = Duration::from_millis(deadline.saturating_sub(clock.now_ms()));
            if left.is_zero() {
                return Err(ClientError::Timeout(timeout));
            }
            let attempt = match self.connection_for(partition) {
                Some(conn) => {
                    conn.request(msg.clone(), self.next_correlation(), left)
                        .await
                }
                None => Err(ClientError::NoMember),
            };
            match attempt {
                Ok(resp) => return Ok(resp),
                Err(e) if e.is_retryable() => {
                    tracing::debug!("retrying after: {e}");
                    self.inner.view_changed.notify_waiters();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    // With no connection, no sweeper advances the clock.
                    clock.tick();
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The partition of serialized `key`.
    pub(crate) fn partition_of(&self, key: &[u8]) -> u32 {
        data::partition_id(key, self.partition_count().max(1))
    }

    /// Runs a map operation and reads its response.
    pub(crate) async fn map_op(&self, name: &str, op: MapOp) -> Result<MapResponse, ClientError> {
        let count = self.partition_count().max(1);
        // Key operations and per-partition batches carry their partition.
        let first_key = match &op {
            MapOp::PutAll { entries } => entries.first().map(|(k, _)| k),
            MapOp::GetAll { keys } => keys.first(),
            other => other.key(),
        };
        let partition = first_key.map(|k| data::partition_id(k, count));
        let msg = client_side::map_request(name, &op, partition.map(|p| p as i32).unwrap_or(-1));
        let route = partition;
        let resp = self.invoke(msg, route).await?;
        Ok(client_side::map_response(&op, &resp)?)
    }

    /// Destroys a distributed map cluster-wide.
    pub(crate) async fn destroy(&self, name: &str) -> Result<(), ClientError> {
        self.invoke(
            client_side::proxy(CLIENT_DESTROY_PROXY, name, "hz:impl:mapService"),
            None,
        )
        .await
        .map(|_| ())
    }
}
