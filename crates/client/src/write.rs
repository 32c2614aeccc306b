//! The request side of a connection: requests are encoded into a staging
//! buffer and go to the socket in vectored writes, a value frame of 2 KiB
//! or more straight from the buffer it already lives in
//! (`ClientMessage::encode_chunks_with_correlation`). Copying every 10 KB
//! value into a write buffer first cost the load generator a third of its
//! CPU on put-heavy 10 KB runs, where it, not the member, was the limit
//! (docs/performance.md).

use crate::connection::Outgoing;
use crate::error::ClientError;
use bytes::{Bytes, BytesMut};
use std::io::IoSlice;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// `writev` takes at most this many slices at once (Linux's IOV_MAX is 1024).
const MAX_SLICES: usize = 512;

/// Encodes requests and writes them out in batches.
pub(crate) struct RequestWriter<W> {
    socket: W,
    staging: BytesMut,
    /// What is ready to go, in order: staged pieces and big frames.
    chunks: Vec<Bytes>,
    /// Bytes in `chunks`.
    queued: usize,
    /// `feed` writes out once this many bytes wait.
    batch: usize,
}

impl<W: AsyncWrite + Unpin> RequestWriter<W> {
    pub(crate) fn new(socket: W, batch: usize) -> Self {
        RequestWriter {
            socket,
            staging: BytesMut::new(),
            chunks: Vec::new(),
            queued: 0,
            batch,
        }
    }

    /// Adds a request to the batch; writes the batch out when it has
    /// grown to the batch size, so a writer draining a long queue holds
    /// neither unbounded memory nor the socket idle.
    pub(crate) async fn feed(&mut self, (id, msg): Outgoing) -> Result<(), ClientError> {
        let before = self.chunks.len();
        msg.encode_chunks_with_correlation(id, &mut self.staging, &mut self.chunks)?;
        self.queued += self.chunks[before..].iter().map(Bytes::len).sum::<usize>();
        if self.queued + self.staging.len() >= self.batch {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes everything fed so far.
    pub(crate) async fn flush(&mut self) -> Result<(), ClientError> {
        if !self.staging.is_empty() {
            self.chunks.push(self.staging.split().freeze());
        }
        self.queued = 0;
        let written = write_chunks(&mut self.socket, &mut self.chunks).await;
        self.chunks.clear();
        Ok(written?)
    }
}

/// Writes `chunks` in order, as few `writev` calls as the socket takes.
/// No stall limit here: the connection's heartbeat closes a connection
/// whose member reads nothing, and the writer gives up on that.
async fn write_chunks<W: AsyncWrite + Unpin>(
    w: &mut W,
    chunks: &mut [Bytes],
) -> std::io::Result<()> {
    let mut next = 0;
    while next < chunks.len() {
        let slices: Vec<IoSlice<'_>> = chunks[next..]
            .iter()
            .take(MAX_SLICES)
            .map(|c| IoSlice::new(c))
            .collect();
        let mut written = w.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        // Skip what went out whole; keep the rest of a chunk cut short.
        while written > 0 {
            let len = chunks[next].len();
            if written < len {
                chunks[next] = chunks[next].slice(written..);
                break;
            }
            written -= len;
            next += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocast_protocol::messages::client_side;
    use ferrocast_protocol::{data, MapOp, MessageDecoder};
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;

    /// Big and small requests, far more than a socket buffer so writes
    /// are cut short, and over the batch size so `feed` writes too: the
    /// member reads each whole, in order, under its own correlation id.
    #[tokio::test]
    async fn requests_arrive_whole_in_order_under_their_ids() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut all = BytesMut::new();
            s.read_buf(&mut all).await.unwrap();
            while s.read_buf(&mut all).await.unwrap() > 0 {}
            let mut decoder = MessageDecoder::default();
            let mut got = Vec::new();
            while let Some(m) = decoder.decode(&mut all).unwrap() {
                got.push(m);
            }
            got
        });
        let socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut writer = RequestWriter::new(socket, 64 * 1024);
        let mut sent = Vec::new();
        for i in 0..400usize {
            let size = if i % 3 == 0 { 10_000 + i } else { i };
            let op = MapOp::Set {
                key: data::string(&format!("k{i}")),
                value: data::byte_array(&vec![(i % 251) as u8; size]),
                ttl: -1,
            };
            let msg = Arc::new(client_side::map_request("m", &op, 7));
            writer.feed((1000 + i as i64, msg.clone())).await.unwrap();
            sent.push(msg);
        }
        writer.flush().await.unwrap();
        drop(writer);
        let got = reader.await.unwrap();
        assert_eq!(got.len(), sent.len());
        for (i, (got, sent)) in got.iter().zip(&sent).enumerate() {
            assert_eq!(got.correlation_id().unwrap(), 1000 + i as i64);
            let mut expected = (**sent).clone();
            expected.set_correlation_id(1000 + i as i64).unwrap();
            assert_eq!(got.frames.len(), expected.frames.len());
            for (g, e) in got.frames.iter().zip(&expected.frames) {
                assert_eq!(g.content, e.content);
            }
        }
    }
}
