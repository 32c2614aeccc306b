//! The data plane: runs a client's map request where its data lives. A key
//! operation runs on the key's partition owner (here, or forwarded over the
//! member protocol); a map-wide operation runs on every owner for the
//! partitions it owns, and the partial results are merged. While a
//! partition's data is migrating to this member, operations on it wait;
//! when the owner changed under a forwarded operation, it is sent again to
//! the new owner. Nothing is dropped: an operation either completes or
//! fails with a clear error after `op_timeout`.

use crate::client::listeners::Listeners;
use crate::service_msg::{frames_of, message_of, ServiceMessage};
use ferrocast_cluster::ClusterSnapshot;
use ferrocast_net::Transport;
use ferrocast_partition::{MapResult, MergeEntry, MergePolicy, PartitionService};
use ferrocast_protocol::data::partition_id;
use ferrocast_protocol::{ClientMessage, MapOp, MapRequest, Request};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use uuid::Uuid;

pub mod backup_counts;
mod here;
mod replication;

pub use backup_counts::{BackupCounts, BackupPlaces};
pub use here::Here;

const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors starting with this are worth retrying (the client is told so).
pub const RETRY_MARK: &str = "retry: ";
/// Errors starting with this are split-brain protection refusals.
pub const SPLIT_BRAIN_MARK: &str = "split-brain protection: ";

pub struct DataPlane {
    pub service: Arc<PartitionService>,
    /// Distributed objects clients created: (service, name), kept on every member.
    pub proxies: std::sync::Mutex<std::collections::BTreeSet<(String, String)>>,
    pub listeners: Arc<Listeners>,
    transport: Transport,
    cluster: watch::Receiver<ClusterSnapshot>,
    op_timeout: Duration,
    /// Writes are refused while the cluster has fewer members (0: never).
    min_cluster_size: usize,
    backups: BackupCounts,
}

fn change_map(c: &ferrocast_partition::Change) -> &str {
    match c {
        ferrocast_partition::Change::Put { map, .. }
        | ferrocast_partition::Change::Remove { map, .. }
        | ferrocast_partition::Change::ClearMap { map } => map,
    }
}

impl DataPlane {
    pub fn new(
        service: Arc<PartitionService>,
        listeners: Arc<Listeners>,
        transport: Transport,
        cluster: watch::Receiver<ClusterSnapshot>,
        op_timeout: Duration,
        min_cluster_size: usize,
        backups: BackupCounts,
    ) -> Self {
        // Events go to listeners from under their partition's lock (in the
        // order of the writes); dispatching only queues them on each
        // listener's connection, without waiting.
        let sink = listeners.clone();
        service.set_event_sink(Box::new(move |events| sink.dispatch(events)));
        Self {
            service,
            proxies: Default::default(),
            listeners,
            transport,
            cluster,
            op_timeout,
            min_cluster_size,
            backups,
        }
    }

    pub fn address_of(&self, member: Uuid) -> Option<SocketAddr> {
        self.cluster
            .borrow()
            .view
            .members
            .iter()
            .find(|m| m.uuid == member)
            .map(|m| m.address)
    }

    /// Runs the map request `raw` (decoded as `req`) wherever its data is.
    pub async fn run(&self, req: &MapRequest, raw: &ClientMessage) -> Result<MapResult, String> {
        // The common case, a key whose partition is here and settled (what
        // a smart client sends): run it without the bookkeeping below.
        match self.run_here(req) {
            Here::Done(result) => return result,
            Here::Backups(result, batches) => return self.finish(&req.op, result, batches).await,
            Here::Elsewhere => {}
        }
        let count = self.service.partition_count();
        let deadline = Instant::now() + self.op_timeout;
        let mut remaining: Vec<u32> = match (&req.op, req.op.key()) {
            (_, Some(key)) => vec![partition_id(key, count)],
            // Multi-key operations touch only their keys' partitions.
            (MapOp::GetAll { keys }, None) => sorted_partitions(keys.iter(), count),
            (MapOp::PutAll { entries }, None) => {
                sorted_partitions(entries.iter().map(|(k, _)| k), count)
            }
            _ => (0..count).collect(),
        };
        let key_op = req.op.key().is_some();
        let mut acc: Option<MapResult> = None;
        while !remaining.is_empty() {
            if Instant::now() > deadline {
                return Err(format!(
                    "operation on map '{}' timed out after {:?}: {} partition(s) had no reachable owner",
                    req.name,
                    self.op_timeout,
                    remaining.len()
                ));
            }
            let me = self.service.me();
            let mut by_owner: HashMap<Uuid, Vec<u32>> = HashMap::new();
            let mut unowned = Vec::new();
            for p in remaining.drain(..) {
                match self.service.owner(p) {
                    Some(o) => by_owner.entry(o).or_default().push(p),
                    None => unowned.push(p),
                }
            }
            let calls = by_owner.into_iter().map(|(owner, parts)| async move {
                if owner == me {
                    return match self.execute_here(req, &parts).await {
                        Ok((result, not_owned)) => (Ok(result), not_owned),
                        Err(e) => (Err(e), Vec::new()),
                    };
                }
                let Some(addr) = self.address_of(owner) else {
                    return (Ok(MapResult::Unit), parts);
                };
                let msg = ServiceMessage::Execute {
                    request: frames_of(raw),
                    partitions: (!key_op).then(|| parts.clone()),
                };
                let answer = match msg.wrap() {
                    Ok(m) => self.transport.request(addr, m, FORWARD_TIMEOUT).await,
                    Err(e) => return (Err(e.to_string()), Vec::new()),
                };
                match answer.as_ref().map(ServiceMessage::unwrap) {
                    Ok(Some(Ok(ServiceMessage::Executed { result, not_owned }))) => {
                        (result, not_owned)
                    }
                    Ok(_) => (Err(format!("unexpected answer from {addr}")), Vec::new()),
                    Err(e) => {
                        tracing::debug!("forwarding to {addr} failed: {e}; retrying");
                        (Ok(MapResult::Unit), parts)
                    }
                }
            });
            let results = futures::future::join_all(calls).await;
            let mut any_done = false;
            for (result, not_owned) in results {
                let result = result?;
                let done_all = not_owned.is_empty();
                remaining.extend(not_owned);
                if key_op && !done_all {
                    continue;
                }
                any_done = true;
                acc = Some(match acc {
                    None => result,
                    Some(a) => a.merge(result, &req.op),
                });
            }
            remaining.extend(unowned);
            if key_op && any_done {
                break;
            }
            if !remaining.is_empty() {
                self.service
                    .wait_for_change(Duration::from_millis(50))
                    .await;
            }
        }
        Ok(acc.unwrap_or(MapResult::Unit).normalized(&req.op))
    }

    /// Runs `req` on those of `parts` this member owns, waiting for any of
    /// them whose data is still arriving. Returns the others.
    async fn execute_here(
        &self,
        req: &MapRequest,
        parts: &[u32],
    ) -> Result<(MapResult, Vec<u32>), String> {
        if parts.iter().any(|p| self.service.is_awaiting(*p)) {
            let deadline = Instant::now() + self.op_timeout;
            while parts.iter().any(|p| self.service.is_awaiting(*p)) && Instant::now() < deadline {
                self.service
                    .wait_for_change(Duration::from_millis(50))
                    .await;
            }
        }
        if req.op.is_write() {
            self.writes_allowed()?;
        }
        let me = self.service.me();
        let (mine, mut others): (Vec<u32>, Vec<u32>) = parts
            .iter()
            .partition(|p| self.service.owner(**p) == Some(me));
        if mine.is_empty() {
            return Ok((MapResult::Unit, others));
        }
        let want_events = self.listeners.wants_entry_events(&req.name);
        // Its events went to the listeners already (the event sink).
        let (result, _, batches, moved) =
            self.service.execute(&req.name, &req.op, &mine, want_events);
        if req.op.key().is_some() && !moved.is_empty() {
            return Ok((MapResult::Unit, moved));
        }
        others.extend(moved);
        if !batches.is_empty() {
            self.replicate(batches, Instant::now() + self.op_timeout)
                .await?;
        }
        Ok((result, others))
    }

    /// Offers the entries of a healed split's smaller side to their owners.
    pub async fn merge(
        &self,
        entries: Vec<MergeEntry>,
        policy: MergePolicy,
    ) -> Result<usize, String> {
        let count = self.service.partition_count();
        let deadline = Instant::now() + self.op_timeout;
        let total = entries.len();
        let mut by_partition: HashMap<u32, Vec<MergeEntry>> = HashMap::new();
        for e in entries {
            by_partition
                .entry(partition_id(&e.1, count))
                .or_default()
                .push(e);
        }
        while !by_partition.is_empty() {
            if Instant::now() > deadline {
                return Err(format!(
                    "{} partition(s) found no owner to merge into",
                    by_partition.len()
                ));
            }
            let mut by_owner: HashMap<Uuid, Vec<(u32, Vec<MergeEntry>)>> = HashMap::new();
            for (p, es) in by_partition.drain() {
                match self.service.owner(p) {
                    Some(o) => by_owner.entry(o).or_default().push((p, es)),
                    None => by_owner.entry(Uuid::nil()).or_default().push((p, es)),
                }
            }
            let me = self.service.me();
            let calls = by_owner.into_iter().map(|(owner, parts)| async move {
                if owner == me {
                    return self.merge_here(parts, policy).await;
                }
                let Some(addr) = self.address_of(owner) else {
                    return parts;
                };
                let entries: Vec<MergeEntry> =
                    parts.iter().flat_map(|(_, es)| es.clone()).collect();
                let msg = ServiceMessage::Merge { policy, entries }.wrap();
                let answer = match msg {
                    Ok(m) => self.transport.request(addr, m, FORWARD_TIMEOUT).await,
                    Err(_) => return parts,
                };
                match answer.as_ref().map(ServiceMessage::unwrap) {
                    Ok(Some(Ok(ServiceMessage::Merged { not_owned }))) => parts
                        .into_iter()
                        .filter(|(p, _)| not_owned.contains(p))
                        .collect(),
                    _ => parts,
                }
            });
            for left in futures::future::join_all(calls).await {
                by_partition.extend(left);
            }
            if !by_partition.is_empty() {
                self.service
                    .wait_for_change(Duration::from_millis(100))
                    .await;
            }
        }
        Ok(total)
    }

    /// Merges into partitions this member owns; returns the others.
    pub async fn merge_here(
        &self,
        parts: Vec<(u32, Vec<MergeEntry>)>,
        policy: MergePolicy,
    ) -> Vec<(u32, Vec<MergeEntry>)> {
        let me = self.service.me();
        let mut left = Vec::new();
        let mut batches = Vec::new();
        for (p, entries) in parts {
            if self.service.owner(p) != Some(me) || self.service.is_awaiting(p) {
                left.push((p, entries));
                continue;
            }
            match self.service.merge_entries(p, entries, policy) {
                // Its events went to the listeners already (the event sink).
                Ok((_, batch)) => batches.extend(batch),
                Err(entries) => left.push((p, entries)),
            }
        }
        let _ = self
            .replicate(batches, Instant::now() + self.op_timeout)
            .await;
        left
    }

    /// A member forwarded a client's request to us.
    pub async fn handle_execute(
        &self,
        request: Vec<(u16, bytes::Bytes)>,
        partitions: Option<Vec<u32>>,
    ) -> ServiceMessage {
        let msg = message_of(request);
        let req = match Request::decode(&msg) {
            Ok(Request::Map(m)) => m,
            Ok(other) => {
                return ServiceMessage::Executed {
                    result: Err(format!("not a map request: {other:?}")),
                    not_owned: Vec::new(),
                }
            }
            Err(e) => {
                return ServiceMessage::Executed {
                    result: Err(e.to_string()),
                    not_owned: Vec::new(),
                }
            }
        };
        let parts = match (&partitions, req.op.key()) {
            (Some(p), _) => p.clone(),
            (None, Some(key)) => vec![partition_id(key, self.service.partition_count())],
            (None, None) => self.service.owned(),
        };
        match self.execute_here(&req, &parts).await {
            Ok((result, not_owned)) => ServiceMessage::Executed {
                result: Ok(result),
                not_owned,
            },
            Err(e) => ServiceMessage::Executed {
                result: Err(e),
                not_owned: Vec::new(),
            },
        }
    }

    /// Records a created or destroyed object here and tells the other members.
    pub fn note_proxy(&self, created: bool, service: String, name: String, tell_others: bool) {
        if let Ok(mut p) = self.proxies.lock() {
            if created {
                p.insert((service.clone(), name.clone()));
            } else {
                p.remove(&(service.clone(), name.clone()));
            }
        }
        if !tell_others {
            return;
        }
        let snap = self.cluster();
        let Ok(msg) = (ServiceMessage::Proxy {
            created,
            service,
            name,
        })
        .wrap() else {
            return;
        };
        for m in snap.view.members.iter().filter(|m| m.uuid != snap.me.uuid) {
            let (t, to, msg) = (self.transport.clone(), m.address, msg.clone());
            tokio::spawn(async move {
                let _ = t.send(to, msg).await;
            });
        }
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    pub fn cluster(&self) -> ClusterSnapshot {
        self.cluster.borrow().clone()
    }

    /// Resolves once `member` is not in the member list (at once if it is
    /// not now); never, while it stays.
    pub async fn member_gone(&self, member: Uuid) {
        let mut cluster = self.cluster.clone();
        let _ = cluster
            .wait_for(|s| !s.view.members.iter().any(|m| m.uuid == member))
            .await;
    }

    /// The cluster once this member is in it, or as it is after `limit`.
    pub async fn wait_joined(&self, limit: Duration) -> ClusterSnapshot {
        let mut rx = self.cluster.clone();
        let _ = tokio::time::timeout(limit, rx.wait_for(|s| s.joined)).await;
        self.cluster()
    }
}

fn sorted_partitions<'a>(keys: impl Iterator<Item = &'a bytes::Bytes>, count: u32) -> Vec<u32> {
    let mut parts: Vec<u32> = keys.map(|k| partition_id(k, count)).collect();
    parts.sort_unstable();
    parts.dedup();
    parts
}

trait Normalize {
    fn normalized(self, op: &ferrocast_protocol::MapOp) -> MapResult;
}

impl Normalize for MapResult {
    /// A map-wide result built from no partition at all still has the right shape.
    fn normalized(self, op: &ferrocast_protocol::MapOp) -> MapResult {
        use ferrocast_protocol::MapOp::*;
        match (self, op) {
            (MapResult::Unit, Size) => MapResult::Int(0),
            (MapResult::Unit, IsEmpty) => MapResult::Bool(true),
            (MapResult::Unit, ContainsValue { .. }) => MapResult::Bool(false),
            (MapResult::Unit, KeySet | Values) => MapResult::List(Vec::new()),
            (MapResult::Unit, EntrySet | GetAll { .. }) => MapResult::Entries(Vec::new()),
            (r, _) => r,
        }
    }
}
