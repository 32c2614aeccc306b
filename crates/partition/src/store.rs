//! Record stores: for one partition, map name -> entries. Keys and values
//! are the client's serialized bytes (Hazelcast `Data`), compared bytewise
//! as Hazelcast does for maps in binary format. Expiry is checked on every
//! access and swept periodically (so expired events fire without a read).

use crate::entry::{Compact, Entry};
use crate::slot_table::{Slot, SlotMut, SlotTable};
use bytes::Bytes;
use compact_str::CompactString;
use hashbrown::hash_map::EntryRef;
use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One entry and the statistics Hazelcast's entry view reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub value: Bytes,
    /// `None`: never expires.
    pub ttl: Option<Duration>,
    pub expires_at: Option<Instant>,
    pub creation_time: i64,
    pub last_update_time: i64,
    pub last_access_time: i64,
    pub hits: i64,
    pub version: i64,
}

/// What a write did: whether the key was there, its previous value (when
/// asked for), and the entry as written (what its backups are sent, so
/// they need not look it up again).
pub(crate) struct Written {
    pub existed: bool,
    pub previous: Option<Bytes>,
    pub record: Record,
}

pub(crate) fn epoch_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Record {
    pub(crate) fn new(value: Bytes, ttl: Option<Duration>, now: Instant) -> Self {
        let t = epoch_millis();
        Record {
            value,
            ttl,
            expires_at: ttl.map(|d| now + d),
            creation_time: t,
            last_update_time: t,
            last_access_time: t,
            hits: 0,
            version: 0,
        }
    }

    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    /// Expiration time in epoch millis (Long.MAX_VALUE when never), as in entry views.
    pub fn expiration_time(&self) -> i64 {
        match self.ttl {
            Some(ttl) => self.last_update_time.saturating_add(ttl.as_millis() as i64),
            None => i64::MAX,
        }
    }
}

/// The entries of one map in one partition, compact: each entry is one
/// allocation holding its statistics, key and value (see [`Entry`]), and
/// the table ([`SlotTable`]) holds only pointers to them. A `HashMap<Bytes, Record>` cost
/// about 400 bytes per entry above the data (its buckets, sized to powers
/// of two, held the whole record, and key and value were two allocations
/// more); docs/performance.md has the figures of this layout.
pub struct MapPartition {
    entries: SlotTable<Entry>,
    hasher: RandomState,
    /// Entries built here keep hits and last access time.
    stats: bool,
}

impl Default for MapPartition {
    /// A map partition keeping per-entry statistics if the member does
    /// (`--per-entry-stats`).
    fn default() -> Self {
        Self::with_entry_stats(crate::entry::per_entry_stats())
    }
}

impl Clone for MapPartition {
    fn clone(&self) -> Self {
        Self {
            entries: self.entries.clone(),
            hasher: self.hasher.clone(),
            stats: self.stats,
        }
    }
}

impl std::fmt::Debug for MapPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MapPartition({} entries)", self.entries.len())
    }
}

impl MapPartition {
    /// A map partition whose entries keep hits and last access time, or not.
    pub fn with_entry_stats(stats: bool) -> Self {
        Self {
            entries: SlotTable::default(),
            hasher: RandomState::new(),
            stats,
        }
    }

    /// Keys are hashed and compared as entries store them (see
    /// [`Compact`]), so a lookup never rebuilds a stored key.
    fn hash(&self, key: Compact<'_>) -> u64 {
        self.hasher.hash_one(key)
    }

    fn take(&mut self, key: &[u8]) -> Option<Entry> {
        let key = Compact::of(key);
        let h = self.hash(key);
        let slot = self.entries.find(h, |e| e.key() == key)?;
        let hasher = &self.hasher;
        self.entries.remove(slot, |e| hasher.hash_one(e.key()))
    }

    /// Inserts an entry whose key is known to be absent; `h` is its key's
    /// hash, as the lookup that found it absent computed it.
    fn insert_absent(&mut self, h: u64, entry: Entry) {
        let hasher = &self.hasher;
        self.entries.insert(h, entry, |e| hasher.hash_one(e.key()));
    }

    /// The live entry of `key`, in one lookup: an expired one is dropped
    /// on the way (expiry is checked on every access).
    fn live(&mut self, key: &[u8], now: Instant) -> Option<SlotMut<'_, Entry>> {
        let key = Compact::of(key);
        let h = self.hash(key);
        self.live_hashed(key, h, now)
    }

    /// [`live`](Self::live) for a key already hashed (`h`).
    fn live_hashed(
        &mut self,
        key: Compact<'_>,
        h: u64,
        now: Instant,
    ) -> Option<SlotMut<'_, Entry>> {
        let slot = self.entries.find(h, |e| e.key() == key)?;
        if self.entries.get(slot)?.is_expired(now) {
            let hasher = &self.hasher;
            self.entries.remove(slot, |e| hasher.hash_one(e.key()));
            return None;
        }
        self.entries.get_mut(slot)
    }

    pub fn get(&mut self, key: &[u8], now: Instant) -> Option<Bytes> {
        let mut e = self.live(key, now)?;
        e.touch();
        Some(e.value_bytes())
    }

    /// The entry of `key` with its statistics.
    pub fn record(&mut self, key: &[u8], now: Instant) -> Option<Record> {
        self.live(key, now).map(|e| e.record())
    }

    pub fn contains_key(&mut self, key: &[u8], now: Instant) -> bool {
        self.live(key, now).is_some()
    }

    /// Inserts or replaces; returns the previous value.
    pub fn put(
        &mut self,
        key: Bytes,
        value: Bytes,
        ttl: Option<Duration>,
        now: Instant,
    ) -> Option<Bytes> {
        self.write(key, value, ttl, now, true).previous
    }

    /// Inserts or replaces like [`put`](Self::put), for callers that do
    /// not need the previous value (a set nobody listens to): it is not
    /// copied out. Whether the key was there.
    pub fn set(&mut self, key: Bytes, value: Bytes, ttl: Option<Duration>, now: Instant) -> bool {
        self.write(key, value, ttl, now, false).existed
    }

    /// Inserts or replaces; the previous value only when `keep`.
    pub(crate) fn write(
        &mut self,
        key: Bytes,
        value: Bytes,
        ttl: Option<Duration>,
        now: Instant,
        keep: bool,
    ) -> Written {
        let t = epoch_millis();
        let stats = self.stats;
        let compact = Compact::of(&key);
        let h = self.hash(compact);
        // The slot's view writes back when it ends, so the insert below
        // comes after the `if let` (a `match` would still hold the view).
        if let Some(mut slot) = self.live_hashed(compact, h, now) {
            let mut r = slot.metadata();
            r.value = value;
            r.ttl = ttl;
            r.expires_at = ttl.map(|d| now + d);
            r.last_update_time = t;
            r.version += 1;
            let previous = if keep {
                match slot.rewrite(&r, stats) {
                    Some(previous) => Some(previous),
                    None => {
                        let previous = slot.value_bytes();
                        *slot = Entry::new(&key, &r, stats);
                        Some(previous)
                    }
                }
            } else {
                if !slot.overwrite(&r, stats) {
                    *slot = Entry::new(&key, &r, stats);
                }
                None
            };
            return Written {
                existed: true,
                previous,
                record: r,
            };
        }
        let mut r = Record::new(value, ttl, now);
        self.insert_absent(h, Entry::new(&key, &r, stats));
        if !stats {
            // As the entry reads back: statistics not tracked.
            (r.hits, r.last_access_time) = (-1, -1);
        }
        Written {
            existed: false,
            previous: None,
            record: r,
        }
    }

    /// Removes `key`; returns its value unless it had expired.
    pub fn remove(&mut self, key: &[u8], now: Instant) -> Option<Bytes> {
        let e = self.take(key)?;
        (!e.is_expired(now)).then(|| e.value_bytes())
    }

    /// Changes the TTL of a live entry, counted from now. `None`: never expire.
    pub fn set_ttl(&mut self, key: &[u8], ttl: Option<Duration>, now: Instant) -> bool {
        match self.live(key, now) {
            Some(mut e) => {
                e.set_ttl(ttl, now, epoch_millis());
                true
            }
            None => false,
        }
    }

    /// Removes and returns every expired entry.
    pub fn purge_expired(&mut self, now: Instant) -> Vec<(Bytes, Bytes)> {
        let mut out = Vec::new();
        let hasher = &self.hasher;
        self.entries.retain(
            |e| {
                if e.is_expired(now) {
                    out.push((e.key_bytes(), e.value_bytes()));
                    false
                } else {
                    true
                }
            },
            |e| hasher.hash_one(e.key()),
        );
        out
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of live entries (expired ones are skipped, not removed).
    pub fn live_len(&self, now: Instant) -> usize {
        self.entries.iter().filter(|e| !e.is_expired(now)).count()
    }

    /// Live entries (expired ones are skipped, not removed).
    pub fn iter(&self, now: Instant) -> impl Iterator<Item = (Bytes, Record)> + '_ {
        self.entries
            .iter()
            .filter(move |e| !e.is_expired(now))
            .map(|e| (e.key_bytes(), e.record()))
    }

    /// Live entries (expired ones are skipped, not removed), for reads
    /// of keys or values without the statistics.
    pub(crate) fn live_entries(&self, now: Instant) -> impl Iterator<Item = Slot<'_, Entry>> + '_ {
        self.entries.iter().filter(move |e| !e.is_expired(now))
    }

    pub fn clear(&mut self) -> usize {
        let n = self.entries.len();
        self.entries.clear();
        n
    }

    /// Every record, for a migration.
    pub fn snapshot(&self) -> Vec<(Bytes, Record)> {
        self.entries
            .iter()
            .map(|e| (e.key_bytes(), e.record()))
            .collect()
    }

    /// Installs `record` as it came from another member (a backup change,
    /// a copy); its value, just decoded, becomes the entry's own buffer.
    pub fn install(&mut self, key: Bytes, mut record: Record) {
        let compact = Compact::of(&key);
        let (h, stats) = (self.hash(compact), self.stats);
        if record.value.len() >= crate::entry::SHARED_VALUE_MIN {
            record.value = crate::entry::own_buffer(record.value);
        }
        let slot = self.entries.find(h, |e| e.key() == compact);
        if let Some(mut e) = slot.and_then(|slot| self.entries.get_mut(slot)) {
            if !e.overwrite_sharing(&record, stats) {
                *e = Entry::sharing(&key, &record, stats);
            }
            return;
        }
        self.insert_absent(h, Entry::sharing(&key, &record, stats));
    }
}

/// Everything one partition holds, by map name.
#[derive(Clone, Debug, Default)]
pub struct PartitionStore {
    /// By map name; hashbrown's (foldhash) for one cheap lookup per change.
    /// Names of up to 24 bytes are kept in the table's slot itself, so a
    /// lookup compares them without reading another cache line.
    maps: hashbrown::HashMap<CompactString, MapPartition>,
}

impl PartitionStore {
    pub fn map_mut(&mut self, name: &str) -> &mut MapPartition {
        // One lookup; a new map's name is converted only when inserted.
        match self.maps.entry_ref(name) {
            EntryRef::Occupied(o) => o.into_mut(),
            EntryRef::Vacant(v) => v.insert_with_key(name.into(), MapPartition::default()),
        }
    }

    pub fn map(&self, name: &str) -> Option<&MapPartition> {
        self.maps.get(name)
    }

    pub fn remove_map(&mut self, name: &str) {
        self.maps.remove(name);
    }

    /// Takes the maps `pick` names out of this store.
    pub fn take_maps(&mut self, pick: impl Fn(&str) -> bool) -> Vec<(String, MapPartition)> {
        let names: Vec<CompactString> = self.maps.keys().filter(|n| pick(n)).cloned().collect();
        names
            .into_iter()
            .filter_map(|n| self.maps.remove(&n).map(|m| (n.into(), m)))
            .collect()
    }

    /// Puts a map taken from another store in, replacing one of that name.
    pub fn put_map(&mut self, name: String, map: MapPartition) {
        self.maps.insert(name.into(), map);
    }

    pub fn maps_mut(&mut self) -> impl Iterator<Item = (&str, &mut MapPartition)> {
        self.maps.iter_mut().map(|(n, m)| (n.as_str(), m))
    }

    pub fn maps(&self) -> impl Iterator<Item = (&str, &MapPartition)> {
        self.maps.iter().map(|(n, m)| (n.as_str(), m))
    }

    pub fn is_empty(&self) -> bool {
        self.maps.values().all(|m| m.is_empty())
    }

    /// Entries in all maps.
    pub fn entry_count(&self) -> usize {
        self.maps.values().map(MapPartition::len).sum()
    }

    pub fn clear(&mut self) {
        self.maps.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn put_get_remove() {
        let now = Instant::now();
        let mut m = MapPartition::with_entry_stats(true);
        assert_eq!(m.put(b("k"), b("v1"), None, now), None);
        assert_eq!(m.put(b("k"), b("v2"), None, now), Some(b("v1")));
        assert_eq!(m.get(b"k", now), Some(b("v2")));
        assert_eq!(
            m.record(b"k", now).map(|r| (r.hits, r.version)),
            Some((1, 1))
        );
        assert_eq!(m.remove(b"k", now), Some(b("v2")));
        assert!(m.is_empty());
    }

    #[test]
    fn set_is_put_without_the_previous_value() {
        let now = Instant::now();
        for value in [b("small"), Bytes::from(vec![3u8; 4096])] {
            let mut m = MapPartition::default();
            let mut p = MapPartition::default();
            assert!(!m.set(b("k"), b("v1"), None, now));
            p.put(b("k"), b("v1"), None, now);
            // Same layout (rewritten in place), then a different one.
            for v in [b("v2"), value.clone(), b("v3")] {
                assert!(m.set(b("k"), v.clone(), Some(Duration::from_secs(9)), now));
                p.put(b("k"), v.clone(), Some(Duration::from_secs(9)), now);
                assert_eq!(m.get(b"k", now), Some(v));
                let (mr, pr) = (m.record(b"k", now), p.record(b"k", now));
                assert_eq!(
                    mr.map(|r| (r.version, r.ttl, r.value)),
                    pr.map(|r| (r.version, r.ttl, r.value))
                );
            }
        }
    }

    /// `payload` serialized as Hazelcast type `ty` with a length prefix.
    fn data(ty: i32, payload: &[u8]) -> Bytes {
        let mut v = vec![0u8; 4];
        v.extend_from_slice(&ty.to_be_bytes());
        v.extend_from_slice(&(payload.len() as i32).to_be_bytes());
        v.extend_from_slice(payload);
        Bytes::from(v)
    }

    #[test]
    fn keys_and_values_come_back_as_sent_whatever_form_they_are_stored_in() {
        let now = Instant::now();
        let mut m = MapPartition::default();
        // Same payload, different types or headers: four different keys.
        let keys = [
            data(-12, b"key"),
            data(-11, b"key"),
            data(-7, b"key"),
            Bytes::from_static(b"key"),
        ];
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(
                m.put(k.clone(), data(-12, &[i as u8; 100]), None, now),
                None
            );
        }
        assert_eq!(m.len(), 4);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(m.get(k, now), Some(data(-12, &[i as u8; 100])));
            assert!(m
                .live_entries(now)
                .any(|e| e.value_is(&data(-12, &[i as u8; 100]))));
        }
        assert!(!m
            .live_entries(now)
            .any(|e| e.value_is(&data(-11, &[0; 100]))));
        let mut back: Vec<_> = m.iter(now).map(|(k, r)| (k, r.value)).collect();
        back.sort();
        let mut sent: Vec<_> = (0..4)
            .map(|i| (keys[i].clone(), data(-12, &[i as u8; 100])))
            .collect();
        sent.sort();
        assert_eq!(back, sent);
        assert_eq!(m.remove(&keys[1], now), Some(data(-12, &[1; 100])));
        assert_eq!(m.get(&keys[1], now), None);
        assert_eq!(m.get(&keys[0], now), Some(data(-12, &[0; 100])));
    }

    #[test]
    fn ttl_expires_lazily_and_by_sweep() {
        let now = Instant::now();
        let mut m = MapPartition::default();
        m.put(b("a"), b("1"), Some(Duration::from_secs(1)), now);
        m.put(b("b"), b("2"), Some(Duration::from_secs(1)), now);
        m.put(b("c"), b("3"), None, now);
        let later = now + Duration::from_millis(1500);
        assert_eq!(m.get(b"a", later), None);
        assert_eq!(m.iter(later).count(), 1);
        assert_eq!(m.purge_expired(later), vec![(b("b"), b("2"))]);
        assert_eq!(m.len(), 1);
        assert!(m.set_ttl(b"c", Some(Duration::from_secs(1)), later));
        assert!(!m.contains_key(b"c", later + Duration::from_secs(2)));
    }
}
