//! IMap requests. Every map request starts with the map's name; key-based
//! ones carry the key's `Data`, which decides the partition.

use crate::codec::{read_uuid, MessageReader};
use crate::error::ProtocolError;
use crate::frame::{read_bool, read_i32, read_i64, ClientMessage, REQUEST_HEADER_SIZE};
use bytes::Bytes;
use compact_str::CompactString;
use uuid::Uuid;

pub mod ids {
    pub const PUT: u32 = 0x010100;
    pub const GET: u32 = 0x010200;
    pub const REMOVE: u32 = 0x010300;
    pub const REPLACE: u32 = 0x010400;
    pub const REPLACE_IF_SAME: u32 = 0x010500;
    pub const CONTAINS_KEY: u32 = 0x010600;
    pub const CONTAINS_VALUE: u32 = 0x010700;
    pub const REMOVE_IF_SAME: u32 = 0x010800;
    pub const DELETE: u32 = 0x010900;
    pub const PUT_TRANSIENT: u32 = 0x010D00;
    pub const PUT_IF_ABSENT: u32 = 0x010E00;
    pub const SET: u32 = 0x010F00;
    pub const ADD_ENTRY_LISTENER_TO_KEY: u32 = 0x011800;
    pub const ADD_ENTRY_LISTENER: u32 = 0x011900;
    pub const REMOVE_ENTRY_LISTENER: u32 = 0x011A00;
    pub const GET_ENTRY_VIEW: u32 = 0x011D00;
    pub const EVICT: u32 = 0x011E00;
    pub const EVICT_ALL: u32 = 0x011F00;
    pub const KEY_SET: u32 = 0x012200;
    pub const GET_ALL: u32 = 0x012300;
    pub const VALUES: u32 = 0x012400;
    pub const ENTRY_SET: u32 = 0x012500;
    pub const SIZE: u32 = 0x012A00;
    pub const IS_EMPTY: u32 = 0x012B00;
    pub const PUT_ALL: u32 = 0x012C00;
    pub const CLEAR: u32 = 0x012D00;
    pub const SET_TTL: u32 = 0x014300;
}

/// What to do to which map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapRequest {
    /// Inline up to 24 bytes (no allocation per request for the usual
    /// map name); derefs to `&str`.
    pub name: CompactString,
    pub op: MapOp,
}

/// TTLs are the client's milliseconds: negative = the map's default
/// (never expire), 0 = never expire, positive = expire after that long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapOp {
    Put {
        key: Bytes,
        value: Bytes,
        ttl: i64,
    },
    Set {
        key: Bytes,
        value: Bytes,
        ttl: i64,
    },
    PutTransient {
        key: Bytes,
        value: Bytes,
        ttl: i64,
    },
    PutIfAbsent {
        key: Bytes,
        value: Bytes,
        ttl: i64,
    },
    Get {
        key: Bytes,
    },
    Remove {
        key: Bytes,
    },
    Delete {
        key: Bytes,
    },
    RemoveIfSame {
        key: Bytes,
        value: Bytes,
    },
    Replace {
        key: Bytes,
        value: Bytes,
    },
    ReplaceIfSame {
        key: Bytes,
        expected: Bytes,
        value: Bytes,
    },
    ContainsKey {
        key: Bytes,
    },
    ContainsValue {
        value: Bytes,
    },
    Size,
    IsEmpty,
    Clear,
    GetAll {
        keys: Vec<Bytes>,
    },
    PutAll {
        entries: Vec<(Bytes, Bytes)>,
    },
    KeySet,
    Values,
    EntrySet,
    SetTtl {
        key: Bytes,
        ttl: i64,
    },
    Evict {
        key: Bytes,
    },
    EvictAll,
    AddEntryListener {
        key: Option<Bytes>,
        include_value: bool,
        flags: i32,
        local_only: bool,
    },
    RemoveEntryListener {
        registration: Uuid,
    },
    GetEntryView {
        key: Bytes,
    },
}

impl MapOp {
    /// Whether the operation changes the map.
    pub fn is_write(&self) -> bool {
        use MapOp::*;
        matches!(
            self,
            Put { .. }
                | Set { .. }
                | PutTransient { .. }
                | PutIfAbsent { .. }
                | Remove { .. }
                | Delete { .. }
                | RemoveIfSame { .. }
                | Replace { .. }
                | ReplaceIfSame { .. }
                | Clear
                | PutAll { .. }
                | SetTtl { .. }
                | Evict { .. }
                | EvictAll
        )
    }

    /// The key whose partition this operation runs on, if it is a key operation.
    pub fn key(&self) -> Option<&Bytes> {
        use MapOp::*;
        match self {
            Put { key, .. }
            | Set { key, .. }
            | PutTransient { key, .. }
            | PutIfAbsent { key, .. }
            | Get { key }
            | Remove { key }
            | Delete { key }
            | RemoveIfSame { key, .. }
            | Replace { key, .. }
            | ReplaceIfSame { key, .. }
            | ContainsKey { key }
            | SetTtl { key, .. }
            | Evict { key }
            | GetEntryView { key } => Some(key),
            _ => None,
        }
    }
}

pub(super) fn decode(t: u32, msg: &ClientMessage) -> Result<Option<MapRequest>, ProtocolError> {
    use ids::*;
    if !(0x010000..0x020000).contains(&t) {
        return Ok(None);
    }
    let mut r = MessageReader::new(msg);
    let init = r.initial()?;
    // Fixed fields after the header: most key operations start with a thread id.
    let h = REQUEST_HEADER_SIZE;
    let name = r.compact_string()?;
    let op = match t {
        PUT | SET | PUT_TRANSIENT | PUT_IF_ABSENT => {
            let ttl = read_i64(init, h + 8)?;
            let key = r.bytes()?;
            let value = r.bytes()?;
            match t {
                PUT => MapOp::Put { key, value, ttl },
                SET => MapOp::Set { key, value, ttl },
                PUT_TRANSIENT => MapOp::PutTransient { key, value, ttl },
                _ => MapOp::PutIfAbsent { key, value, ttl },
            }
        }
        GET => MapOp::Get { key: r.bytes()? },
        REMOVE => MapOp::Remove { key: r.bytes()? },
        DELETE => MapOp::Delete { key: r.bytes()? },
        CONTAINS_KEY => MapOp::ContainsKey { key: r.bytes()? },
        EVICT => MapOp::Evict { key: r.bytes()? },
        GET_ENTRY_VIEW => MapOp::GetEntryView { key: r.bytes()? },
        REMOVE_IF_SAME => MapOp::RemoveIfSame {
            key: r.bytes()?,
            value: r.bytes()?,
        },
        REPLACE => MapOp::Replace {
            key: r.bytes()?,
            value: r.bytes()?,
        },
        REPLACE_IF_SAME => MapOp::ReplaceIfSame {
            key: r.bytes()?,
            expected: r.bytes()?,
            value: r.bytes()?,
        },
        CONTAINS_VALUE => MapOp::ContainsValue { value: r.bytes()? },
        SIZE => MapOp::Size,
        IS_EMPTY => MapOp::IsEmpty,
        CLEAR => MapOp::Clear,
        KEY_SET => MapOp::KeySet,
        VALUES => MapOp::Values,
        ENTRY_SET => MapOp::EntrySet,
        EVICT_ALL => MapOp::EvictAll,
        GET_ALL => MapOp::GetAll {
            keys: r.list_of_bytes()?,
        },
        PUT_ALL => MapOp::PutAll {
            entries: r.entry_list_of_bytes()?,
        },
        SET_TTL => MapOp::SetTtl {
            ttl: read_i64(init, h)?,
            key: r.bytes()?,
        },
        ADD_ENTRY_LISTENER | ADD_ENTRY_LISTENER_TO_KEY => MapOp::AddEntryListener {
            include_value: read_bool(init, h)?,
            flags: read_i32(init, h + 1)?,
            local_only: read_bool(init, h + 5)?,
            key: if t == ADD_ENTRY_LISTENER_TO_KEY {
                Some(r.bytes()?)
            } else {
                None
            },
        },
        REMOVE_ENTRY_LISTENER => MapOp::RemoveEntryListener {
            registration: read_uuid(init, h)?
                .ok_or_else(|| ProtocolError::Malformed("null registration id".into()))?,
        },
        _ => return Ok(None),
    };
    Ok(Some(MapRequest { name, op }))
}
