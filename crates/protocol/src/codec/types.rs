//! Custom types of the protocol: each is a begin frame, an initial frame of
//! fixed fields, its variable fields, and an end frame.

use super::{MessageReader, MessageWriter};
use crate::error::ProtocolError;
use crate::frame::{read_i32, write_i32, write_i64, Frame};
use bytes::Bytes;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub host: String,
    pub port: i32,
}

impl Address {
    pub fn write(&self, w: &mut MessageWriter) {
        w.begin();
        let mut f = vec![0u8; 4];
        write_i32(&mut f, 0, self.port);
        w.frame(Frame::new(f));
        w.string(&self.host);
        w.end();
    }

    pub fn read(r: &mut MessageReader<'_>) -> Result<Address, ProtocolError> {
        let init = r.begin_struct()?;
        let port = read_i32(init, 0)?;
        let host = r.string()?;
        r.skip_to_struct_end()?;
        Ok(Address { host, port })
    }
}

/// A member as the client protocol describes it (MemberInfo).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDescription {
    pub uuid: Uuid,
    pub address: Address,
    pub version: (u8, u8, u8),
}

/// Endpoint qualifier types: which server socket an address is for.
const QUALIFIER_MEMBER: i32 = 0;
const QUALIFIER_CLIENT: i32 = 1;

impl MemberDescription {
    pub fn write(&self, w: &mut MessageWriter) {
        w.begin();
        let mut f = vec![0u8; super::UUID_SIZE + 1];
        super::write_uuid(&mut f, 0, Some(self.uuid));
        f[super::UUID_SIZE] = 0; // not a lite member
        w.frame(Frame::new(f));
        self.address.write(w);
        // attributes: an empty map
        w.begin().end();
        // version
        w.begin();
        w.frame(Frame::new(vec![
            self.version.0,
            self.version.1,
            self.version.2,
        ]));
        w.end();
        // address map: the same address for members and clients
        w.begin();
        for q in [QUALIFIER_MEMBER, QUALIFIER_CLIENT] {
            w.begin();
            let mut qf = vec![0u8; 4];
            write_i32(&mut qf, 0, q);
            w.frame(Frame::new(qf));
            w.null();
            w.end();
            self.address.write(w);
        }
        w.end();
        w.end();
    }
}

/// One error in an error response (ErrorHolder).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorHolder {
    pub code: i32,
    pub class_name: String,
    pub message: Option<String>,
}

impl ErrorHolder {
    pub fn write(&self, w: &mut MessageWriter) {
        w.begin();
        let mut f = vec![0u8; 4];
        write_i32(&mut f, 0, self.code);
        w.frame(Frame::new(f));
        w.string(&self.class_name);
        w.nullable_string(self.message.as_deref());
        w.begin().end(); // no stack trace
        w.end();
    }

    pub fn read(r: &mut MessageReader<'_>) -> Result<ErrorHolder, ProtocolError> {
        let init = r.begin_struct()?;
        let code = read_i32(init, 0)?;
        let class_name = r.string()?;
        let message = r.nullable_string()?;
        r.skip_to_struct_end()?;
        Ok(ErrorHolder {
            code,
            class_name,
            message,
        })
    }
}

/// An entry with its statistics (SimpleEntryView).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryView {
    pub key: Bytes,
    pub value: Bytes,
    pub cost: i64,
    pub creation_time: i64,
    pub expiration_time: i64,
    pub hits: i64,
    pub last_access_time: i64,
    pub last_stored_time: i64,
    pub last_update_time: i64,
    pub version: i64,
    pub ttl: i64,
    pub max_idle: i64,
}

impl EntryView {
    pub fn write(&self, w: &mut MessageWriter) {
        w.begin();
        let mut f = vec![0u8; 80];
        for (i, v) in [
            self.cost,
            self.creation_time,
            self.expiration_time,
            self.hits,
            self.last_access_time,
            self.last_stored_time,
            self.last_update_time,
            self.version,
            self.ttl,
            self.max_idle,
        ]
        .into_iter()
        .enumerate()
        {
            write_i64(&mut f, i * 8, v);
        }
        w.frame(Frame::new(f));
        w.bytes(self.key.clone());
        w.bytes(self.value.clone());
        w.end();
    }
}
