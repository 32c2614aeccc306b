//! The one place that turns member messages into bytes and back.
//!
//! Frames are length-prefixed (tokio-util's `LengthDelimitedCodec`, 4-byte
//! big-endian length) and carry a bincode 2 encoding of an [`Envelope`]
//! (or, before authentication, of a handshake message). Decoding is bounded
//! by the frame size, so a hostile length inside a frame cannot make us
//! allocate more than the frame itself.

use crate::error::NetError;
use crate::message::MemberMessage;
use bytes::Bytes;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tokio_util::codec::LengthDelimitedCodec;

/// Default largest frame a member accepts: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// Bincode decoding never reads past this many bytes, whatever lengths a frame claims.
const DECODE_LIMIT: usize = 64 * 1024 * 1024;

/// What a request, response or one-way message travels in. The correlation id
/// pairs a response with its request on the same connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub correlation: u64,
    pub kind: EnvelopeKind,
    pub body: MemberMessage,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnvelopeKind {
    Request,
    Response,
    OneWay,
}

/// The length-delimited framing both sides use, with the given frame limit.
/// Initial read buffer of a member connection: reads take what has
/// arrived, up to this much, rather than a small default at a time.
/// `Framed::with_capacity` also makes it the size up to which the sink
/// gathers messages before writing (8 KiB by default: a 10 KB backup went
/// out in a write of its own).
pub const READ_BUFFER: usize = 64 * 1024;

pub fn frame_codec(max_frame: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(max_frame)
        .new_codec()
}

pub fn encode<T: Serialize>(value: &T) -> Result<Bytes, NetError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map(Bytes::from)
        .map_err(|e| NetError::Encode(e.to_string()))
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, NetError> {
    let config = bincode::config::standard().with_limit::<DECODE_LIMIT>();
    let (value, used) = bincode::serde::decode_from_slice(bytes, config)
        .map_err(|e| NetError::Decode(e.to_string()))?;
    if used != bytes.len() {
        return Err(NetError::Decode(format!(
            "{} trailing bytes after the message",
            bytes.len() - used
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::MemberInfo;
    use crate::message::{JoinAnswer, MemberListView};

    fn member(n: u8) -> MemberInfo {
        MemberInfo::new(
            uuid::Uuid::from_bytes([n; 16]),
            format!("127.0.0.{n}:5701").parse().unwrap(),
        )
    }

    #[test]
    fn envelopes_round_trip() {
        let list = MemberListView {
            version: 7,
            members: vec![member(2), member(3)],
            cluster_id: uuid::Uuid::nil(),
        };
        for body in [
            MemberMessage::WhoIsMaster,
            MemberMessage::JoinRequest { member: member(4) },
            MemberMessage::JoinAnswer(JoinAnswer::Accepted(list.clone())),
            MemberMessage::JoinAnswer(JoinAnswer::NotMaster { master: None }),
            MemberMessage::Heartbeat { list: Some(list) },
            MemberMessage::Leave { member: member(2) },
        ] {
            let env = Envelope {
                correlation: 42,
                kind: EnvelopeKind::Request,
                body,
            };
            let bytes = encode(&env).unwrap();
            assert_eq!(decode::<Envelope>(&bytes).unwrap(), env);
        }
    }

    #[test]
    fn garbage_and_truncation_are_errors_not_panics() {
        let env = Envelope {
            correlation: 1,
            kind: EnvelopeKind::OneWay,
            body: MemberMessage::Leave { member: member(9) },
        };
        let bytes = encode(&env).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode::<Envelope>(&bytes[..cut]).is_err());
        }
        let mut trailing = bytes.to_vec();
        trailing.push(0);
        assert!(decode::<Envelope>(&trailing).is_err());
        // A vector length of 2^60 must be refused, not allocated.
        let hostile = [0u8, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(decode::<Envelope>(&hostile).is_err());
        for seed in 0..2000u32 {
            let junk: Vec<u8> = (0..(seed % 64))
                .map(|i| (seed.wrapping_mul(2654435761).wrapping_add(i * 97) >> 7) as u8)
                .collect();
            let _ = decode::<Envelope>(&junk);
        }
    }
}
