//! The one place that turns member messages into bytes and back.
//!
//! Frames are length-prefixed (tokio-util's `LengthDelimitedCodec`, 4-byte
//! big-endian length) and carry a bincode 2 encoding of an [`Envelope`]
//! (or, before authentication, of a handshake message). Decoding is bounded
//! by the frame size, so a hostile length inside a frame cannot make us
//! allocate more than the frame itself.

use crate::chunks::Chunks;
use crate::error::NetError;
use crate::message::MemberMessage;
use bincode::enc::write::{SizeWriter, Writer};
use bytes::{BufMut, Bytes, BytesMut};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::sync::OnceLock;
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

/// Initial read buffer of a member connection: reads take what has
/// arrived, up to this much, rather than a small default at a time.
pub const READ_BUFFER: usize = 64 * 1024;

/// The length-delimited framing both sides use, with the given frame limit.
/// After the handshake it only reads: frames go out through
/// [`OutFrame::write_into`], which writes the same length prefix.
pub fn frame_codec(max_frame: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(max_frame)
        .new_codec()
}

/// Encodes `value` into a buffer of exactly its size. (bincode's serde
/// `encode_to_vec` grows its vector as it goes: a 10 KB backup was copied
/// again at every doubling.)
pub fn encode<T: Serialize>(value: &T) -> Result<Bytes, NetError> {
    let config = bincode::config::standard();
    let err = |e: bincode::error::EncodeError| NetError::Encode(e.to_string());
    let mut size = SizeWriter::default();
    bincode::serde::encode_into_writer(value, &mut size, config).map_err(err)?;
    let mut out = BufWriter(BytesMut::with_capacity(size.bytes_written));
    bincode::serde::encode_into_writer(value, &mut out, config).map_err(err)?;
    Ok(out.0.freeze())
}

struct BufWriter(BytesMut);

impl Writer for BufWriter {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// A frame on its way out: the encoded envelope, and for a service message
/// its payload, which goes into the socket buffer without being copied into
/// the envelope first.
#[derive(Clone, Debug)]
pub struct OutFrame {
    head: Bytes,
    payload: Vec<Bytes>,
}

impl OutFrame {
    /// Appends the frame (length, envelope, payload) to `chunks`; a big
    /// payload is queued, not copied.
    pub fn write_into(&self, chunks: &mut Chunks, max_frame: usize) -> Result<(), NetError> {
        let len = self.head.len() + self.payload.iter().map(Bytes::len).sum::<usize>();
        if len > max_frame {
            return Err(NetError::Encode(format!(
                "frame of {len} bytes is over the limit of {max_frame}"
            )));
        }
        let staging = chunks.staging();
        staging.put_u32(len as u32);
        staging.extend_from_slice(&self.head);
        for part in &self.payload {
            chunks.put_payload(part);
        }
        Ok(())
    }
}

/// The start of an envelope whose body is a service message, up to its
/// payload: bincode encodes a struct as its fields in order and an enum
/// variant as its index, so this is the same bytes as the `Envelope` itself.
#[derive(Serialize, Deserialize)]
struct ServiceHead {
    correlation: u64,
    kind: EnvelopeKind,
    variant: u32,
    len: u64,
}

/// Index of `MemberMessage::Service` as bincode writes it.
fn service_variant() -> u32 {
    static VARIANT: OnceLock<u32> = OnceLock::new();
    *VARIANT.get_or_init(|| {
        let probe = MemberMessage::Service(Bytes::new());
        encode(&probe)
            .and_then(|b| decode_prefix::<u32>(&b))
            .map(|(v, _)| v)
            .unwrap_or(u32::MAX)
    })
}

/// Decodes a `T` at the start of `bytes`; returns it and the bytes it took.
fn decode_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), NetError> {
    let config = bincode::config::standard().with_limit::<DECODE_LIMIT>();
    bincode::serde::decode_from_slice(bytes, config).map_err(|e| NetError::Decode(e.to_string()))
}

pub fn encode_envelope(
    correlation: u64,
    kind: EnvelopeKind,
    body: MemberMessage,
) -> Result<OutFrame, NetError> {
    let payload = match body {
        MemberMessage::Service(payload) => vec![payload],
        MemberMessage::ServiceParts(parts) => parts,
        body => {
            return Ok(OutFrame {
                head: encode(&Envelope {
                    correlation,
                    kind,
                    body,
                })?,
                payload: Vec::new(),
            })
        }
    };
    Ok(OutFrame {
        head: encode(&ServiceHead {
            correlation,
            kind,
            variant: service_variant(),
            len: payload.iter().map(Bytes::len).sum::<usize>() as u64,
        })?,
        payload,
    })
}

/// Decodes an envelope; a service message's payload is a slice of the
/// frame, not a copy.
pub fn decode_envelope(frame: BytesMut) -> Result<Envelope, NetError> {
    if let Ok((head, used)) = decode_prefix::<ServiceHead>(&frame) {
        if head.variant == service_variant() {
            if (used as u64).checked_add(head.len) != Some(frame.len() as u64) {
                return Err(NetError::Decode(format!(
                    "service message of {} bytes in a frame with {} after its head",
                    head.len,
                    frame.len() - used
                )));
            }
            return Ok(Envelope {
                correlation: head.correlation,
                kind: head.kind,
                body: MemberMessage::Service(frame.freeze().slice(used..)),
            });
        }
    }
    decode(&frame)
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

    fn joined(f: &OutFrame) -> Vec<u8> {
        let mut all = f.head.to_vec();
        for p in &f.payload {
            all.extend_from_slice(p);
        }
        all
    }

    #[test]
    fn service_envelopes_are_the_same_bytes_without_the_copy() {
        for correlation in [
            0,
            1,
            250,
            251,
            65_535,
            65_536,
            u32::MAX as u64 + 1,
            u64::MAX,
        ] {
            for len in [0, 1, 250, 251, 10_240, 70_000] {
                for kind in [
                    EnvelopeKind::Request,
                    EnvelopeKind::Response,
                    EnvelopeKind::OneWay,
                ] {
                    let payload = Bytes::from((0..len).map(|i| i as u8).collect::<Vec<u8>>());
                    let env = Envelope {
                        correlation,
                        kind,
                        body: MemberMessage::Service(payload.clone()),
                    };
                    let frame = encode_envelope(correlation, kind, env.body.clone()).unwrap();
                    assert_eq!(joined(&frame), encode(&env).unwrap().to_vec());
                    assert_eq!(
                        frame.payload,
                        vec![payload.clone()],
                        "the payload is not copied"
                    );
                    // In pieces: the same frame, received as one payload.
                    let cut = len / 3;
                    let parts = vec![payload.slice(..cut), payload.slice(cut..)];
                    let pieces = encode_envelope(
                        correlation,
                        kind,
                        MemberMessage::ServiceParts(parts.clone()),
                    )
                    .unwrap();
                    assert_eq!(pieces.payload, parts);
                    assert_eq!(joined(&pieces), joined(&frame));
                    let back = decode_envelope(BytesMut::from(&joined(&frame)[..])).unwrap();
                    assert_eq!(back, env);
                }
            }
        }
        // Other messages travel whole, and decode as before.
        let env = Envelope {
            correlation: 9,
            kind: EnvelopeKind::OneWay,
            body: MemberMessage::Leave { member: member(3) },
        };
        let frame = encode_envelope(9, EnvelopeKind::OneWay, env.body.clone()).unwrap();
        assert!(frame.payload.is_empty());
        assert!(joined(&frame) == encode(&env).unwrap().to_vec());
        assert_eq!(
            decode_envelope(BytesMut::from(&joined(&frame)[..])).unwrap(),
            env
        );
    }

    #[test]
    fn a_service_frame_of_the_wrong_length_is_an_error() {
        let frame = encode_envelope(
            3,
            EnvelopeKind::Request,
            MemberMessage::Service(Bytes::from_static(b"payload")),
        )
        .unwrap();
        let bytes = joined(&frame);
        for cut in 0..bytes.len() {
            assert!(decode_envelope(BytesMut::from(&bytes[..cut])).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_envelope(BytesMut::from(&longer[..])).is_err());
        // A length that would overflow when added to the head's size.
        let hostile = encode(&ServiceHead {
            correlation: 1,
            kind: EnvelopeKind::OneWay,
            variant: service_variant(),
            len: u64::MAX - 2,
        })
        .unwrap();
        assert!(decode_envelope(BytesMut::from(&hostile[..])).is_err());
    }

    #[test]
    fn the_codec_frames_what_it_encodes_and_refuses_oversized_frames() {
        use tokio_util::codec::Decoder;
        let mut codec = frame_codec(64);
        let mut chunks = Chunks::default();
        let small = encode_envelope(
            1,
            EnvelopeKind::OneWay,
            MemberMessage::Service(Bytes::from_static(b"abc")),
        )
        .unwrap();
        small.write_into(&mut chunks, 64).unwrap();
        let mut buf = BytesMut::from(&chunks.staging()[..]);
        let got = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(&got[..], &joined(&small)[..]);
        let big = encode_envelope(
            1,
            EnvelopeKind::OneWay,
            MemberMessage::Service(Bytes::from(vec![0u8; 100])),
        )
        .unwrap();
        let mut chunks = Chunks::default();
        assert!(big.write_into(&mut chunks, 64).is_err());
        assert!(chunks.is_empty(), "nothing half-written");
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
            let _ = decode_envelope(BytesMut::from(&junk[..]));
        }
    }
}
