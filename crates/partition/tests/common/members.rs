//! Several members' partition services driven by hand, as the server
//! drives them: tables applied one member at a time, a write executed on
//! its owner and its batch carried to the backups that keep its map (the
//! changes) and to those behind them (the change number only). Shared by
//! the upgrade and merge tests; each adds its own sequences.

use super::{key, table, COUNT};
use bytes::Bytes;
use ferrocast_partition::{BackupBatch, Installed, PartitionService, PartitionTable, TableChange};
use ferrocast_protocol::data::partition_id;
use ferrocast_protocol::MapOp;
use uuid::Uuid;

/// The members by their role in the tests' sequences.
pub const A: usize = 0;
pub const B: usize = 1;
pub const C: usize = 2;
pub const E: usize = 3;
pub const F: usize = 4;

/// Each map's name and its entries (key, value), sorted.
pub type Contents = Vec<(String, Vec<(Bytes, Bytes)>)>;

/// Members 0..n; `p` is the partition the tests write to, `keys` keys in it.
pub struct Cluster {
    pub ids: Vec<Uuid>,
    pub services: Vec<PartitionService>,
    pub p: u32,
    pub keys: Vec<Bytes>,
}

/// `set` of `key` to `value`.
pub fn set_to(k: &Bytes, v: &[u8]) -> MapOp {
    MapOp::Set {
        key: k.clone(),
        value: Bytes::copy_from_slice(v),
        ttl: -1,
    }
}

/// `remove` of `key`.
pub fn remove(k: &Bytes) -> MapOp {
    MapOp::Remove { key: k.clone() }
}

impl Cluster {
    pub fn new() -> Self {
        Self::with(5, |m: &str| if m == "critical" { 2 } else { 1 })
    }

    pub fn with(n: u8, places: fn(&str) -> usize) -> Self {
        let ids: Vec<Uuid> = (1..=n).map(|b| Uuid::from_bytes([b; 16])).collect();
        let services = ids
            .iter()
            .map(|id| {
                let s = PartitionService::new(*id, COUNT);
                s.set_partial_backups(true);
                s.set_map_places(std::sync::Arc::new(places));
                s
            })
            .collect();
        let p = partition_id(&key("0000"), COUNT);
        let keys = (0..)
            .map(|i| key(&format!("{i:04}")))
            .filter(|k| partition_id(k, COUNT) == p)
            .take(16)
            .collect();
        Cluster {
            ids,
            services,
            p,
            keys,
        }
    }

    pub fn t(&self, version: u64, ms: &[usize], prev: &PartitionTable) -> PartitionTable {
        let r: Vec<Uuid> = ms.iter().map(|m| self.ids[*m]).collect();
        table(version, &r, prev)
    }

    pub fn uuids(&self, ms: &[usize]) -> Vec<Uuid> {
        ms.iter().map(|m| self.ids[*m]).collect()
    }

    pub fn apply(&self, m: usize, t: &PartitionTable, alive: &[usize]) -> TableChange {
        self.services[m]
            .apply_table(t.clone(), &self.uuids(alive))
            .expect("a newer table")
    }

    pub fn exec(&self, map: &str, op: MapOp, owner: usize) -> Vec<BackupBatch> {
        let (_, _, batches, moved) = self.services[owner].execute(map, &op, &[self.p], false);
        assert!(moved.is_empty());
        batches
    }

    pub fn deliver(&self, b: &BackupBatch, from: usize, to: usize, full: bool) {
        let mut copy = b.clone();
        if !full {
            copy.changes.clear();
        }
        self.services[to]
            .receive_backup_from(copy, self.ids[from])
            .expect("taken");
    }

    pub fn write(&self, map: &str, op: MapOp, owner: usize, full: &[usize], numbers: &[usize]) {
        for b in self.exec(map, op, owner) {
            for m in full {
                self.deliver(&b, owner, *m, true);
            }
            for m in numbers {
                self.deliver(&b, owner, *m, false);
            }
        }
    }

    pub fn value(&self, m: usize, map: &str, k: &Bytes) -> Option<Bytes> {
        let (_, data) = self.services[m].snapshot(self.p);
        data.into_iter()
            .filter(|(n, _)| n == map)
            .flat_map(|(_, r)| r)
            .find(|(kk, _)| kk == k)
            .map(|(_, r)| r.value)
    }

    pub fn contents(&self, m: usize) -> Contents {
        let (_, data) = self.services[m].snapshot(self.p);
        let mut maps: Contents = data
            .into_iter()
            .map(|(name, records)| {
                let mut r: Vec<_> = records.into_iter().map(|(k, r)| (k, r.value)).collect();
                r.sort();
                (name, r)
            })
            .filter(|(_, r)| !r.is_empty())
            .collect();
        maps.sort();
        maps
    }

    pub fn copy_from(&self, from: usize, to: usize) {
        let (seq, term, data) = self.services[from].snapshot_with_term(self.p);
        assert_eq!(
            self.services[to].install_copy(self.p, seq, term, data),
            Installed::Done
        );
    }

    /// Table 1 with its data; B leaves (t2 = [A, C], applied by B alone)
    /// and A, still on t1, numbers W (`plain`, `keys[8]` = `w()`): C takes
    /// its number only. Returns t2 and W's batches.
    pub fn w_numbered_on_t1(&self) -> (PartitionTable, Vec<BackupBatch>) {
        let t1 = self.t1_with_data();
        let t2 = self.t(2, &[A, C], &t1);
        self.apply(B, &t2, &[A, B, C]);
        let w = self.exec("plain", set_to(&self.keys[8], b"w"), A);
        for b in &w {
            self.deliver(b, A, C, false);
        }
        (t2, w)
    }

    /// Table 1 [A, B, C]: five `plain` keys (B full, C numbers), three
    /// `critical` (B and C).
    pub fn t1_with_data(&self) -> PartitionTable {
        let t1 = self.t(1, &[A, B, C], &PartitionTable::empty(COUNT));
        for m in [A, B, C] {
            self.apply(m, &t1, &[A, B, C]);
        }
        for k in &self.keys[..5] {
            self.write("plain", super::set(k), A, &[B], &[C]);
        }
        for k in &self.keys[5..8] {
            self.write("critical", super::set(k), A, &[B, C], &[]);
        }
        t1
    }
}

/// Whether member `m` acknowledges every batch of `batches` from `from`
/// (the owner's send loop counts the write backed up there once it does).
pub fn acked_by(c: &Cluster, m: usize, from: usize, batches: &[BackupBatch]) -> bool {
    batches.iter().all(|b| {
        c.services[m]
            .receive_backup_from(b.clone(), c.ids[from])
            .is_ok()
    })
}

/// `batches` as a place that keeps none of their maps gets them: the
/// change numbers only.
pub fn numbers_only(batches: &[BackupBatch]) -> Vec<BackupBatch> {
    batches
        .iter()
        .map(|b| {
            let mut b = b.clone();
            b.changes.clear();
            b
        })
        .collect()
}

/// The value the re-sent-content tests write as W.
pub fn w() -> Bytes {
    Bytes::from_static(b"w")
}
