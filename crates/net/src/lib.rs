//! ferrocast's member-to-member transport.
//!
//! Members listen on one port (5701 by default) for both members and clients;
//! the first three bytes tell them apart: `FCM` starts a member connection,
//! `CP2` a Hazelcast client-protocol connection. A member connection is
//! authenticated by a mutual challenge-response over the group password
//! (`handshake.rs`), then carries length-prefixed, bincode-encoded
//! [`MemberMessage`]s with request/response correlation (`connection.rs`).
//! [`Transport`] owns the listener and a pool with one connection per peer.

mod chunks;
mod codec;
mod connection;
mod error;
mod fault;
mod handshake;
mod member;
mod message;
mod transport;

pub use chunks::{write_all, Chunks, LARGE_PAYLOAD};
pub use codec::{decode, encode, Envelope, EnvelopeKind, DEFAULT_MAX_FRAME};
pub use connection::{Connection, Incoming, Origin, Responder};
pub use error::NetError;
pub use fault::Faults;
pub use handshake::{
    holds_back_founding, is_version_refusal, refusing_peer_version, Credentials, HANDSHAKE_VERSION,
};
pub use member::{HzAddress, MemberInfo};
pub use message::{JoinAnswer, MasterAnswer, MemberListView, MemberMessage};
pub use transport::{ClientStream, HttpStream, Transport, TransportConfig};

/// First bytes of a member-to-member connection.
pub const PREAMBLE_MEMBER: &[u8; 3] = b"FCM";
/// First bytes of a Hazelcast Open Binary Client Protocol 2.x connection.
pub const PREAMBLE_CLIENT: &[u8; 3] = b"CP2";
