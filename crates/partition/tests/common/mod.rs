//! What the service-level tests share: small tables in which every
//! partition has the same replicas, and keys and writes in the form the
//! client protocol carries them (serialized strings and integers).
#![allow(dead_code)]

pub mod members;

use bytes::Bytes;
use ferrocast_partition::PartitionTable;
use ferrocast_protocol::MapOp;
use uuid::Uuid;

/// Few partitions, so a handful of keys share one.
pub const COUNT: u32 = 7;

/// Table `version`, computed from `previous`: every partition on `replicas`
/// (owner first).
pub fn table(version: u64, replicas: &[Uuid], previous: &PartitionTable) -> PartitionTable {
    PartitionTable {
        version,
        replicas: vec![replicas.to_vec(); COUNT as usize],
        previous: previous.replicas.clone(),
    }
}

/// A string key as a client serializes it.
pub fn key(s: &str) -> Bytes {
    let mut k = b"\0\0\0\0\xff\xff\xff\xf9\0\0\0\x02".to_vec();
    k.extend_from_slice(s.as_bytes());
    Bytes::from(k)
}

/// `set` of `key` to a small integer value.
pub fn set(key: &Bytes) -> MapOp {
    MapOp::Set {
        key: key.clone(),
        value: Bytes::from_static(b"\0\0\0\0\xff\xff\xff\xf9\0\0\0\x01"),
        ttl: -1,
    }
}
