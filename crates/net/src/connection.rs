//! One authenticated member connection: a writer task that batches frames
//! into the socket, a reader task that routes responses to their waiting
//! requests and everything else to the transport's incoming channel.

use crate::chunks::Chunks;
use crate::codec::{self, EnvelopeKind, OutFrame};
use crate::error::NetError;
use crate::fault::Faults;
use crate::handshake::FramedStream;
use crate::member::MemberInfo;
use crate::message::MemberMessage;
use bytes::BytesMut;
use futures::StreamExt;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{Framed, FramedParts, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

/// A message that arrived from a peer. Requests carry a [`Responder`].
#[derive(Debug)]
pub struct Incoming {
    pub from: MemberInfo,
    pub body: MemberMessage,
    pub responder: Option<Responder>,
}

/// Sends the one response to a request, on the connection it came from.
#[derive(Debug)]
pub struct Responder {
    correlation: u64,
    out: mpsc::Sender<OutFrame>,
}

impl Responder {
    pub async fn respond(self, body: MemberMessage) -> Result<(), NetError> {
        let frame = codec::encode_envelope(self.correlation, EnvelopeKind::Response, body)?;
        self.out.send(frame).await.map_err(|_| NetError::Shutdown)
    }

    /// Queues the response without waiting; when the connection's queue
    /// is full, a task waits for room. Nothing to report: a response to a
    /// connection that closed has nobody to go to.
    pub fn respond_soon(self, body: MemberMessage) {
        let frame = match codec::encode_envelope(self.correlation, EnvelopeKind::Response, body) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!("response not sent: {e}");
                return;
            }
        };
        if let Err(mpsc::error::TrySendError::Full(frame)) = self.out.try_send(frame) {
            tokio::spawn(async move {
                let _ = self.out.send(frame).await;
            });
        }
    }
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<MemberMessage>>>>;

/// Which side opened the TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Dialed,
    Accepted,
}

/// A cheap, cloneable handle on a live connection.
#[derive(Clone, Debug)]
pub struct Connection {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    peer: MemberInfo,
    origin: Origin,
    out: mpsc::Sender<OutFrame>,
    pending: Pending,
    next_id: AtomicU64,
    closed: CancellationToken,
}

const OUTBOUND_QUEUE: usize = 4096;

impl Connection {
    /// Starts the reader and writer tasks for an authenticated stream.
    pub(crate) fn start(
        framed: FramedStream,
        peer: MemberInfo,
        origin: Origin,
        incoming: mpsc::Sender<Incoming>,
        shutdown: &CancellationToken,
        faults: Arc<Faults>,
        write_stall_limit: Duration,
    ) -> Connection {
        let (out_tx, out_rx) = mpsc::channel::<OutFrame>(OUTBOUND_QUEUE);
        let (stream, writer) = member_framing(framed);
        let closed = shutdown.child_token();
        let pending: Pending = Arc::default();
        tokio::spawn(write_loop(
            writer,
            out_rx,
            closed.clone(),
            peer.address,
            write_stall_limit,
        ));
        tokio::spawn(read_loop(
            stream,
            peer,
            out_tx.clone(),
            pending.clone(),
            incoming,
            closed.clone(),
            faults,
        ));
        Connection {
            inner: Arc::new(Inner {
                peer,
                origin,
                out: out_tx,
                pending,
                next_id: AtomicU64::new(1),
                closed,
            }),
        }
    }

    pub fn peer(&self) -> MemberInfo {
        self.inner.peer
    }

    pub fn origin(&self) -> Origin {
        self.inner.origin
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.is_cancelled()
    }

    pub fn close(&self) {
        self.inner.closed.cancel();
    }

    pub fn has_pending_requests(&self) -> bool {
        self.inner
            .pending
            .lock()
            .map(|p| !p.is_empty())
            .unwrap_or(false)
    }

    /// Queues a one-way message.
    pub async fn send(&self, body: MemberMessage) -> Result<(), NetError> {
        self.push(codec::encode_envelope(0, EnvelopeKind::OneWay, body)?)
            .await
    }

    /// Sends a request and waits for its response, at most `timeout`.
    pub async fn request(
        &self,
        body: MemberMessage,
        timeout: Duration,
    ) -> Result<MemberMessage, NetError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let bytes = codec::encode_envelope(id, EnvelopeKind::Request, body)?;
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.inner.pending.lock() {
            p.insert(id, tx);
        }
        let peer = self.inner.peer.address;
        let result = async {
            self.push(bytes).await?;
            rx.await.map_err(|_| NetError::Closed(peer))
        };
        let outcome = tokio::time::timeout(timeout, result).await;
        if let Ok(mut p) = self.inner.pending.lock() {
            p.remove(&id);
        }
        outcome.map_err(|_| NetError::RequestTimeout(peer))?
    }

    async fn push(&self, bytes: OutFrame) -> Result<(), NetError> {
        if self.is_closed() {
            return Err(NetError::Closed(self.inner.peer.address));
        }
        self.inner
            .out
            .send(bytes)
            .await
            .map_err(|_| NetError::Closed(self.inner.peer.address))
    }
}

type Stream = Framed<OwnedReadHalf, LengthDelimitedCodec>;

/// Where the writer writes: the socket's write half, what the handshake
/// left unwritten, and the frame limit.
struct Writer {
    half: OwnedWriteHalf,
    leftover: BytesMut,
    max_frame: usize,
}

/// Bytes a writer gathers before writing, at most (more stays queued).
const WRITE_BATCH: usize = 256 * 1024;
/// Longest a peer may take no byte of what is queued for it before it
/// counts as not reading and the connection is closed (what was queued on it is dropped; senders that
/// wait for answers time out and retry on a new connection). Set by
/// `TransportConfig::write_stall_limit`.
pub(crate) const DEFAULT_WRITE_STALL_LIMIT: Duration = Duration::from_secs(30);

/// Splits the handshake's stream: frames in (keeping what it had read
/// ahead), the write half out.
fn member_framing(framed: FramedStream) -> (Stream, Writer) {
    let parts = framed.into_parts();
    let max_frame = parts.codec.max_frame_length();
    let (read, write) = parts.io.into_split();
    // Only read through the codec from here on (its encoder type is moot).
    let mut next = FramedParts::new::<bytes::Bytes>(read, parts.codec);
    next.read_buf = parts.read_buf;
    let writer = Writer {
        half: write,
        leftover: parts.write_buf,
        max_frame,
    };
    (Framed::from_parts(next), writer)
}

/// Drains the outbound queue; what is queued, and what other tasks queue
/// while this one yields, goes out in one vectored write (big payloads
/// from their own buffers).
async fn write_loop(
    mut w: Writer,
    mut rx: mpsc::Receiver<OutFrame>,
    closed: CancellationToken,
    peer: SocketAddr,
    stall_limit: Duration,
) {
    let mut chunks = Chunks::default();
    chunks.staging().extend_from_slice(&w.leftover);
    loop {
        if !chunks.is_empty() {
            // A peer that stops reading (paused, or its host gone without
            // a reset) must not hold what is queued for it forever: memory,
            // and partition copies that wait for theirs to be written.
            let written = tokio::select! {
                _ = closed.cancelled() => break,
                r = chunks.write_to(&mut w.half, stall_limit) => r,
            };
            match written {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    tracing::warn!(
                        "member {peer} took nothing for {stall_limit:?}; closing the connection"
                    );
                    break;
                }
                Err(e) => {
                    tracing::debug!("write to {peer} failed: {e}");
                    break;
                }
            }
        }

        let first = tokio::select! {
            _ = closed.cancelled() => break,
            m = rx.recv() => match m { Some(m) => m, None => break },
        };
        // Gather what other tasks queue meanwhile before writing: the task
        // that queued `first` woke this one, and tokio runs a woken task
        // next, before the others woken with it (backups of one batch of
        // client requests). Drain, let them run once, drain again. (More
        // yields gathered no more: docs/performance.md.)
        let mut failed = first.write_into(&mut chunks, w.max_frame).err();
        for after_yield in [false, true] {
            if after_yield {
                tokio::task::yield_now().await;
            }
            while chunks.len() < WRITE_BATCH {
                let Ok(more) = rx.try_recv() else { break };
                if let Err(e) = more.write_into(&mut chunks, w.max_frame) {
                    failed = Some(e);
                }
            }
        }
        if let Some(e) = failed {
            tracing::warn!("closing connection to member {peer}: {e}");
            break;
        }
    }
    let _ = w.half.shutdown().await;
    closed.cancel();
}

async fn read_loop(
    mut stream: Stream,
    peer: MemberInfo,
    out: mpsc::Sender<OutFrame>,
    pending: Pending,
    incoming: mpsc::Sender<Incoming>,
    closed: CancellationToken,
    faults: Arc<Faults>,
) {
    loop {
        let frame = tokio::select! {
            _ = closed.cancelled() => break,
            f = stream.next() => f,
        };
        let frame = match frame {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                tracing::warn!(
                    "closing connection to member {}: bad frame: {e}",
                    peer.address
                );
                break;
            }
            None => break,
        };
        if faults.is_blocked(peer.address) {
            // Cut off: what it sends never arrives.
            continue;
        }
        let env = match codec::decode_envelope(frame) {
            Ok(env) => env,
            Err(e) => {
                tracing::warn!("closing connection to member {}: {e}", peer.address);
                break;
            }
        };
        match env.kind {
            EnvelopeKind::Response => {
                let waiter = pending
                    .lock()
                    .ok()
                    .and_then(|mut p| p.remove(&env.correlation));
                if let Some(waiter) = waiter {
                    let _ = waiter.send(env.body);
                }
            }
            EnvelopeKind::Request | EnvelopeKind::OneWay => {
                let responder = (env.kind == EnvelopeKind::Request).then(|| Responder {
                    correlation: env.correlation,
                    out: out.clone(),
                });
                let msg = Incoming {
                    from: peer,
                    body: env.body,
                    responder,
                };
                if incoming.send(msg).await.is_err() {
                    break;
                }
            }
        }
    }
    closed.cancel();
    // Dropping the waiters wakes every pending request with "closed".
    if let Ok(mut p) = pending.lock() {
        p.clear();
    }
}
