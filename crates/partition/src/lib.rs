//! Partitions, replicas and record stores: the partition table (`table.rs`),
//! per-partition record stores (`store.rs`), this member's partition service
//! with migrations in and out (`service.rs`) and the IMap operations that
//! run on it (`map_ops.rs`).

mod copies;
pub use copies::Installed;
mod entry;
mod evened;
mod map_ops;
mod merge;
mod numbers_only;
mod replica;
mod service;
mod slot_table;
mod slot_words;
mod store;
#[cfg(test)]
mod store_model_tests;
mod table;
mod table_change;
#[cfg(test)]
mod test_rng;
mod upgrade;

pub use entry::set_per_entry_stats;
pub use map_ops::{ttl_from_millis, MapEvent, MapResult, ViewRecord};
pub use merge::{MergeEntry, MergePolicy};
pub use replica::{BackupBatch, Change, PartitionState, Received};
pub use service::{EventSink, MigratedRecord, PartitionData, PartitionService};
pub use store::{MapPartition, PartitionStore, Record};
pub use table::PartitionTable;
pub use table_change::{copy_source, TableChange};
pub use upgrade::{Upgrade, UpgradeLog};

/// Hazelcast's default partition count, which ferrocast keeps.
pub const DEFAULT_PARTITION_COUNT: u32 = 271;
