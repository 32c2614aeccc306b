//! Entry layout tests: round trips, sizes, shared values, TTL changes.

use super::fields::*;
use super::*;

fn record(now: Instant, ttl: Option<Duration>) -> Record {
    Record {
        value: Bytes::from_static(b"value bytes"),
        ttl,
        expires_at: ttl.map(|d| now + d),
        creation_time: 1_700_000_000_000,
        last_update_time: 1_700_000_005_000,
        last_access_time: 1_700_000_009_000,
        hits: 7,
        version: 3,
    }
}

#[test]
fn an_entry_gives_back_what_it_was_built_from() {
    let now = Instant::now();
    let r = record(now, Some(Duration::from_millis(1500)));
    let e = Entry::new(b"the key", &r, true);
    assert_eq!(&e.key_bytes()[..], b"the key");
    assert_eq!(&e.value_bytes()[..], b"value bytes");
    assert_eq!(e.record(), r_with_ms_expiry(&r));
    assert!(!e.is_expired(now + Duration::from_millis(1400)));
    assert!(e.is_expired(now + Duration::from_millis(1600)));
    let never = Entry::new(b"k", &record(now, None), true);
    assert!(!never.is_expired(now + Duration::from_secs(1 << 30)));
    assert_eq!(never.record(), record(now, None));
}

/// Expiry instants are kept to the millisecond.
fn r_with_ms_expiry(r: &Record) -> Record {
    let mut r = r.clone();
    r.expires_at = r
        .expires_at
        .map(|e| base() + Duration::from_millis(to_offset(e)));
    r
}

#[test]
fn without_statistics_hits_and_access_are_not_tracked() {
    let now = Instant::now();
    let mut e = Entry::new(b"k", &record(now, None), false);
    e.touch();
    let back = e.record();
    assert_eq!((back.hits, back.last_access_time), (-1, -1));
    assert_eq!(
        (back.version, back.creation_time, back.last_update_time),
        (3, 1_700_000_000_000, 1_700_000_005_000)
    );
    let mut with = Entry::new(b"k", &record(now, None), true);
    with.touch();
    assert_eq!(with.record().hits, 8);
    assert!(with.record().last_access_time > 1_700_000_009_000);
}

/// `payload` as a client serializes a byte array: partition hash 0, type
/// id -12, the length, the bytes (all big-endian).
pub(super) fn byte_array(payload: &[u8]) -> Bytes {
    let mut v = vec![0u8; 4];
    v.extend_from_slice(&(-12i32).to_be_bytes());
    v.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    v.extend_from_slice(payload);
    Bytes::from(v)
}

#[test]
fn a_16_byte_key_and_100_byte_value_fit_the_128_byte_class() {
    let now = Instant::now();
    let mut r = record(now, None);
    r.value = byte_array(&[1u8; 100]);
    let key = byte_array(&[2u8; 16]);
    let e = Entry::new(&key, &r, false);
    assert_eq!(e.bytes().len(), 128);
    assert_eq!(
        (e.key_bytes(), e.value_bytes()),
        (key.clone(), r.value.clone())
    );
    assert_eq!(Entry::new(&key, &r, true).bytes().len(), 136);
    // Bytes that are not a compactable Data are kept whole.
    r.value = Bytes::from(vec![1u8; 112]);
    assert_eq!(Entry::new(&[2u8; 28], &r, false).bytes().len(), 152);
}

#[test]
fn times_are_kept_to_the_second_as_hazelcast_keeps_them() {
    let now = Instant::now();
    let mut r = record(now, None);
    (r.creation_time, r.last_update_time) = (1_700_000_000_999, 1_700_000_001_001);
    r.last_access_time = 1_700_000_002_500;
    let back = Entry::new(b"k", &r, true).record();
    assert_eq!(
        (
            back.creation_time,
            back.last_update_time,
            back.last_access_time
        ),
        (1_700_000_000_000, 1_700_000_001_000, 1_700_000_002_000)
    );
    for t in [-1, 0] {
        r.last_access_time = t;
        assert_eq!(Entry::new(b"k", &r, true).record().last_access_time, 0);
    }
    r.creation_time = 1_000;
    assert_eq!(
        Entry::new(b"k", &r, true).record().creation_time,
        1_577_836_800_000,
        "before 2020: 2020"
    );
}

#[test]
fn set_ttl_adds_changes_and_drops_the_ttl_fields() {
    let now = Instant::now();
    for stats in [false, true] {
        let mut e = Entry::new(b"key", &record(now, None), stats);
        e.set_ttl(Some(Duration::from_secs(2)), now, 1_800_000_000_000);
        assert!(e.is_expired(now + Duration::from_millis(2001)));
        assert!(!e.is_expired(now + Duration::from_millis(1999)));
        e.set_ttl(Some(Duration::from_secs(5)), now, 1_800_000_001_000);
        assert!(!e.is_expired(now + Duration::from_millis(4999)));
        assert_eq!(e.record().ttl, Some(Duration::from_secs(5)));
        assert_eq!(e.record().last_update_time, 1_800_000_001_000);
        e.set_ttl(None, now, 1_800_000_002_000);
        assert!(!e.is_expired(now + Duration::from_secs(1 << 20)));
        let back = e.record();
        assert_eq!((back.ttl, back.last_update_time), (None, 1_800_000_002_000));
        assert_eq!(
            (&e.key_bytes()[..], &e.value_bytes()[..]),
            (&b"key"[..], &b"value bytes"[..])
        );
        assert_eq!(e.shape().stats().is_some(), stats);
    }
}

#[test]
fn lengths_of_every_width_round_trip() {
    let now = Instant::now();
    for len in [0usize, 1, 127, 128, 16_383, 16_384, 2_097_152] {
        let mut r = record(now, None);
        r.value = Bytes::from(vec![9u8; len]);
        let key = vec![3u8; len.min(200_000)];
        let e = Entry::new(&key, &r, false);
        assert_eq!(
            (e.key_bytes().len(), e.value_bytes().len()),
            (key.len(), len)
        );
        assert!(e.value_bytes().iter().all(|b| *b == 9));
        assert_eq!(e.clone().record().value.len(), len);
    }
}

#[test]
fn ttls_are_exact_to_the_millisecond_below_24_days() {
    for ms in [0u64, 1, 500, 1500, 86_400_000, (1 << 31) - 1] {
        let d = Duration::from_millis(ms);
        assert_eq!(decode_ttl(encode_ttl(d)), d, "{ms} ms");
    }
    let long = Duration::from_secs(90 * 86_400) + Duration::from_millis(250);
    assert_eq!(
        decode_ttl(encode_ttl(long)),
        Duration::from_secs(90 * 86_400)
    );
    let huge = decode_ttl(encode_ttl(Duration::from_secs(u64::MAX / 2)));
    assert!(huge > Duration::from_secs(60 * 365 * 86_400));
}

#[test]
fn clones_and_big_values_are_independent_copies() {
    let now = Instant::now();
    let big = Bytes::from(vec![7u8; 1 << 20]);
    let mut a = Entry::new(b"k", &Record::new(big.clone(), None, now), true);
    let b = a.clone();
    a.touch();
    assert_eq!(a.value_bytes(), &big[..]);
    assert_eq!(b.value_bytes(), &big[..]);
    assert_eq!((a.record().hits, b.record().hits), (1, 0));
    assert_eq!(&b.key_bytes()[..], b"k");
    let empty = Entry::new(b"", &Record::new(Bytes::new(), None, now), false);
    assert!(empty.key_bytes().is_empty() && empty.value_bytes().is_empty());
    drop(a);
    assert_eq!(b.value_bytes().len(), 1 << 20);
}

#[test]
fn big_values_are_shared_not_copied() {
    let now = Instant::now();
    let big = Bytes::from(vec![3u8; SHARED_VALUE_MIN]);
    let mut e = Entry::new(b"key", &Record::new(big.clone(), None, now), false);
    let (a, b) = (e.value_bytes(), e.value_bytes());
    assert_eq!(a.as_ptr(), b.as_ptr(), "one buffer, shared");
    assert_ne!(a.as_ptr(), big.as_ptr(), "not the caller's buffer");
    // Flags, lengths of 1 and 2 bytes, version, times, "key", the pointer.
    assert_eq!(e.bytes().len(), 1 + 1 + 2 + 1 + FIXED + 3 + HANDLE);
    e.set_ttl(Some(Duration::from_secs(5)), now, 1);
    assert_eq!(
        (&e.key_bytes()[..], &e.value_bytes()[..]),
        (&b"key"[..], &big[..])
    );
    let copy = e.clone();
    drop(e);
    assert_eq!(a, big);
    assert_eq!(copy.value_bytes(), &big[..]);
    assert_eq!(copy.record().ttl, Some(Duration::from_secs(5)));
    let small = Entry::new(
        b"k",
        &Record::new(big.slice(..SHARED_VALUE_MIN - 1), None, now),
        false,
    );
    assert_ne!(small.value_bytes().as_ptr(), small.value_bytes().as_ptr());
}

#[test]
fn an_entry_is_one_thin_pointer() {
    assert_eq!(std::mem::size_of::<Entry>(), std::mem::size_of::<usize>());
    assert_eq!(
        std::mem::size_of::<Option<Entry>>(),
        std::mem::size_of::<usize>()
    );
}

#[test]
fn a_rewrite_in_place_is_the_entry_built_anew() {
    let now = Instant::now();
    for len in [
        0usize,
        11,
        100,
        SHARED_VALUE_MIN - 1,
        SHARED_VALUE_MIN,
        10_240,
    ] {
        for (ttl, data) in [(None, false), (Some(Duration::from_millis(2500)), true)] {
            for stats in [false, true] {
                // Values as bytes, and as a client's byte arrays.
                let value = |b: u8| match data {
                    false => Bytes::from(vec![b; len]),
                    true => byte_array(&vec![b; len]),
                };
                let mut r = record(now, ttl);
                r.value = value(1);
                let mut e = Entry::new(b"the key", &r, stats);
                let mut next = r.clone();
                next.value = value(2);
                next.version = 4;
                next.last_update_time += 1_000;
                next.hits = 9;
                next.expires_at = ttl.map(|d| now + d + Duration::from_millis(77));
                let mut o = Entry::new(b"the key", &r, stats);
                let previous = e.rewrite(&next, stats).expect("same layout: in place");
                assert_eq!(previous, r.value, "len {len}, ttl {ttl:?}, stats {stats}");
                assert!(o.overwrite(&next, stats), "same layout: in place");
                let fresh = Entry::new(b"the key", &next, stats);
                for e in [&e, &o] {
                    assert_eq!(&e.key_bytes()[..], b"the key");
                    assert_eq!(e.value_bytes(), fresh.value_bytes());
                    assert_eq!(e.record(), fresh.record());
                    if r.value.len() < SHARED_VALUE_MIN {
                        assert_eq!(e.bytes(), fresh.bytes());
                    }
                }
            }
        }
    }
}

#[test]
fn a_rewrite_that_changes_the_layout_is_refused_and_changes_nothing() {
    let now = Instant::now();
    let r = record(now, None);
    let mut e = Entry::new(b"k", &r, false);
    let before = e.record();
    let mut longer = r.clone();
    longer.value = Bytes::from_static(b"value bytes, longer");
    assert!(e.rewrite(&longer, false).is_none());
    let with_ttl = record(now, Some(Duration::from_secs(5)));
    assert!(e.rewrite(&with_ttl, false).is_none());
    assert!(e.rewrite(&r, true).is_none(), "statistics switched on");
    // Same stored length, another form: the flags differ.
    let mut as_data = r.clone();
    as_data.value = byte_array(b"value bytes");
    assert!(e.rewrite(&as_data, false).is_none());
    // A version past 127 takes a second byte.
    let (mut v127, mut v128) = (r.clone(), r.clone());
    (v127.version, v128.version) = (127, 128);
    assert!(e.rewrite(&v127, false).is_some());
    assert!(e.rewrite(&v128, false).is_none());
    assert!(e.rewrite(&r, false).is_some());
    assert!(!e.overwrite(&longer, false));
    assert!(!e.overwrite(&r, true));
    assert_eq!(e.record(), before);
    // The previous value handed out stays valid after the rewrite.
    let mut big = record(now, None);
    big.value = Bytes::from(vec![5u8; 4096]);
    let mut e = Entry::new(b"k", &big, false);
    let held = e.value_bytes();
    let mut next = big.clone();
    next.value = Bytes::from(vec![6u8; 4096]);
    let previous = e.rewrite(&next, false).unwrap();
    assert_eq!(held, previous);
    assert!(held.iter().all(|b| *b == 5));
    assert!(e.value_bytes().iter().all(|b| *b == 6));
}

#[test]
fn a_buffer_of_its_own_is_kept_and_any_other_copied() {
    let exact = Bytes::from(vec![7u8; 4096]);
    let at = exact.as_ptr();
    let kept = own_buffer(exact);
    assert_eq!(kept.as_ptr(), at, "unique and exactly its size: kept");
    // Shared with someone else: copied (the other holder keeps its own).
    let shared = Bytes::from(vec![8u8; 4096]);
    let other = shared.clone();
    let copied = own_buffer(shared);
    assert_ne!(copied.as_ptr(), other.as_ptr());
    assert_eq!(copied, other);
    // A slice of a bigger buffer (a read buffer): copied, so the rest of
    // the buffer is not kept alive by the entry.
    let big = Bytes::from(vec![9u8; 64 * 1024]);
    let slice = big.slice(100..4196);
    drop(big);
    let copied = own_buffer(slice.clone());
    assert_ne!(copied.as_ptr(), slice.as_ptr());
    assert_eq!(copied.len(), 4096);
    // An entry sharing the buffer holds that very buffer.
    let now = Instant::now();
    let mut r = record(now, None);
    r.value = own_buffer(Bytes::from(vec![1u8; 4096]));
    let at = r.value.as_ptr();
    let mut e = Entry::sharing(b"k", &r, false);
    assert_eq!(e.value_bytes().as_ptr(), at);
    let mut next = r.clone();
    next.value = own_buffer(Bytes::from(vec![2u8; 4096]));
    let at = next.value.as_ptr();
    assert!(e.overwrite_sharing(&next, false));
    assert_eq!(e.value_bytes().as_ptr(), at);
    // `new` always copies.
    assert_ne!(Entry::new(b"k", &next, false).value_bytes().as_ptr(), at);
}
