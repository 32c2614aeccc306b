//! The Hazelcast Open Binary Client Protocol 2.x, as pure data and functions:
//! frames (`frame.rs`), the stream decoder (`decoder.rs`), field codecs and
//! custom types (`codec/`), requests and responses (`messages/`), error
//! codes, `Data` and partition hashing (`data.rs`, `hash.rs`).

pub mod codec;
pub mod data;
pub mod decoder;
pub mod error;
pub mod error_codes;
pub mod frame;
pub mod hash;
pub mod messages;

pub use decoder::{MessageDecoder, READ_AHEAD};
pub use error::ProtocolError;
pub use frame::{ClientMessage, Frame};
pub use messages::{MapOp, MapRequest, Request};

/// The three bytes a Hazelcast 4.x/5.x client writes before its first frame.
pub const CLIENT_PREAMBLE: &[u8; 3] = b"CP2";
