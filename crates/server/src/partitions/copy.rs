//! Copying a partition's data to this member when it needs it: a new
//! replica asks the previous holders in turn, a promoted backup the
//! members ahead of it (or behind it, to merge), an upgrading backup the
//! owner. The other side is in `serve.rs`.

use super::{Coordinator, CoordinatorInput, COPY_LIMIT};
use crate::data::DataPlane;
use crate::service_msg::{CopyWanted, ServiceMessage};
use ferrocast_partition::{Change, Installed, PartitionData, UpgradeLog};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Fault injection for tests, off unless `FERROCAST_TEST_UPGRADE_DELAY_MS`
/// is set: an upgrade (a backup moved up a place) waits this long before
/// it asks the owner for the maps it lacked, so a test can fail the owner
/// while upgrades are still under way (on loopback they take a few ms).
fn upgrade_delay() -> Duration {
    static DELAY: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| test_delay("FERROCAST_TEST_UPGRADE_DELAY_MS"))
}

/// Fault injection for tests, off unless `FERROCAST_TEST_COPY_DELAY_MS` is
/// set: a new replica waits this long before it asks for its first copy,
/// so a test can change the table while copies are still under way.
fn copy_delay() -> Duration {
    static DELAY: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| test_delay("FERROCAST_TEST_COPY_DELAY_MS"))
}

/// Fault injection for tests, off unless `FERROCAST_TEST_TABLE_DELAY_MS` is
/// set: tables from the master are applied this much later, so a test can
/// stop a member before it applied a table that names it.
pub(super) fn table_delay() -> Duration {
    static DELAY: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| test_delay("FERROCAST_TEST_TABLE_DELAY_MS"))
}

/// Fault injection for tests, off unless `FERROCAST_TEST_SERVE_DELAY_MS` is
/// set: a copy this member took is sent this much later, so a test can
/// change the table while copies travel.
pub(super) fn serve_delay() -> Duration {
    static DELAY: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| test_delay("FERROCAST_TEST_SERVE_DELAY_MS"))
}

pub(super) fn test_delay(var: &str) -> Duration {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or_default()
}

/// A copy as offered: change number, owner term, records, changes ahead.
type Offered = (u64, u64, PartitionData, Vec<(u64, Vec<Change>)>);

/// What asking one member for a partition's copy came to.
pub(super) enum CopyAnswer {
    /// Its change number, the owner term its data continues, its records
    /// and the changes it took ahead of their turn.
    Copy {
        seq: u64,
        term: u64,
        records: PartitionData,
        pending: Vec<(u64, Vec<Change>)>,
    },
    /// Asked for a base, it holds no data of the partition (it copies it);
    /// asked for it complete, it never will (see `serve::left_incomplete`).
    NoData,
    /// It moved up a place and still waits for the maps it lacked: what it
    /// logged since (answers `CopyWanted::Complete` only).
    Log(UpgradeLog),
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
pub(super) async fn ask_for_copy(
    data: &DataPlane,
    p: u32,
    member: Uuid,
    addr: SocketAddr,
    version: u64,
    wanted: CopyWanted,
) -> CopyAnswer {
    let request = ServiceMessage::CopyRequest {
        partition: p,
        table_version: version.max(data.service.table_version()),
        wanted,
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
            pending,
        }))) if partition == p => CopyAnswer::Copy {
            seq,
            term,
            records,
            pending,
        },
        Ok(Some(Ok(ServiceMessage::NoData { partition }))) if partition == p => CopyAnswer::NoData,
        Ok(Some(Ok(ServiceMessage::CopyLog { partition, log })))
            if partition == p && wanted == CopyWanted::Complete =>
        {
            CopyAnswer::Log(log)
        }
        _ => CopyAnswer::Declined,
    }
}

/// A copy some member kept: who sent it, its change number, the owner term
/// its data continues, its records and the changes it took ahead of their
/// turn.
pub(super) type Kept = (SocketAddr, u64, u64, PartitionData, Vec<(u64, Vec<Change>)>);

fn entries(records: &PartitionData) -> usize {
    records.iter().map(|(_, r)| r.len()).sum()
}

/// Asks every member but this one and `skip` once for the copy of `p` it
/// holds complete or kept (`CopyWanted::LastResort`) and returns the one
/// furthest along by (change number, entries), if that is past `floor`.
/// At equal change numbers the copies hold the same changes of the maps
/// both places keep; the one with more entries holds maps its backups do
/// not keep (an owner's, kept since it released the partition).
pub(super) async fn best_copy_elsewhere(
    data: &DataPlane,
    p: u32,
    version: u64,
    skip: &[Uuid],
    floor: (u64, usize),
) -> Option<Kept> {
    let snap = data.cluster();
    let asks = snap
        .view
        .members
        .iter()
        .filter(|m| m.uuid != snap.me.uuid && !skip.contains(&m.uuid))
        .map(|m| async move {
            match ask_for_copy(data, p, m.uuid, m.address, version, CopyWanted::LastResort).await {
                CopyAnswer::Copy {
                    seq,
                    term,
                    records,
                    pending,
                } => Some((m.address, seq, term, records, pending)),
                _ => None,
            }
        });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .filter(|(_, seq, _, records, _)| (*seq, entries(records)) > floor)
        .max_by_key(|(_, seq, _, records, _)| (*seq, entries(records)))
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
            let mut asked_everybody = false;
            // A round over every member, asking for the partition
            // complete, came to nothing.
            let mut asked_all_complete = false;
            // A member answered that it never held the partition complete
            // (it took it over and lost it before its copy arrived).
            let mut never_complete = false;
            if !copy_delay().is_zero() {
                tokio::time::sleep(copy_delay()).await;
            }
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
                if !data.service.is_replica_here(p) {
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
                let everybody = tried_first && !candidates.is_empty();
                if everybody {
                    for m in alive.iter().filter(|m| **m != me) {
                        if !candidates.contains(m) {
                            candidates.push(*m);
                        }
                    }
                }
                tried_first = true;
                // Every member of the tables involved is gone: a member
                // that held the partition before them and still keeps it
                // (one leaving gracefully waits for us) is the last hope.
                // One round over everybody, last resort at once; nothing
                // from it, and the partition starts empty.
                let nobody_listed = candidates.is_empty();
                if nobody_listed {
                    if asked_everybody {
                        tracing::error!(
                            "partition {p}: every member that held it is gone; it starts empty"
                        );
                        data.service.stop_awaiting(p);
                        return;
                    }
                    asked_everybody = true;
                    candidates = alive.iter().copied().filter(|m| *m != me).collect();
                }
                // In a round over every member, several may answer with
                // data they call complete: one that released the partition
                // keeps what it had then, and the partition may have moved
                // on since (a parallel scale-down: a member that held it at
                // the cluster's formation answered with that, at change 0,
                // while the data had moved on to members that then left).
                // Every answer is heard and the furthest along (by change
                // number) taken. Otherwise the first answer is taken: it
                // comes from the holders the table names.
                let mut best: Option<(SocketAddr, u64, Offered)> = None;
                for candidate in candidates {
                    let Some(addr) = data.address_of(candidate) else {
                        continue;
                    };
                    // Data kept from earlier only once every member was
                    // asked for the partition complete and none had it,
                    // and a second has passed. Taking it after a second
                    // alone, from whichever member was asked first, lost
                    // writes when several members left at once: tables a
                    // few ms apart moved partitions among members that were
                    // about to leave, their new holders declined while they
                    // copied, and one of them served what it had kept from
                    // before, while members further down the list (leaving,
                    // but still waiting for us) held the partition complete
                    // (`tests/scaling.rs`).
                    let last_resort = nobody_listed
                        || (asked_all_complete && start.elapsed() > Duration::from_secs(1));
                    let wanted = if last_resort {
                        CopyWanted::LastResort
                    } else {
                        CopyWanted::Complete
                    };
                    // What `ask_for_copy` asks the source to have applied.
                    let asked_at = table_version.max(data.service.table_version());
                    let (seq, term, records, pending) = match ask_for_copy(
                        &data,
                        p,
                        candidate,
                        addr,
                        table_version,
                        wanted,
                    )
                    .await
                    {
                        CopyAnswer::Copy {
                            seq,
                            term,
                            records,
                            pending,
                        } => (seq, term, records, pending),
                        CopyAnswer::Gone => {
                            tracing::debug!("partition {p}: {addr} left; asking the next member");
                            continue;
                        }
                        CopyAnswer::NoData => {
                            never_complete = true;
                            tracing::debug!(
                                "partition {p}: {addr} never held it complete; trying the next member"
                            );
                            continue;
                        }
                        CopyAnswer::Declined | CopyAnswer::Log(_) => {
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
                    if best.as_ref().is_none_or(|b| seq > b.2 .0) {
                        best = Some((addr, asked_at, (seq, term, records, pending)));
                    }
                    if !everybody {
                        break;
                    }
                }
                // What we kept from when we last owned the partition may
                // be further than any copy offered: the member that took it
                // over from us never held it complete (so it took no write),
                // and the others, backups, lack the maps no backup keeps.
                if never_complete {
                    let offered = best.as_ref().map(|(_, _, (seq, _, records, _))| {
                        (*seq, records.iter().map(|(_, r)| r.len()).sum::<usize>())
                    });
                    // (An offer further along than ours, or none, and we copy.)
                    if data.service.keep_own_if_current(p, offered) {
                        tracing::info!(
                            "partition {p}: the member it was copied from never held it complete; this member's data, kept from when it last owned it, is current: serving it"
                        );
                        let _ = inputs
                            .send(CoordinatorInput::Peer(ServiceMessage::Ack, None, None))
                            .await;
                        return;
                    }
                }
                // A new owner's copy from a member other than the one the
                // partition was moving from may be a backup's, without the
                // maps no backup keeps: whoever kept an owner's copy at the
                // same change number (the member it was moving from, now
                // copying it back, serves it only as a last resort) has
                // them. Seen: a joiner still copying from the old owner
                // when the next table came took the leaving backup's copy,
                // and the old owner then copied that back from it.
                // The same when this member was promoted to owner while it
                // copied as a backup: it asked whoever holds a backup's data.
                let source_addr = data.address_of(source);
                let owner_now = data.service.owner(p) == Some(me);
                if let Some((addr, _, (seq, _, records, _))) = best.as_ref() {
                    if owner_now && (!owner || Some(*addr) != source_addr) {
                        let floor = (*seq, entries(records));
                        if let Some((from, seq, term, records, pending)) =
                            best_copy_elsewhere(&data, p, table_version, &[], floor).await
                        {
                            tracing::info!(
                                "partition {p}: {from} kept a copy further than {addr}'s (change {seq}, {} entries); taking it",
                                entries(&records)
                            );
                            let asked_at = table_version.max(data.service.table_version());
                            best = Some((from, asked_at, (seq, term, records, pending)));
                        }
                    }
                }
                if let Some((addr, asked_at, (seq, term, records, pending))) = best {
                    let n: usize = records.iter().map(|(_, r)| r.len()).sum();
                    let bytes: usize = records
                        .iter()
                        .flat_map(|(_, r)| r.iter())
                        .map(|(k, v)| k.len() + v.value.len())
                        .sum();
                    copied.0.fetch_add(n, Ordering::SeqCst);
                    copied.1.fetch_add(bytes, Ordering::SeqCst);
                    match data
                        .service
                        .install_copy_asked_at(p, asked_at, seq, term, records, pending)
                    {
                        Installed::NotWanted => {}
                        installed => {
                            tracing::debug!(
                                "partition {p}: copied {n} entries from {addr} in {} ms ({})",
                                start.elapsed().as_millis(),
                                if owner { "owner" } else { "backup" }
                            );
                            // Both run an upgrade of that version: a copy
                            // from the owner of the maps (see `resync`).
                            if let Installed::Diverged { term: version }
                            | Installed::Upgrade { version } = installed
                            {
                                let _ = inputs
                                    .send(CoordinatorInput::Diverged {
                                        partition: p,
                                        term: version,
                                    })
                                    .await;
                            }
                        }
                    }
                    let _ = inputs
                        .send(CoordinatorInput::Peer(ServiceMessage::Ack, None, None))
                        .await;
                    return;
                }
                if everybody {
                    asked_all_complete = true;
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
            if !upgrade_delay().is_zero() {
                tokio::time::sleep(upgrade_delay()).await;
            }
            while data.service.upgrade_pending(p, version) {
                let me = data.service.me();
                let owner = data.service.owner(p).filter(|o| *o != me);
                let addr = owner.and_then(|o| data.address_of(o));
                if let (Some(owner), Some(addr)) = (owner, addr) {
                    // What `ask_for_copy` asks the owner to have applied.
                    let asked_at = version.max(data.service.table_version());
                    if let CopyAnswer::Copy { seq, records, .. } =
                        ask_for_copy(&data, p, owner, addr, version, CopyWanted::Complete).await
                    {
                        let n: usize = records.iter().map(|(_, r)| r.len()).sum();
                        // Not taken once the sender is no longer owner (it
                        // failed meanwhile): the new owner is asked next.
                        if data.service.finish_upgrade_from(
                            p,
                            version,
                            Some(owner),
                            asked_at,
                            seq,
                            records,
                        ) {
                            copied.0.fetch_add(n, Ordering::SeqCst);
                            tracing::debug!(
                                "partition {p}: moved up; copied {n} entries from the owner {addr} in {} ms",
                                start.elapsed().as_millis()
                            );
                            break;
                        }
                        continue;
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
}
