//! The cluster as clients see it: the members view and partitions view
//! events, sent when a client registers its cluster view listener and again
//! on every change of the member list or the partition table.

use crate::client::listeners::Listeners;
use ferrocast_cluster::ClusterSnapshot;
use ferrocast_partition::{PartitionService, PartitionTable};
use ferrocast_protocol::codec::{Address, MemberDescription};
use ferrocast_protocol::messages::responses;
use ferrocast_protocol::ClientMessage;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The Hazelcast version ferrocast reports to clients: the protocol and
/// feature level it is compatible with.
pub const COMPATIBLE_VERSION: (u8, u8, u8) = (5, 7, 0);
pub const COMPATIBLE_VERSION_STR: &str = "5.7.0";

pub fn address(addr: std::net::SocketAddr) -> Address {
    Address {
        host: addr.ip().to_string(),
        port: i32::from(addr.port()),
    }
}

pub fn members_event(correlation: i64, snap: &ClusterSnapshot) -> ClientMessage {
    let members: Vec<MemberDescription> = snap
        .view
        .members
        .iter()
        .map(|m| MemberDescription {
            uuid: m.uuid,
            address: address(m.address),
            version: COMPATIBLE_VERSION,
        })
        .collect();
    responses::members_view_event(correlation, snap.view.version as i32, &members)
}

pub fn partitions_event(correlation: i64, table: &PartitionTable) -> Option<ClientMessage> {
    if table.version == 0 {
        return None;
    }
    let mut owners: Vec<(uuid::Uuid, Vec<i32>)> = Vec::new();
    for p in 0..table.count() {
        if let Some(o) = table.owner(p) {
            match owners.iter_mut().find(|(u, _)| *u == o) {
                Some((_, v)) => v.push(p as i32),
                None => owners.push((o, vec![p as i32])),
            }
        }
    }
    Some(responses::partitions_view_event(
        correlation,
        table.version as i32,
        &owners,
    ))
}

pub fn both(
    correlation: i64,
    snap: &ClusterSnapshot,
    service: &PartitionService,
) -> Vec<ClientMessage> {
    let mut out = vec![members_event(correlation, snap)];
    out.extend(partitions_event(correlation, &service.table()));
    out
}

/// Re-sends the views to every registered client whenever they change.
pub fn spawn_publisher(
    listeners: Arc<Listeners>,
    service: Arc<PartitionService>,
    mut cluster: watch::Receiver<ClusterSnapshot>,
    mut tables: watch::Receiver<u64>,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = cluster.changed() => {
                    if r.is_err() { break; }
                    let snap = cluster.borrow_and_update().clone();
                    if snap.joined {
                        listeners.send_views(|c| vec![members_event(c, &snap)]);
                    }
                }
                r = tables.changed() => {
                    if r.is_err() { break; }
                    tables.borrow_and_update();
                    let table = service.table();
                    listeners.send_views(|c| partitions_event(c, &table).into_iter().collect());
                }
            }
        }
    });
}
