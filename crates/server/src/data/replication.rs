//! Backups, from both ends: the owner sends each write's changes to its
//! partition's backups and waits for them (`replicate`); a backup takes
//! changes only from the owner its table names (`apply_backup_from`).

use super::{change_map, DataPlane, RETRY_MARK};
use crate::service_msg::ServiceMessage;
use ferrocast_partition::{BackupBatch, Received};
use std::time::{Duration, Instant};
use uuid::Uuid;

impl DataPlane {
    /// Applies an owner's changes to our replica if this member takes
    /// backups of the partition from `from`: only the owner in our table
    /// may change our replica, and only if we are one of its backups (a
    /// stale owner, paused past the timeout or cut off, is told no and its
    /// write fails). Checked and applied with the table held, so a table
    /// cannot land in between. `Err`: not taken, the batch handed back.
    /// `Ok(Some(term))`: taken, and the replica must copy the partition
    /// from its owner (an upgrade of that term, see `Received::Diverged`).
    pub fn apply_backup_from(
        &self,
        batch: BackupBatch,
        from: Uuid,
    ) -> Result<Option<u64>, BackupBatch> {
        let p = batch.partition;
        match self.service.receive_backup_from(batch, from)? {
            Received::Taken => Ok(None),
            Received::LostTrack => {
                tracing::warn!(
                    "partition {p}: backup lost track of the owner's changes; copying again"
                );
                Ok(None)
            }
            Received::Diverged { term } => Ok(Some(term)),
        }
    }

    /// Sends each batch to its partition's backups and waits until every
    /// backup has it, so the write is acknowledged only once it survives
    /// the loss of any one member. A backup that leaves the table (crashed
    /// or replaced) no longer counts: its replacement copies the partition
    /// from this owner, changes included.
    pub async fn replicate(
        &self,
        batches: Vec<BackupBatch>,
        deadline: Instant,
    ) -> Result<(), String> {
        let mut sends = Vec::new();
        for batch in batches {
            let map = batch.changes.first().map(change_map).unwrap_or_default();
            let (sync, asynchronous) = self.backups.for_map(map);
            for (i, backup) in self
                .service
                .backups_of(batch.partition)
                .into_iter()
                .enumerate()
            {
                if i < sync {
                    sends.push(self.send_backup(i, batch.clone(), deadline));
                } else {
                    // Asynchronous backups get the changes without the owner
                    // waiting; backups this map does not use get only the
                    // change number, so their numbering stays contiguous.
                    let mut b = batch.clone();
                    if i >= sync + asynchronous {
                        b.changes.clear();
                    }
                    self.send_without_waiting(backup, b);
                }
            }
        }
        for r in futures::future::join_all(sends).await {
            r?;
        }
        Ok(())
    }

    fn send_without_waiting(&self, backup: Uuid, batch: BackupBatch) {
        let (Some(addr), Ok(msg)) = (
            self.address_of(backup),
            ServiceMessage::Backup(batch).wrap(),
        ) else {
            return;
        };
        let t = self.transport.clone();
        tokio::spawn(async move {
            let _ = t.send(addr, msg).await;
        });
    }

    /// Sends `batch` to the partition's backup at `index` until it
    /// confirms. A backup replaced meanwhile (a table
    /// moved it away) does not count as done: the member now at that place
    /// gets the batch (while it copies the partition it keeps it for after
    /// its copy, or skips it when the copy already holds it). Counting it
    /// done lost writes: the new backup's copy holds them only once it
    /// lands, and the owner failing before that left them nowhere.
    async fn send_backup(
        &self,
        index: usize,
        batch: BackupBatch,
        deadline: Instant,
    ) -> Result<(), String> {
        let (p, seq, epoch) = (batch.partition, batch.seq, batch.epoch);
        let me = self.service.me();
        // The change is ours to have backed up only while our replica
        // still continues it (see `PartitionState::epoch`).
        let changed_hands = || {
            Err(format!(
                "{RETRY_MARK}partition {p} changed hands during the write; retry"
            ))
        };
        let msg = ServiceMessage::Backup(batch)
            .wrap()
            .map_err(|e| e.to_string())?;
        loop {
            if self.service.owner(p) != Some(me)
                || !self.cluster.borrow().joined
                || self.service.epoch(p) != epoch
            {
                // Ownership moved while we waited: this change may not be on
                // the new owner; the client must retry there.
                return changed_hands();
            }
            let Some(backup) = self.service.backups_of(p).get(index).copied() else {
                // No backup at that place any more (too few members).
                return Ok(());
            };
            let Some(addr) = self.address_of(backup) else {
                // Gone from the member list: the next table replaces it.
                if Instant::now() > deadline {
                    return Err(format!(
                        "{RETRY_MARK}partition {p}: backup {backup} is gone"
                    ));
                }
                self.service
                    .wait_for_change(Duration::from_millis(50))
                    .await;
                continue;
            };
            let answer = self
                .transport
                .request(addr, msg.clone(), Duration::from_secs(5))
                .await;
            match answer.as_ref().map(ServiceMessage::unwrap) {
                // An answer to a change sent before our replica was reset
                // or replaced (its backup took, or skipped, it under a newer
                // table) says nothing about data we still hold.
                Ok(Some(Ok(ServiceMessage::Ack))) if self.service.epoch(p) != epoch => {
                    tracing::info!(
                        "partition {p}: change {seq} was confirmed by {addr} after this member's data for it was dropped or replaced; the write fails and is retried"
                    );
                    return changed_hands();
                }
                Ok(Some(Ok(ServiceMessage::Ack))) => return Ok(()),
                _ if Instant::now() > deadline => {
                    return Err(format!(
                        "{RETRY_MARK}partition {p}: the write is on its owner but backup {addr} did not confirm it"
                    ))
                }
                // Refused (its table differs from ours) or unreachable:
                // wait for the tables to agree or the member to be removed.
                _ => {
                    tracing::debug!(
                        "partition {p}: backup {addr} did not take change {seq} (table {}); waiting",
                        self.service.table_version()
                    );
                    self.service.wait_for_change(Duration::from_millis(50)).await
                }
            }
        }
    }
}
