//! Hazelcast's serialized form (`Data`): a big-endian partition hash at 0
//! (0 when none was set), a big-endian type id at 4, the payload from 8.

use crate::hash::{hash_to_index, hazelcast_hash};
use bytes::{BufMut, Bytes, BytesMut};

pub const DATA_OFFSET: usize = 8;

pub mod type_id {
    pub const NULL: i32 = 0;
    pub const BYTE: i32 = -3;
    pub const BOOLEAN: i32 = -4;
    pub const SHORT: i32 = -6;
    pub const INTEGER: i32 = -7;
    pub const LONG: i32 = -8;
    pub const FLOAT: i32 = -9;
    pub const DOUBLE: i32 = -10;
    pub const STRING: i32 = -11;
    pub const BYTE_ARRAY: i32 = -12;
    pub const JSON: i32 = -130;
}

/// The partition hash of serialized bytes, as every Hazelcast client computes it.
pub fn partition_hash(data: &[u8]) -> i32 {
    if data.len() >= 4 {
        let explicit = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        if explicit != 0 {
            return explicit;
        }
    }
    hazelcast_hash(data.get(DATA_OFFSET..).unwrap_or(&[]))
}

pub fn partition_id(data: &[u8], partition_count: u32) -> u32 {
    hash_to_index(partition_hash(data), partition_count)
}

pub fn type_of(data: &[u8]) -> Option<i32> {
    data.get(4..8)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn with_header(type_id: i32, payload_len: usize) -> BytesMut {
    let mut b = BytesMut::with_capacity(DATA_OFFSET + payload_len);
    b.put_i32(0);
    b.put_i32(type_id);
    b
}

/// A Java `String` as Hazelcast serializes it: length-prefixed UTF-8.
pub fn string(s: &str) -> Bytes {
    let mut b = with_header(type_id::STRING, 4 + s.len());
    b.put_i32(s.len() as i32);
    b.put_slice(s.as_bytes());
    b.freeze()
}

pub fn int(v: i32) -> Bytes {
    let mut b = with_header(type_id::INTEGER, 4);
    b.put_i32(v);
    b.freeze()
}

pub fn long(v: i64) -> Bytes {
    let mut b = with_header(type_id::LONG, 8);
    b.put_i64(v);
    b.freeze()
}

pub fn double(v: f64) -> Bytes {
    let mut b = with_header(type_id::DOUBLE, 8);
    b.put_f64(v);
    b.freeze()
}

pub fn boolean(v: bool) -> Bytes {
    let mut b = with_header(type_id::BOOLEAN, 1);
    b.put_u8(u8::from(v));
    b.freeze()
}

pub fn byte_array(v: &[u8]) -> Bytes {
    let mut b = with_header(type_id::BYTE_ARRAY, 4 + v.len());
    b.put_i32(v.len() as i32);
    b.put_slice(v);
    b.freeze()
}

/// A `HazelcastJsonValue`: its JSON text, serialized like a string.
pub fn json(text: &str) -> Bytes {
    let mut b = with_header(type_id::JSON, 4 + text.len());
    b.put_i32(text.len() as i32);
    b.put_slice(text.as_bytes());
    b.freeze()
}

/// Reads back a string (or JSON text) payload.
pub fn as_string(data: &[u8]) -> Option<String> {
    let t = type_of(data)?;
    if t != type_id::STRING && t != type_id::JSON {
        return None;
    }
    let len = i32::from_be_bytes(data.get(8..12)?.try_into().ok()?);
    let bytes = data.get(12..12 + usize::try_from(len).ok()?)?;
    String::from_utf8(bytes.to_vec()).ok()
}
