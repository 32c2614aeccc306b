//! Answering one client request: client-service requests here, map
//! requests through the data plane, and a clear error for anything else.

use crate::client::endpoint::ClientEndpoint;
use crate::client::listeners::{ClientSink, EntryRegistration};
use crate::client::views;
use crate::data::Here;
use ferrocast_partition::{BackupBatch, MapResult, ViewRecord};
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

/// A request decoded, with what its answer needs.
pub(crate) struct Decoded {
    correlation: i64,
    request_type: u32,
    req: Request,
}

/// How far [`ClientEndpoint::answer_now`] got with a request.
pub(crate) enum AnsweredNow {
    /// The answer (none for a request without a correlation id to answer).
    Answer(Option<ClientMessage>),
    /// A map operation that ran here: answer it once its backups have
    /// acknowledged `batches` ([`ClientEndpoint::answer_after_backups`]).
    Backups {
        correlation: i64,
        request_type: u32,
        op: MapOp,
        result: MapResult,
        batches: Vec<BackupBatch>,
    },
    /// It has to wait (a partition elsewhere or still arriving, a listener
    /// to register): [`ClientEndpoint::handle`] it.
    Later(Decoded),
}

/// Decodes `msg`, or gives the answer to a request that does not decode.
fn decode(msg: &ClientMessage) -> Result<Decoded, Option<ClientMessage>> {
    let correlation = msg.correlation_id().map_err(|_| None)?;
    let request_type = msg.message_type().map_err(|_| None)?;
    match Request::decode(msg) {
        Ok(req) => Ok(Decoded {
            correlation,
            request_type,
            req,
        }),
        Err(ProtocolError::UnknownMessageType(t)) => Err(Some(error(
            correlation,
            error_codes::UNSUPPORTED_OPERATION,
            format!("ferrocast does not support client message type {t:#08x}"),
        ))),
        Err(e) => Err(Some(error(
            correlation,
            error_codes::ILLEGAL_ARGUMENT,
            format!("malformed request of type {request_type:#08x}: {e}"),
        ))),
    }
}

impl ClientEndpoint {
    /// Answers `msg` without waiting if it can: a ping, a request that
    /// does not decode, a key operation on a settled partition this member
    /// owns (see `data/here.rs`).
    pub(crate) fn answer_now(&self, msg: &ClientMessage) -> AnsweredNow {
        let Decoded {
            correlation,
            request_type,
            req,
        } = match decode(msg) {
            Ok(d) => d,
            Err(answer) => return AnsweredNow::Answer(answer),
        };
        match req {
            Request::Ping => AnsweredNow::Answer(Some(responses::empty(CLIENT_PING, correlation))),
            // Listener operations have no key: run_here leaves them.
            Request::Map(m) => match self.data.run_here(&m) {
                Here::Done(result) => {
                    AnsweredNow::Answer(Some(map_answer(request_type, correlation, &m.op, result)))
                }
                Here::Backups(result, batches) => AnsweredNow::Backups {
                    correlation,
                    request_type,
                    op: m.op,
                    result,
                    batches,
                },
                Here::Elsewhere => AnsweredNow::Later(Decoded {
                    correlation,
                    request_type,
                    req: Request::Map(m),
                }),
            },
            req => AnsweredNow::Later(Decoded {
                correlation,
                request_type,
                req,
            }),
        }
    }

    /// The answer to a map operation [`answer_now`](Self::answer_now) ran,
    /// once its backups acknowledged it.
    pub(crate) async fn answer_after_backups(
        &self,
        correlation: i64,
        request_type: u32,
        op: MapOp,
        result: MapResult,
        batches: Vec<BackupBatch>,
    ) -> ClientMessage {
        let result = self.data.finish(&op, result, batches).await;
        map_answer(request_type, correlation, &op, result)
    }

    /// Answers a request [`answer_now`](Self::answer_now) left for later.
    pub(crate) async fn handle(
        &self,
        connection: u64,
        decoded: Decoded,
        msg: &ClientMessage,
        tx: &ClientSink,
    ) -> Option<ClientMessage> {
        let Decoded {
            correlation,
            request_type,
            req,
        } = decoded;
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
                        name: name.as_str().into(),
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
                self.map_request(connection, request_type, correlation, req, msg, tx)
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
                    map: req.name.into(),
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
        let result = self.data.run(&req, raw).await;
        map_answer(t, correlation, &req.op, result)
    }
}

/// The client response for a map operation's outcome.
fn map_answer(
    t: u32,
    correlation: i64,
    op: &MapOp,
    result: Result<MapResult, String>,
) -> ClientMessage {
    match result {
        Ok(result) => map_response(t, correlation, op, result),
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
