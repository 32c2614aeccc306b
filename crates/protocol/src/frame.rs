//! Frames and client messages.
//!
//! A client message is a sequence of frames. Each frame is a 4-byte
//! little-endian length (header included), 2 bytes of little-endian flags
//! and the content. The first ("initial") frame holds the message type, the
//! correlation id and the partition id (requests and events) or the backup
//! acknowledgement count (responses), followed by the message's fixed-size
//! fields. The last frame carries `IS_FINAL`.

use crate::error::ProtocolError;
use bytes::{Buf, BufMut, Bytes, BytesMut};

pub const SIZE_OF_FRAME_LENGTH_AND_FLAGS: usize = 6;

pub mod flags {
    pub const BEGIN_FRAGMENT: u16 = 1 << 15;
    pub const END_FRAGMENT: u16 = 1 << 14;
    pub const UNFRAGMENTED: u16 = BEGIN_FRAGMENT | END_FRAGMENT;
    pub const IS_FINAL: u16 = 1 << 13;
    pub const BEGIN_DATA_STRUCTURE: u16 = 1 << 12;
    pub const END_DATA_STRUCTURE: u16 = 1 << 11;
    pub const IS_NULL: u16 = 1 << 10;
    pub const IS_EVENT: u16 = 1 << 9;
    pub const BACKUP_AWARE: u16 = 1 << 8;
    pub const BACKUP_EVENT: u16 = 1 << 7;
}

/// Offsets in the initial frame's content.
pub const TYPE_OFFSET: usize = 0;
pub const CORRELATION_ID_OFFSET: usize = 4;
pub const PARTITION_ID_OFFSET: usize = 12;
pub const RESPONSE_BACKUP_ACKS_OFFSET: usize = 12;
/// Where a request's (or event's) own fixed fields start.
pub const REQUEST_HEADER_SIZE: usize = 16;
pub const EVENT_HEADER_SIZE: usize = 16;
/// Where a response's own fixed fields start.
pub const RESPONSE_HEADER_SIZE: usize = 13;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub flags: u16,
    pub content: Bytes,
}

impl Frame {
    pub fn new(content: impl Into<Bytes>) -> Self {
        Frame {
            flags: 0,
            content: content.into(),
        }
    }

    pub fn with_flags(flags: u16, content: impl Into<Bytes>) -> Self {
        Frame {
            flags,
            content: content.into(),
        }
    }

    pub fn null() -> Self {
        Self::with_flags(flags::IS_NULL, Bytes::new())
    }
    pub fn begin() -> Self {
        Self::with_flags(flags::BEGIN_DATA_STRUCTURE, Bytes::new())
    }
    pub fn end() -> Self {
        Self::with_flags(flags::END_DATA_STRUCTURE, Bytes::new())
    }

    pub fn is(&self, flag: u16) -> bool {
        self.flags & flag == flag
    }
    pub fn is_null(&self) -> bool {
        self.is(flags::IS_NULL)
    }
    pub fn is_begin(&self) -> bool {
        self.is(flags::BEGIN_DATA_STRUCTURE)
    }
    pub fn is_end(&self) -> bool {
        self.is(flags::END_DATA_STRUCTURE)
    }

    pub fn encoded_len(&self) -> usize {
        SIZE_OF_FRAME_LENGTH_AND_FLAGS + self.content.len()
    }

    pub fn write_to(&self, out: &mut BytesMut) {
        out.put_u32_le(self.encoded_len() as u32);
        out.put_u16_le(self.flags);
        out.put_slice(&self.content);
    }
}

/// A whole client message.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ClientMessage {
    pub frames: Vec<Frame>,
}

impl ClientMessage {
    /// Starts a request or event: initial frame with type, correlation and partition.
    pub fn with_header(message_type: u32, header_size: usize, fixed: usize) -> InitialFrame {
        let mut buf = BytesMut::zeroed(header_size + fixed);
        buf[TYPE_OFFSET..TYPE_OFFSET + 4].copy_from_slice(&message_type.to_le_bytes());
        // Requests and events carry a partition id (-1: none); responses
        // carry a backup-ack count byte there instead (0).
        if header_size >= PARTITION_ID_OFFSET + 4 {
            buf[PARTITION_ID_OFFSET..PARTITION_ID_OFFSET + 4]
                .copy_from_slice(&(-1i32).to_le_bytes());
        }
        InitialFrame { buf, header_size }
    }

    fn initial(&self) -> Result<&Frame, ProtocolError> {
        self.frames
            .first()
            .ok_or(ProtocolError::Truncated("no frames"))
    }

    pub fn message_type(&self) -> Result<u32, ProtocolError> {
        read_u32(&self.initial()?.content, TYPE_OFFSET)
    }

    pub fn correlation_id(&self) -> Result<i64, ProtocolError> {
        read_i64(&self.initial()?.content, CORRELATION_ID_OFFSET)
    }

    pub fn partition_id(&self) -> Result<i32, ProtocolError> {
        read_i32(&self.initial()?.content, PARTITION_ID_OFFSET)
    }

    /// Rewrites the correlation id of the initial frame.
    pub fn set_correlation_id(&mut self, id: i64) -> Result<(), ProtocolError> {
        let f = self
            .frames
            .first_mut()
            .ok_or(ProtocolError::Truncated("no frames"))?;
        if f.content.len() < CORRELATION_ID_OFFSET + 8 {
            return Err(ProtocolError::Truncated("initial frame"));
        }
        let mut c = BytesMut::from(&f.content[..]);
        c[CORRELATION_ID_OFFSET..CORRELATION_ID_OFFSET + 8].copy_from_slice(&id.to_le_bytes());
        f.content = c.freeze();
        Ok(())
    }

    pub fn is_event(&self) -> bool {
        self.frames.first().is_some_and(|f| f.is(flags::IS_EVENT))
    }

    /// Bytes on the wire, with `IS_FINAL` on the last frame and the
    /// unfragmented flags on the first.
    pub fn encode(&self, out: &mut BytesMut) {
        out.reserve(self.encoded_len());
        for (f, flags) in self.frames_on_the_wire() {
            out.put_u32_le(f.encoded_len() as u32);
            out.put_u16_le(flags);
            out.put_slice(&f.content);
        }
    }

    /// Each frame with the flags it carries on the wire: `UNFRAGMENTED` on
    /// the first, `IS_FINAL` on the last.
    fn frames_on_the_wire(&self) -> impl Iterator<Item = (&Frame, u16)> {
        let n = self.frames.len();
        self.frames.iter().enumerate().map(move |(i, f)| {
            let mut flags = f.flags;
            if i == 0 {
                flags |= flags::UNFRAGMENTED;
            }
            if i + 1 == n {
                flags |= flags::IS_FINAL;
            }
            (f, flags)
        })
    }

    /// Encodes the message as if its correlation id were `id`, leaving the
    /// message as it is: one message can be sent again (a retry) under a new
    /// id without copying it first.
    pub fn encode_with_correlation(
        &self,
        id: i64,
        out: &mut BytesMut,
    ) -> Result<(), ProtocolError> {
        let at = out.len() + SIZE_OF_FRAME_LENGTH_AND_FLAGS + CORRELATION_ID_OFFSET;
        if self.frames.first().map_or(0, |f| f.content.len()) < CORRELATION_ID_OFFSET + 8 {
            return Err(ProtocolError::Truncated("initial frame"));
        }
        self.encode(out);
        out[at..at + 8].copy_from_slice(&id.to_le_bytes());
        Ok(())
    }

    pub fn encoded_len(&self) -> usize {
        self.frames.iter().map(Frame::encoded_len).sum()
    }

    /// Like [`encode`](Self::encode), for vectored writes: frame headers
    /// and small contents are copied into `staging`; a content of at least
    /// [`LARGE_FRAME`] bytes is not copied but queued in `chunks` as it is
    /// (after whatever was staged before it), so a big value goes from the
    /// store's copy to the socket without another copy.
    pub fn encode_chunks(&self, staging: &mut BytesMut, chunks: &mut Vec<Bytes>) {
        for (f, flags) in self.frames_on_the_wire() {
            f.stage_or_queue(flags, staging, chunks);
        }
    }

    /// [`encode_chunks`](Self::encode_chunks) under the correlation id
    /// `id`, leaving the message as it is (see
    /// [`encode_with_correlation`](Self::encode_with_correlation)). The
    /// initial frame, where the id goes, is always staged: it holds fixed
    /// fields only, and the id is written into the staged copy.
    pub fn encode_chunks_with_correlation(
        &self,
        id: i64,
        staging: &mut BytesMut,
        chunks: &mut Vec<Bytes>,
    ) -> Result<(), ProtocolError> {
        if self.frames.first().map_or(0, |f| f.content.len()) < CORRELATION_ID_OFFSET + 8 {
            return Err(ProtocolError::Truncated("initial frame"));
        }
        let at = staging.len() + SIZE_OF_FRAME_LENGTH_AND_FLAGS + CORRELATION_ID_OFFSET;
        for (i, (f, flags)) in self.frames_on_the_wire().enumerate() {
            if i == 0 {
                staging.put_u32_le(f.encoded_len() as u32);
                staging.put_u16_le(flags);
                staging.put_slice(&f.content);
                staging[at..at + 8].copy_from_slice(&id.to_le_bytes());
            } else {
                f.stage_or_queue(flags, staging, chunks);
            }
        }
        Ok(())
    }
}

impl Frame {
    /// Writes the frame's header into `staging`, and its content too when
    /// small; a content of [`LARGE_FRAME`] bytes or more is queued in
    /// `chunks` as it is, after what was staged before it.
    fn stage_or_queue(&self, flags: u16, staging: &mut BytesMut, chunks: &mut Vec<Bytes>) {
        staging.put_u32_le(self.encoded_len() as u32);
        staging.put_u16_le(flags);
        if self.content.len() >= LARGE_FRAME {
            chunks.push(staging.split().freeze());
            chunks.push(self.content.clone());
        } else {
            staging.put_slice(&self.content);
        }
    }
}

/// Frame contents from this size on are written from their own buffer.
pub const LARGE_FRAME: usize = 2048;

/// The initial frame being built: fixed fields are written at offsets after the header.
pub struct InitialFrame {
    buf: BytesMut,
    header_size: usize,
}

impl InitialFrame {
    pub fn correlation(mut self, id: i64) -> Self {
        self.buf[CORRELATION_ID_OFFSET..CORRELATION_ID_OFFSET + 8]
            .copy_from_slice(&id.to_le_bytes());
        self
    }
    pub fn partition(mut self, p: i32) -> Self {
        if self.header_size < PARTITION_ID_OFFSET + 4 {
            return self;
        }
        self.buf[PARTITION_ID_OFFSET..PARTITION_ID_OFFSET + 4].copy_from_slice(&p.to_le_bytes());
        self
    }
    /// Mutable access to the fixed fields (offset 0 = first field after the header).
    pub fn fixed(&mut self) -> &mut [u8] {
        &mut self.buf[self.header_size..]
    }
    pub fn build(self, flags: u16) -> Frame {
        Frame::with_flags(flags, self.buf.freeze())
    }
}

pub fn read_u8(b: &[u8], off: usize) -> Result<u8, ProtocolError> {
    b.get(off)
        .copied()
        .ok_or(ProtocolError::Truncated("fixed field"))
}
pub fn read_bool(b: &[u8], off: usize) -> Result<bool, ProtocolError> {
    Ok(read_u8(b, off)? != 0)
}
pub fn read_u32(b: &[u8], off: usize) -> Result<u32, ProtocolError> {
    let s = b
        .get(off..off + 4)
        .ok_or(ProtocolError::Truncated("fixed field"))?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
pub fn read_i32(b: &[u8], off: usize) -> Result<i32, ProtocolError> {
    read_u32(b, off).map(|v| v as i32)
}
pub fn read_i64(b: &[u8], off: usize) -> Result<i64, ProtocolError> {
    let mut s = b
        .get(off..off + 8)
        .ok_or(ProtocolError::Truncated("fixed field"))?;
    Ok(s.get_i64_le())
}
pub fn write_i32(b: &mut [u8], off: usize, v: i32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
pub fn write_i64(b: &mut [u8], off: usize, v: i64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}
pub fn write_bool(b: &mut [u8], off: usize, v: bool) {
    b[off] = u8::from(v);
}
