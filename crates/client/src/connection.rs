//! One authenticated connection to one member: a writer task batching
//! requests into the socket, a reader task completing requests by
//! correlation id and handing events to their listeners, and a sweeper
//! failing requests whose deadline passed (one timer per connection, not
//! one per request) and keeping the connection's heartbeat
//! (`sweeper.rs`).

use crate::clock::CoarseClock;
use crate::error::ClientError;
use crate::sweeper::{Activity, Heartbeat, StampedReader, Sweeper};
use crate::write::RequestWriter;
use bytes::BytesMut;
use ferrocast_protocol::messages::client_side::{self, AuthenticationResult};
use ferrocast_protocol::messages::types::EXCEPTION;
use ferrocast_protocol::messages::AuthenticationRequest;
use ferrocast_protocol::{
    ClientMessage, MessageDecoder, ProtocolError, CLIENT_PREAMBLE, READ_AHEAD,
};
use futures::StreamExt;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{Decoder, FramedRead};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use uuid::Uuid;

/// Bytes of requests a connection gathers into one write at most.
const WRITE_BATCH: usize = 256 * 1024;

struct Codec(MessageDecoder);

impl Decoder for Codec {
    type Item = ClientMessage;
    type Error = ClientError;
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<ClientMessage>, ClientError> {
        Ok(self.0.decode(src)?)
    }
}

/// A request on its way out: its correlation id and the message, shared
/// with the caller, who may send it again under another id.
pub(crate) type Outgoing = (i64, Arc<ClientMessage>);

/// A request waiting for its response.
pub(crate) struct Waiter {
    pub(crate) answer: oneshot::Sender<Result<ClientMessage, ClientError>>,
    /// In the connection clock's milliseconds.
    pub(crate) deadline: u64,
    pub(crate) timeout: Duration,
}

pub(crate) type Pending = Arc<Mutex<HashMap<i64, Waiter>>>;
type EventSinks = Arc<Mutex<HashMap<i64, mpsc::UnboundedSender<ClientMessage>>>>;

#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    member: Uuid,
    out: mpsc::Sender<Outgoing>,
    clock: Arc<CoarseClock>,
    pending: Pending,
    events: EventSinks,
    closed: Closing,
    activity: Arc<Activity>,
}

/// Whether a connection is closing: a token for the tasks to wait on, and
/// a flag for the per-request checks (a token's `is_cancelled` takes a
/// lock; two per request were 1.75% of the load generator's time).
#[derive(Clone, Debug, Default)]
pub(crate) struct Closing {
    token: CancellationToken,
    done: Arc<AtomicBool>,
}

impl Closing {
    pub(crate) fn cancel(&self) {
        // The flag first: whoever sees the token cancelled sees the flag.
        self.done.store(true, Ordering::Release);
        self.token.cancel();
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    pub(crate) fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }
}

/// Converts an exception response into an error.
pub fn check(msg: ClientMessage) -> Result<ClientMessage, ClientError> {
    if msg.message_type()? != EXCEPTION {
        return Ok(msg);
    }
    let errors = client_side::error_response(&msg)?;
    let first = errors.into_iter().next();
    Err(ClientError::Server {
        code: first.as_ref().map(|e| e.code).unwrap_or(0),
        class: first
            .as_ref()
            .map(|e| e.class_name.clone())
            .unwrap_or_default(),
        message: first.and_then(|e| e.message).unwrap_or_default(),
    })
}

impl Connection {
    /// Connects to `addr` and authenticates with `auth`.
    pub async fn open(
        addr: SocketAddr,
        auth: &AuthenticationRequest,
        correlation: i64,
        timeout: Duration,
        clock: Arc<CoarseClock>,
        heartbeat: Heartbeat,
    ) -> Result<(Connection, AuthenticationResult), ClientError> {
        let connect_err = |reason: String| ClientError::Connect {
            addr: addr.to_string(),
            reason,
        };
        let mut stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_err("timed out".into()))?
            .map_err(|e| connect_err(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        stream.write_all(CLIENT_PREAMBLE).await?;
        let (r, w) = stream.into_split();
        let activity = Arc::new(Activity::starting_at(clock.tick()));
        let r = StampedReader {
            inner: r,
            activity: activity.clone(),
            clock: clock.clone(),
        };
        let mut reader = FramedRead::with_capacity(r, Codec(MessageDecoder::default()), READ_AHEAD);
        let mut writer = RequestWriter::new(w, WRITE_BATCH);
        let request = Arc::new(client_side::authentication(auth));
        writer.feed((correlation, request)).await?;
        writer.flush().await?;
        let response = tokio::time::timeout(timeout, reader.next())
            .await
            .map_err(|_| connect_err("no authentication answer".into()))?
            .ok_or(ClientError::Closed)??;
        let result = client_side::authentication_response(&check(response)?)?;
        if result.status != 0 {
            let reason = match result.status {
                1 => "wrong cluster name or credentials".to_string(),
                2 => "serialization version mismatch".to_string(),
                3 => "the member is not in a cluster yet".to_string(),
                s => format!("status {s}"),
            };
            return Err(ClientError::Authentication {
                addr: addr.to_string(),
                reason,
            });
        }
        let member = result
            .member_uuid
            .ok_or_else(|| ProtocolError::Malformed("authentication without member uuid".into()))?;
        let (out_tx, mut out_rx) = mpsc::channel::<Outgoing>(65_536);
        let closed = Closing::default();
        let pending: Pending = Arc::default();
        let events: EventSinks = Arc::default();
        let (c, a, now) = (closed.clone(), activity.clone(), clock.clone());
        tokio::spawn(async move {
            // Made once: a cancellation future registers with its token on
            // its first poll and leaves on drop, per loop if made there.
            let closing = c.cancelled();
            tokio::pin!(closing);
            loop {
                let first = tokio::select! {
                    biased;
                    m = out_rx.recv() => match m { Some(m) => m, None => break },
                    _ = &mut closing => break,
                };
                // Gather the requests other tasks are about to send before
                // writing: a write system call costs far more than a
                // request, and on loopback it also runs the member's
                // receive path. The task that queued `first` woke this one
                // and tokio runs the woken task next, before the other
                // tasks woken by the same batch of responses: drain, let
                // them run once, drain again. Without the yield every
                // request went out in a write of its own.
                let batch = async {
                    writer.feed(first).await?;
                    for after_yield in [false, true] {
                        if after_yield {
                            tokio::task::yield_now().await;
                        }
                        while let Ok(more) = out_rx.try_recv() {
                            writer.feed(more).await?;
                        }
                    }
                    writer.flush().await
                };
                // A close (the heartbeat timeout: a member that reads
                // nothing) must not wait for a write that never ends.
                let written = tokio::select! {
                    biased;
                    r = batch => r.is_ok(),
                    _ = &mut closing => false,
                };
                if !written {
                    break;
                }
                a.last_write.store(now.now_ms(), Ordering::Relaxed);
            }
            c.cancel();
        });
        let (c, p, e) = (closed.clone(), pending.clone(), events.clone());
        tokio::spawn(async move {
            let closing = c.cancelled();
            tokio::pin!(closing);
            loop {
                let next = tokio::select! {
                    biased;
                    n = reader.next() => n,
                    _ = &mut closing => break,
                };
                let Some(Ok(msg)) = next else { break };
                let Ok(corr) = msg.correlation_id() else {
                    continue;
                };
                if msg.is_event() {
                    let sink = e.lock().ok().and_then(|s| s.get(&corr).cloned());
                    if let Some(sink) = sink {
                        let _ = sink.send(msg);
                    }
                } else if let Some(waiter) = p.lock().ok().and_then(|mut p| p.remove(&corr)) {
                    let _ = waiter.answer.send(Ok(msg));
                }
            }
            c.cancel();
            if let Ok(mut p) = p.lock() {
                p.clear();
            }
        });
        tokio::spawn(
            Sweeper {
                addr,
                closed: closed.clone(),
                pending: pending.clone(),
                clock: clock.clone(),
                activity: activity.clone(),
                heartbeat,
                out: out_tx.downgrade(),
            }
            .run(),
        );
        let conn = Connection {
            inner: Arc::new(Inner {
                member,
                out: out_tx,
                clock,
                pending,
                events,
                closed,
                activity,
            }),
        };
        Ok((conn, result))
    }

    pub fn member(&self) -> Uuid {
        self.inner.member
    }

    /// Whether both are the same connection (not just to the same member).
    pub(crate) fn is(&self, other: &Connection) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.is_cancelled()
    }

    /// How long the member has sent nothing (no byte) on this connection,
    /// to the coarse clock's tick. Pings keep an idle connection talking.
    pub fn silent_for(&self) -> Duration {
        let read = self.inner.activity.last_read.load(Ordering::Relaxed);
        Duration::from_millis(self.inner.clock.now_ms().saturating_sub(read))
    }

    pub fn close(&self) {
        self.inner.closed.cancel();
    }

    /// Sends `msg` with `correlation` and waits for its response, at most
    /// `timeout` (give or take the clock's tick).
    pub async fn request(
        &self,
        msg: impl Into<Arc<ClientMessage>>,
        correlation: i64,
        timeout: Duration,
    ) -> Result<ClientMessage, ClientError> {
        let (answer, rx) = oneshot::channel();
        let waiter = Waiter {
            answer,
            deadline: self.inner.clock.deadline(timeout),
            timeout,
        };
        if let Ok(mut p) = self.inner.pending.lock() {
            p.insert(correlation, waiter);
        }
        // The reader cancels, then drops every waiter; one registered after
        // that (under the same lock, so it sees the cancellation) would
        // wait for nobody: the sweeper stopped too.
        if self.is_closed() {
            if let Ok(mut p) = self.inner.pending.lock() {
                p.remove(&correlation);
            }
            return Err(ClientError::Closed);
        }
        let queued = match self.inner.out.try_send((correlation, msg.into())) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(ClientError::Closed),
            // A full queue (a writer stuck on a slow socket): wait for room,
            // but not past the deadline.
            Err(mpsc::error::TrySendError::Full(m)) => {
                match tokio::time::timeout(timeout, self.inner.out.send(m)).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(_)) => Err(ClientError::Closed),
                    Err(_) => Err(ClientError::Timeout(timeout)),
                }
            }
        };
        if let Err(e) = queued {
            if let Ok(mut p) = self.inner.pending.lock() {
                p.remove(&correlation);
            }
            return Err(e);
        }
        // The reader answers, the sweeper times out, and a closing
        // connection drops the waiter: the request always ends.
        match rx.await {
            Ok(answer) => check(answer?),
            Err(_) => Err(ClientError::Closed),
        }
    }

    /// Routes events carrying `correlation` to `sink`.
    pub fn on_events(&self, correlation: i64, sink: mpsc::UnboundedSender<ClientMessage>) {
        if let Ok(mut e) = self.inner.events.lock() {
            e.insert(correlation, sink);
        }
    }
}
