//! The partition coordinator: the master computes the partition table from
//! the member list (minus members that are leaving) and publishes it; every
//! member applies newer tables and moves data with ownership: a member that
//! lost a partition sends its records to the new owner, which holds
//! operations on it until they arrive.

use crate::data::DataPlane;
use crate::service_msg::ServiceMessage;
use ferrocast_cluster::ClusterSnapshot;
use ferrocast_net::Responder;
use ferrocast_partition::PartitionTable;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a new owner waits for a partition's data before serving it as is.
const AWAIT_DATA_LIMIT: Duration = Duration::from_secs(60);

pub enum CoordinatorInput {
    /// A data-layer message from a peer (tables, leave intents, migrations).
    Peer(ServiceMessage, Option<Responder>),
    /// This member shuts down: move its partitions away; answered when asked.
    LeaveSelf(oneshot::Sender<()>),
}

pub struct Coordinator {
    data: Arc<DataPlane>,
    cluster: watch::Receiver<ClusterSnapshot>,
    tables: watch::Sender<u64>,
    leaving: HashSet<Uuid>,
    awaiting_from: HashMap<u32, (Uuid, Instant)>,
    migrations_in_flight: Arc<AtomicUsize>,
}

impl Coordinator {
    pub fn new(
        data: Arc<DataPlane>,
        cluster: watch::Receiver<ClusterSnapshot>,
        tables: watch::Sender<u64>,
    ) -> Self {
        Self {
            data,
            cluster,
            tables,
            leaving: HashSet::new(),
            awaiting_from: HashMap::new(),
            migrations_in_flight: Arc::default(),
        }
    }

    pub fn migrations_in_flight(&self) -> Arc<AtomicUsize> {
        self.migrations_in_flight.clone()
    }

    pub fn spawn(
        mut self,
        mut inputs: mpsc::Receiver<CoordinatorInput>,
        shutdown: CancellationToken,
    ) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    r = self.cluster.changed() => {
                        if r.is_err() { break; }
                        self.cluster.borrow_and_update();
                        self.on_members();
                    }
                    Some(input) = inputs.recv() => self.on_input(input).await,
                    _ = tick.tick() => self.on_tick(),
                }
            }
        });
    }

    fn snapshot(&self) -> ClusterSnapshot {
        self.cluster.borrow().clone()
    }

    fn on_members(&mut self) {
        let snap = self.snapshot();
        if !snap.joined {
            return;
        }
        let alive: Vec<Uuid> = snap.view.members.iter().map(|m| m.uuid).collect();
        self.leaving.retain(|u| alive.contains(u));
        // A partition whose data was to come from a member that is gone
        // will not get it (without backups the data died with it).
        let gone: Vec<u32> = self
            .awaiting_from
            .iter()
            .filter(|(_, (from, _))| !alive.contains(from))
            .map(|(p, _)| *p)
            .collect();
        for p in gone {
            tracing::warn!("partition {p}: its previous owner left before handing it over");
            self.awaiting_from.remove(&p);
            self.data.service.stop_awaiting(p);
        }
        if snap.is_master() {
            self.rebalance(&snap);
        }
    }

    /// Master: the balanced table for the members that stay.
    fn rebalance(&mut self, snap: &ClusterSnapshot) {
        let owners: Vec<Uuid> = snap
            .view
            .members
            .iter()
            .map(|m| m.uuid)
            .filter(|u| !self.leaving.contains(u))
            .collect();
        if owners.is_empty() {
            return;
        }
        let current = self.data.service.table();
        let next = current.rebalanced(&owners);
        if next.version != current.version {
            tracing::info!(
                "partition table version {}: {} partition(s) change owner",
                next.version,
                current.moves(&next).len()
            );
            self.apply(next.clone());
            self.broadcast(&next);
        }
    }

    fn broadcast(&self, table: &PartitionTable) {
        let snap = self.snapshot();
        let Ok(msg) = ServiceMessage::Table(table.clone()).wrap() else {
            return;
        };
        for m in snap.view.members.iter().filter(|m| m.uuid != snap.me.uuid) {
            let t = self.data.transport().clone();
            let (to, msg) = (m.address, msg.clone());
            tokio::spawn(async move {
                let _ = t.send(to, msg).await;
            });
        }
    }

    fn apply(&mut self, table: PartitionTable) {
        let snap = self.snapshot();
        let alive: Vec<Uuid> = snap.view.members.iter().map(|m| m.uuid).collect();
        let version = table.version;
        let Some(change) = self.data.service.apply_table(table, &alive) else {
            return;
        };
        for (p, from) in change.gained {
            self.awaiting_from.insert(p, (from, Instant::now()));
        }
        for (p, to) in change.lost {
            self.migrate(p, to);
        }
        let _ = self.tables.send(version);
    }

    /// Hands partition `p` to `to`, retrying until it took it or left.
    fn migrate(&self, p: u32, to: Uuid) {
        let data = self.data.clone();
        let in_flight = self.migrations_in_flight.clone();
        in_flight.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let records = data.service.take_partition(p);
            let deadline = Instant::now() + AWAIT_DATA_LIMIT;
            loop {
                let Some(addr) = data.address_of(to) else {
                    tracing::warn!(
                        "partition {p}: new owner {to} left before taking it; keeping the data"
                    );
                    data.service.restore_partition(p, records);
                    break;
                };
                let msg = ServiceMessage::Migration {
                    partition: p,
                    data: records.clone(),
                }
                .wrap();
                let answer = match msg {
                    Ok(m) => {
                        data.transport()
                            .request(addr, m, Duration::from_secs(30))
                            .await
                    }
                    Err(e) => Err(e),
                };
                match answer {
                    Ok(_) => break,
                    Err(e) if Instant::now() > deadline => {
                        tracing::error!(
                            "partition {p}: could not hand it to {addr}: {e}; keeping the data"
                        );
                        data.service.restore_partition(p, records);
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(
                            "partition {p}: migration to {addr} failed ({e}); retrying"
                        );
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }

    async fn on_input(&mut self, input: CoordinatorInput) {
        match input {
            CoordinatorInput::Peer(ServiceMessage::Table(t), _) => {
                if t.version > self.data.service.table_version() {
                    self.apply(t);
                }
            }
            CoordinatorInput::Peer(ServiceMessage::Migration { partition, data }, responder) => {
                self.data.service.install_partition(partition, data);
                self.awaiting_from.remove(&partition);
                if let (Some(r), Ok(ack)) = (responder, ServiceMessage::Ack.wrap()) {
                    tokio::spawn(r.respond(ack));
                }
            }
            CoordinatorInput::Peer(ServiceMessage::LeaveIntent { member }, responder) => {
                self.leaving.insert(member);
                let snap = self.snapshot();
                if snap.is_master() {
                    self.rebalance(&snap);
                }
                if let (Some(r), Ok(ack)) = (responder, ServiceMessage::Ack.wrap()) {
                    tokio::spawn(r.respond(ack));
                }
            }
            CoordinatorInput::Peer(_, _) => {}
            CoordinatorInput::LeaveSelf(done) => {
                let snap = self.snapshot();
                self.leaving.insert(snap.me.uuid);
                if snap.is_master() {
                    self.rebalance(&snap);
                } else if let Some(master) = snap.view.master() {
                    let msg = ServiceMessage::LeaveIntent {
                        member: snap.me.uuid,
                    }
                    .wrap();
                    if let Ok(m) = msg {
                        let t = self.data.transport().clone();
                        let addr = master.address;
                        tokio::spawn(async move {
                            if let Err(e) = t.request(addr, m, Duration::from_secs(5)).await {
                                tracing::warn!("could not tell the master we are leaving: {e}");
                            }
                        });
                    }
                }
                let _ = done.send(());
            }
        }
    }

    fn on_tick(&mut self) {
        let snap = self.snapshot();
        if snap.is_master() && self.data.service.table_version() > 0 {
            // Repairs members that missed a table.
            self.broadcast(&self.data.service.table());
        }
        let stale: Vec<u32> = self
            .awaiting_from
            .iter()
            .filter(|(_, (_, since))| since.elapsed() > AWAIT_DATA_LIMIT)
            .map(|(p, _)| *p)
            .collect();
        for p in stale {
            tracing::warn!("partition {p}: no data from its previous owner after {AWAIT_DATA_LIMIT:?}; serving it as it is");
            self.awaiting_from.remove(&p);
            self.data.service.stop_awaiting(p);
        }
        let expired = self.data.service.purge_expired();
        self.data.listeners.dispatch(&expired);
    }
}
