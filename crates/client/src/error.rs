//! The client's one error type.

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("authentication refused by {addr}: {reason}")]
    Authentication { addr: String, reason: String },
    #[error("connection closed")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol error: {0}")]
    Protocol(#[from] ferrocast_protocol::ProtocolError),
    #[error("the member answered with {class}: {message}")]
    Server {
        code: i32,
        class: String,
        message: String,
    },
    #[error("operation timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("no member of the cluster is reachable")]
    NoMember,
    #[error("cannot deserialize the value: {0}")]
    Serialization(String),
}

impl ClientError {
    /// Errors worth retrying on another connection or after the cluster view changed.
    pub fn is_retryable(&self) -> bool {
        use ferrocast_protocol::error_codes::*;
        match self {
            ClientError::Closed
            | ClientError::Io(_)
            | ClientError::Connect { .. }
            | ClientError::NoMember => true,
            ClientError::Server { code, .. } => matches!(
                *code,
                HAZELCAST_INSTANCE_NOT_ACTIVE
                    | MEMBER_LEFT
                    | PARTITION_MIGRATING
                    | RETRYABLE_HAZELCAST
                    | TARGET_DISCONNECTED
                    | TARGET_NOT_MEMBER
                    | WRONG_TARGET
            ),
            _ => false,
        }
    }
}
