//! Copying a partition's data to the member that needs it: the new replica
//! asks the previous holders in turn, and the holder answers once its
//! table is at least as new as the requester's.

use super::{Coordinator, CoordinatorInput, COPY_LIMIT, COPY_PERMIT_WAIT, PARALLEL_COPIES};
use crate::data::DataPlane;
use crate::service_msg::ServiceMessage;
use bytes::Bytes;
use ferrocast_net::{MemberMessage, Responder};
use ferrocast_partition::{Installed, PartitionData};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use uuid::Uuid;

/// Encoded bytes that hold a copy permit until the last reference to them
/// (the connection writer's, once they are on the socket) is gone.
struct Guarded {
    bytes: Bytes,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Guarded {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// What asking one member for a partition's copy came to.
enum CopyAnswer {
    /// Its change number, the owner term its data continues, and records.
    Copy {
        seq: u64,
        term: u64,
        records: PartitionData,
    },
    /// It answered without one (not complete yet, behind our table) or did
    /// not answer in time.
    Declined,
    /// It left the member list before answering (crashed, paused past the
    /// failure timeout): it will not answer.
    Gone,
}

/// Asks `member` (at `addr`) for a copy of partition `p` once its table is
/// at `version` or newer; a member that leaves the list meanwhile is given
/// up at once, not after the timeout.
async fn ask_for_copy(
    data: &DataPlane,
    p: u32,
    member: Uuid,
    addr: SocketAddr,
    version: u64,
    last_resort: bool,
) -> CopyAnswer {
    let request = ServiceMessage::CopyRequest {
        partition: p,
        table_version: version.max(data.service.table_version()),
        last_resort,
    };
    let Ok(m) = request.wrap() else {
        return CopyAnswer::Declined;
    };
    let answer = tokio::select! {
        a = data.transport().request(addr, m, Duration::from_secs(30)) => a,
        _ = data.member_gone(member) => return CopyAnswer::Gone,
    };
    match answer.as_ref().map(ServiceMessage::unwrap) {
        Ok(Some(Ok(ServiceMessage::Copy {
            partition,
            seq,
            term,
            data: records,
        }))) if partition == p => CopyAnswer::Copy { seq, term, records },
        _ => CopyAnswer::Declined,
    }
}

impl Coordinator {
    /// Copies partition `p`, from `source` first; when a source is gone or
    /// cannot serve, from the next member that held the partition.
    pub(super) fn spawn_copy(&self, p: u32, owner: bool, source: Uuid, table_version: u64) {
        let data = self.data.clone();
        let inputs = self.inputs.clone();
        let copied = self.copied.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let mut tried_first = false;
            loop {
                let me = data.service.me();
                if !data.service.copy_wanted(p) {
                    // Not waiting any more: promoted, this member copies
                    // from the members ahead of it or serves what it held;
                    // or another copy landed first.
                    let _ = inputs
                        .send(CoordinatorInput::Peer(ServiceMessage::Ack, None, None))
                        .await;
                    return;
                }
                if !data.service.table().is_replica(p, me) {
                    // A newer table took the partition away again: nothing to
                    // copy, and our incomplete data must not be served.
                    data.service.abandon_copy(p);
                    let _ = inputs
                        .send(CoordinatorInput::Peer(ServiceMessage::Ack, None, None))
                        .await;
                    return;
                }
                let alive: Vec<Uuid> = data.cluster().view.members.iter().map(|m| m.uuid).collect();
                let mut candidates = data.service.copy_candidates(p, &alive);
                if !tried_first && alive.contains(&source) {
                    candidates.retain(|c| *c != source);
                    candidates.insert(0, source);
                }
                // Those holders are alive but may lack the data themselves
                // (a partition that moved on before its copy arrived): then
                // whoever still holds it complete (a member it was moved
                // away from, within the release grace) is asked too. Members
                // that do not hold it complete decline.
                if tried_first && !candidates.is_empty() {
                    for m in alive.iter().filter(|m| **m != me) {
                        if !candidates.contains(m) {
                            candidates.push(*m);
                        }
                    }
                }
                tried_first = true;
                if candidates.is_empty() {
                    tracing::error!(
                        "partition {p}: every member that held it is gone; it starts empty"
                    );
                    data.service.stop_awaiting(p);
                    return;
                }
                for candidate in candidates {
                    let Some(addr) = data.address_of(candidate) else {
                        continue;
                    };
                    // After a second of nobody having it complete.
                    let last_resort = start.elapsed() > Duration::from_secs(1);
                    let (seq, term, records) =
                        match ask_for_copy(&data, p, candidate, addr, table_version, last_resort)
                            .await
                        {
                            CopyAnswer::Copy { seq, term, records } => (seq, term, records),
                            CopyAnswer::Gone => {
                                tracing::debug!(
                                    "partition {p}: {addr} left; asking the next member"
                                );
                                continue;
                            }
                            CopyAnswer::Declined => {
                                tracing::debug!(
                                    "partition {p}: no copy from {addr}; trying the next member"
                                );
                                continue;
                            }
                        };
                    // A copy someone kept from when it last held the
                    // partition, older than what this member holds itself,
                    // would replace newer data.
                    let ours = data.service.replica_status(p).0;
                    if last_resort && seq < ours {
                        tracing::info!(
                            "partition {p}: {addr} offered a copy kept from earlier, at change {seq}; this member's own is at {ours}: not taken"
                        );
                        continue;
                    }
                    let n: usize = records.iter().map(|(_, r)| r.len()).sum();
                    let bytes: usize = records
                        .iter()
                        .flat_map(|(_, r)| r.iter())
                        .map(|(k, v)| k.len() + v.value.len())
                        .sum();
                    copied.0.fetch_add(n, Ordering::SeqCst);
                    copied.1.fetch_add(bytes, Ordering::SeqCst);
                    match data.service.install_copy(p, seq, term, records) {
                        Installed::NotWanted => {}
                        installed => {
                            tracing::debug!(
                                "partition {p}: copied {n} entries from {addr} in {} ms ({})",
                                start.elapsed().as_millis(),
                                if owner { "owner" } else { "backup" }
                            );
                            if let Installed::Diverged { term } = installed {
                                let _ = inputs
                                    .send(CoordinatorInput::Diverged { partition: p, term })
                                    .await;
                            }
                        }
                    }
                    let _ = inputs
                        .send(CoordinatorInput::Peer(ServiceMessage::Ack, None, None))
                        .await;
                    return;
                }
                if start.elapsed() > COPY_LIMIT {
                    tracing::error!(
                        "partition {p}: no copy after {COPY_LIMIT:?}; serving it as it is"
                    );
                    data.service.stop_awaiting(p);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }

    /// A backup promoted while members ahead of it (the old owner, or the
    /// first backup when we were the second) may be alive copies the
    /// partition from the first of them that can send it (see
    /// `table_change.rs`), asking each again while it declines (it may
    /// wait for our table, or for its own copy) and is in the member list,
    /// up to [`COPY_LIMIT`] in all. Once none is left in the list, or the
    /// limit passes, this member serves the data it held as a backup, as
    /// any promotion does. No one else is asked: another member's copy,
    /// even a last-resort one, may be older than what this member holds.
    /// A later table that changed the partition ends the task without
    /// touching the replica.
    pub(super) fn spawn_promotion_copy(&self, p: u32, sources: Vec<Uuid>, version: u64) {
        let data = self.data.clone();
        let inputs = self.inputs.clone();
        let copied = self.copied.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let mut sources = sources.into_iter().peekable();
            let copy = loop {
                if !data.service.promotion_pending(p, version) {
                    break None;
                }
                let Some(&source) = sources.peek() else {
                    break Some(None);
                };
                let Some(addr) = data.address_of(source) else {
                    sources.next();
                    continue;
                };
                match ask_for_copy(&data, p, source, addr, version, false).await {
                    CopyAnswer::Copy { seq, records, .. } => {
                        break Some(Some((source, seq, records)))
                    }
                    CopyAnswer::Gone => {
                        tracing::debug!("partition {p}: {addr} left; asking the next member ahead");
                        sources.next();
                        continue;
                    }
                    CopyAnswer::Declined => {}
                }
                if start.elapsed() > COPY_LIMIT {
                    tracing::error!(
                        "partition {p}: promoted; {source}, which held it more completely, sent no copy within {COPY_LIMIT:?}"
                    );
                    break Some(None);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            if let Some(copy) = copy {
                let from = copy.as_ref().map(|(source, _, records)| {
                    (*source, records.iter().map(|(_, r)| r.len()).sum::<usize>())
                });
                let copy = copy.map(|(_, seq, records)| (seq, records));
                if data.service.finish_promotion(p, version, copy) {
                    match from {
                        Some((source, n)) => {
                            copied.0.fetch_add(n, Ordering::SeqCst);
                            tracing::debug!(
                                "partition {p}: promoted, copied {n} entries from {source} in {} ms",
                                start.elapsed().as_millis()
                            );
                        }
                        None => tracing::info!(
                            "partition {p}: promoted; no member ahead of this one sent a copy: serving the data this member held as its backup"
                        ),
                    }
                }
            }
            let _ = inputs
                .send(CoordinatorInput::Peer(ServiceMessage::Ack, None, None))
                .await;
        });
    }

    /// A backup moved up a place copies the maps it lacked from the
    /// partition's owner (an upgrade, see `table_change.rs`), asking again
    /// while it declines, up to [`COPY_LIMIT`]. Only the owner is asked:
    /// its copy lines up with the changes it numbers. The backup goes on
    /// taking those meanwhile, so giving up costs only the maps it lacked.
    /// The task ends without touching the replica once the upgrade ended
    /// otherwise (promoted, moved away, replaced by a full copy).
    pub(super) fn spawn_upgrade_copy(&self, p: u32, version: u64) {
        let data = self.data.clone();
        let inputs = self.inputs.clone();
        let copied = self.copied.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            while data.service.upgrade_pending(p, version) {
                let me = data.service.me();
                let owner = data.service.owner(p).filter(|o| *o != me);
                let addr = owner.and_then(|o| data.address_of(o));
                if let (Some(owner), Some(addr)) = (owner, addr) {
                    if let CopyAnswer::Copy { seq, records, .. } =
                        ask_for_copy(&data, p, owner, addr, version, false).await
                    {
                        let n: usize = records.iter().map(|(_, r)| r.len()).sum();
                        if data.service.finish_upgrade(p, version, seq, records) {
                            copied.0.fetch_add(n, Ordering::SeqCst);
                            tracing::debug!(
                                "partition {p}: moved up; copied {n} entries from the owner {addr} in {} ms",
                                start.elapsed().as_millis()
                            );
                        }
                        break;
                    }
                }
                if start.elapsed() > COPY_LIMIT {
                    tracing::error!(
                        "partition {p}: moved up to a higher backup place, but the owner sent no copy within {COPY_LIMIT:?}; this backup keeps only the maps it had"
                    );
                    data.service.cancel_upgrade(p, version);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let _ = inputs
                .send(CoordinatorInput::Peer(ServiceMessage::Ack, None, None))
                .await;
        });
    }

    /// Serves a copy once our table is at least as new as the requester's,
    /// so no write we accept as owner after the copy is missing from it.
    pub(super) fn serve_copy(
        &self,
        partition: u32,
        table_version: u64,
        last_resort: bool,
        responder: Responder,
        permits: Arc<Semaphore>,
    ) {
        let data = self.data.clone();
        let hand_over = self.hand_over.clone();
        hand_over.copies_in_flight.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            // First our table must be as new as the requester's.
            let deadline = Instant::now() + Duration::from_secs(10);
            while data.service.table_version() < table_version && Instant::now() < deadline {
                data.service
                    .wait_for_change(Duration::from_millis(50))
                    .await;
            }
            // Our copy must be complete too: we may be a new replica still
            // copying it, possibly from the requester itself (a partition
            // that moved away and back). Waiting long could deadlock the
            // two, so after a short while we say no (`Ack`) and the
            // requester asks the partition's other holders.
            let deadline = Instant::now() + Duration::from_millis(300);
            while !data.service.replica_status(partition).1 && Instant::now() < deadline {
                data.service
                    .wait_for_change(Duration::from_millis(20))
                    .await;
            }
            let complete = data.service.replica_status(partition).1;
            let synced = complete || (last_resort && data.service.is_retained(partition));
            if synced && !complete {
                // The fallback for when the only member holding it complete
                // was lost while it moved, which is more than one backup
                // covers: what we kept may miss changes made since.
                tracing::warn!(
                    "partition {partition}: no member holds it complete; serving the copy this member kept from when it last held it (changes made elsewhere since then are not in it)"
                );
            }
            if !synced || data.service.table_version() < table_version {
                tracing::debug!(
                    "partition {partition}: copy asked for at table version {table_version}; ours is {}, data {}: declined",
                    data.service.table_version(),
                    if synced { "complete" } else { "still arriving" }
                );
            }
            // A permit from before the snapshot until its encoded bytes
            // are written (they own it): queued frames count too, so a slow
            // peer slows its copies instead of piling them up. The
            // semaphore is never closed.
            let permit = if synced && data.service.table_version() >= table_version {
                match tokio::time::timeout(COPY_PERMIT_WAIT, permits.acquire_owned()).await {
                    Ok(p) => p.ok(),
                    Err(_) => {
                        tracing::warn!(
                            "partition {partition}: {PARALLEL_COPIES} copies to the same member unsent for {COPY_PERMIT_WAIT:?}; declined"
                        );
                        None
                    }
                }
            } else {
                None
            };
            if let Some(permit) = permit {
                let (seq, term, records) = data.service.snapshot_with_term(partition);
                let answer = ServiceMessage::Copy {
                    partition,
                    seq,
                    term,
                    data: records,
                };
                if let Ok(m) = answer.wrap() {
                    let m = match m {
                        MemberMessage::Service(bytes) => {
                            MemberMessage::Service(Bytes::from_owner(Guarded {
                                bytes,
                                _permit: permit,
                            }))
                        }
                        other => other,
                    };
                    let _ = responder.respond(m).await;
                }
            } else if let Ok(m) = ServiceMessage::Ack.wrap() {
                let _ = responder.respond(m).await;
            }
            hand_over.copies_in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }
}
