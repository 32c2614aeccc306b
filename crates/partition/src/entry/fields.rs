//! How the header's fields are written: TTLs in 4 bytes, wall-clock times
//! in whole seconds in 4 bytes, expiry instants as milliseconds after a
//! base instant in 48 bits, lengths and versions as LEB128.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Largest value a 48-bit field holds.
pub(super) const MAX_48: u64 = (1 << 48) - 1;
/// Top bit of the TTL field: the rest counts seconds, not milliseconds.
const TTL_IN_SECONDS: u32 = 1 << 31;

/// A TTL in 4 bytes: exact to the millisecond up to 24 days, to the second
/// beyond (up to 68 years, then capped).
pub(super) fn encode_ttl(ttl: Duration) -> u32 {
    if ttl.as_millis() < u128::from(TTL_IN_SECONDS) {
        ttl.as_millis() as u32
    } else {
        TTL_IN_SECONDS | ttl.as_secs().min(u64::from(!TTL_IN_SECONDS)) as u32
    }
}

pub(super) fn decode_ttl(v: u32) -> Duration {
    if v & TTL_IN_SECONDS != 0 {
        Duration::from_secs(u64::from(v & !TTL_IN_SECONDS))
    } else {
        Duration::from_millis(u64::from(v))
    }
}

/// The instant expiry times are counted from: an hour before the first use
/// (or the earliest instant the clock allows), so instants a little in the
/// past still map to small positive offsets.
pub(super) fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(|| {
        let now = Instant::now();
        now.checked_sub(Duration::from_secs(3600)).unwrap_or(now)
    })
}

pub(super) fn to_offset(t: Instant) -> u64 {
    (t.saturating_duration_since(base()).as_millis() as u64).min(MAX_48)
}

/// 2020-01-01T00:00:00Z in epoch ms: what stored times count from.
const TIME_BASE: i64 = 1_577_836_800_000;

/// An epoch-ms wall-clock time (creation, update, access) in 4 bytes:
/// whole seconds after [`TIME_BASE`], plus one so that 0 can stand for a
/// time not set (0 or negative, which clocks do not give). Hazelcast keeps
/// these times the same way (whole seconds after a base, in an int), so
/// entry views report them to the second in both; they last until 2156,
/// and times before 2020 read back as 2020. Expiry does not depend on
/// them: it has an instant of its own, to the millisecond.
pub(super) fn time_32(t: i64) -> u32 {
    if t <= 0 {
        return 0;
    }
    let secs = (t - TIME_BASE).max(0) / 1000 + 1;
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// Epoch ms of a time written by [`time_32`].
pub(super) fn from_time_32(v: u32) -> i64 {
    match v {
        0 => 0,
        v => TIME_BASE + (i64::from(v) - 1) * 1000,
    }
}

pub(super) fn saturating_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

/// Appends `v` as LEB128: 7 bits per byte, low first, high bit = more.
/// Writes `v` as LEB128 at the start of `out`; returns the bytes written
/// (1-5). `out` holds at least 5 bytes.
pub(super) fn put_varint(out: &mut [u8], mut v: u32) -> usize {
    let mut n = 0;
    while v >= 0x80 {
        out[n] = v as u8 | 0x80;
        v >>= 7;
        n += 1;
    }
    out[n] = v as u8;
    n + 1
}

/// Reads a LEB128 `u32` at `*at`, moving `*at` past it.
///
/// # Safety
/// `p` points to a header written by [`put_varint`] with a varint at `*at`.
pub(super) unsafe fn read_varint(p: *const u8, at: &mut usize) -> usize {
    let mut v = 0usize;
    let mut shift = 0;
    loop {
        let b = *p.add(*at);
        *at += 1;
        v |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}
