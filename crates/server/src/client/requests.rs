//! Answering one client request: client-service requests here, map
//! requests through the data plane, and a clear error for anything else.

use crate::client::endpoint::ClientEndpoint;
use crate::client::listeners::{ClientSink, EntryRegistration};
use crate::client::views;
use ferrocast_partition::{MapResult, ViewRecord};
use ferrocast_protocol::codec::{EntryView, ErrorHolder};
use ferrocast_protocol::error_codes;
use ferrocast_protocol::messages::responses;
use ferrocast_protocol::messages::types::*;
use ferrocast_protocol::{ClientMessage, MapOp, MapRequest, ProtocolError, Request};

pub const MAP_SERVICE: &str = "hz:impl:mapService";

pub fn error(correlation: i64, code: i32, message: String) -> ClientMessage {
    responses::error(
        correlation,
        &ErrorHolder {
            code,
            class_name: error_codes::class_name(code).to_string(),
            message: Some(message),
        },
    )
}

impl ClientEndpoint {
    pub(crate) async fn handle(
        &self,
        connection: u64,
        msg: ClientMessage,
        tx: &ClientSink,
    ) -> Option<ClientMessage> {
        let correlation = msg.correlation_id().ok()?;
        let request_type = msg.message_type().ok()?;
        let req = match Request::decode(&msg) {
            Ok(r) => r,
            Err(ProtocolError::UnknownMessageType(t)) => {
                return Some(error(
                    correlation,
                    error_codes::UNSUPPORTED_OPERATION,
                    format!("ferrocast does not support client message type {t:#08x}"),
                ))
            }
            Err(e) => {
                return Some(error(
                    correlation,
                    error_codes::ILLEGAL_ARGUMENT,
                    format!("malformed request of type {request_type:#08x}: {e}"),
                ))
            }
        };
        Some(match req {
            Request::Ping => responses::empty(CLIENT_PING, correlation),
            Request::Authentication(_) => error(
                correlation,
                error_codes::ILLEGAL_STATE,
                "this connection is already authenticated".into(),
            ),
            Request::AddClusterViewListener => {
                // Registered before the first await: the first poll runs in
                // the connection's own loop, so the registration cannot land
                // after the connection's cleanup (leaking the listener and
                // a sender that keeps the connection's writer waiting).
                // Clients route events by correlation id from the moment
                // they send the request, so one may precede the answer.
                self.data
                    .listeners
                    .add_view(connection, correlation, tx.clone());
                let _ = tx
                    .send(responses::empty(
                        CLIENT_ADD_CLUSTER_VIEW_LISTENER,
                        correlation,
                    ))
                    .await;
                for event in views::both(correlation, &self.data.cluster(), &self.data.service) {
                    let _ = tx.send(event).await;
                }
                return None;
            }
            // Backups are acknowledged by the member before it answers, so
            // this listener never has anything to tell.
            Request::LocalBackupListener => responses::uuid(
                CLIENT_LOCAL_BACKUP_LISTENER,
                correlation,
                uuid::Uuid::new_v4(),
            ),
            Request::CreateProxy { name, service } => {
                self.data.note_proxy(true, service, name, true);
                responses::empty(CLIENT_CREATE_PROXY, correlation)
            }
            Request::DestroyProxy { name, service } => {
                self.data
                    .note_proxy(false, service.clone(), name.clone(), true);
                if service == MAP_SERVICE {
                    let clear = MapRequest {
                        name: name.clone(),
                        op: MapOp::Clear,
                    };
                    let raw = clear_request(&name);
                    if let Err(e) = self.data.run(&clear, &raw).await {
                        return Some(error(correlation, error_codes::HAZELCAST, e));
                    }
                }
                responses::empty(CLIENT_DESTROY_PROXY, correlation)
            }
            Request::GetDistributedObjects => {
                let objects: Vec<(String, String)> = self
                    .data
                    .proxies
                    .lock()
                    .map(|p| p.iter().cloned().collect())
                    .unwrap_or_default();
                responses::distributed_objects(correlation, &objects)
            }
            Request::Map(req) => {
                self.map_request(connection, request_type, correlation, req, &msg, tx)
                    .await
            }
        })
    }

    async fn map_request(
        &self,
        connection: u64,
        t: u32,
        correlation: i64,
        req: MapRequest,
        raw: &ClientMessage,
        tx: &ClientSink,
    ) -> ClientMessage {
        match req.op {
            MapOp::AddEntryListener {
                key,
                include_value,
                flags,
                local_only,
            } => {
                if !local_only {
                    tracing::debug!("a non-smart client registered a listener on '{}': it gets this member's events", req.name);
                }
                let id = self.data.listeners.add_entry(EntryRegistration {
                    connection,
                    map: req.name,
                    key,
                    flags,
                    include_value,
                    request_type: t,
                    correlation,
                    sink: tx.clone(),
                });
                return responses::uuid(t, correlation, id);
            }
            MapOp::RemoveEntryListener { registration } => {
                return responses::boolean(
                    t,
                    correlation,
                    self.data.listeners.remove_entry(registration),
                );
            }
            _ => {}
        }
        match self.data.run(&req, raw).await {
            Ok(result) => map_response(t, correlation, &req.op, result),
            Err(e) => {
                if let Some(msg) = e.strip_prefix(crate::data::RETRY_MARK) {
                    error(
                        correlation,
                        error_codes::RETRYABLE_HAZELCAST,
                        msg.to_string(),
                    )
                } else if e.starts_with(crate::data::SPLIT_BRAIN_MARK) {
                    error(correlation, error_codes::SPLIT_BRAIN_PROTECTION, e)
                } else {
                    error(correlation, error_codes::HAZELCAST, e)
                }
            }
        }
    }
}

/// The client response for a map operation's result.
fn map_response(t: u32, correlation: i64, op: &MapOp, result: MapResult) -> ClientMessage {
    use MapOp::*;
    match (op, result) {
        (Size, MapResult::Int(n)) => {
            responses::int(t, correlation, n.min(i64::from(i32::MAX)) as i32)
        }
        (_, MapResult::Bool(b)) => responses::boolean(t, correlation, b),
        (_, MapResult::Data(d)) => responses::nullable_data(t, correlation, d),
        (_, MapResult::List(items)) => responses::data_list(t, correlation, items),
        (_, MapResult::Entries(items)) => responses::entry_list(t, correlation, items),
        (_, MapResult::View(v)) => responses::entry_view(t, correlation, v.map(entry_view)),
        (_, MapResult::Int(n)) => responses::int(t, correlation, n as i32),
        (_, MapResult::Unit) => responses::empty(t, correlation),
    }
}

fn entry_view(v: ViewRecord) -> EntryView {
    EntryView {
        key: v.key,
        value: v.value,
        cost: 0,
        creation_time: v.creation_time,
        expiration_time: v.expiration_time,
        hits: v.hits,
        last_access_time: v.last_access_time,
        last_stored_time: 0,
        last_update_time: v.last_update_time,
        version: v.version,
        ttl: v.ttl,
        max_idle: i64::MAX,
    }
}

/// A Map.clear request as a client would send it (to run a destroy cluster-wide).
fn clear_request(name: &str) -> ClientMessage {
    let init = ClientMessage::with_header(ferrocast_protocol::messages::map_ids::CLEAR, 16, 0);
    let mut w = ferrocast_protocol::codec::MessageWriter::new(init.build(0));
    w.string(name);
    w.build()
}
