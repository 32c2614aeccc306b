//! The hash table behind each map partition: open addressing with Robin
//! Hood probing, any number of slots, grown by half at 90% load.
//!
//! Why not hashbrown's table, which this replaced: its tables have a power
//! of two buckets and hold at most 7/8 of them, so a table is between 44%
//! and 87.5% full and a map costs 10-21 bytes of table per entry (9 bytes
//! per bucket). Which one depends on luck: 1,000,000 entries spread over
//! 271 partitions are 3,690 per partition, just past 7/8 of 4,096, so every
//! table had doubled to 8,192 buckets (45% full, 19 MiB). Here a table grows
//! by half when 90% full, so it stays 60-90% full: 11-17 bytes per entry
//! (10 per slot: the entry's 8-byte pointer and 2 bytes of metadata).
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

use std::mem;

/// Slots of the first table.
const MIN_SLOTS: usize = 8;
/// The largest distance from home the metadata holds (255 - 1).
const MAX_DISTANCE: u32 = 254;

/// A table of `T`s found by hash and an equality test.
#[derive(Clone)]
pub(crate) struct SlotTable<T> {
    meta: Box<[u16]>,
    slots: Box<[Option<T>]>,
    len: usize,
}

impl<T> Default for SlotTable<T> {
    fn default() -> Self {
        Self {
            meta: Box::new([]),
            slots: Box::new([]),
            len: 0,
        }
    }
}

/// The home slot of `hash` among `n`: its high bits scaled to `0..n`.
fn home(hash: u64, n: usize) -> usize {
    ((hash as u128 * n as u128) >> 64) as usize
}

/// The next size of a table of `n` slots.
fn grown(n: usize) -> usize {
    (n + n / 2).max(MIN_SLOTS)
}

/// Metadata of an entry `distance` slots from home.
fn meta(hash: u64, distance: u32) -> u32 {
    ((distance + 1) << 8) | (hash as u32 & 0xff)
}

/// Where an insert stopped: placed, or this item (not necessarily the one
/// inserted: Robin Hood moves others along) found no slot within
/// [`MAX_DISTANCE`] of its home.
enum Placed<T> {
    Done,
    Overflow(T),
}

impl<T> SlotTable<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of slots (what the table costs: 10 bytes each).
    #[cfg(test)]
    pub fn slots(&self) -> usize {
        self.meta.len()
    }

    fn next(&self, i: usize) -> usize {
        if i + 1 == self.meta.len() {
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
        let mut i = home(hash, self.meta.len());
        let mut want = meta(hash, 0);
        loop {
            let m = u32::from(self.meta[i]);
            if m == want {
                if let Some(item) = &self.slots[i] {
                    if eq(item) {
                        return Some(i);
                    }
                }
            }
            // Empty, or an entry nearer its home than we are to ours: in
            // Robin Hood order, ours would have taken that slot.
            if (m >> 8) < (want >> 8) || (want >> 8) > MAX_DISTANCE {
                return None;
            }
            want += 1 << 8;
            i = self.next(i);
        }
    }

    pub fn get(&self, slot: usize) -> Option<&T> {
        self.slots.get(slot)?.as_ref()
    }

    pub fn get_mut(&mut self, slot: usize) -> Option<&mut T> {
        self.slots.get_mut(slot)?.as_mut()
    }

    /// Inserts `item`, whose key the caller knows is absent. `rehash`
    /// gives the hash of an item already in the table (to grow it).
    pub fn insert(&mut self, hash: u64, item: T, rehash: impl Fn(&T) -> u64) {
        if (self.len + 1) * 10 > self.meta.len() * 9 {
            self.resize(grown(self.meta.len()), &rehash);
        }
        let (mut hash, mut item) = (hash, item);
        // A run of more than MAX_DISTANCE taken slots: grow, which
        // shortens runs. With the keyed hash the store uses this is not
        // expected at 90% load; a hash that sent everything home to one
        // slot would grow the table until memory ran out.
        while let Placed::Overflow(back) = self.place(hash, item) {
            hash = rehash(&back);
            item = back;
            self.resize(grown(self.meta.len()), &rehash);
        }
    }

    /// Places an item in Robin Hood order; `len` counts it only if done.
    fn place(&mut self, hash: u64, item: T) -> Placed<T> {
        if self.meta.is_empty() {
            return Placed::Overflow(item);
        }
        let mut i = home(hash, self.meta.len());
        let mut m = meta(hash, 0);
        let mut carried = item;
        loop {
            let resident = u32::from(self.meta[i]);
            if resident == 0 {
                self.meta[i] = m as u16;
                self.slots[i] = Some(carried);
                self.len += 1;
                return Placed::Done;
            }
            if (resident >> 8) < (m >> 8) {
                // The resident is nearer its home: it moves on instead.
                self.meta[i] = m as u16;
                m = resident;
                match self.slots[i].replace(carried) {
                    Some(moved) => carried = moved,
                    None => {
                        // Metadata said taken; the slot was empty. Count
                        // what is in it now and stop.
                        self.len += 1;
                        return Placed::Done;
                    }
                }
            }
            if (m >> 8) > MAX_DISTANCE {
                return Placed::Overflow(carried);
            }
            m += 1 << 8;
            i = self.next(i);
        }
    }

    /// Moves every item into a table of `slots` slots, or more if they do
    /// not fit within [`MAX_DISTANCE`] of home there.
    fn resize(&mut self, mut slots: usize, rehash: &impl Fn(&T) -> u64) {
        let mut items = self.take_all();
        loop {
            self.meta = vec![0; slots].into_boxed_slice();
            self.slots = std::iter::repeat_with(|| None).take(slots).collect();
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

    fn take_all(&mut self) -> Vec<T> {
        self.len = 0;
        self.meta = Box::new([]);
        mem::take(&mut self.slots)
            .into_vec()
            .into_iter()
            .flatten()
            .collect()
    }

    /// Removes the item in `slot`, shifting the ones after it back.
    pub fn remove(&mut self, slot: usize) -> Option<T> {
        let item = self.slots.get_mut(slot)?.take()?;
        self.len -= 1;
        let mut i = slot;
        loop {
            let j = self.next(i);
            let m = self.meta[j];
            // Empty, or at its home: nothing further belongs earlier.
            if (m >> 8) <= 1 {
                self.meta[i] = 0;
                return Some(item);
            }
            self.meta[i] = m - (1 << 8);
            self.slots[i] = self.slots[j].take();
            i = j;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.slots.iter().flatten()
    }

    /// Keeps the items for which `keep` holds, in one pass: each kept item
    /// moves back to the first free slot at or after its home.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let n = self.meta.len();
        // Start at an empty slot: no item's walk from home crosses it, so
        // in the order from there every item comes after its home.
        let Some(start) = self.meta.iter().position(|m| *m == 0) else {
            return;
        };
        let mut free = 0; // the first offset from `start` nothing was put at
        for offset in 0..n {
            let i = (start + offset) % n;
            let m = u32::from(self.meta[i]);
            if m == 0 {
                continue;
            }
            self.meta[i] = 0;
            let Some(item) = self.slots[i].take() else {
                continue;
            };
            if !keep(&item) {
                self.len -= 1;
                continue;
            }
            let home = offset - ((m >> 8) as usize - 1);
            let at = home.max(free);
            let distance = (at - home) as u32;
            self.meta[(start + at) % n] = (((distance + 1) << 8) | (m & 0xff)) as u16;
            self.slots[(start + at) % n] = Some(item);
            free = at + 1;
        }
    }

    /// Drops every item and the table's memory.
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
#[path = "slot_table_tests.rs"]
mod tests;
