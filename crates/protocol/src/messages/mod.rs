//! Client-protocol messages: requests decoded into [`Request`], responses
//! and events built by the functions of `responses.rs`. Message type ids
//! are the protocol's (`0xSSMMNN`: service, method, 00 request / 01 response
//! / 02.. events).

mod client;
pub mod client_side;
mod map;
pub mod responses;

pub use client::AuthenticationRequest;
pub use map::{ids as map_ids, MapOp, MapRequest};

use crate::error::ProtocolError;
use crate::frame::ClientMessage;

pub mod types {
    pub const EXCEPTION: u32 = 0;
    pub const CLIENT_AUTHENTICATION: u32 = 0x000100;
    pub const CLIENT_ADD_CLUSTER_VIEW_LISTENER: u32 = 0x000300;
    pub const CLIENT_MEMBERS_VIEW_EVENT: u32 = 0x000302;
    pub const CLIENT_PARTITIONS_VIEW_EVENT: u32 = 0x000303;
    pub const CLIENT_CREATE_PROXY: u32 = 0x000400;
    pub const CLIENT_DESTROY_PROXY: u32 = 0x000500;
    pub const CLIENT_GET_DISTRIBUTED_OBJECTS: u32 = 0x000800;
    pub const CLIENT_PING: u32 = 0x000B00;
    pub const CLIENT_LOCAL_BACKUP_LISTENER: u32 = 0x000F00;
}

/// Every request ferrocast understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Authentication(AuthenticationRequest),
    Ping,
    AddClusterViewListener,
    LocalBackupListener,
    CreateProxy { name: String, service: String },
    DestroyProxy { name: String, service: String },
    GetDistributedObjects,
    Map(MapRequest),
}

impl Request {
    /// Decodes a request; `UnknownMessageType` for anything not served.
    pub fn decode(msg: &ClientMessage) -> Result<Request, ProtocolError> {
        let t = msg.message_type()?;
        if let Some(r) = client::decode(t, msg)? {
            return Ok(r);
        }
        if let Some(m) = map::decode(t, msg)? {
            return Ok(Request::Map(m));
        }
        Err(ProtocolError::UnknownMessageType(t))
    }
}
