//! The record store against a plain map, over random operations on keys
//! and values in every stored form (byte arrays, strings, other typed
//! `Data`, partition-aware and raw bytes), so a form that hashed,
//! compared or rebuilt differently on one path shows as a difference.

use crate::store::{MapPartition, Record};
use crate::test_rng::Rng;
use bytes::Bytes;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn data(hash: i32, ty: i32, payload: &[u8], with_len: bool) -> Bytes {
    let mut v = hash.to_be_bytes().to_vec();
    v.extend_from_slice(&ty.to_be_bytes());
    if with_len {
        v.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    }
    v.extend_from_slice(payload);
    Bytes::from(v)
}

/// A key or value of one of the stored forms, from `n`.
fn any(rng: &mut Rng, n: u64, len: usize) -> Bytes {
    let payload: Vec<u8> = (0..len)
        .map(|i| (n as usize).wrapping_mul(31).wrapping_add(i) as u8)
        .collect();
    match rng.below(6) {
        0 => data(0, -12, &payload, true),
        1 => data(0, -11, &payload, true),
        2 => data(0, -7, &payload, false),
        3 => data(7, -12, &payload, true),
        4 => data(0, -12, &payload, false),
        _ => Bytes::from(payload),
    }
}

#[test]
fn the_store_behaves_as_a_map_whatever_the_forms() {
    let now = Instant::now();
    for seed in 1..=20u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let stats = seed % 2 == 0;
        let mut m = MapPartition::with_entry_stats(stats);
        let mut model: HashMap<Bytes, Bytes> = HashMap::new();
        // A fixed set of keys in random forms, as clients would send
        // them; 8 payloads, so the same payload comes in several forms.
        let keys: Vec<Bytes> = (0..40)
            .map(|k| any(&mut rng, k % 8, 1 + (k % 8) as usize * 3))
            .collect();
        for step in 0..3000 {
            let k = keys[rng.below(keys.len() as u64) as usize].clone();
            let len = [0usize, 5, 100, 1500][rng.below(4) as usize];
            let v = any(&mut rng, step, len);
            match rng.below(8) {
                0 => assert_eq!(m.put(k.clone(), v.clone(), None, now), model.insert(k, v)),
                1 => {
                    assert_eq!(
                        m.set(k.clone(), v.clone(), None, now),
                        model.contains_key(&k)
                    );
                    model.insert(k, v);
                }
                2 => assert_eq!(m.remove(&k, now), model.remove(&k)),
                3 => {
                    let mut r = Record::new(v.clone(), None, now);
                    r.version = rng.below(300) as i64;
                    m.install(k.clone(), r);
                    model.insert(k, v);
                }
                4 => {
                    let ttl = [None, Some(Duration::from_secs(3600))][rng.below(2) as usize];
                    assert_eq!(m.set_ttl(&k, ttl, now), model.contains_key(&k));
                }
                5 => {
                    // A copy, as a migration makes one.
                    let mut copy = MapPartition::with_entry_stats(stats);
                    for (key, r) in m.snapshot() {
                        copy.install(key, r);
                    }
                    m = copy;
                }
                _ => assert_eq!(m.get(&k, now), model.get(&k).cloned()),
            }
            assert_eq!(m.len(), model.len(), "seed {seed} step {step}");
        }
        let mut back: Vec<(Bytes, Bytes)> = m.iter(now).map(|(k, r)| (k, r.value)).collect();
        let mut want: Vec<(Bytes, Bytes)> = model.into_iter().collect();
        back.sort();
        want.sort();
        assert_eq!(back, want, "seed {seed}");
    }
}
