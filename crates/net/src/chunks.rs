//! Vectored writes: small pieces are gathered into one staging buffer, big
//! payloads are queued as they are, and everything goes to the socket in
//! as few `writev` calls as it takes. A 10 KB value then goes from the
//! buffer it already lives in to the kernel, without being copied into a
//! write buffer first. Both the member-to-member writer and the client
//! endpoint's use it.

use bytes::{BufMut, Bytes, BytesMut};
use std::io::IoSlice;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Payloads from this size on are written from their own buffer.
pub const LARGE_PAYLOAD: usize = 2048;

/// `writev` takes at most this many slices at once (Linux's IOV_MAX is 1024).
const MAX_SLICES: usize = 512;

/// Bytes waiting to be written, in order.
#[derive(Default)]
pub struct Chunks {
    staging: BytesMut,
    queued: Vec<Bytes>,
    /// Bytes in `queued`.
    queued_len: usize,
}

impl Chunks {
    /// The buffer small pieces are written into.
    pub fn staging(&mut self) -> &mut BytesMut {
        &mut self.staging
    }

    /// Appends `payload`: copied into the staging buffer when small,
    /// queued as it is (after what was staged before it) when big.
    pub fn put_payload(&mut self, payload: &Bytes) {
        if payload.len() >= LARGE_PAYLOAD {
            self.stage_out();
            self.queued_len += payload.len();
            self.queued.push(payload.clone());
        } else {
            self.staging.put_slice(payload);
        }
    }

    fn stage_out(&mut self) {
        if !self.staging.is_empty() {
            self.queued_len += self.staging.len();
            self.queued.push(self.staging.split().freeze());
        }
    }

    /// Bytes waiting, big payloads included.
    pub fn len(&self) -> usize {
        self.staging.len() + self.queued_len
    }

    pub fn is_empty(&self) -> bool {
        self.staging.is_empty() && self.queued.is_empty()
    }

    /// Writes everything, in order, with as few system calls as the socket
    /// allows; empty afterwards. Fails with `TimedOut` when the socket
    /// takes no byte for `stall` (see [`write_all`]).
    pub async fn write_to<W: AsyncWrite + Unpin>(
        &mut self,
        w: &mut W,
        stall: Duration,
    ) -> std::io::Result<()> {
        self.stage_out();
        self.queued_len = 0;
        write_all(w, &mut self.queued, stall).await
    }
}

/// Writes every chunk, in order, with as few `writev` calls as the socket
/// allows; `chunks` is empty afterwards (also after an error). A peer that
/// takes no byte for `stall` fails it with `TimedOut`: the limit is on
/// progress, not on the whole batch, so a slow but steady reader is never
/// cut off however much is queued for it.
pub async fn write_all<W: AsyncWrite + Unpin>(
    w: &mut W,
    chunks: &mut Vec<Bytes>,
    stall: Duration,
) -> std::io::Result<()> {
    let mut first = 0;
    let result = loop {
        if first == chunks.len() {
            break Ok(());
        }
        let slices: Vec<IoSlice<'_>> = chunks[first..]
            .iter()
            .take(MAX_SLICES)
            .map(|c| IoSlice::new(c))
            .collect();
        let mut n = match tokio::time::timeout(stall, w.write_vectored(&slices)).await {
            Ok(Ok(0)) => break Err(std::io::ErrorKind::WriteZero.into()),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => break Err(e),
            Err(_) => break Err(std::io::ErrorKind::TimedOut.into()),
        };
        while n > 0 {
            let len = chunks[first].len();
            if n >= len {
                n -= len;
                first += 1;
            } else {
                chunks[first] = chunks[first].slice(n..);
                n = 0;
            }
        }
    };
    chunks.clear();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn what_is_written_arrives_whole_and_in_order() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).await.unwrap();
            all
        });
        let mut w = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut chunks = Chunks::default();
        let mut expected = Vec::new();
        // Far more than one socket buffer, so writes are partial; slices
        // beyond MAX_SLICES; big and small payloads interleaved.
        for i in 0..3000u32 {
            chunks.staging().put_u32(i);
            expected.extend_from_slice(&i.to_be_bytes());
            let len = if i % 3 == 0 {
                LARGE_PAYLOAD + i as usize
            } else {
                (i % 50) as usize
            };
            let payload = Bytes::from(vec![(i % 251) as u8; len]);
            chunks.put_payload(&payload);
            expected.extend_from_slice(&payload);
        }
        assert_eq!(chunks.len(), expected.len());
        chunks
            .write_to(&mut w, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(chunks.is_empty());
        drop(w);
        assert!(reader.await.unwrap() == expected);
    }
}

#[cfg(test)]
mod stall_tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (w, r) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (w.unwrap(), r.unwrap().0)
    }

    fn payload(len: usize) -> Vec<Bytes> {
        vec![Bytes::from(vec![7u8; len])]
    }

    /// A reader that takes 1 MiB every 50 ms gets 48 MiB in about 2.4 s:
    /// far longer than the 1 s stall limit, which is on progress.
    #[tokio::test]
    async fn a_slow_steady_reader_is_not_a_stall() {
        let (mut w, mut r) = pair().await;
        let total = 48 << 20;
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 1 << 20];
            let mut got = 0;
            while got < total {
                let mut chunk = 0;
                while chunk < buf.len() && got < total {
                    let n = r.read(&mut buf[chunk..]).await.unwrap();
                    assert!(n > 0, "closed early");
                    chunk += n;
                    got += n;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            got
        });
        let started = std::time::Instant::now();
        let mut chunks = payload(total);
        write_all(&mut w, &mut chunks, Duration::from_secs(1))
            .await
            .expect("a steady reader is no stall");
        assert!(started.elapsed() > Duration::from_secs(1));
        assert_eq!(reader.await.unwrap(), total);
    }

    /// A reader that takes nothing fails the write with `TimedOut` once
    /// the socket buffers are full and the limit has passed.
    #[tokio::test]
    async fn a_reader_that_takes_nothing_times_out() {
        let (mut w, _r) = pair().await;
        let mut chunks = payload(64 << 20);
        let err = write_all(&mut w, &mut chunks, Duration::from_millis(300))
            .await
            .expect_err("nobody reads");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(chunks.is_empty());
    }
}
