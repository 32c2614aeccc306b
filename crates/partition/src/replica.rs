//! One partition's replica on this member: its records, the sequence number
//! of the last change applied, and the changes that arrived ahead of their
//! turn. The owner numbers every change it makes; a backup applies them in
//! that order, so both hold the same records once they reach the same number.

use crate::numbers_only::NumbersOnly;
use crate::service::MigratedRecord;
use crate::store::PartitionStore;
use crate::upgrade::{Upgrade, UpgradeLog};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

/// One change to a partition, as its backups apply it: the resulting state
/// of a key (not the operation), so applying it twice does no harm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    Put {
        map: String,
        key: Bytes,
        record: MigratedRecord,
    },
    Remove {
        map: String,
        key: Bytes,
    },
    ClearMap {
        map: String,
    },
}

impl Change {
    /// The map the change is to.
    pub fn map(&self) -> &str {
        match self {
            Change::Put { map, .. } | Change::Remove { map, .. } | Change::ClearMap { map } => map,
        }
    }
}

/// The changes an operation made to one partition, numbered by its owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupBatch {
    pub partition: u32,
    pub seq: u64,
    pub changes: Vec<Change>,
    /// The owner's [`PartitionState::epoch`] when it numbered these
    /// changes; the owner's own bookkeeping, not sent to backups.
    #[serde(skip)]
    pub epoch: u64,
    /// The owner's term: the version of the table that made it owner.
    pub term: u64,
    /// The owner's change number when it numbered its first change in
    /// this term: everything up to it continues the previous owner's.
    pub base: u64,
    /// The version of the owner's table in which the partition's replicas
    /// last changed ([`PartitionState::replicas_version`]): a backup whose
    /// own is older has not applied that table yet (see `early_log`).
    pub replicas_version: u64,
}

/// What a backup made of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Applied, or kept for its turn.
    Taken,
    /// Taken, but this replica lost track and needs a full copy.
    LostTrack,
    /// Taken, after undoing the numbers of changes a previous owner made
    /// that the new one never had: the data still holds them until a copy
    /// from the owner replaces it (the upgrade of this term, now pending).
    Diverged { term: u64 },
}

/// An early log longer than this is dropped: the table it waits for is
/// applied within milliseconds of the owner's, or not at all.
const EARLY_LOG_LIMIT: usize = 2_000;

/// Changes buffered beyond this many mean the backup lost track: resync.
const MAX_BUFFERED: usize = 100_000;

#[derive(Debug, Default)]
pub struct PartitionState {
    pub store: PartitionStore,
    /// Number of the last change applied here.
    pub seq: u64,
    /// Whether this replica holds the partition's full data: false until
    /// a copy is installed (or the partition starts empty because nobody
    /// ever held it), and again once the data is dropped. Only such data is
    /// served as a copy, so a member that never held a partition cannot
    /// hand out an empty one.
    pub synced: bool,
    /// Whether this member owns the partition in the table it follows. Set
    /// under this lock when a table is applied, and checked under it by
    /// every operation: an operation that passed the table check just
    /// before the partition moved away cannot slip in after the copy for
    /// the new owner was taken (it would be lost there).
    pub owned: bool,
    /// The store still holds the complete data this member had when it
    /// last held the partition (it was moved away, or is being copied
    /// anew). Served only as a last resort, when no member has the
    /// partition complete: members copying in a circle (a partition moved
    /// away and back while its copies were in flight) would otherwise wait
    /// on each other while the data sits here.
    pub retained: bool,
    /// Counts the times this replica's data stopped continuing the changes
    /// it numbered as owner: reset, replaced by a copy, or ownership lost.
    /// A change numbered before must not be acknowledged after: a backup
    /// whose table now names this member owner again would take (or skip,
    /// as already seen) a change that is in no store any more. A member
    /// paused past the failure timeout did that once it was back: it
    /// acknowledged writes it had made to its stale data just before it
    /// dropped them (`crates/server/tests/chaos.rs`, the pause scenario).
    pub epoch: u64,
    /// The table version whose promotion of this backup over a living
    /// owner waits for that owner's copy (see `PartitionService::
    /// apply_table`); a later table changing the partition clears it, so
    /// the copy task of an older table never touches the replica again.
    pub promotion: Option<u64>,
    /// This backup moved up a place and copies the partition from its
    /// owner for the maps kept at its new place but not its old one (see
    /// `table_change.rs`). It goes on taking the owner's changes meanwhile
    /// (it holds every map its old place kept) and logs them, to apply
    /// again over the copy those after it.
    pub upgrade: Option<Upgrade>,
    /// A backup promoted before its upgrade's copy arrived, with nobody
    /// ahead of it left: the changes it logged since it moved up, to apply
    /// over a copy from a member behind it, which holds the maps this one
    /// lacked as they were before the move (see `merge`).
    pub kept_log: Option<UpgradeLog>,
    /// The version of the newest table this member applied in which the
    /// partition's replicas changed: sent with the batches it numbers as
    /// owner.
    pub replicas_version: u64,
    /// Changes applied from an owner that follows a newer table for this
    /// partition than we do (its batches say so), logged from the first
    /// of them until we apply that table: if the table moves us up a
    /// place, they start the upgrade's log. The owner already sent us, as
    /// the higher place, the maps we lacked; a member copying from it
    /// meanwhile may have a copy older than those changes, and a merge
    /// of our log over that copy would miss them otherwise.
    pub early_log: Option<UpgradeLog>,
    /// As owner: the version of the table that made this member owner,
    /// sent with every change it numbers.
    pub owner_term: u64,
    /// As owner: the change number before its first change in this term.
    pub term_base: Option<u64>,
    /// The term of the owner whose changes this replica's data continues
    /// (None right after a copy or a reset: the next owner's, whatever it
    /// is). A batch of a newer term whose base is below our number means
    /// we applied changes the new owner never had.
    pub data_term: Option<u64>,
    /// The newest owner term seen in a batch, with that owner's base: a
    /// copy of an older term holding changes past that base is from a
    /// previous owner's lineage (see `install`).
    pub seen_term: Option<(u64, u64)>,
    pub(crate) pending: BTreeMap<u64, Vec<Change>>,
    /// The replicas of the table the pending promotion's table was
    /// computed from: the places where this member and the others took
    /// changes, which a merge needs (later tables that keep this member
    /// owner do not end the promotion but change the current table).
    pub promotion_prev: Vec<uuid::Uuid>,
    /// The owner's replicas version that started the early log: only a
    /// table at least that new is the one it waits for.
    pub early_version: u64,
    /// The change numbers taken without their content since a copy last
    /// replaced the data (see `numbers_only.rs`).
    pub numbers_only: NumbersOnly,
    /// The newest table that moved this replica up a place while its copy
    /// was in flight (a member that just joined, or one copying anew): a
    /// copy asked for before it may miss changes the owner numbered
    /// meanwhile whose content went to the member that left (we took their
    /// numbers only). See `install_copy_asked_at`.
    pub copy_moved_up: Option<u64>,
    /// The number of the last change this member applied when it stopped
    /// owning the partition with complete data. While it is still the
    /// number here, nobody has numbered a change since, and the maps no
    /// backup keeps are as current here as anywhere (see
    /// `PartitionService::finish_promotion_keeping_current`).
    pub owned_until: Option<u64>,
}

impl PartitionState {
    pub fn new() -> Self {
        Self::default()
    }

    /// A replica that starts empty because no member ever held the partition.
    pub fn start_empty(&mut self) {
        self.reset();
        self.synced = true;
    }

    pub fn apply(&mut self, changes: Vec<Change>, now: Instant) {
        for c in changes {
            match c {
                Change::Put { map, key, record } => self
                    .store
                    .map_mut(&map)
                    .install(key, crate::service::from_wire(record, now)),
                Change::Remove { map, key } => {
                    self.store.map_mut(&map).remove(&key, now);
                }
                Change::ClearMap { map } => {
                    self.store.map_mut(&map).clear();
                }
            }
        }
    }

    /// Drops the maps no backup place keeps (`places(map)` is 0:
    /// `backup-count: 0` without asynchronous backups) from a replica
    /// that does not own the partition: it got them with a copy and then
    /// only their change numbers, so they go stale, and served after a
    /// promotion they would bring back removed entries and older values.
    /// Such a map's entries live on its owner alone, as in Hazelcast.
    pub fn drop_maps_kept_nowhere(&mut self, places: &dyn Fn(&str) -> usize) {
        let unkept: Vec<String> = self
            .store
            .maps()
            .map(|(name, _)| name.to_string())
            .filter(|name| places(name) == 0)
            .collect();
        for name in unkept {
            self.store.remove_map(&name);
        }
    }

    /// Numbers the next change this member makes as owner.
    pub fn number_change(&mut self) -> u64 {
        if self.term_base.is_none() {
            self.term_base = Some(self.seq);
        }
        self.seq += 1;
        self.data_term = Some(self.owner_term);
        self.seq
    }

    /// The batch of the change just numbered, for the backups.
    pub fn batch(&self, partition: u32, changes: Vec<Change>) -> BackupBatch {
        BackupBatch {
            partition,
            seq: self.seq,
            changes,
            epoch: self.epoch,
            term: self.owner_term,
            base: self.term_base.unwrap_or(self.seq.saturating_sub(1)),
            replicas_version: self.replicas_version,
        }
    }

    /// A backup receives an owner's batch. The first of a newer owner
    /// term says up to which number the new owner continues what we hold
    /// (its base); numbers we applied beyond it came from a previous owner
    /// whose changes there the new owner never had (unacknowledged writes
    /// racing its promotion), and the new owner gives those numbers to
    /// other changes: we take ours back, take the new ones, and copy the
    /// partition from the owner to drop what those old changes left.
    pub fn receive_batch(&mut self, batch: BackupBatch, now: Instant) -> Received {
        self.receive_batch_logging(batch, false, 0, now)
    }

    /// [`receive_batch`](Self::receive_batch); with `partial` (maps keep
    /// different backup counts), a batch from an owner that applied a
    /// table newer than ours (`table_version`) which changed this
    /// partition's replicas starts the early log.
    pub fn receive_batch_logging(
        &mut self,
        batch: BackupBatch,
        partial: bool,
        table_version: u64,
        now: Instant,
    ) -> Received {
        if partial
            && batch.replicas_version > table_version
            && self.synced
            && self.upgrade.is_none()
            && self.early_log.is_none()
        {
            self.early_log = Some(UpgradeLog {
                from: self.seq,
                seq: self.seq,
                changes: Vec::new(),
            });
            self.early_version = batch.replicas_version;
        }
        let mut diverged = false;
        if self.data_term.is_some_and(|t| batch.term > t) {
            let base = batch.base;
            self.pending.retain(|s, _| *s <= base);
            if self.synced && self.seq > base {
                tracing::warn!(
                    "partition {}: the owner of term {} continues from change {base}; this replica was at {} from an earlier owner: taking those numbers back and copying the partition from the owner",
                    batch.partition,
                    batch.term,
                    self.seq
                );
                self.seq = base;
                self.numbers_only.taken_back_to(base);
                self.upgrade = Some(Upgrade::new(batch.term, base));
                // What it logged continues the earlier owner's numbers.
                self.early_log = None;
                diverged = true;
            }
        }
        if batch.term > 0 {
            self.data_term = Some(self.data_term.map_or(batch.term, |t| t.max(batch.term)));
            if self.seen_term.is_none_or(|(t, _)| batch.term > t) {
                self.seen_term = Some((batch.term, batch.base));
            }
        }
        if !self.receive(batch.seq, batch.changes, now) {
            Received::LostTrack
        } else if diverged {
            Received::Diverged { term: batch.term }
        } else {
            Received::Taken
        }
    }

    /// A backup receives change `seq`: applied now if it is the next one,
    /// kept until its turn otherwise. Returns false when the backup has
    /// lost track and needs a full copy.
    pub fn receive(&mut self, seq: u64, changes: Vec<Change>, now: Instant) -> bool {
        if seq <= self.seq && self.synced {
            tracing::debug!(
                "change {seq} ignored: this replica is at {} ({} changes in it)",
                self.seq,
                changes.len()
            );
            return true;
        }
        if self.synced && seq == self.seq + 1 && self.pending.is_empty() {
            // In order, nothing waiting (the usual case): no buffering.
            self.apply_numbered(seq, changes, now);
            return true;
        }
        self.wait(seq, changes);
        if self.pending.len() > MAX_BUFFERED {
            self.pending.clear();
            self.synced = false;
            return false;
        }
        if self.synced {
            self.drain(now);
        }
        true
    }

    /// Keeps change `seq` until its turn. A change's number only never
    /// replaces its content waiting here: that was acknowledged already
    /// (the owner sent the content again to us as the member now at that
    /// place, or the copy's source had it at a higher place).
    pub(crate) fn wait(&mut self, seq: u64, changes: Vec<Change>) {
        if changes.is_empty() {
            self.pending.entry(seq).or_insert(changes);
        } else {
            self.pending.insert(seq, changes);
        }
    }

    /// Applies the owner's change `seq`, the next one, logging it while
    /// an upgrade is under way.
    fn apply_numbered(&mut self, seq: u64, changes: Vec<Change>, now: Instant) {
        self.seq = seq;
        // Both, when both run (three or more backups: an upgrade under
        // way while the owner is already on the table of the next move):
        // the early log later starts that next upgrade's log.
        for log in [
            self.upgrade.as_mut().map(|up| &mut up.log),
            self.early_log.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            log.seq = seq;
            log.changes.push((seq, changes.clone()));
        }
        if changes.is_empty() {
            self.numbers_only.note(seq);
        }
        if self
            .early_log
            .as_ref()
            .is_some_and(|l| l.changes.len() > EARLY_LOG_LIMIT)
        {
            // No table followed: not a table in flight, nothing to keep.
            self.early_log = None;
        }
        self.apply(changes, now);
    }

    pub(crate) fn drain(&mut self, now: Instant) {
        while let Some(changes) = self.pending.remove(&(self.seq + 1)) {
            self.apply_numbered(self.seq + 1, changes, now);
        }
        let seq = self.seq;
        self.pending.retain(|s, _| *s > seq);
    }

    /// Installs a full copy taken at `seq`, then what arrived after it.
    /// `term`: the owner term the copy's data continues, when known (a
    /// backup's copy); the data then follows it. A copy of an older term
    /// than a batch this replica has seen, holding changes past that
    /// batch's base, carries changes the newer owner never had (a previous
    /// owner's racing writes): the numbers past the base are taken back,
    /// the newer owner's changes waiting here are applied, and the result
    /// is `Some(newer term)`: the partition must then be copied from its
    /// owner (an upgrade of that term, pending) to drop what they left.
    pub fn install(
        &mut self,
        seq: u64,
        term: Option<u64>,
        store: PartitionStore,
        now: Instant,
    ) -> Option<u64> {
        self.epoch = self.epoch.wrapping_add(1);
        self.store = store;
        self.seq = seq;
        self.synced = true;
        self.retained = false;
        self.promotion = None;
        self.upgrade = None;
        self.kept_log = None;
        self.early_log = None;
        self.data_term = term.filter(|t| *t > 0);
        self.term_base = None;
        self.owned_until = None;
        // The copy holds every change up to `seq`; numbers noted past it
        // are void (our numbering restarts from the copy's).
        self.numbers_only.clear();
        let mut diverged = None;
        if let (Some(copy_term), Some((newer, base))) = (term, self.seen_term) {
            if newer > copy_term && seq > base {
                tracing::warn!(
                    "a copy at change {seq} of owner term {copy_term} went past change {base}, where the owner of term {newer} continues: taking those numbers back and copying the partition from the owner"
                );
                self.seq = base;
                self.numbers_only.taken_back_to(base);
                self.data_term = Some(newer);
                self.upgrade = Some(Upgrade::new(newer, base));
                diverged = Some(newer);
            }
        }
        self.drain(now);
        diverged
    }

    /// This backup becomes the owner: everything it received counts, in
    /// order. False when it still waits for its full copy: the changes stay
    /// pending until the copy is installed.
    pub fn promote(&mut self, now: Instant) -> bool {
        if !self.synced {
            return false;
        }
        let pending = std::mem::take(&mut self.pending);
        for (seq, changes) in pending {
            if seq > self.seq {
                self.seq = seq;
                // Still noted: a backup's copy that stopped waiting comes
                // here too, and goes on taking batches.
                if changes.is_empty() {
                    self.numbers_only.note(seq);
                }
                self.apply(changes, now);
            }
        }
        true
    }

    /// Whether operations may run on this replica now: we own it and hold
    /// its data. Checked under the partition's lock, so an operation cannot
    /// slip in between a table change and the copy it starts (a write on a
    /// new owner's still empty store would be overwritten by the copy).
    pub fn serves_operations(&self) -> bool {
        self.owned && self.synced
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub fn has_gap(&self) -> bool {
        !self.pending.is_empty()
    }

    pub fn reset(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        self.store.clear();
        self.pending.clear();
        self.seq = 0;
        self.synced = false;
        self.owned = false;
        self.retained = false;
        self.promotion = None;
        self.upgrade = None;
        self.kept_log = None;
        self.early_log = None;
        self.data_term = None;
        self.term_base = None;
        self.seen_term = None;
        self.numbers_only.clear();
        self.copy_moved_up = None;
        self.owned_until = None;
    }

    /// Whether no change was numbered since this member last owned the
    /// partition with complete data: its maps no backup keeps are current.
    pub fn unbacked_maps_current(&self) -> bool {
        self.owned_until == Some(self.seq)
    }
}

#[cfg(test)]
#[path = "replica_tests.rs"]
mod tests;
