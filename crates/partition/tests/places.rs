//! A backup's place among a partition's replicas decides which maps it
//! holds: with a map of 2 backups and one of 1 (`plain`), the second backup
//! gets only the change numbers of `plain`'s writes. Whenever a member
//! takes a higher place, it gets `plain` from a member ahead of it; when no
//! member ahead is left, it serves what it has. Three members' services,
//! with the owner's batches carried by hand as the server does.

mod common;
use common::*;

use bytes::Bytes;
use ferrocast_partition::{BackupBatch, Installed, PartitionService, PartitionTable};
use ferrocast_protocol::data::partition_id;
use uuid::Uuid;

/// A map's name and its entries (key, value), sorted.
type MapContents = (String, Vec<(Bytes, Bytes)>);

struct Cluster {
    ids: [Uuid; 3],
    services: [PartitionService; 3],
    p: u32,
    next_key: u32,
}

impl Cluster {
    /// A, B and C; the partition's replicas [A, B, C] in table 1.
    fn new() -> (Self, PartitionTable) {
        let ids = [1u8, 2, 3].map(|b| Uuid::from_bytes([b; 16]));
        let services = ids.map(|id| {
            let s = PartitionService::new(id, COUNT);
            s.set_partial_backups(true);
            s
        });
        let t1 = table(1, &ids, &PartitionTable::empty(COUNT));
        for s in &services {
            s.apply_table(t1.clone(), &ids).expect("applied");
        }
        let p = partition_id(&key("0000"), COUNT);
        let c = Cluster {
            ids,
            services,
            p,
            next_key: 0,
        };
        (c, t1)
    }

    /// Writes one key of `plain` (1 backup) in our partition on `owner`
    /// and carries the batch to `backups` in place order: the first gets
    /// the changes, the rest the change number only.
    fn write_plain(&mut self, owner: usize, backups: &[usize]) {
        let k = loop {
            let k = key(&format!("{:04}", self.next_key));
            self.next_key += 1;
            if partition_id(&k, COUNT) == self.p {
                break k;
            }
        };
        let (_, _, batches, moved) =
            self.services[owner].execute("plain", &set(&k), &[self.p], false);
        assert!(moved.is_empty(), "executed on its owner");
        for batch in batches {
            for (place, b) in backups.iter().enumerate() {
                let mut copy = BackupBatch {
                    changes: batch.changes.clone(),
                    ..batch.clone()
                };
                if place > 0 {
                    copy.changes.clear();
                }
                self.services[*b]
                    .receive_backup_from(copy, self.ids[owner])
                    .expect("taken by its backup");
            }
        }
    }

    /// The partition on `member`: its change number and sorted entries.
    fn contents(&self, member: usize) -> (u64, Vec<MapContents>) {
        let (seq, data) = self.services[member].snapshot(self.p);
        let mut maps: Vec<_> = data
            .into_iter()
            .map(|(name, records)| {
                let mut r: Vec<_> = records.into_iter().map(|(k, r)| (k, r.value)).collect();
                r.sort();
                (name, r)
            })
            .collect();
        maps.sort();
        (seq, maps)
    }

    fn plain_entries(&self, member: usize) -> usize {
        let (_, data) = self.services[member].snapshot(self.p);
        data.iter()
            .filter(|(name, _)| name == "plain")
            .map(|(_, r)| r.len())
            .sum()
    }
}

/// B (the first backup) leaves; C moves up and copies the maps it lacked
/// from A. It goes on taking A's changes meanwhile, and those numbered
/// after A's copy are applied again over it.
#[test]
fn a_backup_moved_up_copies_the_maps_it_lacked() {
    let (mut c, t1) = Cluster::new();
    let [a, _b, cc] = c.ids;
    for _ in 0..5 {
        c.write_plain(0, &[1, 2]);
    }
    assert_eq!(
        c.plain_entries(2),
        0,
        "C, second backup, holds no plain entries"
    );
    let t2 = table(2, &[a, cc], &t1);
    let alive = [a, cc];
    // B, leaving, copies nothing and lets the partition go.
    let leaving = c.services[1].apply_table(t2.clone(), &c.ids).unwrap();
    assert!(leaving.needs_copy.is_empty() && leaving.upgrades.is_empty());
    assert!(leaving.released.contains(&c.p));
    c.services[0].apply_table(t2.clone(), &alive).unwrap();
    let change = c.services[2].apply_table(t2.clone(), &alive).unwrap();
    assert!(change.upgrades.contains(&(c.p, 2)), "{change:?}");
    assert!(change.needs_copy.is_empty(), "{change:?}");
    assert!(
        !c.services[2].replica_status(c.p).1,
        "C does not hold it all yet"
    );
    // Writes go on while the copy is in flight, before and after it is
    // taken: C takes them all as the first backup.
    c.write_plain(0, &[2]);
    let (seq, data) = c.services[0].snapshot(c.p);
    c.write_plain(0, &[2]);
    c.write_plain(0, &[2]);
    assert_eq!(c.plain_entries(2), 3);
    assert!(c.services[2].finish_upgrade(c.p, 2, seq, data));
    assert_eq!(c.plain_entries(2), 8);
    assert_eq!(c.contents(2), c.contents(0));
    assert!(c.services[2].replica_status(c.p).1);
    // Later writes apply as usual.
    c.write_plain(0, &[2]);
    assert_eq!(c.contents(2), c.contents(0));
}

/// A fails; the master promotes C (second backup) while B (first) is
/// alive: C copies from B before serving, and B's data has every write.
#[test]
fn a_second_backup_promoted_copies_from_the_first() {
    let (mut c, t1) = Cluster::new();
    let [a, b, cc] = c.ids;
    for _ in 0..5 {
        c.write_plain(0, &[1, 2]);
    }
    let t2 = table(2, &[cc, b], &t1);
    // C's member list may still hold A: it is asked first, then B.
    let change = c.services[2].apply_table(t2.clone(), &[a, b, cc]).unwrap();
    assert!(
        change.promotion_copies.contains(&(c.p, vec![a, b], 2)),
        "{change:?}"
    );
    assert!(c.services[2].is_awaiting(c.p));
    c.services[1].apply_table(t2, &[b, cc]).unwrap();
    let (seq, data) = c.services[1].snapshot(c.p);
    assert!(c.services[2].finish_promotion(c.p, 2, Some((seq, data))));
    assert_eq!(c.plain_entries(2), 5);
    assert!(!c.services[2].is_awaiting(c.p));
}

/// C moved up, then A fails before C's copy arrives: nobody ahead of C is
/// left, so C serves what it has (the 2-backup maps, and the writes it took
/// as first backup), and a copy arriving late is not installed over it.
#[test]
fn a_moved_up_backup_promoted_with_nobody_ahead_serves_what_it_has() {
    let (mut c, t1) = Cluster::new();
    let [a, _b, cc] = c.ids;
    c.write_plain(0, &[1, 2]);
    let t2 = table(2, &[a, cc], &t1);
    c.services[0].apply_table(t2.clone(), &[a, cc]).unwrap();
    c.services[2].apply_table(t2.clone(), &[a, cc]).unwrap();
    let late_copy = c.services[0].snapshot(c.p);
    c.write_plain(0, &[2]);
    let t3 = table(3, &[cc], &t2);
    let change = c.services[2].apply_table(t3, &[cc]).unwrap();
    assert!(change.promotion_copies.is_empty(), "{change:?}");
    assert!(!c.services[2].is_awaiting(c.p), "C serves now");
    assert!(c.services[2].replica_status(c.p).1);
    assert_eq!(c.plain_entries(2), 1, "the write it took as first backup");
    assert!(!c.services[2].upgrade_pending(c.p, 2));
    let (seq, data) = late_copy.clone();
    assert!(!c.services[2].finish_upgrade(c.p, 2, seq, data));
    assert_eq!(
        c.services[2].install_copy(c.p, late_copy.0, 1, late_copy.1),
        Installed::NotWanted
    );
    assert_eq!(c.plain_entries(2), 1);
}
