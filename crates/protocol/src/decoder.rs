//! Turning a byte stream into client messages: frame boundaries, limits,
//! and reassembly of fragmented messages. Pure: the caller feeds bytes.

use crate::error::ProtocolError;
use crate::frame::{flags, read_i64, ClientMessage, Frame, SIZE_OF_FRAME_LENGTH_AND_FLAGS};
use bytes::{Buf, BytesMut};
use std::collections::HashMap;

/// Default limits: a frame of 16 MiB, a (reassembled) message of 64 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// Room a connection's read buffer keeps for the next read (and its
/// initial size). Reserving just what the current frame lacked made every
/// read stop at that frame's end: two `recvfrom` per 10 KB request, and on
/// loopback each read also sends the peer a window update.
pub const READ_AHEAD: usize = 64 * 1024;

#[derive(Debug)]
pub struct MessageDecoder {
    max_frame: usize,
    max_message: usize,
    pending: Vec<Frame>,
    pending_len: usize,
    fragments: HashMap<i64, (Vec<Frame>, usize)>,
}

impl Default for MessageDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME, DEFAULT_MAX_MESSAGE)
    }
}

impl MessageDecoder {
    pub fn new(max_frame: usize, max_message: usize) -> Self {
        Self {
            max_frame,
            max_message,
            pending: Vec::new(),
            pending_len: 0,
            fragments: HashMap::new(),
        }
    }

    /// Takes whole frames off `buf`; returns a message once one is complete.
    /// An error means the stream cannot be trusted any more: close it.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<ClientMessage>, ProtocolError> {
        loop {
            if buf.len() < SIZE_OF_FRAME_LENGTH_AND_FLAGS {
                return Ok(None);
            }
            let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
            if (len as usize) < SIZE_OF_FRAME_LENGTH_AND_FLAGS {
                return Err(ProtocolError::BadFrameLength(len));
            }
            let len = len as usize;
            if len > self.max_frame {
                return Err(ProtocolError::FrameTooLarge {
                    size: len,
                    limit: self.max_frame,
                });
            }
            if buf.len() < len {
                buf.reserve((len - buf.len()).max(READ_AHEAD));
                return Ok(None);
            }
            let mut raw = buf.split_to(len);
            raw.advance(4);
            let frame_flags = raw.get_u16_le();
            let frame = Frame::with_flags(frame_flags, raw.freeze());
            self.pending_len += len;
            if self.pending_len > self.max_message {
                return Err(ProtocolError::MessageTooLarge {
                    limit: self.max_message,
                });
            }
            self.pending.push(frame);
            if frame_flags & flags::IS_FINAL == 0 {
                continue;
            }
            let frames = std::mem::take(&mut self.pending);
            let size = std::mem::take(&mut self.pending_len);
            if let Some(msg) = self.assemble(frames, size)? {
                return Ok(Some(msg));
            }
        }
    }

    fn assemble(
        &mut self,
        mut frames: Vec<Frame>,
        size: usize,
    ) -> Result<Option<ClientMessage>, ProtocolError> {
        let first = &frames[0];
        if first.is(flags::UNFRAGMENTED) {
            return Ok(Some(ClientMessage { frames }));
        }
        // A fragment: its first frame carries the fragmentation id.
        let id = read_i64(&first.content, 0)?;
        let begin = first.is(flags::BEGIN_FRAGMENT);
        let end = first.is(flags::END_FRAGMENT);
        frames.remove(0);
        if begin {
            if self.fragments.len() > 1024 {
                return Err(ProtocolError::Malformed(
                    "too many fragmented messages in flight".into(),
                ));
            }
            self.fragments.insert(id, (frames, size));
            return Ok(None);
        }
        let (mut acc, acc_size) = self
            .fragments
            .remove(&id)
            .ok_or_else(|| ProtocolError::Malformed(format!("fragment of unknown message {id}")))?;
        if acc_size + size > self.max_message {
            return Err(ProtocolError::MessageTooLarge {
                limit: self.max_message,
            });
        }
        acc.extend(frames);
        if end {
            Ok(Some(ClientMessage { frames: acc }))
        } else {
            self.fragments.insert(id, (acc, acc_size + size));
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn message() -> ClientMessage {
        let mut init = ClientMessage::with_header(0x0001_0100, 16, 8)
            .correlation(7)
            .partition(3);
        init.fixed()[0] = 9;
        ClientMessage {
            frames: vec![init.build(0), Frame::new(&b"hello"[..]), Frame::null()],
        }
    }

    #[test]
    fn round_trip_byte_by_byte() {
        let msg = message();
        let mut wire = BytesMut::new();
        msg.encode(&mut wire);
        let mut dec = MessageDecoder::default();
        let mut buf = BytesMut::new();
        let mut got = None;
        for b in wire.iter() {
            buf.put_u8(*b);
            if let Some(m) = dec.decode(&mut buf).unwrap() {
                got = Some(m);
            }
        }
        let got = got.unwrap();
        assert_eq!(got.correlation_id().unwrap(), 7);
        assert_eq!(got.partition_id().unwrap(), 3);
        assert_eq!(got.message_type().unwrap(), 0x0001_0100);
        assert_eq!(got.frames[1].content, &b"hello"[..]);
        assert!(got.frames[2].is_null());
    }

    #[test]
    fn fragments_are_reassembled() {
        let msg = message();
        let frag = |flag: u16, id: i64, frames: &[Frame]| {
            let mut out = BytesMut::new();
            let mut all = vec![Frame::with_flags(flag, id.to_le_bytes().to_vec())];
            all.extend_from_slice(frames);
            let n = all.len();
            for (i, f) in all.into_iter().enumerate() {
                let extra = if i + 1 == n { flags::IS_FINAL } else { 0 };
                Frame::with_flags(f.flags | extra, f.content).write_to(&mut out);
            }
            out
        };
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&frag(flags::BEGIN_FRAGMENT, 5, &msg.frames[..1]));
        buf.extend_from_slice(&frag(0, 5, &msg.frames[1..2]));
        buf.extend_from_slice(&frag(flags::END_FRAGMENT, 5, &msg.frames[2..]));
        let mut dec = MessageDecoder::default();
        let got = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(got.frames.len(), 3);
        assert_eq!(got.correlation_id().unwrap(), 7);
    }

    #[test]
    fn limits_and_garbage() {
        let mut dec = MessageDecoder::new(1024, 4096);
        let mut buf = BytesMut::new();
        buf.put_u32_le(2048);
        buf.put_u16_le(0);
        assert!(matches!(
            dec.decode(&mut buf),
            Err(ProtocolError::FrameTooLarge { .. })
        ));
        let mut buf = BytesMut::from(&[3u8, 0, 0, 0, 0, 0][..]);
        assert_eq!(dec.decode(&mut buf), Err(ProtocolError::BadFrameLength(3)));
        // Many small non-final frames: the message limit stops them.
        let mut dec = MessageDecoder::new(1024, 4096);
        let mut buf = BytesMut::new();
        for _ in 0..100 {
            Frame::new(vec![0u8; 100]).write_to(&mut buf);
        }
        assert!(matches!(
            dec.decode(&mut buf),
            Err(ProtocolError::MessageTooLarge { .. })
        ));
    }
}
