//! Errors while reading client messages.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("malformed frame: length {0} is shorter than the 6-byte frame header")]
    BadFrameLength(u32),
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge { size: usize, limit: usize },
    #[error("message of more than {limit} bytes (fragments included)")]
    MessageTooLarge { limit: usize },
    #[error("truncated message: missing {0}")]
    Truncated(&'static str),
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("unknown message type {0:#x}")]
    UnknownMessageType(u32),
}
