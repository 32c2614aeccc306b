//! Discovery: where a member looks for its peers: a static TCP-IP list,
//! the Kubernetes API (EndpointSlices, Endpoints) or Kubernetes DNS.
//!
//! A [`Discovery`] returns candidate addresses; the cluster layer probes them
//! and decides whom to join. Candidates may include the member itself or
//! addresses nobody listens on: that is normal and cheap to rule out.

mod dns;
pub mod kubernetes;
mod static_list;

pub use dns::{DnsConfig, DnsDiscovery};
pub use kubernetes::{KubernetesConfig, KubernetesDiscovery, MemberSelector};
pub use static_list::{StaticDiscovery, StaticEntry, DEFAULT_PORT, DEFAULT_PORT_TRY_COUNT};

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("invalid member entry '{entry}': {reason}")]
    InvalidEntry { entry: String, reason: String },
    #[error("cannot resolve '{host}': {reason}")]
    Resolve { host: String, reason: String },
    /// A discovery setting that cannot work (missing token or CA file, bad URL).
    #[error("{0}")]
    Config(String),
    /// The Kubernetes API gave no usable answer (worded for the operator).
    #[error("Kubernetes discovery: {0}")]
    Kubernetes(String),
}

/// A source of candidate member addresses, asked once per discovery round.
#[async_trait::async_trait]
pub trait Discovery: Send + Sync + 'static {
    /// The candidates right now. Errors for single entries are logged by the
    /// implementation and the others still returned; an error here means
    /// the whole round failed.
    async fn discover(&self) -> Result<Vec<SocketAddr>, DiscoveryError>;

    /// A short description for logs ("static list 127.0.0.2, 127.0.0.3").
    fn describe(&self) -> String;
}
