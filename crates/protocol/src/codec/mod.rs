//! Reading and writing the variable-size fields of a client message:
//! strings, `Data`, nullable values, lists and entry lists, and the
//! begin/end frames around custom types.

mod reader;
mod types;
mod writer;

pub use reader::MessageReader;
pub use types::{Address, EntryView, ErrorHolder, MemberDescription};
pub use writer::MessageWriter;

/// Size of a UUID as a fixed field: a null flag and two longs.
pub const UUID_SIZE: usize = 17;

pub fn write_uuid(b: &mut [u8], off: usize, v: Option<uuid::Uuid>) {
    match v {
        None => b[off] = 1,
        Some(u) => {
            b[off] = 0;
            let (msb, lsb) = u.as_u64_pair();
            b[off + 1..off + 9].copy_from_slice(&msb.to_le_bytes());
            b[off + 9..off + 17].copy_from_slice(&lsb.to_le_bytes());
        }
    }
}

pub fn read_uuid(b: &[u8], off: usize) -> Result<Option<uuid::Uuid>, crate::ProtocolError> {
    if crate::frame::read_bool(b, off)? {
        return Ok(None);
    }
    let msb = crate::frame::read_i64(b, off + 1)? as u64;
    let lsb = crate::frame::read_i64(b, off + 9)? as u64;
    Ok(Some(uuid::Uuid::from_u64_pair(msb, lsb)))
}
