//! Splits what peers send between the cluster actor (membership) and the
//! data layer (partition tables, migrations, forwarded operations).

use crate::data::DataPlane;
use crate::partitions::CoordinatorInput;
use crate::service_msg::ServiceMessage;
use ferrocast_net::{Incoming, Responder};
use std::sync::Arc;
use tokio::sync::mpsc;
use uuid::Uuid;

pub fn spawn(
    mut incoming: mpsc::Receiver<Incoming>,
    cluster: mpsc::Sender<Incoming>,
    coordinator: mpsc::Sender<CoordinatorInput>,
    data: Arc<DataPlane>,
) {
    tokio::spawn(async move {
        while let Some(msg) = incoming.recv().await {
            match ServiceMessage::unwrap(&msg.body) {
                None => {
                    if cluster.send(msg).await.is_err() {
                        break;
                    }
                }
                Some(Ok(ServiceMessage::Execute {
                    request,
                    partitions,
                })) => {
                    let data = data.clone();
                    tokio::spawn(async move {
                        let answer = data.handle_execute(request, partitions).await;
                        if let (Some(r), Ok(m)) = (msg.responder, answer.wrap()) {
                            let _ = r.respond(m).await;
                        }
                    });
                }
                Some(Ok(ServiceMessage::Merge { policy, entries })) => {
                    let data = data.clone();
                    tokio::spawn(async move {
                        let count = data.service.partition_count();
                        let mut parts: std::collections::HashMap<u32, Vec<_>> = Default::default();
                        for e in entries {
                            let p = ferrocast_protocol::data::partition_id(&e.1, count);
                            parts.entry(p).or_default().push(e);
                        }
                        let left = data.merge_here(parts.into_iter().collect(), policy).await;
                        let answer = ServiceMessage::Merged {
                            not_owned: left.iter().map(|(p, _)| *p).collect(),
                        };
                        if let (Some(r), Ok(m)) = (msg.responder, answer.wrap()) {
                            let _ = r.respond(m).await;
                        }
                    });
                }
                // Backups the current table says we take from this owner
                // are applied here (checked and applied with the table
                // held), without a trip through the coordinator's queue; any
                // other goes there, to be refused (or taken) in order with
                // the tables queued before it.
                Some(Ok(ServiceMessage::Backup(batch))) => {
                    let p = batch.partition;
                    match data.apply_backup_from(batch, msg.from.uuid) {
                        Ok(resync) => {
                            if let (Some(r), Some(ack)) = (msg.responder, ServiceMessage::ack()) {
                                r.respond_soon(ack);
                            }
                            if let Some(term) = resync {
                                let _ = coordinator
                                    .send(CoordinatorInput::Diverged { partition: p, term })
                                    .await;
                            }
                        }
                        Err(batch) => {
                            let body = ServiceMessage::Backup(batch);
                            to_coordinator(&coordinator, body, msg.from.uuid, msg.responder).await;
                        }
                    }
                }
                Some(Ok(ServiceMessage::Proxy {
                    created,
                    service,
                    name,
                })) => {
                    data.note_proxy(created, service, name, false);
                }
                Some(Ok(other)) => {
                    to_coordinator(&coordinator, other, msg.from.uuid, msg.responder).await;
                }
                Some(Err(e)) => tracing::warn!(
                    "malformed data-layer message from {}: {e}",
                    msg.from.address
                ),
            }
        }
    });
}

/// Hands a data-layer message to the partition coordinator, which judges
/// it in order with the tables queued before it.
async fn to_coordinator(
    coordinator: &mpsc::Sender<CoordinatorInput>,
    body: ServiceMessage,
    from: Uuid,
    responder: Option<Responder>,
) {
    let _ = coordinator
        .send(CoordinatorInput::Peer(body, Some(from), responder))
        .await;
}
