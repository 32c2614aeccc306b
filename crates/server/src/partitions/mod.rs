//! The partition coordinator. The master computes the partition table (an
//! owner and `backup_count` backups per partition) from the member list,
//! minus members that are leaving, and publishes it. Every member applies
//! newer tables and acts on them: a member that became a replica without
//! the data copies the partition from the previous owner (or, when that one
//! is gone, from a surviving replica), and operations on a partition it now
//! owns wait for that copy; a backup promoted to owner already has the data.
//! Owners tell their backups the number of their last change every second;
//! a backup that fell behind (a lost message, a restart) copies again.
//! Once every member is in sync, the master evens out owners that
//! departures left apart (`balance.rs`).

use crate::data::DataPlane;
use crate::service_msg::ServiceMessage;
use ferrocast_cluster::ClusterSnapshot;
use ferrocast_net::Responder;
use ferrocast_partition::{MergePolicy, PartitionTable};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

mod balance;
mod copy;
mod hand_over;
mod leave;
mod members;
mod promotion;
mod resync;
mod serve;

pub use hand_over::{hand_over, HandOver};

/// How long a new owner waits for a partition's copy before serving it as is.
const COPY_LIMIT: Duration = Duration::from_secs(60);
/// How long a released partition's data is kept for members still copying it.
const RELEASE_GRACE: Duration = Duration::from_secs(30);
/// Partition copies this member builds and sends at once to one member. Each is a
/// snapshot of a whole partition, copied and encoded: serving all 271 at
/// once made a member holding 1M entries peak at ~1.9x its data while a
/// second member joined. Limited where the copy is built, not where it is
/// asked for: a holder may wait up to 300 ms before it declines (it is
/// still copying the partition itself), and a requester's permit held
/// through that wait serialised a fresh cluster's copies (a graceful leave
/// took ~1 s instead of 50 ms).
const PARALLEL_COPIES: usize = 8;
/// How long a copy waits for a permit before it is declined (the requester
/// asks again): permits are per requester, so only copies to a member that
/// stopped reading wait this long, and they must not wait forever (a
/// graceful shutdown waits for copies in flight).
const COPY_PERMIT_WAIT: Duration = Duration::from_secs(10);

pub enum CoordinatorInput {
    /// A data-layer message from a peer (its UUID), with the responder of a request.
    Peer(ServiceMessage, Option<Uuid>, Option<Responder>),
    /// This member shuts down: move its partitions away; answered when asked.
    LeaveSelf(oneshot::Sender<()>),
    /// A backup took a batch of a new owner term after taking back numbers
    /// an earlier owner gave (`Received::Diverged`): copy the partition
    /// from the owner, as an upgrade of that term.
    Diverged { partition: u32, term: u64 },
    /// A table from the master, applied late (`FERROCAST_TEST_TABLE_DELAY_MS`).
    DelayedTable(PartitionTable),
}

pub struct Coordinator {
    data: Arc<DataPlane>,
    cluster: watch::Receiver<ClusterSnapshot>,
    tables: watch::Sender<u64>,
    backup_count: usize,
    leaving: HashSet<Uuid>,
    copying: HashMap<u32, Instant>,
    released: HashMap<u32, Instant>,
    behind: HashMap<u32, u64>,
    hand_over: Arc<HandOver>,
    inputs: mpsc::Sender<CoordinatorInput>,
    joins_seen: u64,
    merge_policy: MergePolicy,
    /// Last table version whose replicas this member reported in sync.
    in_sync_reported: u64,
    /// Entries and bytes copied in since the last in-sync report, and since when.
    copied: Arc<(AtomicUsize, AtomicUsize)>,
    copy_started: Option<Instant>,
    /// Limits the copies being built and queued for each requester to
    /// [`PARALLEL_COPIES`]; one semaphore per member, so a member that
    /// stops reading holds up only its own copies.
    copy_permits: HashMap<Uuid, Arc<tokio::sync::Semaphore>>,
    /// A table that names members our member list does not have yet (it
    /// reached us before the member list did); applied once it does.
    deferred: Option<PartitionTable>,
    /// Master: when to publish a table for members that joined or said
    /// they are leaving (see `balance::GATHER`).
    rebalance_due: Option<tokio::time::Instant>,
    /// Since when joins or intents wait for that table.
    gathering_since: Option<tokio::time::Instant>,
    /// The member list as of the last change seen, to tell joins from
    /// departures.
    listed: Vec<Uuid>,
}

impl Coordinator {
    pub fn new(
        data: Arc<DataPlane>,
        cluster: watch::Receiver<ClusterSnapshot>,
        tables: watch::Sender<u64>,
        backup_count: usize,
        merge_policy: MergePolicy,
        inputs: mpsc::Sender<CoordinatorInput>,
    ) -> Self {
        Self {
            data,
            cluster,
            tables,
            backup_count,
            leaving: HashSet::new(),
            copying: HashMap::new(),
            released: HashMap::new(),
            behind: HashMap::new(),
            hand_over: Arc::default(),
            inputs,
            joins_seen: 0,
            merge_policy,
            in_sync_reported: 0,
            copied: Arc::default(),
            copy_started: None,
            copy_permits: HashMap::new(),
            deferred: None,
            rebalance_due: None,
            gathering_since: None,
            listed: Vec::new(),
        }
    }

    pub fn hand_over(&self) -> Arc<HandOver> {
        self.hand_over.clone()
    }

    pub fn spawn(
        mut self,
        mut inputs: mpsc::Receiver<CoordinatorInput>,
        shutdown: CancellationToken,
    ) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                let due = self.rebalance_due;
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    r = self.cluster.changed() => {
                        if r.is_err() { break; }
                        self.cluster.borrow_and_update();
                        self.on_members();
                    }
                    Some(input) = inputs.recv() => self.on_input(input),
                    _ = tick.tick() => self.on_tick(),
                    _ = balance::until(due) => self.rebalance_due_now(),
                }
            }
        });
    }

    fn snapshot(&self) -> ClusterSnapshot {
        self.cluster.borrow().clone()
    }

    fn alive(&self) -> Vec<Uuid> {
        self.snapshot()
            .view
            .members
            .iter()
            .map(|m| m.uuid)
            .collect()
    }

    fn send_to_members(&self, msg: &ServiceMessage) {
        let snap = self.snapshot();
        let Ok(msg) = msg.wrap() else { return };
        for m in snap.view.members.iter().filter(|m| m.uuid != snap.me.uuid) {
            let (t, to, msg) = (self.data.transport().clone(), m.address, msg.clone());
            tokio::spawn(async move {
                let _ = t.send(to, msg).await;
            });
        }
    }

    fn broadcast(&self, table: &PartitionTable) {
        self.send_to_members(&ServiceMessage::Table(table.clone()));
    }

    fn apply(&mut self, table: PartitionTable) {
        let version = table.version;
        let Some(change) = self.data.service.apply_table(table, &self.alive()) else {
            return;
        };
        if !(change.needs_copy.is_empty()
            && change.promotion_copies.is_empty()
            && change.upgrades.is_empty())
            && self.copy_started.is_none()
        {
            self.copy_started = Some(Instant::now());
        }
        for (p, owner, source) in change.needs_copy {
            self.copying.insert(p, Instant::now());
            self.spawn_copy(p, owner, source, version);
        }
        let mut bases = change.promotion_bases;
        for (p, sources, promoted_by) in change.promotion_copies {
            self.copying.insert(p, Instant::now());
            let behind = bases
                .iter_mut()
                .find(|(q, _)| *q == p)
                .map(|(_, b)| std::mem::take(b))
                .unwrap_or_default();
            self.spawn_promotion_copy(p, sources, behind, promoted_by);
        }
        for (p, version) in change.upgrades {
            self.copying.insert(p, Instant::now());
            self.spawn_upgrade_copy(p, version);
        }
        for p in change.released {
            self.released.insert(p, Instant::now());
        }
        let _ = self.tables.send(version);
        self.report_in_sync();
    }

    /// Applies a newer table from the master, or keeps it for later when it
    /// names a member we do not know yet: applied now, every earlier holder
    /// of a partition would look dead and new replicas would start empty.
    fn consider(&mut self, t: PartitionTable) {
        if t.version <= self.data.service.table_version() {
            return;
        }
        let alive = self.alive();
        let known =
            self.snapshot().joined && t.replicas.iter().flatten().all(|m| alive.contains(m));
        if known {
            self.deferred = None;
            self.apply(t);
        } else if self.deferred.as_ref().is_none_or(|d| d.version < t.version) {
            tracing::debug!(
                "partition table version {} names members not in our member list yet; applying it once they are",
                t.version
            );
            self.deferred = Some(t);
        }
    }

    /// Before dropping stale partitions (this member rejoins after a split
    /// or a removal), offers the entries it owned to the cluster it joins,
    /// which keeps or takes each by the merge policy.
    fn offer_for_merge(&self) {
        if self.merge_policy == MergePolicy::Discard {
            return;
        }
        let entries = self.data.service.owned_entries();
        if entries.is_empty() {
            return;
        }
        let (data, policy) = (self.data.clone(), self.merge_policy);
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !(data.cluster().joined && data.service.table_version() > 0)
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            match data.merge(entries, policy).await {
                Ok(n) => tracing::info!("offered {n} entries to the merged cluster ({policy:?})"),
                Err(e) => tracing::error!("merging this member's entries failed: {e}"),
            }
        });
    }

    /// Forgets finished copies and reports when none is left.
    fn refresh_copying(&mut self) {
        let service = &self.data.service;
        let table = service.table();
        let me = service.me();
        self.copying.retain(|p, _| {
            table.is_replica(*p, me) && (!service.replica_status(*p).1 || service.is_awaiting(*p))
        });
        self.report_in_sync();
    }

    /// Says once per table version when every replica this member holds has
    /// its data (what operators and tests wait for before the next failure).
    fn report_in_sync(&mut self) {
        let version = self.data.service.table_version();
        if version > self.in_sync_reported && self.copying.is_empty() {
            self.in_sync_reported = version;
            self.hand_over.own_in_sync.store(version, Ordering::SeqCst);
            let entries = self.copied.0.swap(0, Ordering::SeqCst);
            let bytes = self.copied.1.swap(0, Ordering::SeqCst);
            let ms = self
                .copy_started
                .take()
                .map(|t| t.elapsed().as_millis())
                .unwrap_or(0);
            tracing::info!(
                "partition table version {version}: replicas on this member are in sync (copied {entries} entries, {bytes} bytes in {ms} ms)"
            );
            self.send_to_members(&ServiceMessage::InSync { version });
        }
    }

    fn on_input(&mut self, input: CoordinatorInput) {
        match input {
            CoordinatorInput::Peer(ServiceMessage::Table(t), _, _) => {
                let delay = copy::table_delay();
                if delay.is_zero() {
                    self.consider(t);
                } else {
                    let inputs = self.inputs.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = inputs.send(CoordinatorInput::DelayedTable(t)).await;
                    });
                }
            }
            CoordinatorInput::Peer(
                ServiceMessage::CopyRequest {
                    partition,
                    table_version,
                    wanted,
                },
                from,
                Some(r),
            ) => {
                let permits = self
                    .copy_permits
                    .entry(from.unwrap_or_default())
                    .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(PARALLEL_COPIES)))
                    .clone();
                self.serve_copy(partition, table_version, wanted, r, permits);
            }
            CoordinatorInput::Peer(ServiceMessage::Backup(batch), from, responder) => {
                let p = batch.partition;
                let taken = from.map(|f| self.data.apply_backup_from(batch, f));
                if let Some(Ok(Some(term))) = taken {
                    self.resync(p, term);
                }
                let accepted = taken.is_some_and(|t| t.is_ok());
                let answer = if accepted {
                    ServiceMessage::ack()
                } else {
                    ServiceMessage::BackupRefused.wrap().ok()
                };
                if let (Some(r), Some(m)) = (responder, answer) {
                    r.respond_soon(m);
                }
            }
            CoordinatorInput::Peer(ServiceMessage::InSync { version }, Some(from), _) => {
                if let Ok(mut s) = self.hand_over.in_sync.lock() {
                    let v = s.entry(from).or_default();
                    *v = (*v).max(version);
                }
            }
            CoordinatorInput::Peer(ServiceMessage::ReplicaSeqs(seqs), _, _) => {
                self.check_behind(seqs)
            }
            CoordinatorInput::Peer(ServiceMessage::LeaveIntent { member }, _, responder) => {
                self.on_leave_intent(member, responder)
            }
            // A copy of ours finished.
            CoordinatorInput::Peer(ServiceMessage::Ack, None, None) => self.refresh_copying(),
            CoordinatorInput::Peer(..) => {}
            CoordinatorInput::Diverged { partition, term } => self.resync(partition, term),
            CoordinatorInput::LeaveSelf(done) => {
                self.on_leave_self();
                let _ = done.send(());
            }
            CoordinatorInput::DelayedTable(t) => self.consider(t),
        }
    }

    fn on_tick(&mut self) {
        let snap = self.snapshot();
        if snap.is_master() && self.data.service.table_version() > 0 {
            // Repairs members that missed a table.
            self.broadcast(&self.data.service.table());
        }
        self.refresh_copying();
        // Released partitions, once every member holds its replicas (until
        // then someone may still copy from us).
        let others: Vec<Uuid> = self
            .alive()
            .into_iter()
            .filter(|m| *m != snap.me.uuid)
            .collect();
        let all_in_sync = self
            .hand_over
            .lagging(&others, self.data.service.table_version())
            .is_empty();
        if self.in_sync_reported == self.data.service.table_version() {
            // Repeated, so a member waiting to leave does not depend on one message.
            self.send_to_members(&ServiceMessage::InSync {
                version: self.in_sync_reported,
            });
            if snap.is_master()
                && all_in_sync
                && self.leaving.is_empty()
                && self.rebalance_due.is_none()
            {
                self.even_owners(&snap);
            }
        }
        let expired: Vec<u32> = self
            .released
            .iter()
            .filter(|(_, t)| t.elapsed() > RELEASE_GRACE && all_in_sync)
            .map(|(p, _)| *p)
            .collect();
        for p in expired {
            self.released.remove(&p);
            self.data.service.release(p);
        }
        // Change numbers to our backups, per backup member.
        let table = self.data.service.table();
        let mut per_backup: HashMap<Uuid, Vec<(u32, u64)>> = HashMap::new();
        for p in table.owned_by(snap.me.uuid) {
            let seq = self.data.service.replica_status(p).0;
            for b in table.backups(p) {
                per_backup.entry(*b).or_default().push((p, seq));
            }
        }
        for (b, seqs) in per_backup {
            if let (Some(addr), Ok(m)) = (
                self.data.address_of(b),
                ServiceMessage::ReplicaSeqs(seqs).wrap(),
            ) {
                let t = self.data.transport().clone();
                tokio::spawn(async move {
                    let _ = t.send(addr, m).await;
                });
            }
        }
        // Expired entries: events (to the listeners through the event
        // sink), removals on the backups.
        let (_, batches) = self.data.service.purge_expired();
        if !batches.is_empty() {
            let data = self.data.clone();
            tokio::spawn(async move {
                let _ = data
                    .replicate(batches, Instant::now() + Duration::from_secs(30))
                    .await;
            });
        }
    }
}
