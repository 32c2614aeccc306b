//! One map entry in a single allocation: a fixed header with the
//! statistics Hazelcast's entry view reports, then the key, then the value
//! (both the client's serialized bytes). One allocation instead of three
//! (record, key, value), and a thin pointer (8 bytes) in the table instead
//! of the whole record or a fat slice pointer, is what keeps a large map's
//! overhead per entry small: the lengths live in the header.
//!
//! Header layout (little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | key length |
//! | 4 | 4 | value length |
//! | 8 | 4 | hits (saturating) |
//! | 12 | 4 | version (saturating) |
//! | 16 | 8 | creation time, epoch ms |
//! | 24 | 8 | last update time, epoch ms |
//! | 32 | 8 | last access time, epoch ms |
//! | 40 | 4 | TTL: ms below 2^31, else seconds with the top bit set; `u32::MAX` for none |
//! | 44 | 8 | expiry, ms after [`base`], `u64::MAX` for never |
//!
//! 52 bytes: with a 16-byte key and a 100-byte value as the clients
//! serialize them (28 and 112 bytes) an entry is exactly 192 bytes, one of
//! the allocator's size classes.

use crate::store::{epoch_millis, Record};
use bytes::Bytes;
use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const KEY_LEN: usize = 0;
const VALUE_LEN: usize = 4;
const HITS: usize = 8;
const VERSION: usize = 12;
const CREATED: usize = 16;
const UPDATED: usize = 24;
const ACCESSED: usize = 32;
const TTL: usize = 40;
const EXPIRES: usize = 44;
const HEADER: usize = 52;
const NONE: u64 = u64::MAX;
const NO_TTL: u32 = u32::MAX;
/// Top bit of the TTL field: the rest counts seconds, not milliseconds.
const TTL_IN_SECONDS: u32 = 1 << 31;

/// A TTL in 4 bytes: exact to the millisecond up to 24 days, to the second
/// beyond (up to 68 years, then capped).
fn encode_ttl(ttl: Option<Duration>) -> u32 {
    match ttl {
        None => NO_TTL,
        Some(d) if d.as_millis() < u128::from(TTL_IN_SECONDS) => d.as_millis() as u32,
        Some(d) => TTL_IN_SECONDS | d.as_secs().min(u64::from(NO_TTL - 1 - TTL_IN_SECONDS)) as u32,
    }
}

fn decode_ttl(v: u32) -> Option<Duration> {
    match v {
        NO_TTL => None,
        v if v & TTL_IN_SECONDS != 0 => Some(Duration::from_secs(u64::from(v & !TTL_IN_SECONDS))),
        v => Some(Duration::from_millis(u64::from(v))),
    }
}

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

/// An entry: a thin pointer to `HEADER + key + value` bytes it owns alone.
pub(crate) struct Entry(NonNull<u8>);

// SAFETY: an Entry owns its allocation exclusively, like a Box<[u8]>; it
// has no interior mutability, so sharing `&Entry` between threads is safe.
unsafe impl Send for Entry {}
unsafe impl Sync for Entry {}

fn layout(len: usize) -> Layout {
    // Entries come from frames bounded far below isize::MAX.
    Layout::from_size_align(len, 1).unwrap_or_else(|_| panic!("entry of {len} bytes"))
}

impl Entry {
    /// Allocates `len` bytes and fills them from `parts`, in order; their
    /// lengths add up to `len`.
    fn from_parts(len: usize, parts: &[&[u8]]) -> Entry {
        debug_assert_eq!(parts.iter().map(|p| p.len()).sum::<usize>(), len);
        let layout = layout(len);
        // SAFETY: the layout has a non-zero size (the header is in it).
        let ptr = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(ptr) else {
            handle_alloc_error(layout)
        };
        let mut at = 0;
        for part in parts {
            // SAFETY: `at + part.len() <= len`: the parts add up to `len`,
            // and a fresh allocation cannot overlap the source.
            unsafe {
                std::ptr::copy_nonoverlapping(part.as_ptr(), ptr.as_ptr().add(at), part.len())
            };
            at += part.len();
        }
        Entry(ptr)
    }

    fn len(&self) -> usize {
        let header = self.header();
        let word = |at: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&header[at..at + 4]);
            u32::from_le_bytes(b) as usize
        };
        HEADER + word(KEY_LEN) + word(VALUE_LEN)
    }

    fn header(&self) -> &[u8] {
        // SAFETY: every Entry starts with a complete, initialised header.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr(), HEADER) }
    }

    fn header_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `header`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_ptr(), HEADER) }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the allocation holds `len()` initialised bytes.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr(), self.len()) }
    }

    pub fn new(key: &[u8], r: &Record) -> Entry {
        let mut h = [0u8; HEADER];
        h[KEY_LEN..KEY_LEN + 4].copy_from_slice(&(key.len() as u32).to_le_bytes());
        h[VALUE_LEN..VALUE_LEN + 4].copy_from_slice(&(r.value.len() as u32).to_le_bytes());
        let hits = u32::try_from(r.hits.max(0)).unwrap_or(u32::MAX);
        h[HITS..HITS + 4].copy_from_slice(&hits.to_le_bytes());
        let version = u32::try_from(r.version.max(0)).unwrap_or(u32::MAX);
        h[VERSION..VERSION + 4].copy_from_slice(&version.to_le_bytes());
        h[CREATED..CREATED + 8].copy_from_slice(&r.creation_time.to_le_bytes());
        h[UPDATED..UPDATED + 8].copy_from_slice(&r.last_update_time.to_le_bytes());
        h[ACCESSED..ACCESSED + 8].copy_from_slice(&r.last_access_time.to_le_bytes());
        h[TTL..TTL + 4].copy_from_slice(&encode_ttl(r.ttl).to_le_bytes());
        let expires = r.expires_at.map(to_offset).unwrap_or(NONE);
        h[EXPIRES..EXPIRES + 8].copy_from_slice(&expires.to_le_bytes());
        Entry::from_parts(HEADER + key.len() + r.value.len(), &[&h, key, &r.value])
    }

    fn u32_at(&self, at: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.header()[at..at + 4]);
        u32::from_le_bytes(b)
    }

    fn u64_at(&self, at: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.header()[at..at + 8]);
        u64::from_le_bytes(b)
    }

    fn i64_at(&self, at: usize) -> i64 {
        self.u64_at(at) as i64
    }

    fn put_u64(&mut self, at: usize, v: u64) {
        self.header_mut()[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    fn key_len(&self) -> usize {
        self.u32_at(KEY_LEN) as usize
    }

    pub fn key(&self) -> &[u8] {
        &self.bytes()[HEADER..HEADER + self.key_len()]
    }

    pub fn value(&self) -> &[u8] {
        &self.bytes()[HEADER + self.key_len()..]
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
        self.header_mut()[HITS..HITS + 4].copy_from_slice(&hits.to_le_bytes());
        self.put_u64(ACCESSED, epoch_millis() as u64);
    }

    pub fn set_ttl(&mut self, ttl: Option<Duration>, now: Instant, wall: i64) {
        self.header_mut()[TTL..TTL + 4].copy_from_slice(&encode_ttl(ttl).to_le_bytes());
        self.put_u64(EXPIRES, ttl.map(|d| to_offset(now + d)).unwrap_or(NONE));
        self.put_u64(UPDATED, wall as u64);
    }

    /// The entry as a [`Record`] (its value copied out).
    pub fn record(&self) -> Record {
        let ttl = decode_ttl(self.u32_at(TTL));
        let expires = self.u64_at(EXPIRES);
        Record {
            value: self.value_bytes(),
            ttl,
            expires_at: (expires != NONE).then(|| base() + Duration::from_millis(expires)),
            creation_time: self.i64_at(CREATED),
            last_update_time: self.i64_at(UPDATED),
            last_access_time: self.i64_at(ACCESSED),
            hits: i64::from(self.u32_at(HITS)),
            version: i64::from(self.u32_at(VERSION)),
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let layout = layout(self.len());
        // SAFETY: allocated in `from_parts` with this very layout (the
        // lengths in the header never change after construction).
        unsafe { dealloc(self.0.as_ptr(), layout) }
    }
}

impl Clone for Entry {
    fn clone(&self) -> Entry {
        let bytes = self.bytes();
        Entry::from_parts(bytes.len(), &[bytes])
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

    #[test]
    fn ttls_are_exact_to_the_millisecond_below_24_days() {
        for ms in [0u64, 1, 500, 1500, 86_400_000, (1 << 31) - 1] {
            let d = Duration::from_millis(ms);
            assert_eq!(decode_ttl(encode_ttl(Some(d))), Some(d), "{ms} ms");
        }
        let long = Duration::from_secs(90 * 86_400) + Duration::from_millis(250);
        assert_eq!(
            decode_ttl(encode_ttl(Some(long))),
            Some(Duration::from_secs(90 * 86_400))
        );
        let huge = decode_ttl(encode_ttl(Some(Duration::from_secs(u64::MAX / 2))));
        assert!(huge.is_some_and(|d| d > Duration::from_secs(60 * 365 * 86_400)));
        assert_eq!(decode_ttl(encode_ttl(None)), None);
    }

    #[test]
    fn clones_and_big_values_are_independent_copies() {
        let now = Instant::now();
        let big = Bytes::from(vec![7u8; 1 << 20]);
        let mut a = Entry::new(b"k", &Record::new(big.clone(), None, now));
        let b = a.clone();
        a.touch();
        assert_eq!(a.value(), &big[..]);
        assert_eq!(b.value(), &big[..]);
        assert_eq!((a.record().hits, b.record().hits), (1, 0));
        assert_eq!(b.key(), b"k");
        let empty = Entry::new(b"", &Record::new(Bytes::new(), None, now));
        assert_eq!((empty.key(), empty.value()), (&b""[..], &b""[..]));
        drop(a);
        assert_eq!(b.value().len(), 1 << 20);
    }

    #[test]
    fn an_entry_is_one_thin_pointer() {
        assert_eq!(std::mem::size_of::<Entry>(), std::mem::size_of::<usize>());
        assert_eq!(
            std::mem::size_of::<Option<Entry>>(),
            std::mem::size_of::<usize>()
        );
    }
}
