//! Partitions, replicas and record stores.
//!
//! Empty until the partitioned-maps work: the crate exists so the layering of
//! the workspace (net -> cluster -> partition -> server) is fixed from the start.

/// Hazelcast's default partition count, which ferrocast keeps.
pub const DEFAULT_PARTITION_COUNT: u32 = 271;
