//! Backups on the wire without serde. A backup is the one member-to-member
//! message sent for every write, so its encoding is written by hand: the
//! fixed fields go into a small buffer, and a big value is not copied into
//! the message at all but travels as a piece of its own
//! (`MemberMessage::ServiceParts`), from the buffer the owner's entry keeps
//! it in to the socket. On the backup, values come out as slices of the
//! frame (the store then takes its own copy).
//!
//! Layout, little-endian: [`MARK`], partition u32, seq u64, the owner's
//! term u64 and base u64, the version of its table that last changed the
//! partition's replicas u64, change count u32, then per change a tag u8
//! (0 put, 1 remove, 2 clear) and the map name (u32 length + bytes); remove and put add the key (u32 length +
//! bytes); put adds the value (u32 length + bytes), a byte of flags (1: TTL,
//! 2: TTL left) with those as u64 when present, and creation, last update,
//! last access, hits and version as i64. A bincode `ServiceMessage` never
//! starts with [`MARK`] (it starts with its variant's index, below 251).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use ferrocast_net::{NetError, LARGE_PAYLOAD};
use ferrocast_partition::{BackupBatch, Change, MigratedRecord};

pub const MARK: u8 = 0xF0;

const PUT: u8 = 0;
const REMOVE: u8 = 1;
const CLEAR: u8 = 2;
const HAS_TTL: u8 = 1;
const HAS_TTL_LEFT: u8 = 2;

/// The batch as pieces to send one after the other.
pub fn encode(batch: &BackupBatch) -> Vec<Bytes> {
    let mut parts = Vec::new();
    let mut b = BytesMut::with_capacity(64);
    b.put_u8(MARK);
    b.put_u32_le(batch.partition);
    b.put_u64_le(batch.seq);
    b.put_u64_le(batch.term);
    b.put_u64_le(batch.base);
    b.put_u64_le(batch.replicas_version);
    b.put_u32_le(batch.changes.len() as u32);
    for c in &batch.changes {
        match c {
            Change::Put { map, key, record } => {
                b.put_u8(PUT);
                put_bytes(&mut b, map.as_bytes());
                put_bytes(&mut b, key);
                b.put_u32_le(record.value.len() as u32);
                if record.value.len() >= LARGE_PAYLOAD {
                    parts.push(b.split().freeze());
                    parts.push(record.value.clone());
                } else {
                    b.put_slice(&record.value);
                }
                let flags = if record.ttl_ms.is_some() { HAS_TTL } else { 0 }
                    | if record.ttl_left_ms.is_some() {
                        HAS_TTL_LEFT
                    } else {
                        0
                    };
                b.put_u8(flags);
                if let Some(t) = record.ttl_ms {
                    b.put_u64_le(t);
                }
                if let Some(t) = record.ttl_left_ms {
                    b.put_u64_le(t);
                }
                for v in [
                    record.creation_time,
                    record.last_update_time,
                    record.last_access_time,
                    record.hits,
                    record.version,
                ] {
                    b.put_i64_le(v);
                }
            }
            Change::Remove { map, key } => {
                b.put_u8(REMOVE);
                put_bytes(&mut b, map.as_bytes());
                put_bytes(&mut b, key);
            }
            Change::ClearMap { map } => {
                b.put_u8(CLEAR);
                put_bytes(&mut b, map.as_bytes());
            }
        }
    }
    if !b.is_empty() {
        parts.push(b.freeze());
    }
    parts
}

fn put_bytes(b: &mut BytesMut, v: &[u8]) {
    b.put_u32_le(v.len() as u32);
    b.put_slice(v);
}

/// Reads a batch from `payload` (which starts with [`MARK`]).
pub fn decode(payload: &Bytes) -> Result<BackupBatch, NetError> {
    let mut r = Reader(payload.clone());
    if r.u8()? != MARK {
        return Err(bad("not a backup"));
    }
    let partition = r.u32()?;
    let seq = r.u64()?;
    let term = r.u64()?;
    let base = r.u64()?;
    let replicas_version = r.u64()?;
    let count = r.u32()? as usize;
    // Every change takes at least 5 bytes: no count can make us reserve
    // more than the message could hold.
    let mut changes = Vec::with_capacity(count.min(r.0.len() / 5));
    for _ in 0..count {
        let tag = r.u8()?;
        let map = String::from_utf8(r.bytes()?.to_vec()).map_err(|_| bad("map name"))?;
        changes.push(match tag {
            PUT => {
                let key = r.bytes()?;
                let value = r.bytes()?;
                let flags = r.u8()?;
                let ttl_ms = if flags & HAS_TTL != 0 {
                    Some(r.u64()?)
                } else {
                    None
                };
                let ttl_left_ms = if flags & HAS_TTL_LEFT != 0 {
                    Some(r.u64()?)
                } else {
                    None
                };
                Change::Put {
                    map,
                    key,
                    record: MigratedRecord {
                        value,
                        ttl_left_ms,
                        ttl_ms,
                        creation_time: r.i64()?,
                        last_update_time: r.i64()?,
                        last_access_time: r.i64()?,
                        hits: r.i64()?,
                        version: r.i64()?,
                    },
                }
            }
            REMOVE => Change::Remove {
                map,
                key: r.bytes()?,
            },
            CLEAR => Change::ClearMap { map },
            t => return Err(bad(&format!("change tag {t}"))),
        });
    }
    if !r.0.is_empty() {
        return Err(bad("trailing bytes"));
    }
    Ok(BackupBatch {
        partition,
        seq,
        changes,
        epoch: 0,
        term,
        base,
        replicas_version,
    })
}

fn bad(what: &str) -> NetError {
    NetError::Decode(format!("malformed backup: {what}"))
}

/// Reads fields off the front, never past the end.
struct Reader(Bytes);

impl Reader {
    fn need(&self, n: usize) -> Result<(), NetError> {
        if self.0.len() < n {
            return Err(bad("truncated"));
        }
        Ok(())
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], NetError> {
        self.need(N)?;
        let mut a = [0; N];
        self.0.copy_to_slice(&mut a);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, NetError> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, NetError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, NetError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, NetError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn bytes(&mut self) -> Result<Bytes, NetError> {
        let n = self.u32()? as usize;
        self.need(n)?;
        Ok(self.0.split_to(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(value: Bytes, ttl: bool) -> MigratedRecord {
        MigratedRecord {
            value,
            ttl_left_ms: ttl.then_some(1_234),
            ttl_ms: ttl.then_some(60_000),
            creation_time: 1_700_000_000_000,
            last_update_time: -1,
            last_access_time: i64::MAX,
            hits: 3,
            version: i64::MIN,
        }
    }

    fn batch() -> BackupBatch {
        BackupBatch {
            epoch: 0,
            term: 41,
            base: u64::MAX - 9,
            replicas_version: 77,
            partition: 270,
            seq: u64::MAX - 1,
            changes: vec![
                Change::Put {
                    map: "small".into(),
                    key: Bytes::from_static(b"k1"),
                    record: record(Bytes::from_static(b"v"), false),
                },
                Change::Put {
                    map: "big é".into(),
                    key: Bytes::from_static(b"k2"),
                    record: record(Bytes::from(vec![7u8; 10_240]), true),
                },
                Change::Remove {
                    map: "small".into(),
                    key: Bytes::from_static(b"k3"),
                },
                Change::ClearMap { map: String::new() },
                Change::Put {
                    map: "m".into(),
                    key: Bytes::new(),
                    record: record(Bytes::new(), true),
                },
            ],
        }
    }

    fn joined(parts: &[Bytes]) -> Bytes {
        parts
            .iter()
            .flat_map(|p| p.iter().copied())
            .collect::<Vec<u8>>()
            .into()
    }

    #[test]
    fn batches_read_back_and_big_values_travel_uncopied() {
        let b = batch();
        let parts = encode(&b);
        let Change::Put { record, .. } = &b.changes[1] else {
            unreachable!()
        };
        assert!(
            parts.iter().any(|p| p.as_ptr() == record.value.as_ptr()),
            "the 10 KB value is a piece of its own, not a copy"
        );
        assert_eq!(decode(&joined(&parts)).unwrap(), b);
        let empty = BackupBatch {
            partition: 0,
            seq: 1,
            changes: Vec::new(),
            epoch: 0,
            term: 1,
            base: 0,
            replicas_version: 1,
        };
        assert_eq!(decode(&joined(&encode(&empty))).unwrap(), empty);
    }

    #[test]
    fn a_bincode_service_message_is_never_taken_for_a_backup() {
        use crate::service_msg::ServiceMessage;
        for m in [
            ServiceMessage::Ack,
            ServiceMessage::BackupRefused,
            ServiceMessage::InSync { version: 3 },
            ServiceMessage::Backup(batch()),
        ] {
            let bytes = ferrocast_net::encode(&m).unwrap();
            assert_ne!(bytes[0], MARK);
        }
    }

    #[test]
    fn truncated_or_garbled_input_is_an_error_not_a_panic() {
        let bytes = joined(&encode(&batch()));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes.slice(..cut)).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(decode(&Bytes::from(longer)).is_err());
        let mut bad_tag = bytes.to_vec();
        // The first change's tag, after mark, partition, seq, term, base,
        // replicas version and count.
        bad_tag[1 + 4 + 8 + 8 + 8 + 8 + 4] = 9;
        assert!(decode(&Bytes::from(bad_tag)).is_err());
        // A huge count or length claims more than there is.
        let mut huge = BytesMut::new();
        huge.put_u8(MARK);
        huge.put_u32_le(1);
        huge.put_u64_le(1);
        huge.put_u64_le(1);
        huge.put_u64_le(0);
        huge.put_u64_le(1);
        huge.put_u32_le(u32::MAX);
        huge.put_u8(PUT);
        huge.put_u32_le(u32::MAX);
        assert!(decode(&huge.freeze()).is_err());
        for seed in 0..3000u32 {
            let mut junk = vec![MARK];
            junk.extend(
                (0..(seed % 80))
                    .map(|i| (seed.wrapping_mul(2654435761).wrapping_add(i * 97) >> 5) as u8),
            );
            let _ = decode(&Bytes::from(junk));
        }
    }
}
