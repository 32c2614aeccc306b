//! One map entry in a single allocation: a fixed header with the
//! statistics Hazelcast's entry view reports, then the key, then the value
//! (both the client's serialized bytes). One allocation instead of three
//! (record, key, value) and a pointer-sized slot in the table instead of
//! the whole record is what keeps a large map's overhead per entry small.
//!
//! Header layout (little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | key length |
//! | 4 | 4 | hits (saturating) |
//! | 8 | 4 | version (saturating) |
//! | 12 | 8 | creation time, epoch ms |
//! | 20 | 8 | last update time, epoch ms |
//! | 28 | 8 | last access time, epoch ms |
//! | 36 | 8 | TTL in ms, `u64::MAX` for none |
//! | 44 | 8 | expiry, ms after [`base`], `u64::MAX` for never |
//!
//! 52 bytes: with a 16-byte key and a 100-byte value as the clients
//! serialize them (28 and 112 bytes) an entry is exactly 192 bytes, one of
//! the allocator's size classes.

use crate::store::{epoch_millis, Record};
use bytes::Bytes;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const KEY_LEN: usize = 0;
const HITS: usize = 4;
const VERSION: usize = 8;
const CREATED: usize = 12;
const UPDATED: usize = 20;
const ACCESSED: usize = 28;
const TTL: usize = 36;
const EXPIRES: usize = 44;
const HEADER: usize = 52;
const NONE: u64 = u64::MAX;

/// The instant expiry times are counted from: an hour before the first use
/// (or the earliest instant the clock allows), so instants a little in the
/// past still map to small positive offsets.
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(|| {
        let now = Instant::now();
        now.checked_sub(Duration::from_secs(3600)).unwrap_or(now)
    })
}

fn to_offset(t: Instant) -> u64 {
    t.saturating_duration_since(base()).as_millis() as u64
}

#[derive(Clone)]
pub(crate) struct Entry(Box<[u8]>);

impl Entry {
    pub fn new(key: &[u8], r: &Record) -> Entry {
        let mut buf = vec![0u8; HEADER + key.len() + r.value.len()];
        buf[KEY_LEN..KEY_LEN + 4].copy_from_slice(&(key.len() as u32).to_le_bytes());
        let hits = u32::try_from(r.hits.max(0)).unwrap_or(u32::MAX);
        buf[HITS..HITS + 4].copy_from_slice(&hits.to_le_bytes());
        let version = u32::try_from(r.version.max(0)).unwrap_or(u32::MAX);
        buf[VERSION..VERSION + 4].copy_from_slice(&version.to_le_bytes());
        buf[CREATED..CREATED + 8].copy_from_slice(&r.creation_time.to_le_bytes());
        buf[UPDATED..UPDATED + 8].copy_from_slice(&r.last_update_time.to_le_bytes());
        buf[ACCESSED..ACCESSED + 8].copy_from_slice(&r.last_access_time.to_le_bytes());
        let ttl = r.ttl.map(|d| d.as_millis() as u64).unwrap_or(NONE);
        buf[TTL..TTL + 8].copy_from_slice(&ttl.to_le_bytes());
        let expires = r.expires_at.map(to_offset).unwrap_or(NONE);
        buf[EXPIRES..EXPIRES + 8].copy_from_slice(&expires.to_le_bytes());
        buf[HEADER..HEADER + key.len()].copy_from_slice(key);
        buf[HEADER + key.len()..].copy_from_slice(&r.value);
        Entry(buf.into_boxed_slice())
    }

    fn u32_at(&self, at: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.0[at..at + 4]);
        u32::from_le_bytes(b)
    }

    fn u64_at(&self, at: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[at..at + 8]);
        u64::from_le_bytes(b)
    }

    fn i64_at(&self, at: usize) -> i64 {
        self.u64_at(at) as i64
    }

    fn put_u64(&mut self, at: usize, v: u64) {
        self.0[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    fn key_len(&self) -> usize {
        self.u32_at(KEY_LEN) as usize
    }

    pub fn key(&self) -> &[u8] {
        &self.0[HEADER..HEADER + self.key_len()]
    }

    pub fn value(&self) -> &[u8] {
        &self.0[HEADER + self.key_len()..]
    }

    pub fn value_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.value())
    }

    pub fn is_expired(&self, now: Instant) -> bool {
        let e = self.u64_at(EXPIRES);
        e != NONE && e <= to_offset(now)
    }

    /// A read: one more hit, accessed now.
    pub fn touch(&mut self) {
        let hits = self.u32_at(HITS).saturating_add(1);
        self.0[HITS..HITS + 4].copy_from_slice(&hits.to_le_bytes());
        self.put_u64(ACCESSED, epoch_millis() as u64);
    }

    pub fn set_ttl(&mut self, ttl: Option<Duration>, now: Instant, wall: i64) {
        self.put_u64(TTL, ttl.map(|d| d.as_millis() as u64).unwrap_or(NONE));
        self.put_u64(EXPIRES, ttl.map(|d| to_offset(now + d)).unwrap_or(NONE));
        self.put_u64(UPDATED, wall as u64);
    }

    /// The entry as a [`Record`] (its value copied out).
    pub fn record(&self) -> Record {
        let ttl = self.u64_at(TTL);
        let expires = self.u64_at(EXPIRES);
        Record {
            value: self.value_bytes(),
            ttl: (ttl != NONE).then(|| Duration::from_millis(ttl)),
            expires_at: (expires != NONE).then(|| base() + Duration::from_millis(expires)),
            creation_time: self.i64_at(CREATED),
            last_update_time: self.i64_at(UPDATED),
            last_access_time: self.i64_at(ACCESSED),
            hits: i64::from(self.u32_at(HITS)),
            version: i64::from(self.u32_at(VERSION)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_gives_back_what_it_was_built_from() {
        let now = Instant::now();
        let r = Record {
            value: Bytes::from_static(b"value bytes"),
            ttl: Some(Duration::from_millis(1500)),
            expires_at: Some(now + Duration::from_millis(1500)),
            creation_time: 1_700_000_000_000,
            last_update_time: 1_700_000_000_500,
            last_access_time: 1_700_000_000_900,
            hits: 7,
            version: 3,
        };
        let e = Entry::new(b"the key", &r);
        assert_eq!(e.key(), b"the key");
        assert_eq!(e.value(), b"value bytes");
        let back = e.record();
        assert_eq!(back.ttl, r.ttl);
        assert_eq!(
            (
                back.creation_time,
                back.last_update_time,
                back.last_access_time
            ),
            (r.creation_time, r.last_update_time, r.last_access_time)
        );
        assert_eq!((back.hits, back.version), (7, 3));
        assert!(!e.is_expired(now + Duration::from_millis(1400)));
        assert!(e.is_expired(now + Duration::from_millis(1600)));
        let never = Entry::new(
            b"k",
            &Record {
                ttl: None,
                expires_at: None,
                ..r
            },
        );
        assert!(!never.is_expired(now + Duration::from_secs(1 << 30)));
        assert_eq!(never.record().ttl, None);
    }
}
