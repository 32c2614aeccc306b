//! One map entry in a single allocation: a small header, then the key,
//! then the value (both the client's serialized bytes, in the form
//! [`form`] gives). One allocation instead of three (record, key, value),
//! a thin pointer (8 bytes) in the table, and a header that only holds
//! what this entry needs keep a large map's overhead per entry small.
//!
//! Header layout (little-endian), in order:
//!
//! | size | field | present |
//! |---|---|---|
//! | 1 | flags: [`WITH_STATS`], [`WITH_TTL`], [`SHARED_VALUE`], key and value forms | always |
//! | 1-5 | stored key length, LEB128 | always |
//! | 1-5 | stored value length, LEB128 | always |
//! | 1-5 | version (saturating u32), LEB128 | always |
//! | 4 | creation time, seconds (see [`fields::time_32`]) | always |
//! | 4 | last update time, seconds | always |
//! | 4 | hits (saturating) | with per-entry statistics |
//! | 4 | last access time, seconds | with per-entry statistics |
//! | 4 | TTL: ms below 2^31, else seconds with the top bit set | with a TTL |
//! | 6 | expiry, ms after [`base`] | with a TTL |
//!
//! Why this shape: the allocator rounds every block up to a size class
//! (..., 112, 128, 160, 192, ...). A 16-byte key and a 100-byte value as
//! the clients serialize them (byte arrays) are 28 + 112 bytes, 159 with
//! the 19-byte header this layout had before: the 160 class. Stored
//! without what their `Data` headers repeat (24 bytes, see [`form`]), with
//! times in seconds as Hazelcast keeps them and a version of one byte
//! until it passes 127, the same entry is 12 + 16 + 100 = 128 bytes: the
//! 128 class, 20% less per entry. Like Hazelcast 5
//! (`per-entry-stats-enabled`, off by default), hits and last access time
//! are kept only when per-entry statistics are switched on
//! ([`set_per_entry_stats`]); versions, creation and update times always
//! are (entry views and the latest-update merge policy need them). An
//! entry's layout is fixed when it is built: a read never grows it, so
//! entries do not move between size classes (which leaves pages resident).

use crate::store::{epoch_millis, Record};
use bytes::Bytes;
use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod fields;
mod form;
mod header;
#[cfg(test)]
mod tests;

use fields::{base, decode_ttl, encode_ttl, from_time_32, read_varint, time_32, to_offset, MAX_48};
pub(crate) use form::Compact;
pub(crate) use header::own_buffer;
use header::{big_value, Header};

/// Flag: the header holds hits and last access time.
const WITH_STATS: u8 = 1;
/// Flag: the header holds a TTL and an expiry.
const WITH_TTL: u8 = 2;
/// Flag: after the key comes a pointer to a boxed `Bytes` holding the
/// value, not the value.
const SHARED_VALUE: u8 = 4;
/// Shift of the key's form (2 bits, see [`form`]) in the flags.
const KEY_FORM: u8 = 3;
/// Shift of the value's form (2 bits) in the flags; a shared value is
/// always [`form::RAW`].
const VALUE_FORM: u8 = 5;
/// Values from this size on live in a buffer of their own that reads
/// share (a reference count, not a copy of the value per get, per put's
/// previous value, per backup); smaller ones stay inline, where the box
/// would cost more than it saves.
pub(crate) const SHARED_VALUE_MIN: usize = 1024;
/// The pointer is stored (unaligned) in the entry; the `Bytes` it points
/// to is a normal, aligned heap value, so it is only ever used in place.
const HANDLE: usize = std::mem::size_of::<*mut Bytes>();
/// Creation and update time.
const FIXED: usize = 4 + 4;
/// Hits and last access time.
const STATS: usize = 4 + 4;
/// TTL and expiry.
const TTL: usize = 4 + 6;

static PER_ENTRY_STATS: AtomicBool = AtomicBool::new(false);

/// Whether entries built from now on keep hits and last access time
/// (`--per-entry-stats`). Set once at start-up; entries already built keep
/// their layout, and each entry says in its header which one it has.
pub fn set_per_entry_stats(on: bool) {
    PER_ENTRY_STATS.store(on, Ordering::Relaxed);
}

pub(crate) fn per_entry_stats() -> bool {
    PER_ENTRY_STATS.load(Ordering::Relaxed)
}

/// Where things are in one entry, read from its header.
struct Shape {
    flags: u8,
    /// Stored lengths (the bodies of their forms).
    key_len: usize,
    value_len: usize,
    version: u32,
    /// Offset of the creation time (after the version).
    fixed: usize,
    header: usize,
}

impl Shape {
    fn stats(&self) -> Option<usize> {
        (self.flags & WITH_STATS != 0).then_some(self.fixed + FIXED)
    }

    fn ttl(&self) -> Option<usize> {
        (self.flags & WITH_TTL != 0).then(|| self.header - TTL)
    }

    fn shared(&self) -> bool {
        self.flags & SHARED_VALUE != 0
    }

    fn key_form(&self) -> u8 {
        (self.flags >> KEY_FORM) & 3
    }

    fn value_form(&self) -> u8 {
        (self.flags >> VALUE_FORM) & 3
    }

    /// Length of the allocation.
    fn len(&self) -> usize {
        self.header
            + self.key_len
            + if self.shared() {
                HANDLE
            } else {
                self.value_len
            }
    }
}

/// An entry: a thin pointer to `header + key + value` bytes it owns alone.
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

    fn shape(&self) -> Shape {
        let p = self.0.as_ptr();
        let mut at = 1;
        // SAFETY: every Entry starts with a complete header written by
        // `new`: the flags byte, then the two lengths and the version.
        let (flags, key_len, value_len, version) = unsafe {
            let flags = *p;
            let k = read_varint(p, &mut at);
            let v = read_varint(p, &mut at);
            let version = read_varint(p, &mut at);
            (flags, k, v, version as u32)
        };
        let mut header = at + FIXED;
        if flags & WITH_STATS != 0 {
            header += STATS;
        }
        if flags & WITH_TTL != 0 {
            header += TTL;
        }
        Shape {
            flags,
            key_len,
            value_len,
            version,
            fixed: at,
            header,
        }
    }

    /// `len` bytes from offset `at`; callers take both from [`Shape`], so
    /// they lie inside the allocation.
    fn raw(&self, at: usize, len: usize) -> &[u8] {
        debug_assert!(at + len <= self.shape().len());
        // SAFETY: the allocation holds `shape().len()` initialised bytes
        // and `at + len` is within them.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().add(at), len) }
    }

    fn bytes(&self) -> &[u8] {
        self.raw(0, self.shape().len())
    }

    fn header_mut(&mut self, len: usize) -> &mut [u8] {
        // SAFETY: `len` is at most the header's length; `&mut self` makes
        // the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_ptr(), len) }
    }

    /// An entry for `key` holding `r`, with hits and last access time if
    /// `stats`.
    pub fn new(key: &[u8], r: &Record, stats: bool) -> Entry {
        Self::build(Compact::of(key), r, stats, false)
    }

    /// Like [`new`](Self::new) for a record whose value is a buffer of its
    /// own (see [`own_buffer`]): a big value is kept, not copied.
    pub fn sharing(key: &[u8], r: &Record, stats: bool) -> Entry {
        Self::build(Compact::of(key), r, stats, true)
    }

    fn build(key: Compact<'_>, r: &Record, stats: bool, share: bool) -> Entry {
        let h = Header::of(key, r, stats);
        let (h, shared, skip) = (h.bytes(), h.shared, h.value_skip);
        let key = key.body;
        if shared {
            let value = Box::into_raw(Box::new(big_value(&r.value, share)));
            let e = Entry::from_parts(h.len() + key.len() + HANDLE, &[h, key, &[0; HANDLE]]);
            // SAFETY: the last HANDLE bytes of the allocation hold the
            // pointer (unaligned: entries are byte-aligned); the entry owns
            // the box from now on and frees it in `Drop`.
            unsafe {
                std::ptr::write_unaligned(e.0.as_ptr().add(h.len() + key.len()).cast(), value)
            };
            return e;
        }
        let value = &r.value[skip..];
        let len = h.len() + key.len() + value.len();
        Entry::from_parts(len, &[h, key, value])
    }

    /// The boxed value of an entry with [`SHARED_VALUE`].
    fn shared_value(&self, s: &Shape) -> &Bytes {
        debug_assert!(s.shared());
        // SAFETY: `new` (or `clone`) stored a pointer from Box::into_raw
        // at this offset; the box lives until `Drop`, so as long as `&self`.
        unsafe {
            let at = self.0.as_ptr().add(s.header + s.key_len);
            &*std::ptr::read_unaligned(at.cast::<*mut Bytes>())
        }
    }

    fn u32_at(&self, at: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.raw(at, 4));
        u32::from_le_bytes(b)
    }

    fn time_at(&self, at: usize) -> i64 {
        from_time_32(self.u32_at(at))
    }

    fn u48_at(&self, at: usize) -> u64 {
        let mut b = [0u8; 8];
        b[..6].copy_from_slice(self.raw(at, 6));
        u64::from_le_bytes(b)
    }

    fn put_u32(&mut self, at: usize, v: u32) {
        self.header_mut(at + 4)[at..].copy_from_slice(&v.to_le_bytes());
    }

    fn put_u48(&mut self, at: usize, v: u64) {
        self.header_mut(at + 6)[at..].copy_from_slice(&v.min(MAX_48).to_le_bytes()[..6]);
    }

    /// The key as stored: compare and hash this, rebuild it with
    /// [`Compact::to_bytes`].
    pub fn key(&self) -> Compact<'_> {
        self.key_of(&self.shape())
    }

    /// The stored key, with the header already read.
    fn key_of(&self, s: &Shape) -> Compact<'_> {
        Compact {
            form: s.key_form(),
            body: self.raw(s.header, s.key_len),
        }
    }

    /// The key as the client sent it.
    pub fn key_bytes(&self) -> Bytes {
        self.key().to_bytes()
    }

    /// A small value as stored (a shared one is the whole `Bytes`).
    fn value_compact(&self, s: &Shape) -> Compact<'_> {
        debug_assert!(!s.shared());
        Compact {
            form: s.value_form(),
            body: self.raw(s.header + s.key_len, s.value_len),
        }
    }

    /// Whether the value is `data`.
    pub fn value_is(&self, data: &[u8]) -> bool {
        let s = self.shape();
        if s.shared() {
            return self.shared_value(&s)[..] == *data;
        }
        self.value_compact(&s).is(data)
    }

    /// The value as `Bytes`: shared for a big value, rebuilt (copied) for a
    /// small one.
    pub fn value_bytes(&self) -> Bytes {
        let s = self.shape();
        if s.shared() {
            return self.shared_value(&s).clone();
        }
        self.value_compact(&s).to_bytes()
    }

    pub fn is_expired(&self, now: Instant) -> bool {
        match self.shape().ttl() {
            Some(at) => self.u48_at(at + 4) <= to_offset(now),
            None => false,
        }
    }

    /// A read: one more hit, accessed now (kept only with statistics).
    pub fn touch(&mut self) {
        if let Some(at) = self.shape().stats() {
            let hits = self.u32_at(at).saturating_add(1);
            self.put_u32(at, hits);
            self.put_u32(at + 4, time_32(epoch_millis()));
        }
    }

    /// A new TTL counted from `now`; `wall` is now in epoch ms.
    pub fn set_ttl(&mut self, ttl: Option<Duration>, now: Instant, wall: i64) {
        let s = self.shape();
        match (s.ttl(), ttl) {
            (Some(at), Some(ttl)) => {
                self.put_u32(at, encode_ttl(ttl));
                self.put_u48(at + 4, to_offset(now + ttl));
                self.put_u32(s.fixed + 4, time_32(wall));
            }
            // The header gains or loses its TTL fields: build it anew.
            _ => {
                let mut r = self.record();
                r.ttl = ttl;
                r.expires_at = ttl.map(|d| now + d);
                r.last_update_time = wall;
                let rebuilt = Entry::build(self.key(), &r, s.stats().is_some(), false);
                *self = rebuilt;
            }
        }
    }

    /// Makes this entry hold `r` (same key) in place, when its layout
    /// stays the same: same value length, TTL fields and statistics as
    /// before. Returns the previous value; `None` (nothing changed) when
    /// the caller must build a new entry. A put over a key, and a backup's
    /// copy of it, then cost no allocation for the entry, no copy of the
    /// key and, for a big value, no new box.
    pub fn rewrite(&mut self, r: &Record, stats: bool) -> Option<Bytes> {
        self.rewrite_with(r, stats, false, true).flatten()
    }

    /// Like [`rewrite`](Self::rewrite) without handing the previous value
    /// back (a small one is not copied out): whether it was done in place.
    pub fn overwrite(&mut self, r: &Record, stats: bool) -> bool {
        self.rewrite_with(r, stats, false, false).is_some()
    }

    /// Like [`overwrite`](Self::overwrite) for a record whose value is a
    /// buffer of its own (see [`own_buffer`]).
    pub fn overwrite_sharing(&mut self, r: &Record, stats: bool) -> bool {
        self.rewrite_with(r, stats, true, false).is_some()
    }

    /// `None`: the layout differs, nothing changed. Else the previous
    /// value when `keep`.
    fn rewrite_with(
        &mut self,
        r: &Record,
        stats: bool,
        share: bool,
        keep: bool,
    ) -> Option<Option<Bytes>> {
        let s = self.shape();
        let h = Header::of(self.key_of(&s), r, stats);
        let value = &r.value[h.value_skip..];
        if h.len != s.header || h.buf[0] != s.flags || value.len() != s.value_len {
            return None;
        }
        let at = s.header + s.key_len;
        let previous = if s.shared() {
            // SAFETY: as in `shared_value`; `&mut self` makes it exclusive.
            let boxed = unsafe {
                &mut *std::ptr::read_unaligned(self.0.as_ptr().add(at).cast::<*mut Bytes>())
            };
            let previous = std::mem::replace(boxed, big_value(&r.value, share));
            keep.then_some(previous)
        } else {
            let previous = keep.then(|| self.value_compact(&s).to_bytes());
            // SAFETY: the value lies inside the allocation (`Shape::len`);
            // the record's bytes are not ours, so they cannot overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(value.as_ptr(), self.0.as_ptr().add(at), s.value_len)
            };
            previous
        };
        self.header_mut(h.len).copy_from_slice(h.bytes());
        Some(previous)
    }

    /// The entry as a [`Record`] (its value copied out). Without
    /// statistics, hits and last access time are -1, "not tracked", as
    /// Hazelcast's entry view reports them.
    pub fn record(&self) -> Record {
        self.record_with(true)
    }

    /// The entry as a [`Record`] without its value (left empty).
    pub fn metadata(&self) -> Record {
        self.record_with(false)
    }

    fn record_with(&self, with_value: bool) -> Record {
        let s = self.shape();
        let (hits, last_access_time) = match s.stats() {
            Some(at) => (i64::from(self.u32_at(at)), self.time_at(at + 4)),
            None => (-1, -1),
        };
        let (ttl, expires_at) = match s.ttl() {
            Some(at) => {
                let ttl = decode_ttl(self.u32_at(at));
                let expires = self.u48_at(at + 4);
                (Some(ttl), Some(base() + Duration::from_millis(expires)))
            }
            None => (None, None),
        };
        Record {
            value: if with_value {
                self.value_bytes()
            } else {
                Bytes::new()
            },
            ttl,
            expires_at,
            creation_time: self.time_at(s.fixed),
            last_update_time: self.time_at(s.fixed + 4),
            last_access_time,
            hits,
            version: i64::from(s.version),
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let s = self.shape();
        if s.shared() {
            // SAFETY: the pointer came from Box::into_raw and is freed
            // only here, once.
            unsafe {
                let at = self.0.as_ptr().add(s.header + s.key_len);
                drop(Box::from_raw(std::ptr::read_unaligned(
                    at.cast::<*mut Bytes>(),
                )));
            }
        }
        let layout = layout(s.len());
        // SAFETY: allocated in `from_parts` with this very layout (the
        // header never changes its lengths or flags after construction).
        unsafe { dealloc(self.0.as_ptr(), layout) }
    }
}

/// A table slot holds an entry as its pointer's address (see
/// [`Packed`](crate::slot_table::Packed)).
impl crate::slot_table::Packed for Entry {
    fn into_bits(self) -> u64 {
        let entry = std::mem::ManuallyDrop::new(self);
        entry.0.as_ptr().expose_provenance() as u64
    }

    unsafe fn from_bits(bits: u64) -> Self {
        // SAFETY: the caller passes bits `into_bits` made from an entry,
        // a non-null pointer whose provenance it exposed.
        Entry(unsafe {
            NonNull::new_unchecked(std::ptr::with_exposed_provenance_mut(bits as usize))
        })
    }
}

impl Clone for Entry {
    fn clone(&self) -> Entry {
        let s = self.shape();
        if s.shared() {
            let fixed = s.header + s.key_len;
            let copy = Entry::from_parts(fixed + HANDLE, &[self.raw(0, fixed), &[0; HANDLE]]);
            let value = Box::into_raw(Box::new(self.shared_value(&s).clone()));
            // SAFETY: as in `new`: the copy's last HANDLE bytes point to a
            // box of its own (a counted reference to the same buffer).
            unsafe { std::ptr::write_unaligned(copy.0.as_ptr().add(fixed).cast(), value) };
            return copy;
        }
        let bytes = self.bytes();
        Entry::from_parts(bytes.len(), &[bytes])
    }
}
