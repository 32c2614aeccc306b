//! Responses and events a member sends. A response's type is its
//! request's type + 1; its initial frame holds the correlation id of the
//! request and a backup-acknowledgement count (always 0: ferrocast
//! acknowledges a write only once its backups have it).

use super::types::*;
use crate::codec::{
    write_uuid, Address, EntryView, ErrorHolder, MemberDescription, MessageWriter, UUID_SIZE,
};
use crate::frame::{
    flags, write_bool, write_i32, write_i64, ClientMessage, EVENT_HEADER_SIZE, RESPONSE_HEADER_SIZE,
};
use bytes::Bytes;
use uuid::Uuid;

fn initial(
    message_type: u32,
    correlation: i64,
    header: usize,
    fixed: usize,
    f: impl FnOnce(&mut [u8]),
) -> MessageWriter {
    let mut init = ClientMessage::with_header(message_type, header, fixed).correlation(correlation);
    f(init.fixed());
    let flags = if header == EVENT_HEADER_SIZE {
        flags::IS_EVENT
    } else {
        0
    };
    MessageWriter::new(init.build(flags))
}

fn response(
    request_type: u32,
    correlation: i64,
    fixed: usize,
    f: impl FnOnce(&mut [u8]),
) -> MessageWriter {
    initial(
        request_type + 1,
        correlation,
        RESPONSE_HEADER_SIZE,
        fixed,
        f,
    )
}

pub fn empty(request_type: u32, correlation: i64) -> ClientMessage {
    response(request_type, correlation, 0, |_| {}).build()
}

pub fn boolean(request_type: u32, correlation: i64, v: bool) -> ClientMessage {
    response(request_type, correlation, 1, |b| write_bool(b, 0, v)).build()
}

pub fn int(request_type: u32, correlation: i64, v: i32) -> ClientMessage {
    response(request_type, correlation, 4, |b| write_i32(b, 0, v)).build()
}

pub fn uuid(request_type: u32, correlation: i64, v: Uuid) -> ClientMessage {
    response(request_type, correlation, UUID_SIZE, |b| {
        write_uuid(b, 0, Some(v))
    })
    .build()
}

pub fn nullable_data(request_type: u32, correlation: i64, v: Option<Bytes>) -> ClientMessage {
    let mut w = response(request_type, correlation, 0, |_| {});
    w.nullable_bytes(v);
    w.build()
}

pub fn data_list(request_type: u32, correlation: i64, items: Vec<Bytes>) -> ClientMessage {
    let mut w = response(request_type, correlation, 0, |_| {});
    w.list_of_bytes(items);
    w.build()
}

pub fn entry_list(
    request_type: u32,
    correlation: i64,
    items: Vec<(Bytes, Bytes)>,
) -> ClientMessage {
    let mut w = response(request_type, correlation, 0, |_| {});
    w.entry_list_of_bytes(items);
    w.build()
}

/// Map.getEntryView: the max-idle fixed field, then the nullable view.
pub fn entry_view(request_type: u32, correlation: i64, view: Option<EntryView>) -> ClientMessage {
    let max_idle = view.as_ref().map(|v| v.max_idle).unwrap_or(-1);
    let mut w = response(request_type, correlation, 8, |b| write_i64(b, 0, max_idle));
    match view {
        Some(v) => v.write(&mut w),
        None => {
            w.null();
        }
    }
    w.build()
}

pub fn distributed_objects(correlation: i64, objects: &[(String, String)]) -> ClientMessage {
    let mut w = response(CLIENT_GET_DISTRIBUTED_OBJECTS, correlation, 0, |_| {});
    w.begin();
    for (service, name) in objects {
        w.begin().string(service).string(name).end();
    }
    w.end();
    w.build()
}

/// Authentication status values.
pub mod auth_status {
    pub const AUTHENTICATED: u8 = 0;
    pub const CREDENTIALS_FAILED: u8 = 1;
    pub const SERIALIZATION_VERSION_MISMATCH: u8 = 2;
    pub const NOT_ALLOWED_IN_CLUSTER: u8 = 3;
}

pub struct AuthenticationResponse<'a> {
    pub status: u8,
    pub address: Option<&'a Address>,
    pub member_uuid: Option<Uuid>,
    pub serialization_version: u8,
    pub server_version: &'a str,
    pub partition_count: i32,
    pub cluster_id: Option<Uuid>,
}

pub fn authentication(correlation: i64, a: &AuthenticationResponse<'_>) -> ClientMessage {
    // status, member uuid, serialization version, partition count, cluster id, failover supported
    let mut w = response(
        CLIENT_AUTHENTICATION,
        correlation,
        1 + UUID_SIZE + 1 + 4 + UUID_SIZE + 1,
        |b| {
            b[0] = a.status;
            write_uuid(b, 1, a.member_uuid);
            b[1 + UUID_SIZE] = a.serialization_version;
            write_i32(b, 2 + UUID_SIZE, a.partition_count);
            write_uuid(b, 6 + UUID_SIZE, a.cluster_id);
            write_bool(b, 6 + 2 * UUID_SIZE, false);
        },
    );
    match a.address {
        Some(addr) => addr.write(&mut w),
        None => {
            w.null();
        }
    }
    w.string(a.server_version);
    w.build()
}

pub fn error(correlation: i64, holder: &ErrorHolder) -> ClientMessage {
    let mut init =
        ClientMessage::with_header(EXCEPTION, RESPONSE_HEADER_SIZE, 0).correlation(correlation);
    let _ = init.fixed();
    let mut w = MessageWriter::new(init.build(0));
    w.begin();
    holder.write(&mut w);
    w.end();
    w.build()
}

pub fn members_view_event(
    correlation: i64,
    version: i32,
    members: &[MemberDescription],
) -> ClientMessage {
    let mut w = initial(
        CLIENT_MEMBERS_VIEW_EVENT,
        correlation,
        EVENT_HEADER_SIZE,
        4,
        |b| write_i32(b, 0, version),
    );
    w.begin();
    for m in members {
        m.write(&mut w);
    }
    w.end();
    w.build()
}

/// `owners`: for each member, the partitions it owns.
pub fn partitions_view_event(
    correlation: i64,
    version: i32,
    owners: &[(Uuid, Vec<i32>)],
) -> ClientMessage {
    let mut w = initial(
        CLIENT_PARTITIONS_VIEW_EVENT,
        correlation,
        EVENT_HEADER_SIZE,
        4,
        |b| write_i32(b, 0, version),
    );
    w.begin();
    for (_, parts) in owners {
        w.int_list(parts);
    }
    w.end();
    let uuids: Vec<Uuid> = owners.iter().map(|(u, _)| *u).collect();
    w.uuid_list(&uuids);
    w.build()
}

/// Entry event kinds (`EntryEventType`), also the bits of listener flags.
pub mod entry_event_type {
    pub const ADDED: i32 = 1;
    pub const REMOVED: i32 = 2;
    pub const UPDATED: i32 = 4;
    pub const EVICTED: i32 = 8;
    pub const EXPIRED: i32 = 16;
    pub const EVICT_ALL: i32 = 32;
    pub const CLEAR_ALL: i32 = 64;
}

pub struct EntryEvent {
    pub event_type: i32,
    pub member: Uuid,
    pub affected: i32,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub old_value: Option<Bytes>,
}

/// An entry event for the listener registered by the request with `correlation`;
/// `listener_request_type` is that request's type (to key or to map).
pub fn entry_event(listener_request_type: u32, correlation: i64, e: &EntryEvent) -> ClientMessage {
    let mut w = initial(
        listener_request_type + 2,
        correlation,
        EVENT_HEADER_SIZE,
        4 + UUID_SIZE + 4,
        |b| {
            write_i32(b, 0, e.event_type);
            write_uuid(b, 4, Some(e.member));
            write_i32(b, 4 + UUID_SIZE, e.affected);
        },
    );
    w.nullable_bytes(e.key.clone())
        .nullable_bytes(e.value.clone())
        .nullable_bytes(e.old_value.clone())
        .null();
    w.build()
}
