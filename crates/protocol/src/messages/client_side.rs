//! The client's half: building requests and reading responses and events.
//! Used by the Rust client crate and by the protocol's round-trip tests
//! (every request built here decodes back to itself on the member side).

use super::map::ids;
use super::types::*;
use super::{AuthenticationRequest, MapOp};
use crate::codec::{
    read_uuid, write_uuid, Address, ErrorHolder, MessageReader, MessageWriter, UUID_SIZE,
};
use crate::error::ProtocolError;
use crate::frame::{
    read_bool, read_i32, read_i64, read_u8, write_bool, write_i32, write_i64, ClientMessage,
    EVENT_HEADER_SIZE, REQUEST_HEADER_SIZE, RESPONSE_HEADER_SIZE,
};
use bytes::Bytes;
use uuid::Uuid;

fn request(message_type: u32, fixed: usize, f: impl FnOnce(&mut [u8])) -> MessageWriter {
    let mut init = ClientMessage::with_header(message_type, REQUEST_HEADER_SIZE, fixed);
    f(init.fixed());
    MessageWriter::new(init.build(0))
}

pub fn authentication(a: &AuthenticationRequest) -> ClientMessage {
    let mut w = request(CLIENT_AUTHENTICATION, UUID_SIZE + 1, |b| {
        write_uuid(b, 0, a.client_uuid);
        b[UUID_SIZE] = a.serialization_version;
    });
    w.string(&a.cluster_name)
        .nullable_string(a.username.as_deref())
        .nullable_string(a.password.as_deref())
        .string(&a.client_type)
        .string(&a.client_version)
        .string(&a.client_name)
        .list_of_strings(a.labels.iter().map(String::as_str));
    w.build()
}

/// A request with no fields (ping, cluster view listener, ...).
pub fn bare(message_type: u32) -> ClientMessage {
    request(message_type, 0, |_| {}).build()
}

pub fn proxy(message_type: u32, name: &str, service: &str) -> ClientMessage {
    let mut w = request(message_type, 0, |_| {});
    w.string(name).string(service);
    w.build()
}

/// The request for `op` on map `name`, with the key's partition set.
pub fn map_request(name: &str, op: &MapOp, partition: i32) -> ClientMessage {
    use MapOp::*;
    let thread = |b: &mut [u8]| write_i64(b, 0, 1);
    let (t, mut w) = match op {
        Put { ttl, .. } | Set { ttl, .. } | PutTransient { ttl, .. } | PutIfAbsent { ttl, .. } => {
            let t = match op {
                Put { .. } => ids::PUT,
                Set { .. } => ids::SET,
                PutTransient { .. } => ids::PUT_TRANSIENT,
                _ => ids::PUT_IF_ABSENT,
            };
            (
                t,
                request(t, 16, |b| {
                    thread(b);
                    write_i64(b, 8, *ttl);
                }),
            )
        }
        Get { .. } => (ids::GET, request(ids::GET, 8, thread)),
        Remove { .. } => (ids::REMOVE, request(ids::REMOVE, 8, thread)),
        Delete { .. } => (ids::DELETE, request(ids::DELETE, 8, thread)),
        ContainsKey { .. } => (ids::CONTAINS_KEY, request(ids::CONTAINS_KEY, 8, thread)),
        Evict { .. } => (ids::EVICT, request(ids::EVICT, 8, thread)),
        GetEntryView { .. } => (ids::GET_ENTRY_VIEW, request(ids::GET_ENTRY_VIEW, 8, thread)),
        RemoveIfSame { .. } => (ids::REMOVE_IF_SAME, request(ids::REMOVE_IF_SAME, 8, thread)),
        Replace { .. } => (ids::REPLACE, request(ids::REPLACE, 8, thread)),
        ReplaceIfSame { .. } => (
            ids::REPLACE_IF_SAME,
            request(ids::REPLACE_IF_SAME, 8, thread),
        ),
        SetTtl { ttl, .. } => (
            ids::SET_TTL,
            request(ids::SET_TTL, 8, |b| write_i64(b, 0, *ttl)),
        ),
        ContainsValue { .. } => (ids::CONTAINS_VALUE, request(ids::CONTAINS_VALUE, 0, |_| {})),
        Size => (ids::SIZE, request(ids::SIZE, 0, |_| {})),
        IsEmpty => (ids::IS_EMPTY, request(ids::IS_EMPTY, 0, |_| {})),
        Clear => (ids::CLEAR, request(ids::CLEAR, 0, |_| {})),
        KeySet => (ids::KEY_SET, request(ids::KEY_SET, 0, |_| {})),
        Values => (ids::VALUES, request(ids::VALUES, 0, |_| {})),
        EntrySet => (ids::ENTRY_SET, request(ids::ENTRY_SET, 0, |_| {})),
        EvictAll => (ids::EVICT_ALL, request(ids::EVICT_ALL, 0, |_| {})),
        GetAll { .. } => (ids::GET_ALL, request(ids::GET_ALL, 0, |_| {})),
        PutAll { .. } => (
            ids::PUT_ALL,
            request(ids::PUT_ALL, 1, |b| write_bool(b, 0, true)),
        ),
        AddEntryListener {
            key,
            include_value,
            flags,
            local_only,
        } => {
            let t = if key.is_some() {
                ids::ADD_ENTRY_LISTENER_TO_KEY
            } else {
                ids::ADD_ENTRY_LISTENER
            };
            (
                t,
                request(t, 6, |b| {
                    write_bool(b, 0, *include_value);
                    write_i32(b, 1, *flags);
                    write_bool(b, 5, *local_only);
                }),
            )
        }
        RemoveEntryListener { registration } => (
            ids::REMOVE_ENTRY_LISTENER,
            request(ids::REMOVE_ENTRY_LISTENER, UUID_SIZE, |b| {
                write_uuid(b, 0, Some(*registration))
            }),
        ),
    };
    let _ = t;
    w.string(name);
    match op {
        Put { key, value, .. }
        | Set { key, value, .. }
        | PutTransient { key, value, .. }
        | PutIfAbsent { key, value, .. }
        | RemoveIfSame { key, value }
        | Replace { key, value } => {
            w.bytes(key.clone()).bytes(value.clone());
        }
        Get { key }
        | Remove { key }
        | Delete { key }
        | ContainsKey { key }
        | Evict { key }
        | GetEntryView { key }
        | SetTtl { key, .. } => {
            w.bytes(key.clone());
        }
        ReplaceIfSame {
            key,
            expected,
            value,
        } => {
            w.bytes(key.clone())
                .bytes(expected.clone())
                .bytes(value.clone());
        }
        ContainsValue { value } => {
            w.bytes(value.clone());
        }
        GetAll { keys } => {
            w.list_of_bytes(keys.iter().cloned());
        }
        PutAll { entries } => {
            w.entry_list_of_bytes(entries.iter().cloned());
        }
        AddEntryListener { key: Some(key), .. } => {
            w.bytes(key.clone());
        }
        _ => {}
    }
    let mut msg = w.build();
    if partition >= 0 {
        if let Some(f) = msg.frames.first_mut() {
            let mut c = bytes::BytesMut::from(&f.content[..]);
            c[12..16].copy_from_slice(&partition.to_le_bytes());
            f.content = c.freeze();
        }
    }
    msg
}

/// A decoded map response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapResponse {
    Unit,
    Data(Option<Bytes>),
    Bool(bool),
    Int(i32),
    List(Vec<Bytes>),
    Entries(Vec<(Bytes, Bytes)>),
    Uuid(Uuid),
    /// (key, value, hits, version) of an entry view.
    View(Option<(Bytes, Bytes, i64, i64)>),
}

/// Reads the response to `op`.
pub fn map_response(op: &MapOp, msg: &ClientMessage) -> Result<MapResponse, ProtocolError> {
    use MapOp::*;
    let mut r = MessageReader::new(msg);
    let init = r.initial()?;
    let h = RESPONSE_HEADER_SIZE;
    Ok(match op {
        Put { .. } | PutIfAbsent { .. } | Get { .. } | Remove { .. } | Replace { .. } => {
            MapResponse::Data(r.nullable_bytes()?)
        }
        RemoveIfSame { .. }
        | ReplaceIfSame { .. }
        | ContainsKey { .. }
        | ContainsValue { .. }
        | IsEmpty
        | SetTtl { .. }
        | Evict { .. }
        | RemoveEntryListener { .. } => MapResponse::Bool(read_bool(init, h)?),
        Size => MapResponse::Int(read_i32(init, h)?),
        KeySet | Values => MapResponse::List(r.list_of_bytes()?),
        EntrySet | GetAll { .. } => MapResponse::Entries(r.entry_list_of_bytes()?),
        AddEntryListener { .. } => MapResponse::Uuid(
            read_uuid(init, h)?
                .ok_or_else(|| ProtocolError::Malformed("null registration".into()))?,
        ),
        GetEntryView { .. } => {
            if r.next_is_null() {
                MapResponse::View(None)
            } else {
                let f = r.begin_struct()?;
                let hits = read_i64(f, 24)?;
                let version = read_i64(f, 56)?;
                let key = r.bytes()?;
                let value = r.bytes()?;
                r.skip_to_struct_end()?;
                MapResponse::View(Some((key, value, hits, version)))
            }
        }
        _ => MapResponse::Unit,
    })
}

/// The fields of an authentication response a client needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticationResult {
    pub status: u8,
    pub member_uuid: Option<Uuid>,
    pub partition_count: i32,
    pub cluster_id: Option<Uuid>,
    pub address: Option<Address>,
    pub server_version: String,
}

pub fn authentication_response(msg: &ClientMessage) -> Result<AuthenticationResult, ProtocolError> {
    let mut r = MessageReader::new(msg);
    let init = r.initial()?;
    let h = RESPONSE_HEADER_SIZE;
    let status = read_u8(init, h)?;
    let member_uuid = read_uuid(init, h + 1)?;
    let partition_count = read_i32(init, h + 2 + UUID_SIZE)?;
    let cluster_id = read_uuid(init, h + 6 + UUID_SIZE)?;
    let address = if r.next_is_null() {
        None
    } else {
        Some(Address::read(&mut r)?)
    };
    let server_version = r.string()?;
    Ok(AuthenticationResult {
        status,
        member_uuid,
        partition_count,
        cluster_id,
        address,
        server_version,
    })
}

/// The errors of an exception response.
pub fn error_response(msg: &ClientMessage) -> Result<Vec<ErrorHolder>, ProtocolError> {
    let mut r = MessageReader::new(msg);
    r.initial()?;
    let mut out = Vec::new();
    if r.next_frame()?.is_begin() {
        while !r
            .peek()
            .ok_or(ProtocolError::Truncated("error list"))?
            .is_end()
        {
            out.push(ErrorHolder::read(&mut r)?);
        }
    }
    Ok(out)
}

/// A members view event: version and (uuid, address) per member.
pub fn members_view(msg: &ClientMessage) -> Result<(i32, Vec<(Uuid, Address)>), ProtocolError> {
    let mut r = MessageReader::new(msg);
    let version = read_i32(r.initial()?, EVENT_HEADER_SIZE)?;
    if !r.next_frame()?.is_begin() {
        return Err(ProtocolError::Malformed("members list".into()));
    }
    let mut members = Vec::new();
    while !r
        .peek()
        .ok_or(ProtocolError::Truncated("members"))?
        .is_end()
    {
        let init = r.begin_struct()?;
        let uuid = read_uuid(init, 0)?
            .ok_or_else(|| ProtocolError::Malformed("member without uuid".into()))?;
        let address = Address::read(&mut r)?;
        r.skip_to_struct_end()?;
        members.push((uuid, address));
    }
    Ok((version, members))
}

/// A partitions view event: version and the partitions of each member.
/// A partition table as clients receive it: version, and per member its partitions.
pub type PartitionsView = (i32, Vec<(Uuid, Vec<i32>)>);

/// An entry event's type, key, value and old value.
pub type EntryEventFields = (i32, Option<Bytes>, Option<Bytes>, Option<Bytes>);

pub fn partitions_view(msg: &ClientMessage) -> Result<PartitionsView, ProtocolError> {
    let mut r = MessageReader::new(msg);
    let version = read_i32(r.initial()?, EVENT_HEADER_SIZE)?;
    if !r.next_frame()?.is_begin() {
        return Err(ProtocolError::Malformed("partition list".into()));
    }
    let mut lists = Vec::new();
    loop {
        let f = r.next_frame()?;
        if f.is_end() {
            break;
        }
        lists.push(
            f.content
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<_>>(),
        );
    }
    let uuids = r.bytes()?;
    let mut out = Vec::new();
    for (i, parts) in lists.into_iter().enumerate() {
        let u = read_uuid(&uuids, i * UUID_SIZE)?
            .ok_or_else(|| ProtocolError::Malformed("null owner".into()))?;
        out.push((u, parts));
    }
    Ok((version, out))
}

/// An entry event: (event type, key, value, old value).
pub fn entry_event(msg: &ClientMessage) -> Result<EntryEventFields, ProtocolError> {
    let mut r = MessageReader::new(msg);
    let event_type = read_i32(r.initial()?, EVENT_HEADER_SIZE)?;
    let key = r.nullable_bytes()?;
    let value = r.nullable_bytes()?;
    let old = r.nullable_bytes()?;
    Ok((event_type, key, value, old))
}
