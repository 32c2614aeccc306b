//! `SlotTable` against a `HashSet` over random inserts, removals and
//! retains, with its Robin Hood layout checked after every step, under a
//! well-spread hash and under ones that pile keys onto few home slots.

use super::{home, Packed, SlotTable, ITEM_BITS, MAX_DISTANCE, META_SHIFT};
use crate::test_rng::Rng;
use std::collections::HashSet;

fn spread(k: &u64) -> u64 {
    let mut z = k.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 64 distinct hashes, with equal tags: long runs, every tag a match.
fn clumped(k: &u64) -> u64 {
    (k % 64) << 58
}

/// Every slot holds what its metadata says, in Robin Hood order: each item
/// is `distance` after its home, every slot in between is taken, and the
/// distance grows by at most one from a slot to the next.
fn check(t: &SlotTable<u64>, hash: fn(&u64) -> u64) {
    let n = t.words.len();
    let mut count = 0;
    for i in 0..n {
        let w = t.words[i];
        let m = w >> META_SHIFT;
        if m == 0 {
            assert_eq!(w, 0, "slot {i} empty with an item");
            continue;
        }
        let k = w & ITEM_BITS;
        count += 1;
        let h = hash(&k);
        assert_eq!(m & 0xff, h & 0xff, "tag of {k}");
        let distance = (m >> 8) as usize - 1;
        assert_eq!((home(h, n) + distance) % n, i, "distance of {k}");
        for back in 1..=distance {
            assert_ne!(t.words[(i + n - back) % n], 0, "gap before {k}");
        }
        let next = t.words[(i + 1) % n] >> (META_SHIFT + 8);
        assert!(next <= (m >> 8) + 1, "order after slot {i}");
        assert!(distance as u64 <= MAX_DISTANCE);
    }
    assert_eq!(count, t.len());
    assert!(n == 0 || t.len() * 10 <= n * 9 || n <= 8);
}

fn run(hash: fn(&u64) -> u64, keys: u64, steps: usize, seed: u64) {
    let mut rng = Rng(seed);
    let mut t = SlotTable::default();
    let mut model = HashSet::new();
    for step in 0..steps {
        let k = rng.next() % keys;
        match rng.next() % 10 {
            0..=5 => {
                if t.find(hash(&k), |x| *x == k).is_none() {
                    t.insert(hash(&k), k, hash);
                }
                model.insert(k);
            }
            6..=8 => {
                let removed = t
                    .find(hash(&k), |x| *x == k)
                    .and_then(|i| t.remove(i, hash));
                assert_eq!(removed.is_some(), model.remove(&k), "remove {k}");
            }
            _ => {
                let cut = rng.next() % keys;
                t.retain(|x| !(x ^ cut).is_multiple_of(3), hash);
                model.retain(|x| !(x ^ cut).is_multiple_of(3));
            }
        }
        if step % 97 == 0 || keys < 1000 {
            check(&t, hash);
        }
        for probe in [k, rng.next() % keys] {
            let found = t.find(hash(&probe), |x| *x == probe).and_then(|i| t.get(i));
            assert_eq!(
                found.map(|x| *x),
                model.get(&probe).copied(),
                "find {probe}"
            );
        }
    }
    check(&t, hash);
    let mut all: Vec<u64> = t.iter().map(|x| *x).collect();
    all.sort();
    let mut expected: Vec<u64> = model.into_iter().collect();
    expected.sort();
    assert_eq!(all, expected);
}

#[test]
fn matches_a_set_with_a_spread_hash() {
    for seed in 1..=3 {
        run(spread, 5_000, 40_000, seed);
    }
}

#[test]
fn matches_a_set_when_keys_share_home_slots_and_tags() {
    run(clumped, 400, 20_000, 7);
}

#[test]
fn grows_past_its_load_when_a_run_would_pass_the_longest_distance() {
    // 600 keys on 4 home hashes: at 90% load runs of 150 overlap into one
    // of 600; the table grows until the four runs stand apart.
    let hash = |k: &u64| (k % 4) << 62;
    let mut t = SlotTable::default();
    for k in 0..600u64 {
        t.insert(hash(&k), k, hash);
    }
    check(&t, hash);
    assert!(t.slots() > 600 * 10 / 9 + 1, "{} slots", t.slots());
    for k in 0..600u64 {
        assert_eq!(
            t.find(hash(&k), |x| *x == k)
                .and_then(|i| t.get(i))
                .map(|x| *x),
            Some(k)
        );
    }
}

#[test]
fn stays_between_72_and_90_percent_full_while_growing() {
    let mut t = SlotTable::default();
    for k in 0..100_000u64 {
        t.insert(spread(&k), k, spread);
        if k > 100 {
            let load = t.len() as f64 / t.slots() as f64;
            assert!((0.71..=0.9).contains(&load), "{} in {}", t.len(), t.slots());
        }
    }
    // 3,690 entries (1M over 271 partitions): 4,241 slots, 9.2 bytes per
    // entry (growing by half: 5,166 slots, 11.2 bytes).
    let mut t = SlotTable::default();
    for k in 0..3_690u64 {
        t.insert(spread(&k), k, spread);
    }
    let per_entry = t.slots() as f64 * 8.0 / 3_690.0;
    assert!(
        (8.8..=11.1).contains(&per_entry),
        "{per_entry} bytes per entry"
    );
}

#[test]
fn clear_frees_and_the_table_works_after() {
    let mut t = SlotTable::default();
    for k in 0..1000u64 {
        t.insert(spread(&k), k, spread);
    }
    t.clear();
    assert_eq!((t.len(), t.slots()), (0, 0));
    assert!(t.find(spread(&5), |x| *x == 5).is_none());
    t.insert(spread(&5), 5, spread);
    assert_eq!(t.iter().map(|x| *x).collect::<Vec<_>>(), vec![5]);
}

thread_local! {
    /// Live `Counted` items on this thread.
    static LIVE: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

/// A heap item (a pointer, like an entry) that counts itself.
struct Counted(Box<u64>);

impl Counted {
    fn new(k: u64) -> Self {
        LIVE.with(|n| n.set(n.get() + 1));
        Counted(Box::new(k))
    }
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        Counted::new(*self.0)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        LIVE.with(|n| n.set(n.get() - 1));
    }
}

impl Packed for Counted {
    fn into_bits(self) -> u64 {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: the box is moved out once; `this` is never dropped.
        let boxed = unsafe { std::ptr::read(&this.0) };
        Box::into_raw(boxed).expose_provenance() as u64
    }

    unsafe fn from_bits(bits: u64) -> Self {
        // SAFETY: bits of a box `into_bits` released, taken back once.
        Counted(unsafe { Box::from_raw(std::ptr::with_exposed_provenance_mut(bits as usize)) })
    }
}

#[test]
fn items_are_dropped_once_whether_removed_replaced_retained_cloned_or_left_in() {
    let hash = |c: &Counted| spread(&c.0);
    let live = || LIVE.with(|n| n.get());
    let mut t = SlotTable::default();
    for k in 0..5_000u64 {
        t.insert(spread(&k), Counted::new(k), hash);
    }
    assert_eq!(live(), 5_000);
    for k in (0..5_000u64).step_by(5) {
        let slot = t.find(spread(&k), |c| *c.0 == k).expect("present");
        assert_eq!(t.remove(slot, hash).map(|c| *c.0), Some(k));
    }
    assert_eq!(live(), 4_000);
    // Replacing through a changeable view drops the old item and keeps
    // the new one in the slot; changing it in place keeps it.
    for k in [1u64, 2, 3] {
        let slot = t.find(spread(&k), |c| *c.0 == k).expect("present");
        *t.get_mut(slot).expect("taken") = Counted::new(k);
        *t.get_mut(slot).expect("taken").0 += 0;
    }
    assert_eq!(live(), 4_000);
    t.retain(|c| *c.0 % 2 == 0, hash);
    assert_eq!((t.len() as i64, live()), (2_000, 2_000));
    let copy = t.clone();
    assert_eq!(live(), 4_000);
    for k in 0..5_000u64 {
        let want = (k % 5 != 0 && k % 2 == 0).then_some(k);
        for table in [&t, &copy] {
            let found = table
                .find(spread(&k), |c| *c.0 == k)
                .and_then(|i| table.get(i));
            assert_eq!(found.map(|c| *c.0), want, "key {k}");
        }
    }
    drop(t);
    assert_eq!(live(), 2_000);
    drop(copy);
    assert_eq!(live(), 0);
}

#[test]
fn a_table_emptied_by_removals_or_retain_shrinks_and_one_around_a_size_does_not_resize() {
    let mut t = SlotTable::default();
    for k in 0..20_000u64 {
        t.insert(spread(&k), k, spread);
    }
    let full = t.slots();
    // Removing one by one down to 100: the table follows, 20-90% full
    // from the moment it would be under 20%.
    for k in 100..20_000u64 {
        let slot = t.find(spread(&k), |x| *x == k).expect("present");
        assert_eq!(t.remove(slot, spread), Some(k));
        if t.slots() >= super::SHRINK_MIN_SLOTS {
            assert!(t.len() * 5 >= t.slots(), "{} in {}", t.len(), t.slots());
        }
    }
    check(&t, spread);
    assert!(
        t.slots() <= 100 * 5,
        "{} slots for 100 items (was {full})",
        t.slots()
    );
    for k in 0..20_000u64 {
        let found = t
            .find(spread(&k), |x| *x == k)
            .and_then(|i| t.get(i))
            .map(|x| *x);
        assert_eq!(found, (k < 100).then_some(k));
    }
    // Retain: in one pass, then one shrink.
    let mut t = SlotTable::default();
    for k in 0..20_000u64 {
        t.insert(spread(&k), k, spread);
    }
    t.retain(|k| k % 50 == 0, spread);
    check(&t, spread);
    assert_eq!(t.len(), 400);
    assert!(
        (400 * 10 / 9..=400 * 5).contains(&t.slots()),
        "{} slots",
        t.slots()
    );
    // Around one size (half full): inserts and removals in turn move nothing.
    let slots = t.slots();
    for round in 0..1_000u64 {
        let k = 1_000_000 + round;
        t.insert(spread(&k), k, spread);
        let slot = t.find(spread(&k), |x| *x == k).expect("present");
        t.remove(slot, spread);
        assert_eq!(t.slots(), slots);
    }
}
