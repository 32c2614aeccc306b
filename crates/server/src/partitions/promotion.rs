//! A backup promoted to owner: it copies the partition from the members
//! ahead of it in the table the new one was computed from, when they may
//! hold more than it does (maps with fewer backups, asynchronous ones), or
//! from those behind it to merge its log over (it was moving up a place),
//! or serves the data it holds. The other side is in `serve.rs`.

use super::copy::{ask_for_copy, best_copy_elsewhere, CopyAnswer, Kept};
use super::{Coordinator, CoordinatorInput, COPY_LIMIT};
use crate::data::DataPlane;
use crate::service_msg::{CopyWanted, ServiceMessage};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a promoted member moving up a place asks the members behind
/// it for the data to merge its log over, once nobody ahead is left.
const BASE_WAIT: Duration = Duration::from_secs(10);

/// Ends the promotion of `p` by table `version` with the data this member
/// held as a backup; `ahead_never_complete`: every member ahead said it
/// never held the partition complete (see
/// `PartitionService::finish_promotion_keeping_current`).
fn own_data(data: &DataPlane, p: u32, version: u64, ahead_never_complete: bool) -> bool {
    let done = if ahead_never_complete {
        data.service.finish_promotion_keeping_current(p, version)
    } else {
        data.service.finish_promotion(p, version, None)
    };
    if done {
        tracing::info!(
            "partition {p}: promoted; no member ahead of this one sent a copy: serving the data this member held as its backup"
        );
    }
    done
}

/// The members ahead of a promoted backup (`skip`) never held `p` complete:
/// one took it over and left before its copy arrived. The data is still
/// where that one would have copied it from, a member that released the
/// partition or now copies it anew from us, and keeps it until every
/// member is in sync: [`best_copy_elsewhere`] asks every other member, and
/// a copy further than ours is taken. At equal change numbers the copies
/// hold the same changes of the maps both places keep, and the one with
/// more entries is taken (an owner's, with maps its backups do not keep):
/// this member may have been that owner, and a backup's kept copy would
/// replace its maps without backups with nothing. Without this, a member
/// stopped right after it joined took the entries of those maps with it
/// (`tests/leave_and_crash.rs`).
async fn earlier_holders_copy(
    data: &DataPlane,
    p: u32,
    version: u64,
    skip: &[Uuid],
) -> Option<Kept> {
    let ours = (
        data.service.replica_status(p).0,
        data.service.entry_count(p),
    );
    best_copy_elsewhere(data, p, version, skip, ours).await
}

impl Coordinator {
    /// A backup promoted while members ahead of it (the old owner, or the
    /// first backup when we were the second) may be alive copies the
    /// partition from the first of them that can send it (see
    /// `table_change.rs`), asking each again while it declines (it may
    /// wait for our table, or for its own copy) and is in the member list,
    /// up to [`COPY_LIMIT`] in all. One that moved up a place and still
    /// waits for the maps it lacked sends its log of changes since the
    /// move instead, which goes over our data (we hold those maps as they
    /// were before). When this member was itself moving up (`behind` not
    /// empty) and nobody ahead is left or answered in time, its own log
    /// goes over the data of the first member behind it that sends it
    /// (asked again while it declines, for up to [`BASE_WAIT`]; one that
    /// holds no data is passed over). Once no one is left, or the limits
    /// pass, this member serves the data it held as a backup, as any
    /// promotion does. No one else is asked, unless a member ahead says it
    /// never held the partition complete (see [`earlier_holders_copy`]): a
    /// copy from anyone else may be older than what this member holds. A
    /// later table that changed the partition ends the task without
    /// touching the replica.
    pub(super) fn spawn_promotion_copy(
        &self,
        p: u32,
        ahead: Vec<Uuid>,
        behind: Vec<Uuid>,
        version: u64,
    ) {
        let data = self.data.clone();
        let inputs = self.inputs.clone();
        let copied = self.copied.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let ahead_count = ahead.len();
            let mut ahead: std::collections::VecDeque<Uuid> = ahead.into();
            let mut behind: std::collections::VecDeque<Uuid> = behind.into();
            let mut bases_since: Option<Instant> = None;
            // Members ahead that said they never held it complete.
            let mut never_complete: Vec<Uuid> = Vec::new();
            let mut never_complete_count = 0;
            let finished = loop {
                if !data.service.promotion_pending(p, version) {
                    break false;
                }
                if ahead.is_empty() && !never_complete.is_empty() {
                    let skip = std::mem::take(&mut never_complete);
                    if let Some((from, seq, _, records, pending)) =
                        earlier_holders_copy(&data, p, version, &skip).await
                    {
                        let n: usize = records.iter().map(|(_, r)| r.len()).sum();
                        let done = data
                            .service
                            .finish_promotion_copy(p, version, seq, records, pending);
                        if done {
                            copied.0.fetch_add(n, Ordering::SeqCst);
                            tracing::info!(
                                "partition {p}: promoted; {skip:?} ahead of this member never held it complete: took the copy {from} kept, {n} entries at change {seq}"
                            );
                        }
                        break done;
                    }
                    continue;
                }
                if bases_since.is_none() && (ahead.is_empty() || start.elapsed() > COPY_LIMIT) {
                    if !ahead.is_empty() {
                        tracing::error!(
                            "partition {p}: promoted; {ahead:?}, which held it more completely, sent no copy within {COPY_LIMIT:?}"
                        );
                        ahead.clear();
                    }
                    bases_since = Some(Instant::now());
                }
                let (source, wanted) = match (ahead.front(), behind.front()) {
                    (Some(m), _) => (*m, CopyWanted::Complete),
                    (None, Some(m)) => (
                        *m,
                        CopyWanted::Base {
                            promoted_by: version,
                        },
                    ),
                    (None, None) => {
                        break own_data(
                            &data,
                            p,
                            version,
                            ahead_count > 0 && never_complete_count == ahead_count,
                        )
                    }
                };
                let next =
                    |ahead: &mut std::collections::VecDeque<Uuid>,
                     behind: &mut std::collections::VecDeque<Uuid>| {
                        if matches!(wanted, CopyWanted::Base { .. }) {
                            behind.pop_front();
                        } else {
                            ahead.pop_front();
                        }
                    };
                let Some(addr) = data.address_of(source) else {
                    next(&mut ahead, &mut behind);
                    continue;
                };
                match ask_for_copy(&data, p, source, addr, version, wanted).await {
                    CopyAnswer::Copy {
                        seq,
                        records,
                        pending,
                        ..
                    } => {
                        let n: usize = records.iter().map(|(_, r)| r.len()).sum();
                        let done = if matches!(wanted, CopyWanted::Base { .. }) {
                            data.service
                                .finish_promotion_over_base(p, version, source, seq, records)
                        } else {
                            data.service
                                .finish_promotion_copy(p, version, seq, records, pending)
                        };
                        if done {
                            copied.0.fetch_add(n, Ordering::SeqCst);
                            tracing::debug!(
                                "partition {p}: promoted, copied {n} entries from {source} in {} ms{}",
                                start.elapsed().as_millis(),
                                if matches!(wanted, CopyWanted::Base { .. }) {
                                    ", its logged changes merged over them"
                                } else {
                                    ""
                                }
                            );
                        }
                        break done;
                    }
                    CopyAnswer::Log(log) => {
                        let n = log.changes.len();
                        let done = data.service.finish_promotion_with_log(p, version, log);
                        if done {
                            tracing::info!(
                                "partition {p}: promoted; {source}, ahead of this member, was still copying the maps it lacked: merged its {n} logged changes over this member's data"
                            );
                        }
                        break done;
                    }
                    CopyAnswer::NoData if wanted == CopyWanted::Complete => {
                        tracing::debug!(
                            "partition {p}: {addr} never held it complete; asking the next member"
                        );
                        never_complete.push(source);
                        never_complete_count += 1;
                        next(&mut ahead, &mut behind);
                        continue;
                    }
                    CopyAnswer::Gone | CopyAnswer::NoData => {
                        tracing::debug!(
                            "partition {p}: {addr} left or holds no data; asking the next member"
                        );
                        next(&mut ahead, &mut behind);
                        continue;
                    }
                    CopyAnswer::Declined => {}
                }
                if bases_since.is_some_and(|t| t.elapsed() > BASE_WAIT) {
                    tracing::error!(
                        "partition {p}: promoted; no member behind this one sent the data to merge its log over within {BASE_WAIT:?}"
                    );
                    break own_data(
                        &data,
                        p,
                        version,
                        ahead_count > 0 && never_complete_count == ahead_count,
                    );
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            tracing::trace!("partition {p}: promotion copy task ended (finished: {finished})");
            let _ = inputs
                .send(CoordinatorInput::Peer(ServiceMessage::Ack, None, None))
                .await;
        });
    }
}
