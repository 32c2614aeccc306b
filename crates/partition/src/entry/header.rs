//! What an entry is built from: its header, encoded from a record, and
//! the buffer a big value lives in.

use super::fields::{encode_ttl, put_varint, saturating_u32, time_32, to_offset, MAX_48};
use super::form::{Compact, RAW};
use super::{KEY_FORM, SHARED_VALUE, SHARED_VALUE_MIN, VALUE_FORM, WITH_STATS, WITH_TTL};
use crate::store::Record;
use bytes::Bytes;
use std::time::Duration;

/// The buffer an entry keeps a big value in: a reference to `value` when
/// it is a buffer of its own (`share`), else a copy. A copy, because a
/// value may be a slice of a connection's read buffer, which it would keep
/// alive.
pub(super) fn big_value(value: &Bytes, share: bool) -> Bytes {
    if share {
        value.clone()
    } else {
        Bytes::copy_from_slice(value)
    }
}

/// `value` in a buffer of its own: itself when nothing else refers to its
/// buffer and the buffer is exactly its size (a value just decoded from a
/// member message), else a copy. For values that are not part of a larger
/// buffer's tail: a slice that ends where its buffer ends keeps the bytes
/// before it alive.
pub(crate) fn own_buffer(value: Bytes) -> Bytes {
    match value.try_into_mut() {
        Ok(m) if m.capacity() == m.len() => m.freeze(),
        Ok(m) => Bytes::copy_from_slice(&m),
        Err(v) => Bytes::copy_from_slice(&v),
    }
}

/// An entry's header, encoded (at most 42 bytes: flags, two 5-byte
/// lengths, a 5-byte version, the times, statistics and TTL).
pub(super) struct Header {
    pub(super) buf: [u8; 48],
    pub(super) len: usize,
    pub(super) shared: bool,
    /// Bytes at the start of the value its form leaves out.
    pub(super) value_skip: usize,
}

impl Header {
    /// The header of an entry for `key` holding `r`. A big value is
    /// shared whole, a small one stored in the form [`Compact::of`] gives.
    pub(super) fn of(key: Compact<'_>, r: &Record, stats: bool) -> Header {
        let mut h = Header {
            buf: [0; 48],
            len: 0,
            shared: r.value.len() >= SHARED_VALUE_MIN,
            value_skip: 0,
        };
        let value = if h.shared {
            Compact {
                form: RAW,
                body: &r.value,
            }
        } else {
            Compact::of(&r.value)
        };
        h.value_skip = r.value.len() - value.body.len();
        // An expiry without a TTL (not built here, but representable in a
        // record) keeps its expiry with the longest TTL.
        let ttl = r.ttl.or(r.expires_at.map(|_| Duration::MAX));
        let flags = if stats { WITH_STATS } else { 0 }
            | if ttl.is_some() { WITH_TTL } else { 0 }
            | if h.shared { SHARED_VALUE } else { 0 }
            | key.form << KEY_FORM
            | value.form << VALUE_FORM;
        h.put(&[flags]);
        h.len += put_varint(&mut h.buf[h.len..], key.body.len() as u32);
        h.len += put_varint(&mut h.buf[h.len..], value.body.len() as u32);
        h.len += put_varint(&mut h.buf[h.len..], saturating_u32(r.version));
        h.put(&time_32(r.creation_time).to_le_bytes());
        h.put(&time_32(r.last_update_time).to_le_bytes());
        if stats {
            h.put(&saturating_u32(r.hits).to_le_bytes());
            h.put(&time_32(r.last_access_time).to_le_bytes());
        }
        if let Some(ttl) = ttl {
            h.put(&encode_ttl(ttl).to_le_bytes());
            let expires = r.expires_at.map(to_offset).unwrap_or(MAX_48);
            h.put(&expires.to_le_bytes()[..6]);
        }
        h
    }

    fn put(&mut self, b: &[u8]) {
        self.buf[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}
