//! Record stores: for one partition, map name -> entries. Keys and values
//! are the client's serialized bytes (Hazelcast `Data`), compared bytewise
//! as Hazelcast does for maps in binary format. Expiry is checked on every
//! access and swept periodically (so expired events fire without a read).

use bytes::Bytes;
use std::collections::HashMap;
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

fn epoch_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Record {
    fn new(value: Bytes, ttl: Option<Duration>, now: Instant) -> Self {
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

/// The entries of one map in one partition.
#[derive(Clone, Debug, Default)]
pub struct MapPartition {
    entries: HashMap<Bytes, Record>,
}

impl MapPartition {
    /// Drops `key` if it expired; returns the expired value.
    fn expire_key(&mut self, key: &[u8], now: Instant) -> Option<Bytes> {
        if self.entries.get(key).is_some_and(|r| r.is_expired(now)) {
            return self.entries.remove(key).map(|r| r.value);
        }
        None
    }

    pub fn get(&mut self, key: &[u8], now: Instant) -> Option<Bytes> {
        self.expire_key(key, now);
        let r = self.entries.get_mut(key)?;
        r.hits += 1;
        r.last_access_time = epoch_millis();
        Some(r.value.clone())
    }

    pub fn record(&mut self, key: &[u8], now: Instant) -> Option<&Record> {
        self.expire_key(key, now);
        self.entries.get(key)
    }

    pub fn contains_key(&mut self, key: &[u8], now: Instant) -> bool {
        self.expire_key(key, now);
        self.entries.contains_key(key)
    }

    /// Inserts or replaces; returns the previous value.
    pub fn put(
        &mut self,
        key: Bytes,
        value: Bytes,
        ttl: Option<Duration>,
        now: Instant,
    ) -> Option<Bytes> {
        self.expire_key(&key, now);
        // Stored as exact-size copies: the incoming bytes are slices of the
        // request's receive buffer, which would otherwise stay allocated
        // as long as any entry taken from it lives.
        let value = Bytes::copy_from_slice(&value);
        match self.entries.get_mut(&key) {
            Some(r) => {
                let old = std::mem::replace(&mut r.value, value);
                r.ttl = ttl;
                r.expires_at = ttl.map(|d| now + d);
                r.last_update_time = epoch_millis();
                r.version += 1;
                Some(old)
            }
            None => {
                self.entries
                    .insert(Bytes::copy_from_slice(&key), Record::new(value, ttl, now));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &[u8], now: Instant) -> Option<Bytes> {
        self.expire_key(key, now);
        self.entries.remove(key).map(|r| r.value)
    }

    /// Changes the TTL of a live entry, counted from now. `None`: never expire.
    pub fn set_ttl(&mut self, key: &[u8], ttl: Option<Duration>, now: Instant) -> bool {
        self.expire_key(key, now);
        match self.entries.get_mut(key) {
            Some(r) => {
                r.ttl = ttl;
                r.expires_at = ttl.map(|d| now + d);
                r.last_update_time = epoch_millis();
                true
            }
            None => false,
        }
    }

    /// Removes and returns every expired entry.
    pub fn purge_expired(&mut self, now: Instant) -> Vec<(Bytes, Bytes)> {
        let expired: Vec<Bytes> = self
            .entries
            .iter()
            .filter(|(_, r)| r.is_expired(now))
            .map(|(k, _)| k.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|k| self.entries.remove(&k).map(|r| (k, r.value)))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Live entries (expired ones are skipped, not removed).
    pub fn iter(&self, now: Instant) -> impl Iterator<Item = (&Bytes, &Record)> {
        self.entries.iter().filter(move |(_, r)| !r.is_expired(now))
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
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect()
    }

    pub fn install(&mut self, key: Bytes, mut record: Record) {
        record.value = Bytes::copy_from_slice(&record.value);
        self.entries.insert(Bytes::copy_from_slice(&key), record);
    }
}

/// Everything one partition holds, by map name.
#[derive(Clone, Debug, Default)]
pub struct PartitionStore {
    maps: HashMap<String, MapPartition>,
}

impl PartitionStore {
    pub fn map_mut(&mut self, name: &str) -> &mut MapPartition {
        if !self.maps.contains_key(name) {
            self.maps.insert(name.to_string(), MapPartition::default());
        }
        // Just inserted or already there.
        self.maps.get_mut(name).expect("map present")
    }

    pub fn map(&self, name: &str) -> Option<&MapPartition> {
        self.maps.get(name)
    }

    pub fn remove_map(&mut self, name: &str) {
        self.maps.remove(name);
    }

    pub fn maps_mut(&mut self) -> impl Iterator<Item = (&String, &mut MapPartition)> {
        self.maps.iter_mut()
    }

    pub fn maps(&self) -> impl Iterator<Item = (&String, &MapPartition)> {
        self.maps.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.maps.values().all(|m| m.is_empty())
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
        let mut m = MapPartition::default();
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
