//! Each connection's sweeper, one timer per connection: on every tick of
//! the coarse clock it fails the requests whose deadline passed, pings the
//! member when the connection has sent nothing for the heartbeat interval,
//! and closes the connection when the member has sent nothing for the
//! heartbeat timeout.
//!
//! Members close client connections that send nothing for a while
//! (Hazelcast: 60 s), and a member whose host vanished without a reset
//! never closes its end: both sides need traffic to tell a quiet peer from
//! a gone one. Hazelcast's clients ping every 5 s and give up after 60 s
//! of silence; these are the defaults here too.

use crate::clock::{CoarseClock, TICK};
use crate::connection::{Closing, Outgoing, Pending, Waiter};
use crate::error::ClientError;
use ferrocast_protocol::messages::client_side;
use ferrocast_protocol::messages::types::CLIENT_PING;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

/// How often a quiet connection pings, and how long a silent member is
/// given before its connection is closed.
#[derive(Clone, Copy, Debug)]
pub struct Heartbeat {
    pub interval: Duration,
    pub timeout: Duration,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
        }
    }
}

/// When the connection last wrote and last read, in the coarse clock's
/// milliseconds (the writer and the socket's reader store, the sweeper
/// loads). Reads count bytes, not messages, as members count a client's
/// silence: a big response coming in slowly is the member talking.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    pub(crate) last_write: AtomicU64,
    pub(crate) last_read: AtomicU64,
}

impl Activity {
    pub(crate) fn starting_at(now_ms: u64) -> Self {
        Self {
            last_write: AtomicU64::new(now_ms),
            last_read: AtomicU64::new(now_ms),
        }
    }
}

/// The socket's read half, noting in [`Activity::last_read`] when bytes
/// came in: one atomic store per read system call, where a timer per read
/// would cost more than the read.
pub(crate) struct StampedReader<R> {
    pub(crate) inner: R,
    pub(crate) activity: Arc<Activity>,
    pub(crate) clock: Arc<CoarseClock>,
}

impl<R: AsyncRead + Unpin> AsyncRead for StampedReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            let now = self.clock.now_ms();
            self.activity.last_read.store(now, Ordering::Relaxed);
        }
        polled
    }
}

pub(crate) struct Sweeper {
    pub(crate) addr: SocketAddr,
    pub(crate) closed: Closing,
    pub(crate) pending: Pending,
    pub(crate) clock: Arc<CoarseClock>,
    pub(crate) activity: Arc<Activity>,
    pub(crate) heartbeat: Heartbeat,
    /// Weak: a connection nobody holds any more ends (its writer sees the
    /// queue close) instead of being kept alive by its own pings.
    pub(crate) out: mpsc::WeakSender<Outgoing>,
}

impl Sweeper {
    pub(crate) async fn run(self) {
        // At least a tick each: the sweeper looks once per tick.
        let interval = self.heartbeat.interval.max(TICK).as_millis() as u64;
        let timeout = self.heartbeat.timeout.max(TICK * 2).as_millis() as u64;
        // Pings carry negative correlation ids: requests use positive ones,
        // and an answer nobody waits for is dropped by the reader.
        let mut next_ping = -1i64;
        let mut last_ping = 0u64;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.closed.cancelled() => break,
                _ = tick.tick() => {}
            }
            let now = self.clock.tick();
            self.expire(now);
            let read = self.activity.last_read.load(Ordering::Relaxed);
            if now.saturating_sub(read) >= timeout {
                tracing::warn!(
                    "member at {} sent nothing for {:?}; closing the connection",
                    self.addr,
                    self.heartbeat.timeout
                );
                self.closed.cancel();
                break;
            }
            let wrote = self.activity.last_write.load(Ordering::Relaxed);
            if now.saturating_sub(wrote.max(last_ping)) >= interval {
                let Some(out) = self.out.upgrade() else { break };
                let ping = Arc::new(client_side::bare(CLIENT_PING));
                // A full queue is traffic enough.
                if out.try_send((next_ping, ping)).is_ok() {
                    next_ping -= 1;
                }
                last_ping = now;
            }
        }
    }

    /// Fails the requests whose deadline is past.
    fn expire(&self, now: u64) {
        let expired: Vec<Waiter> = {
            let Ok(mut p) = self.pending.lock() else {
                return;
            };
            p.extract_if(|_, w| w.deadline <= now)
                .map(|(_, w)| w)
                .collect()
        };
        for w in expired {
            let _ = w.answer.send(Err(ClientError::Timeout(w.timeout)));
        }
    }
}
