//! Split-brain merge: when the smaller side of a split rejoins, the entries
//! its members owned are offered to the merged cluster and each partition's
//! owner decides, by the merge policy, whether an entry goes in.

use crate::map_ops::MapEvent;
use crate::replica::{BackupBatch, Change};
use crate::service::{from_wire, to_wire, MigratedRecord, PartitionService};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Hazelcast's merge policies for map entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MergePolicy {
    /// Keep the merged cluster's entry; add the incoming one only if absent (Hazelcast's default).
    PutIfAbsent,
    /// The entry updated last wins; the incoming one on a tie.
    LatestUpdate,
    /// The incoming entry wins.
    PassThrough,
    /// Drop the smaller side's entries.
    Discard,
}

impl std::str::FromStr for MergePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "putifabsent" | "putifabsentmergepolicy" => Ok(Self::PutIfAbsent),
            "latestupdate" | "latestupdatemergepolicy" => Ok(Self::LatestUpdate),
            "passthrough" | "passthroughmergepolicy" => Ok(Self::PassThrough),
            "discard" | "discardmergepolicy" => Ok(Self::Discard),
            _ => Err(format!(
                "unknown merge policy '{s}' (put-if-absent, latest-update, pass-through, discard)"
            )),
        }
    }
}

/// An entry offered for merging.
pub type MergeEntry = (String, Bytes, MigratedRecord);

/// MERGED entry event type.
const MERGED: i32 = 128;

impl PartitionService {
    /// Every entry of the partitions this member owns, for merging elsewhere.
    pub fn owned_entries(&self) -> Vec<MergeEntry> {
        let now = Instant::now();
        let mut out = Vec::new();
        for p in self.owned() {
            let state = self.state(p);
            for (name, m) in state.store.maps() {
                for (k, r) in m.iter(now) {
                    out.push((name.to_string(), k, to_wire(&r, now)));
                }
            }
        }
        out
    }

    /// Applies `policy` to entries of partition `p` (which we own).
    pub fn merge_entries(
        &self,
        p: u32,
        entries: Vec<MergeEntry>,
        policy: MergePolicy,
    ) -> Result<(Vec<MapEvent>, Option<BackupBatch>), Vec<MergeEntry>> {
        let now = Instant::now();
        let mut state = self.state(p);
        if !state.serves_operations() {
            // The partition moved away a moment ago: merge at its new owner.
            return Err(entries);
        }
        let mut changes = Vec::new();
        let mut events = Vec::new();
        for (map, key, incoming) in entries {
            let m = state.store.map_mut(&map);
            let existing = m.record(&key, now).map(|r| r.last_update_time);
            let take = match policy {
                MergePolicy::PutIfAbsent => existing.is_none(),
                MergePolicy::PassThrough => true,
                // A tie goes to the incoming entry, as in Hazelcast's
                // LatestUpdateMergePolicy; update times are whole seconds
                // in both (see entry/fields.rs), so ties are not rare.
                MergePolicy::LatestUpdate => {
                    existing.is_none_or(|t| incoming.last_update_time >= t)
                }
                MergePolicy::Discard => false,
            };
            if take {
                m.install(key.clone(), from_wire(incoming.clone(), now));
                events.push(MapEvent {
                    map: map.clone(),
                    event_type: MERGED,
                    key: key.clone(),
                    value: Some(incoming.value.clone()),
                    old_value: None,
                    partition: p,
                });
                changes.push(Change::Put {
                    map,
                    key,
                    record: incoming,
                });
            }
        }
        self.emit(&events);
        tracing::debug!(
            "partition {p}: merge took {} entries ({policy:?})",
            changes.len()
        );
        if changes.is_empty() {
            return Ok((events, None));
        }
        state.number_change();
        Ok((events, Some(state.batch(p, changes))))
    }
}
