//! Splits what peers send between the cluster actor (membership) and the
//! data layer (partition tables, migrations, forwarded operations).

use crate::data::DataPlane;
use crate::partitions::CoordinatorInput;
use crate::service_msg::ServiceMessage;
use ferrocast_net::Incoming;
use std::sync::Arc;
use tokio::sync::mpsc;

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
                Some(Ok(ServiceMessage::Proxy {
                    created,
                    service,
                    name,
                })) => {
                    data.note_proxy(created, service, name, false);
                }
                Some(Ok(other)) => {
                    let _ = coordinator
                        .send(CoordinatorInput::Peer(
                            other,
                            Some(msg.from.uuid),
                            msg.responder,
                        ))
                        .await;
                }
                Some(Err(e)) => tracing::warn!(
                    "malformed data-layer message from {}: {e}",
                    msg.from.address
                ),
            }
        }
    });
}
