//! One task per client connection: authentication first, then every
//! request runs in its own task (responses carry the request's correlation
//! id, so they may complete in any order); a writer task batches responses
//! and events into the socket.
//!
//! On a graceful shutdown the endpoint drains rather than drops: every
//! connection keeps being served until it has been quiet for
//! [`DRAIN_IDLE`], then closes after its last response is written. A put in
//! flight on a closed connection fails in the client with "target
//! disconnected" and is not retried (puts are not idempotent), so closing a
//! busy connection would surface errors for writes the cluster could serve.

use crate::client::codec::ClientCodec;
use crate::client::listeners::ClientSink;
use crate::client::requests::AnsweredNow;
use crate::client::silence::{Counted, Silence};
use crate::client::views;
use crate::data::DataPlane;
use bytes::{Bytes, BytesMut};
use ferrocast_net::ClientStream;
use ferrocast_protocol::messages::responses::{self, auth_status, AuthenticationResponse};
use ferrocast_protocol::messages::types::CLIENT_AUTHENTICATION;
use ferrocast_protocol::{ClientMessage, Request, READ_AHEAD};
use futures::StreamExt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

/// How long a connection must stay quiet during a drain before it closes.
pub const DRAIN_IDLE: Duration = Duration::from_millis(300);

/// When the member gives up on a client connection.
#[derive(Clone, Copy, Debug)]
pub struct ClientLimits {
    /// A client that sends nothing (not even a ping) for this long is gone:
    /// its host vanished without a reset, or it hangs. Hazelcast's
    /// `hazelcast.client.max.no.heartbeat.seconds`, 60 s; its clients ping
    /// every 5 s when idle.
    pub heartbeat_timeout: Duration,
    /// A client whose socket takes nothing for this long (paused, or not
    /// reading) is closed, dropping what was queued for it: responses and
    /// entry events would otherwise pile up in the member.
    pub write_timeout: Duration,
}

pub struct ClientEndpoint {
    pub(crate) data: Arc<DataPlane>,
    group: String,
    password: String,
    max_frame: usize,
    limits: ClientLimits,
    next_connection: AtomicU64,
    /// Cancelled when the member starts draining its client connections.
    draining: CancellationToken,
    /// Connections being served (including their last writes).
    open: watch::Sender<usize>,
}

/// Counts a connection as open until its task ends.
struct OpenGuard(watch::Sender<usize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl ClientEndpoint {
    pub fn new(
        data: Arc<DataPlane>,
        group: String,
        password: String,
        max_frame: usize,
        limits: ClientLimits,
    ) -> Self {
        Self {
            data,
            group,
            password,
            max_frame,
            limits,
            next_connection: AtomicU64::new(1),
            draining: CancellationToken::new(),
            open: watch::channel(0).0,
        }
    }

    /// Lets every connection finish: each closes once it has been quiet for
    /// [`DRAIN_IDLE`] and its responses are written. Returns when none is
    /// left or after `limit`, with the number still open.
    pub async fn drain(&self, limit: Duration) -> usize {
        self.draining.cancel();
        let mut open = self.open.subscribe();
        let _ = tokio::time::timeout(limit, open.wait_for(|n| *n == 0)).await;
        let left = *open.borrow();
        left
    }

    /// Serves the client connections the transport hands over.
    pub fn spawn(
        self: Arc<Self>,
        mut streams: mpsc::Receiver<ClientStream>,
        shutdown: CancellationToken,
    ) {
        tokio::spawn(async move {
            loop {
                let (stream, remote) = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    s = streams.recv() => match s { Some(s) => s, None => break },
                };
                let _ = stream.set_nodelay(true);
                self.open.send_modify(|n| *n += 1);
                let guard = OpenGuard(self.open.clone());
                let me = self.clone();
                let stop = shutdown.clone();
                tokio::spawn(async move {
                    me.serve(stream, remote, stop).await;
                    drop(guard);
                });
            }
        });
    }

    async fn serve(
        self: Arc<Self>,
        stream: tokio::net::TcpStream,
        remote: SocketAddr,
        shutdown: CancellationToken,
    ) {
        let id = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let (r, w) = stream.into_split();
        let mut reader = FramedRead::with_capacity(
            Counted::new(r),
            ClientCodec::new(self.max_frame),
            READ_AHEAD,
        );
        let (tx, rx) = mpsc::channel::<ClientMessage>(65_536);
        // Cancelled by the writer when the client takes nothing.
        let stalled = CancellationToken::new();
        let write_task = tokio::spawn(write_responses(
            w,
            rx,
            remote,
            self.limits.write_timeout,
            stalled.clone(),
        ));

        let first = tokio::time::timeout(Duration::from_secs(30), reader.next()).await;
        let authenticated = match first {
            Ok(Some(Ok(msg))) => self.authenticate(&msg, remote, &tx).await,
            Ok(Some(Err(e))) => {
                tracing::warn!("client {remote}: {e}; closing");
                false
            }
            Ok(None) => false,
            Err(_) => {
                tracing::warn!("client {remote} did not authenticate within 30 s; closing");
                false
            }
        };
        if authenticated {
            let mut draining = false;
            let mut silence = Silence::new(self.limits.heartbeat_timeout);
            // Made once, not per request: a cancellation future registers
            // with its token on each first poll and leaves on drop.
            let stopping = shutdown.cancelled();
            let drain = self.draining.cancelled();
            let stall = stalled.cancelled();
            tokio::pin!(stopping, drain, stall);
            loop {
                let next = if draining {
                    tokio::select! {
                        _ = &mut stopping => break,
                        _ = &mut stall => break,
                        n = tokio::time::timeout(DRAIN_IDLE, reader.next()) => match n {
                            Ok(n) => n,
                            Err(_) => break, // quiet long enough: close
                        },
                    }
                } else {
                    // Requests first; the rest is looked at whenever the
                    // reader waits (tokio's cooperative budget makes it
                    // wait now and then even under a flood).
                    tokio::select! {
                        biased;
                        n = reader.next() => n,
                        _ = &mut stopping => break,
                        _ = &mut stall => break,
                        _ = &mut drain => {
                            draining = true;
                            continue;
                        }
                        _ = silence.check.tick() => {
                            if silence.too_long(reader.get_ref().bytes()) {
                                tracing::warn!(
                                    "client {remote} sent nothing for {:?}; closing the connection",
                                    self.limits.heartbeat_timeout
                                );
                                break;
                            }
                            continue;
                        }
                    }
                };
                match next {
                    Some(Ok(msg)) => match self.answer_now(&msg) {
                        AnsweredNow::Answer(Some(resp)) => send_now(&tx, resp),
                        AnsweredNow::Answer(None) => {}
                        AnsweredNow::Backups {
                            correlation,
                            request_type,
                            op,
                            result,
                            batches,
                        } => {
                            let me = self.clone();
                            let tx = tx.clone();
                            run_or_spawn(async move {
                                let resp = me
                                    .answer_after_backups(
                                        correlation,
                                        request_type,
                                        op,
                                        result,
                                        batches,
                                    )
                                    .await;
                                let _ = tx.send(resp).await;
                            });
                        }
                        AnsweredNow::Later(decoded) => {
                            let me = self.clone();
                            let tx = tx.clone();
                            run_or_spawn(async move {
                                if let Some(resp) = me.handle(id, decoded, &msg, &tx).await {
                                    let _ = tx.send(resp).await;
                                }
                            });
                        }
                    },
                    Some(Err(e)) => {
                        tracing::warn!("closing client connection from {remote}: {e}");
                        break;
                    }
                    None => break,
                }
            }
        }
        self.data.listeners.remove_connection(id);
        drop(tx);
        let _ = write_task.await;
        tracing::debug!("client connection from {remote} closed");
    }

    async fn authenticate(&self, msg: &ClientMessage, remote: SocketAddr, tx: &ClientSink) -> bool {
        let correlation = msg.correlation_id().unwrap_or(0);
        let req = match Request::decode(msg) {
            Ok(Request::Authentication(a)) => a,
            Ok(_) | Err(_) => {
                tracing::warn!("client {remote} sent something other than an authentication request first; closing");
                let _ = tx
                    .send(crate::client::requests::error(
                        correlation,
                        ferrocast_protocol::error_codes::AUTHENTICATION,
                        "the first request must be an authentication request".into(),
                    ))
                    .await;
                return false;
            }
        };
        let mut ok = req.cluster_name == self.group;
        if ok && !self.password.is_empty() {
            ok = req.username.as_deref() == Some(self.group.as_str())
                && constant_time_eq(
                    req.password.as_deref().unwrap_or("").as_bytes(),
                    self.password.as_bytes(),
                );
        }
        // A member still joining has no cluster to offer yet: wait (woken
        // the moment it joins) up to 10 s.
        let snap = self.data.wait_joined(Duration::from_secs(10)).await;
        let status = if !ok {
            tracing::warn!(
                "client {remote} ({} {}) refused: wrong cluster name or credentials (asked for cluster '{}')",
                req.client_type,
                req.client_version,
                req.cluster_name
            );
            auth_status::CREDENTIALS_FAILED
        } else if !snap.joined {
            auth_status::NOT_ALLOWED_IN_CLUSTER
        } else {
            auth_status::AUTHENTICATED
        };
        let address = views::address(snap.me.address);
        let resp = responses::authentication(
            correlation,
            &AuthenticationResponse {
                status,
                address: Some(&address),
                member_uuid: Some(snap.me.uuid),
                serialization_version: req.serialization_version,
                server_version: views::COMPATIBLE_VERSION_STR,
                partition_count: self.data.service.partition_count() as i32,
                cluster_id: Some(snap.view.cluster_id),
            },
        );
        let _ = tx.send(resp).await;
        if status == auth_status::AUTHENTICATED {
            tracing::info!(
                "client {remote} authenticated: {} {} '{}'",
                req.client_type,
                req.client_version,
                req.client_name
            );
        }
        let _ = CLIENT_AUTHENTICATION;
        status == auth_status::AUTHENTICATED
    }
}

/// Writes responses and events to the client. Whatever is queued goes out
/// in one vectored write: a write system call costs far more than encoding
/// a response (on loopback it also runs the receiver's side), and big
/// values are written from their own buffers rather than copied (see
/// `ClientMessage::encode_chunks`).
async fn write_responses(
    mut w: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<ClientMessage>,
    remote: SocketAddr,
    stall_limit: Duration,
    stalled: CancellationToken,
) {
    let mut staging = BytesMut::new();
    let mut chunks: Vec<Bytes> = Vec::new();
    while let Some(first) = rx.recv().await {
        first.encode_chunks(&mut staging, &mut chunks);
        // Gather what other requests finish meanwhile: drain, let the
        // tasks that are ready run once, drain again. One yield, not
        // "until a yield brings nothing": that delayed answers the client
        // was waiting for (one member, 90/10 100 B: 430k -> 280k ops/s,
        // docs/performance.md).
        for after_yield in [false, true] {
            if after_yield {
                tokio::task::yield_now().await;
            }
            while let Ok(more) = rx.try_recv() {
                more.encode_chunks(&mut staging, &mut chunks);
            }
        }
        if !staging.is_empty() {
            chunks.push(staging.split().freeze());
        }
        match ferrocast_net::write_all(&mut w, &mut chunks, stall_limit).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                tracing::warn!(
                    "client {remote} took nothing for {stall_limit:?}; closing the connection"
                );
                stalled.cancel();
                return;
            }
            Err(_) => return,
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Queues `resp` for the connection's writer; if its queue is full, a task
/// waits for room (later answers may overtake it: clients match answers by
/// correlation id).
fn send_now(tx: &ClientSink, resp: ClientMessage) {
    match tx.try_send(resp) {
        Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
        Err(mpsc::error::TrySendError::Full(resp)) => {
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(resp).await;
            });
        }
    }
}

/// Polls `request` once right here and makes a task of it only if it has
/// to wait: a task per request cost a spawn, a schedule and a wake-up, and
/// the first poll here keeps the order in which requests start (their
/// backups go out in the order they ran). Polled with a waker that does
/// nothing: a future registers the waker of every poll, and the task
/// polls it again at once.
fn run_or_spawn(request: impl Future<Output = ()> + Send + 'static) {
    let mut request = Box::pin(request);
    let mut cx = Context::from_waker(Waker::noop());
    if request.as_mut().poll(&mut cx).is_pending() {
        tokio::spawn(request);
    }
}
