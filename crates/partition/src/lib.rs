//! Partitions, replicas and record stores.

mod store;
mod table;

pub use store::{MapPartition, PartitionStore, Record};
pub use table::PartitionTable;

/// Hazelcast's default partition count, which ferrocast keeps.
pub const DEFAULT_PARTITION_COUNT: u32 = 271;
