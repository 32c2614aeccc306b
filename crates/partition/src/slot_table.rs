//! The hash table behind each map partition: open addressing with Robin
//! Hood probing, any number of slots, grown by a quarter at 90% load.
//!
//! Why not hashbrown's table, which this replaced: its tables have a power
//! of two buckets and hold at most 7/8 of them, so a table is between 44%
//! and 87.5% full and a map costs 10-21 bytes of table per entry (9 bytes
//! per bucket). Which one depends on luck: 1,000,000 entries spread over
//! 271 partitions are 3,690 per partition, just past 7/8 of 4,096, so every
//! table had doubled to 8,192 buckets (45% full, 19 MiB). Here a table grows
//! by a quarter when 90% full, so it stays 72-90% full: 8.9-11.1 bytes per
//! entry (8 per slot, see below). Growing by half (60-90% full) left the
//! 1,000,000 entries' tables 71% full, 11.6 MiB; by a quarter they are 87%
//! full, 9.2 MiB. The price is moving each entry about four times while a
//! map grows instead of twice; a load of 1,000,000 entries took as long
//! either way, within the run-to-run spread (2026-11-27).
//!
//! Layout: `meta[i]` is 0 for an empty slot, else `(distance + 1) << 8 |
//! tag`, where the distance is how far the slot is from the entry's home
//! slot (chosen from the hash's high bits by a multiply, so any slot count
//! works) and the tag is the hash's low 8 bits. A lookup walks from the home
//! slot and compares metadata (two bytes, in one cache line for the usual
//! walk of a few slots); only a tag that matches (1 in 256 of the others)
//! costs a look at the entry itself. Robin Hood order (an entry that is
//! farther from home takes the slot of one that is nearer) keeps the slots
//! sorted by home slot, so a lookup for a missing key stops at the first
//! entry nearer its home than the key would be, and removal shifts the
//! following entries back instead of leaving tombstones.
//!
//! Hashes are not stored: growing asks the caller to hash each entry
//! again, as hashbrown does.
//!
//! Each slot is one 64-bit word: the metadata in its high 16 bits, the item
//! in its low 48 (an entry's pointer: user space addresses on Linux have 47
//! bits unless a mapping asks for more, which nothing here does). That is
//! 8 bytes a slot instead of 10 in two arrays, and a lookup reads the
//! metadata and the pointer from the same cache line instead of two. An
//! item is only rebuilt from its bits, so the table hands out views
//! ([`Slot`], [`SlotMut`]) rather than references. The words live in
//! [`SlotWords`], in a mapping of their own once the table is large.

use crate::slot_words::SlotWords;
use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};
use std::ops::{Deref, DerefMut};

/// Slots of the first table.
const MIN_SLOTS: usize = 8;
/// Tables of fewer slots (2 KiB) are not shrunk.
const SHRINK_MIN_SLOTS: usize = 256;
/// The largest distance from home the metadata holds (255 - 1).
const MAX_DISTANCE: u64 = 254;
/// Where the metadata starts in a word.
const META_SHIFT: u32 = 48;
/// The item's bits in a word.
const ITEM_BITS: u64 = (1 << META_SHIFT) - 1;

/// An item a table can hold in 48 bits, and that is nothing but those bits:
/// a copy rebuilt from them behaves as the item (for an entry, its pointer).
pub(crate) trait Packed: Sized {
    /// The item as bits below 2^48; the table owns what they stand for.
    fn into_bits(self) -> u64;
    /// The item `into_bits` gave these bits for.
    ///
    /// # Safety
    /// `bits` came from `into_bits`, and only one of the items rebuilt
    /// from them is ever dropped.
    unsafe fn from_bits(bits: u64) -> Self;
}

impl Packed for u64 {
    fn into_bits(self) -> u64 {
        self
    }

    unsafe fn from_bits(bits: u64) -> Self {
        bits
    }
}

/// A table of `T`s found by hash and an equality test.
pub(crate) struct SlotTable<T: Packed> {
    words: SlotWords,
    len: usize,
    items: PhantomData<T>,
}

impl<T: Packed> Default for SlotTable<T> {
    fn default() -> Self {
        Self {
            words: SlotWords::empty(),
            len: 0,
            items: PhantomData,
        }
    }
}

/// The item in a taken word.
fn bits(word: u64) -> u64 {
    word & ITEM_BITS
}

/// A word holding `item` with metadata `meta`.
fn word<T: Packed>(item: T, meta: u64) -> u64 {
    let bits = item.into_bits();
    assert!(
        bits <= ITEM_BITS,
        "a table item of more than 48 bits: {bits:#x}"
    );
    (meta << META_SHIFT) | bits
}

/// A view of an item in the table (it stays the table's).
pub(crate) struct Slot<'a, T> {
    item: ManuallyDrop<T>,
    table: PhantomData<&'a T>,
}

impl<T: Packed> Slot<'_, T> {
    /// # Safety
    /// `word` is a taken word of a table that outlives the view.
    unsafe fn of(word: u64) -> Self {
        Self {
            item: ManuallyDrop::new(T::from_bits(bits(word))),
            table: PhantomData,
        }
    }
}

impl<T> Deref for Slot<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.item
    }
}

/// A changeable view of an item in the table: what it holds when the view
/// ends (the same item changed in place, or one assigned over it, which
/// drops the old one) is written back to the slot.
pub(crate) struct SlotMut<'a, T: Packed> {
    item: ManuallyDrop<T>,
    word: &'a mut u64,
}

impl<T: Packed> Deref for SlotMut<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.item
    }
}

impl<T: Packed> DerefMut for SlotMut<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.item
    }
}

impl<T: Packed> Drop for SlotMut<'_, T> {
    fn drop(&mut self) {
        // SAFETY: taken once, here; the slot owns it again.
        let item = unsafe { ManuallyDrop::take(&mut self.item) };
        *self.word = word(item, *self.word >> META_SHIFT);
    }
}

/// The home slot of `hash` among `n`: its high bits scaled to `0..n`.
fn home(hash: u64, n: usize) -> usize {
    ((hash as u128 * n as u128) >> 64) as usize
}

/// The next size of a table of `n` slots.
fn grown(n: usize) -> usize {
    (n + n / 4).max(MIN_SLOTS)
}

/// Metadata of an entry `distance` slots from home.
fn meta(hash: u64, distance: u64) -> u64 {
    ((distance + 1) << 8) | (hash & 0xff)
}

/// The metadata of a word (0: empty).
fn meta_of(word: u64) -> u64 {
    word >> META_SHIFT
}

/// Where an insert stopped: placed, or this item (not necessarily the one
/// inserted: Robin Hood moves others along) found no slot within
/// [`MAX_DISTANCE`] of its home.
enum Placed<T> {
    Done,
    Overflow(T),
}

impl<T: Packed> SlotTable<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of slots (what the table costs: 8 bytes each).
    #[cfg(test)]
    pub fn slots(&self) -> usize {
        self.words.len()
    }

    fn next(&self, i: usize) -> usize {
        if i + 1 == self.words.len() {
            0
        } else {
            i + 1
        }
    }

    /// The slot of the item with this hash for which `eq` holds.
    pub fn find(&self, hash: u64, mut eq: impl FnMut(&T) -> bool) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mut i = home(hash, self.words.len());
        let mut want = meta(hash, 0);
        loop {
            let w = self.words[i];
            if meta_of(w) == want {
                // SAFETY: a taken word of this table, viewed while borrowed.
                let item = unsafe { Slot::<T>::of(w) };
                if eq(&item) {
                    return Some(i);
                }
            }
            // Empty, or an entry nearer its home than we are to ours: in
            // Robin Hood order, ours would have taken that slot.
            if (meta_of(w) >> 8) < (want >> 8) || (want >> 8) > MAX_DISTANCE {
                return None;
            }
            want += 1 << 8;
            i = self.next(i);
        }
    }

    pub fn get(&self, slot: usize) -> Option<Slot<'_, T>> {
        let w = *self.words.get(slot)?;
        // SAFETY: a taken word of this table, viewed while borrowed.
        (w != 0).then(|| unsafe { Slot::of(w) })
    }

    pub fn get_mut(&mut self, slot: usize) -> Option<SlotMut<'_, T>> {
        let word = self.words.get_mut(slot)?;
        if *word == 0 {
            return None;
        }
        // SAFETY: a taken word; the view writes its item back when done,
        // and nothing else reads the slot while it is borrowed mutably.
        let item = ManuallyDrop::new(unsafe { T::from_bits(bits(*word)) });
        Some(SlotMut { item, word })
    }

    /// Inserts `item`, whose key the caller knows is absent. `rehash`
    /// gives the hash of an item already in the table (to grow it).
    pub fn insert(&mut self, hash: u64, item: T, rehash: impl Fn(&T) -> u64) {
        if (self.len + 1) * 10 > self.words.len() * 9 {
            self.resize(grown(self.words.len()), &rehash);
        }
        let (mut hash, mut item) = (hash, item);
        // A run of more than MAX_DISTANCE taken slots: grow, which
        // shortens runs. With the keyed hash the store uses this is not
        // expected at 90% load; a hash that sent everything home to one
        // slot would grow the table until memory ran out.
        while let Placed::Overflow(back) = self.place(hash, item) {
            hash = rehash(&back);
            item = back;
            self.resize(grown(self.words.len()), &rehash);
        }
    }

    /// Places an item in Robin Hood order; `len` counts it only if done.
    fn place(&mut self, hash: u64, item: T) -> Placed<T> {
        if self.words.is_empty() {
            return Placed::Overflow(item);
        }
        let mut i = home(hash, self.words.len());
        let mut carried = word(item, meta(hash, 0));
        loop {
            let resident = self.words[i];
            if resident == 0 {
                self.words[i] = carried;
                self.len += 1;
                return Placed::Done;
            }
            if (meta_of(resident) >> 8) < (meta_of(carried) >> 8) {
                // The resident is nearer its home: it moves on instead.
                self.words[i] = carried;
                carried = resident;
            }
            if (meta_of(carried) >> 8) > MAX_DISTANCE {
                // SAFETY: the carried word's item was taken out of the
                // table (or never in it); it is handed back once.
                return Placed::Overflow(unsafe { T::from_bits(bits(carried)) });
            }
            carried += 1 << (META_SHIFT + 8);
            i = self.next(i);
        }
    }

    /// Moves every item into a table of `slots` slots, or more if they do
    /// not fit within [`MAX_DISTANCE`] of home there.
    fn resize(&mut self, mut slots: usize, rehash: &impl Fn(&T) -> u64) {
        let mut items = self.take_all();
        loop {
            self.words = SlotWords::zeroed(slots);
            self.len = 0;
            let mut fits = true;
            while let Some(item) = items.pop() {
                if let Placed::Overflow(back) = self.place(rehash(&item), item) {
                    items.push(back);
                    items.extend(self.take_all());
                    fits = false;
                    break;
                }
            }
            if fits {
                return;
            }
            slots = grown(slots);
        }
    }

    /// Takes every item out, leaving the table empty (and without slots).
    fn take_all(&mut self) -> Vec<T> {
        self.len = 0;
        let words = mem::replace(&mut self.words, SlotWords::empty());
        words
            .iter()
            .filter(|w| **w != 0)
            // SAFETY: each taken word's item leaves the table here, once;
            // the words are freed without dropping anything.
            .map(|w| unsafe { T::from_bits(bits(*w)) })
            .collect()
    }

    /// After removals: a table under 20% full shrinks to 60% full, so a map
    /// that emptied (deletes, expiry) gives its memory back; between 20% and
    /// 90% nothing moves, so a map around one size never resizes back and
    /// forth. `rehash` as in [`insert`](Self::insert).
    fn shrink_if_sparse(&mut self, rehash: &impl Fn(&T) -> u64) {
        let n = self.words.len();
        if n >= SHRINK_MIN_SLOTS && self.len * 5 < n {
            self.resize((self.len * 5 / 3).max(MIN_SLOTS), rehash);
        }
    }

    /// Removes the item in `slot`, shifting the ones after it back.
    /// `rehash` as in [`insert`](Self::insert): the table may shrink.
    pub fn remove(&mut self, slot: usize, rehash: impl Fn(&T) -> u64) -> Option<T> {
        let w = *self.words.get(slot)?;
        if w == 0 {
            return None;
        }
        // SAFETY: the item leaves the table: its slot is overwritten below.
        let item = unsafe { T::from_bits(bits(w)) };
        self.len -= 1;
        let mut i = slot;
        loop {
            let j = self.next(i);
            let next = self.words[j];
            // Empty, or at its home: nothing further belongs earlier.
            if (meta_of(next) >> 8) <= 1 {
                self.words[i] = 0;
                self.shrink_if_sparse(&rehash);
                return Some(item);
            }
            self.words[i] = next - (1 << (META_SHIFT + 8));
            i = j;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Slot<'_, T>> + '_ {
        self.words
            .iter()
            .filter(|w| **w != 0)
            // SAFETY: taken words of this table, viewed while borrowed.
            .map(|w| unsafe { Slot::of(*w) })
    }

    /// Keeps the items for which `keep` holds, in one pass: each kept item
    /// moves back to the first free slot at or after its home. `rehash` as
    /// in [`insert`](Self::insert): the table may shrink.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool, rehash: impl Fn(&T) -> u64) {
        let n = self.words.len();
        // Start at an empty slot: no item's walk from home crosses it, so
        // in the order from there every item comes after its home.
        let Some(start) = self.words.iter().position(|w| *w == 0) else {
            return;
        };
        let mut free = 0; // the first offset from `start` nothing was put at
        for offset in 0..n {
            let i = (start + offset) % n;
            let w = self.words[i];
            if w == 0 {
                continue;
            }
            self.words[i] = 0;
            // SAFETY: a taken word, viewed while the table is borrowed.
            if !keep(&*unsafe { Slot::<T>::of(w) }) {
                // SAFETY: its slot was cleared above; dropped once, here.
                drop(unsafe { T::from_bits(bits(w)) });
                self.len -= 1;
                continue;
            }
            let m = meta_of(w);
            let home = offset - ((m >> 8) as usize - 1);
            let at = home.max(free);
            let distance = (at - home) as u64;
            self.words[(start + at) % n] = (meta(m, distance) << META_SHIFT) | bits(w);
            free = at + 1;
        }
        self.shrink_if_sparse(&rehash);
    }

    /// Drops every item and the table's memory.
    pub fn clear(&mut self) {
        drop(self.take_all());
    }
}

impl<T: Packed> Drop for SlotTable<T> {
    fn drop(&mut self) {
        self.clear();
    }
}

impl<T: Packed + Clone> Clone for SlotTable<T> {
    /// The same layout, slot for slot, with each item cloned.
    fn clone(&self) -> Self {
        let mut copy = Self {
            words: SlotWords::zeroed(self.words.len()),
            len: 0,
            items: PhantomData,
        };
        for (i, w) in self.words.iter().enumerate() {
            if *w != 0 {
                // SAFETY: a taken word of `self`, viewed while borrowed.
                let item = (*unsafe { Slot::<T>::of(*w) }).clone();
                copy.words[i] = word(item, meta_of(*w));
                copy.len += 1;
            }
        }
        copy
    }
}

#[cfg(test)]
#[path = "slot_table_tests.rs"]
mod tests;
