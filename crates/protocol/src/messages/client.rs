//! Client service requests: authentication, ping, views, proxies.

use super::{types::*, Request};
use crate::codec::{read_uuid, MessageReader, UUID_SIZE};
use crate::error::ProtocolError;
use crate::frame::{read_u8, ClientMessage, REQUEST_HEADER_SIZE};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticationRequest {
    pub client_uuid: Option<Uuid>,
    pub serialization_version: u8,
    pub cluster_name: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub client_type: String,
    pub client_version: String,
    pub client_name: String,
    pub labels: Vec<String>,
}

pub(super) fn decode(t: u32, msg: &ClientMessage) -> Result<Option<Request>, ProtocolError> {
    let mut r = MessageReader::new(msg);
    let req = match t {
        CLIENT_AUTHENTICATION => {
            let init = r.initial()?;
            let client_uuid = read_uuid(init, REQUEST_HEADER_SIZE)?;
            let serialization_version = read_u8(init, REQUEST_HEADER_SIZE + UUID_SIZE)?;
            Request::Authentication(AuthenticationRequest {
                client_uuid,
                serialization_version,
                cluster_name: r.string()?,
                username: r.nullable_string()?,
                password: r.nullable_string()?,
                client_type: r.string()?,
                client_version: r.string()?,
                client_name: r.string()?,
                labels: r.list_of_strings()?,
            })
        }
        CLIENT_PING => Request::Ping,
        CLIENT_ADD_CLUSTER_VIEW_LISTENER => Request::AddClusterViewListener,
        CLIENT_LOCAL_BACKUP_LISTENER => Request::LocalBackupListener,
        CLIENT_GET_DISTRIBUTED_OBJECTS => Request::GetDistributedObjects,
        CLIENT_CREATE_PROXY | CLIENT_DESTROY_PROXY => {
            r.initial()?;
            let name = r.string()?;
            let service = r.string()?;
            if t == CLIENT_CREATE_PROXY {
                Request::CreateProxy { name, service }
            } else {
                Request::DestroyProxy { name, service }
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(req))
}
