//! Telling a client that has gone silent: one that sends nothing, not even
//! a ping, for the heartbeat timeout has lost its host, or hangs.
//!
//! Silence is measured in bytes, as Hazelcast measures it, not in whole
//! messages: a client in the middle of sending one big request over a slow
//! link is talking. A timer per read would cost more than the read, so a
//! ticker looks four times per timeout at how many bytes have come in: a
//! silent client is noticed between 1 and 1.25 timeouts after its last byte.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, ReadBuf};

/// A reader that counts the bytes read through it.
pub struct Counted<R> {
    inner: R,
    bytes: u64,
}

impl<R> Counted<R> {
    pub fn new(inner: R) -> Self {
        Self { inner, bytes: 0 }
    }

    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.bytes += (buf.filled().len() - before) as u64;
        polled
    }
}

pub struct Silence {
    pub check: tokio::time::Interval,
    timeout: Duration,
    /// Bytes read at the last tick, and since when that has not moved.
    seen: u64,
    quiet_since: tokio::time::Instant,
}

impl Silence {
    pub fn new(timeout: Duration) -> Self {
        let period = timeout / 4;
        let start = tokio::time::Instant::now();
        let mut check = tokio::time::interval_at(start + period, period);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            check,
            timeout,
            seen: 0,
            quiet_since: start,
        }
    }

    /// Called on each tick with the bytes read so far: whether nothing
    /// arrived for the whole timeout.
    pub fn too_long(&mut self, read: u64) -> bool {
        if read != self.seen {
            self.seen = read;
            self.quiet_since = tokio::time::Instant::now();
            return false;
        }
        self.quiet_since.elapsed() >= self.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn counts_every_byte_read() {
        let (mut w, r) = tokio::io::duplex(64);
        let mut counted = Counted::new(r);
        w.write_all(b"0123456789").await.unwrap();
        let mut buf = [0u8; 4];
        counted.read_exact(&mut buf).await.unwrap();
        assert_eq!(counted.bytes(), 4);
        counted.read_exact(&mut buf).await.unwrap();
        assert_eq!(counted.bytes(), 8);
    }

    #[tokio::test]
    async fn silent_only_after_a_whole_timeout_without_bytes() {
        let mut s = Silence::new(Duration::from_millis(400));
        // Bytes trickle in at every tick: never silent.
        for read in 1..=8 {
            s.check.tick().await;
            assert!(!s.too_long(read));
        }
        // Then nothing: silent once 400 ms have passed since the tick that
        // saw the last byte: at the 4th tick after it, or the 5th when the
        // 4th lands a hair before the 400 ms (ticks are never early, and a
        // busy machine delays them).
        let quiet = std::time::Instant::now();
        let mut ticks = 0;
        loop {
            s.check.tick().await;
            ticks += 1;
            if s.too_long(8) {
                break;
            }
        }
        assert!((4..=5).contains(&ticks), "{ticks} ticks");
        assert!(quiet.elapsed() >= Duration::from_millis(390));
    }
}
