//! A key operation on a settled partition this member owns, run at once
//! (without an `await`): what a smart client sends almost every time.
//!
//! Why it is not just the first step of [`DataPlane::run`]: `run` is an
//! `async fn`, and the client endpoint had to box the future of every
//! request (1.5 KiB: `run`'s loop over owners, forwarding and retries
//! included) to poll it once and spawn it if it waited. A profile of one
//! member serving 10 KB gets showed that allocation, its copy and its free
//! at 3-4% of the member's CPU. Here the operation runs synchronously, and
//! only what needs to wait (backups to acknowledge) becomes a future.

use super::{DataPlane, Normalize, SPLIT_BRAIN_MARK};
use ferrocast_partition::{BackupBatch, MapResult};
use ferrocast_protocol::data::partition_id;
use ferrocast_protocol::{MapOp, MapRequest};
use std::time::Instant;

/// What [`DataPlane::run_here`] did with a request.
pub enum Here {
    /// Done: the answer.
    Done(Result<MapResult, String>),
    /// Done here, and the answer once its backups acknowledged these
    /// changes ([`DataPlane::finish`]).
    Backups(MapResult, Vec<BackupBatch>),
    /// Not run: not a key operation on a partition this member owns with
    /// its data in place. [`DataPlane::run`] finds where it goes.
    Elsewhere,
}

impl DataPlane {
    /// Runs `req` here and now if it is a key operation on a partition
    /// this member owns and is not waiting for. Otherwise runs nothing.
    pub fn run_here(&self, req: &MapRequest) -> Here {
        let Some(key) = req.op.key() else {
            return Here::Elsewhere;
        };
        let p = partition_id(key, self.service.partition_count());
        if self.service.owner(p) != Some(self.service.me()) || self.service.is_awaiting(p) {
            return Here::Elsewhere;
        }
        if req.op.is_write() {
            if let Err(e) = self.writes_allowed() {
                return Here::Done(Err(e));
            }
        }
        let want_events = self.listeners.wants_entry_events(&req.name);
        // Its events went to the listeners already (the event sink).
        let (result, _, batches, moved) =
            self.service.execute(&req.name, &req.op, &[p], want_events);
        if !moved.is_empty() {
            // The partition moved away before the operation took its lock:
            // nothing ran.
            return Here::Elsewhere;
        }
        if batches.is_empty() {
            Here::Done(Ok(result.normalized(&req.op)))
        } else {
            Here::Backups(result, batches)
        }
    }

    /// The answer to an operation [`run_here`](Self::run_here) ran, once
    /// its backups have acknowledged `batches`.
    pub async fn finish(
        &self,
        op: &MapOp,
        result: MapResult,
        batches: Vec<BackupBatch>,
    ) -> Result<MapResult, String> {
        self.replicate(batches, Instant::now() + self.op_timeout)
            .await?;
        Ok(result.normalized(op))
    }

    /// Whether this side of the cluster is large enough to take writes
    /// (split-brain protection).
    pub(super) fn writes_allowed(&self) -> Result<(), String> {
        let size = self.cluster.borrow().view.members.len();
        if size < self.min_cluster_size {
            return Err(format!(
                "{SPLIT_BRAIN_MARK}this side of the cluster has {size} member(s), writes need at least {}",
                self.min_cluster_size
            ));
        }
        Ok(())
    }
}
