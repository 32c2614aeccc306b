//! Serving a partition's copy to the member that asks for it: once this
//! member's table is at least as new as the requester's, and only data
//! good enough for what the request accepts (complete; kept from earlier
//! as a last resort; a replica's data as it is, as the base of a merge).
//! An upgrading backup asked for the complete partition answers with its
//! log instead.

use super::{Coordinator, COPY_PERMIT_WAIT, PARALLEL_COPIES};
use crate::service_msg::{CopyWanted, ServiceMessage};
use bytes::Bytes;
use ferrocast_net::{MemberMessage, Responder};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

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

impl Coordinator {
    /// Serves a copy once our table is at least as new as the requester's,
    /// so no write we accept as owner after the copy is missing from it.
    pub(super) fn serve_copy(
        &self,
        partition: u32,
        table_version: u64,
        wanted: CopyWanted,
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
            // A base for a merge is our data as it is, complete or not.
            let base = match wanted {
                CopyWanted::Base { promoted_by } => {
                    data.service.serves_base(partition, promoted_by)
                }
                _ => false,
            };
            let deadline = Instant::now() + Duration::from_millis(300);
            // A base request is answered at once: the requester asks the
            // next member when this one has none.
            let wants_base = matches!(wanted, CopyWanted::Base { .. });
            while !base
                && !wants_base
                && !data.service.replica_status(partition).1
                && Instant::now() < deadline
            {
                data.service
                    .wait_for_change(Duration::from_millis(20))
                    .await;
            }
            let complete = data.service.replica_status(partition).1;
            let last_resort = wanted == CopyWanted::LastResort;
            let synced = complete || base || (last_resort && data.service.is_retained(partition));
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
                let (seq, term, records, pending) = data.service.snapshot_for_copy(partition);
                let answer = ServiceMessage::Copy {
                    partition,
                    seq,
                    term,
                    data: records,
                    pending,
                };
                let delay = super::copy::serve_delay();
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
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
            } else if let Some(log) = data
                .service
                .upgrade_log(partition)
                .filter(|_| wanted == CopyWanted::Complete)
                .filter(|_| data.service.table_version() >= table_version)
            {
                // Moved up a place, still copying the maps we lacked: a
                // member promoted behind us merges this over its data.
                if let Ok(m) = (ServiceMessage::CopyLog { partition, log }).wrap() {
                    let _ = responder.respond(m).await;
                }
            } else if (matches!(wanted, CopyWanted::Base { .. }) && !base)
                || (wanted == CopyWanted::Complete
                    && !synced
                    && data.service.table_version() >= table_version
                    && left_incomplete(&data, partition))
            {
                // Copying it ourselves, or holding only the maps of the
                // place before an earlier move, or never to hold it
                // complete: the requester asks the next member.
                if let Ok(m) = (ServiceMessage::NoData { partition }).wrap() {
                    let _ = responder.respond(m).await;
                }
            } else if let Ok(m) = ServiceMessage::Ack.wrap() {
                let _ = responder.respond(m).await;
            }
            hand_over.copies_in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Whether a table at least as new as the requester's took `partition`
/// away from this member before its copy was complete. What it holds will
/// never be complete (a copy landing now would keep only the maps its
/// backups keep), and as an owner still waiting for it it took no write:
/// the data is where it would have copied it from. Declining instead kept
/// a backup promoted in its place asking it until the copy limit (60 s).
fn left_incomplete(data: &crate::data::DataPlane, partition: u32) -> bool {
    !data.service.is_replica_here(partition) && !data.service.replica_status(partition).1
}
