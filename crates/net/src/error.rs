//! The one error type of the transport layer.

use std::net::SocketAddr;

/// Everything that can go wrong between two members.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("timed out connecting to {0}")]
    ConnectTimeout(SocketAddr),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot encode member message: {0}")]
    Encode(String),
    #[error("malformed member message: {0}")]
    Decode(String),
    #[error("{peer} refused us: {reason}")]
    Refused { peer: SocketAddr, reason: String },
    #[error("wrong group password: {peer} does not know this member's group password")]
    PeerFailedProof { peer: SocketAddr },
    #[error("handshake with {peer} failed: {reason}")]
    Handshake { peer: SocketAddr, reason: String },
    #[error("connected to ourselves at {0}")]
    SelfConnection(SocketAddr),
    #[error("connection to {0} closed")]
    Closed(SocketAddr),
    #[error("request to {0} timed out")]
    RequestTimeout(SocketAddr),
    #[error("transport is shut down")]
    Shutdown,
}
