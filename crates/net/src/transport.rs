//! The member port: accepts connections (telling members and clients apart by
//! their preamble), dials peers, and keeps one authenticated connection per
//! member pair.

use crate::connection::{Connection, Incoming, Origin};
use crate::error::NetError;
use crate::fault::Faults;
use crate::handshake::{self, Credentials};
use crate::member::MemberInfo;
use crate::message::MemberMessage;
use crate::{codec, PREAMBLE_CLIENT, PREAMBLE_MEMBER};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct TransportConfig {
    pub credentials: Credentials,
    /// Largest frame accepted from a peer; a bigger one closes that connection.
    pub max_frame: usize,
    pub connect_timeout: Duration,
    /// Bound on the preamble and the whole handshake of one connection.
    pub handshake_timeout: Duration,
    /// A peer that takes no byte of what is queued for it for this long
    /// (paused, or its host gone without a reset) has its connection
    /// closed and what was queued dropped.
    pub write_stall_limit: Duration,
    /// Testing only: a file of peer addresses to behave as cut off from.
    pub fault_file: Option<std::path::PathBuf>,
    /// Where HTTP requests on the member port go (health checks, as on a
    /// Hazelcast member); without it they are refused.
    pub http: Option<mpsc::Sender<HttpStream>>,
}

impl TransportConfig {
    pub fn new(credentials: Credentials) -> Self {
        Self {
            credentials,
            max_frame: codec::DEFAULT_MAX_FRAME,
            connect_timeout: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(5),
            write_stall_limit: crate::connection::DEFAULT_WRITE_STALL_LIMIT,
            fault_file: None,
            http: None,
        }
    }
}

/// A client-protocol connection handed to whoever serves clients; its
/// `CP2` preamble has been consumed.
pub type ClientStream = (TcpStream, SocketAddr);

/// An HTTP connection on the member port, with the 3 bytes already read
/// (`GET` or `HEA`), so the HTTP server sees the whole request line.
pub type HttpStream = (TcpStream, SocketAddr, [u8; 3]);

type Slot = Arc<tokio::sync::Mutex<Option<Connection>>>;

/// Cheap to clone; every clone talks through the same connection pool.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    me: MemberInfo,
    cfg: TransportConfig,
    pool: Mutex<HashMap<SocketAddr, Slot>>,
    /// Live connections outside the pool: accepted ones that lost to the
    /// pooled connection of the same pair (read until the peer closes
    /// them) and retired ones finishing their requests. Kept so that
    /// [`Transport::disconnect`] closes every connection to a member.
    unpooled: Mutex<Vec<Connection>>,
    incoming: mpsc::Sender<Incoming>,
    shutdown: CancellationToken,
    faults: Arc<Faults>,
}

impl Transport {
    /// Serves `listener` until `shutdown` is cancelled. Messages from peers
    /// arrive on the returned receiver.
    pub fn start(
        listener: TcpListener,
        me: MemberInfo,
        cfg: TransportConfig,
        clients: Option<mpsc::Sender<ClientStream>>,
        shutdown: CancellationToken,
    ) -> (Transport, mpsc::Receiver<Incoming>) {
        let (tx, rx) = mpsc::channel(4096);
        let faults = Arc::new(Faults::default());
        if let Some(path) = cfg.fault_file.clone() {
            faults.watch(path, shutdown.clone());
        }
        let transport = Transport {
            inner: Arc::new(Inner {
                me,
                cfg,
                pool: Mutex::default(),
                unpooled: Mutex::default(),
                incoming: tx,
                shutdown,
                faults,
            }),
        };
        tokio::spawn(accept_loop(listener, transport.clone(), clients));
        (transport, rx)
    }

    pub fn me(&self) -> MemberInfo {
        self.inner.me
    }

    /// The pooled connection to `addr`, dialing and authenticating if needed.
    pub async fn connection(&self, addr: SocketAddr) -> Result<Connection, NetError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(NetError::Shutdown);
        }
        if self.inner.faults.is_blocked(addr) {
            return Err(NetError::Connect {
                addr,
                source: std::io::Error::other("cut off by fault injection"),
            });
        }
        let slot = self.slot(addr);
        let mut guard = slot.lock().await;
        if let Some(c) = guard.as_ref() {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let cfg = &self.inner.cfg;
        let stream = tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| NetError::ConnectTimeout(addr))?
            .map_err(|source| NetError::Connect { addr, source })?;
        let _ = stream.set_nodelay(true);
        let (framed, peer) = tokio::time::timeout(
            cfg.handshake_timeout,
            handshake::dial(stream, &cfg.credentials, self.inner.me, cfg.max_frame),
        )
        .await
        .map_err(|_| NetError::Handshake {
            peer: addr,
            reason: "timed out".into(),
        })??;
        let conn = Connection::start(
            framed,
            peer,
            Origin::Dialed,
            self.inner.incoming.clone(),
            &self.inner.shutdown,
            self.inner.faults.clone(),
            cfg.write_stall_limit,
        );
        *guard = Some(conn.clone());
        Ok(conn)
    }

    pub async fn request(
        &self,
        addr: SocketAddr,
        body: MemberMessage,
        timeout: Duration,
    ) -> Result<MemberMessage, NetError> {
        let conn = self.connection(addr).await?;
        if self.inner.faults.is_blocked(conn.peer().address) {
            return Err(NetError::Closed(addr));
        }
        conn.request(body, timeout).await
    }

    pub async fn send(&self, addr: SocketAddr, body: MemberMessage) -> Result<(), NetError> {
        let conn = self.connection(addr).await?;
        if self.inner.faults.is_blocked(conn.peer().address) {
            return Err(NetError::Closed(addr));
        }
        conn.send(body).await
    }

    /// Closes every connection to `peer` (a member that left the member
    /// list) and forgets its pool slot. A connection to another member
    /// at the same address (restarted with a new UUID) is left alone, so a
    /// late call cannot cut off the member that replaced it. Requests still
    /// waiting on the closed connection fail at once; anything sent to the
    /// address later dials afresh.
    ///
    /// `still_gone` is asked once the pooled slot is ours (a dial to that
    /// address may hold it for seconds): a member listed again by then
    /// (same UUID, rejoined) keeps its connections.
    pub async fn disconnect(&self, peer: MemberInfo, still_gone: impl Fn() -> bool) {
        if let Some(slot) = self.pooled_slot(peer.address) {
            if !self.disconnect_pooled(peer, slot, &still_gone).await {
                return;
            }
        } else if !still_gone() {
            return;
        }
        if let Ok(mut unpooled) = self.inner.unpooled.lock() {
            unpooled.retain(|c| {
                let theirs = c.peer().uuid == peer.uuid;
                if theirs {
                    c.close();
                }
                !theirs && !c.is_closed()
            });
        }
    }

    /// Whether the member was still gone (and its pooled connection, if
    /// any, closed).
    async fn disconnect_pooled(
        &self,
        peer: MemberInfo,
        slot: Slot,
        still_gone: &impl Fn() -> bool,
    ) -> bool {
        let mut guard = slot.lock().await;
        if !still_gone() {
            return false;
        }
        let ours = match guard.as_ref() {
            Some(c) => c.peer().uuid == peer.uuid || c.is_closed(),
            None => true,
        };
        if !ours {
            return true;
        }
        if let Some(c) = guard.take() {
            tracing::debug!(
                "closing the connection to {} (left the member list)",
                peer.address
            );
            c.close();
        }
        drop(guard);
        if let Ok(mut pool) = self.inner.pool.lock() {
            // Only if nobody refilled the slot meanwhile.
            if pool
                .get(&peer.address)
                .is_some_and(|s| Arc::ptr_eq(s, &slot))
            {
                if let Ok(g) = slot.try_lock() {
                    if g.is_none() {
                        pool.remove(&peer.address);
                    }
                }
            }
        }
        true
    }

    fn pooled_slot(&self, addr: SocketAddr) -> Option<Slot> {
        self.inner.pool.lock().ok()?.get(&addr).cloned()
    }

    fn slot(&self, addr: SocketAddr) -> Slot {
        match self.inner.pool.lock() {
            Ok(mut p) => p.entry(addr).or_default().clone(),
            // A poisoned pool only means another task panicked mid-insert;
            // a fresh slot is always safe (at worst one extra connection).
            Err(_) => Slot::default(),
        }
    }

    /// Makes an accepted connection the pooled one for its peer, unless we
    /// already hold a live one. When both members dialed each other at once,
    /// both keep the connection dialed by the lower address, so the pair
    /// converges on one connection.
    async fn register_accepted(&self, conn: Connection) {
        let peer = conn.peer();
        let slot = self.slot(peer.address);
        let mut guard = slot.lock().await;
        let keep_new = match guard.as_ref() {
            None => true,
            Some(old) if old.is_closed() => true,
            Some(old) if old.peer().uuid != peer.uuid => true,
            Some(old) if old.origin() == Origin::Accepted => true,
            Some(_) => peer.address < self.inner.me.address,
        };
        let unpooled = if keep_new {
            guard.replace(conn).inspect(|old| retire(old.clone()))
        } else {
            Some(conn)
        };
        if let (Some(c), Ok(mut list)) = (unpooled, self.inner.unpooled.lock()) {
            list.retain(|c| !c.is_closed());
            list.push(c);
        }
    }
}

/// Closes a connection nobody will use again, once its requests are answered.
fn retire(conn: Connection) {
    tokio::spawn(async move {
        for _ in 0..100 {
            if !conn.has_pending_requests() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        conn.close();
    });
}

async fn accept_loop(
    listener: TcpListener,
    transport: Transport,
    clients: Option<mpsc::Sender<ClientStream>>,
) {
    let shutdown = transport.inner.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, remote)) => {
                let t = transport.clone();
                let c = clients.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve_inbound(t, stream, remote, c).await {
                        log_inbound_failure(remote, &e);
                    }
                });
            }
            Err(e) => {
                // Usually EMFILE: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn log_inbound_failure(remote: SocketAddr, e: &NetError) {
    match e {
        NetError::SelfConnection(_) => tracing::debug!("ignored a connection from ourselves"),
        NetError::Handshake { peer, reason } => {
            tracing::warn!("refused member connection from {peer} (via {remote}): {reason}")
        }
        NetError::Refused { peer, reason } => {
            tracing::warn!("refused member connection from {peer}: {reason}")
        }
        other => tracing::debug!("inbound connection from {remote} failed: {other}"),
    }
}

async fn serve_inbound(
    transport: Transport,
    mut stream: TcpStream,
    remote: SocketAddr,
    clients: Option<mpsc::Sender<ClientStream>>,
) -> Result<(), NetError> {
    let cfg = &transport.inner.cfg;
    let mut preamble = [0u8; 3];
    tokio::time::timeout(cfg.handshake_timeout, stream.read_exact(&mut preamble))
        .await
        .map_err(|_| NetError::Handshake {
            peer: remote,
            reason: "no preamble within the handshake timeout".into(),
        })??;
    if &preamble == PREAMBLE_CLIENT {
        match clients {
            Some(tx) => {
                let _ = tx.send((stream, remote)).await;
            }
            None => tracing::info!(
                "client connection from {remote} closed: this member does not serve the client protocol"
            ),
        }
        return Ok(());
    }
    if &preamble == b"GET" || &preamble == b"HEA" {
        match &cfg.http {
            Some(tx) => {
                let _ = tx.send((stream, remote, preamble)).await;
            }
            None => tracing::debug!("HTTP request from {remote} closed: no HTTP served"),
        }
        return Ok(());
    }
    if &preamble != PREAMBLE_MEMBER {
        return Err(NetError::Handshake {
            peer: remote,
            reason: format!("unknown protocol preamble {preamble:02x?}"),
        });
    }
    let _ = stream.set_nodelay(true);
    let framed = Framed::with_capacity(
        stream,
        codec::frame_codec(cfg.max_frame),
        codec::READ_BUFFER,
    );
    let (framed, peer) = tokio::time::timeout(
        cfg.handshake_timeout,
        handshake::accept(framed, &cfg.credentials, transport.inner.me),
    )
    .await
    .map_err(|_| NetError::Handshake {
        peer: remote,
        reason: "handshake timed out".into(),
    })??;
    if transport.inner.faults.is_blocked(peer.address) {
        return Err(NetError::Handshake {
            peer: peer.address,
            reason: "cut off by fault injection".into(),
        });
    }
    let conn = Connection::start(
        framed,
        peer,
        Origin::Accepted,
        transport.inner.incoming.clone(),
        &transport.inner.shutdown,
        transport.inner.faults.clone(),
        cfg.write_stall_limit,
    );
    transport.register_accepted(conn).await;
    Ok(())
}
