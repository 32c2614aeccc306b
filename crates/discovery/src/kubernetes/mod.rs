//! Kubernetes API discovery: the members are the addresses behind a
//! Service, read from its EndpointSlices (`discovery.k8s.io/v1`), or from
//! the legacy core/v1 Endpoints when slices are not served or not allowed.
//!
//! A watcher task keeps the list current (a new pod is seen as soon as the
//! API server reports it, without polling); [`Discovery::discover`] reads
//! that cache. The first call waits, within a bound, for the first complete
//! list, so a member does not start alone just because it asked before the
//! API server answered.

mod access;
pub mod addresses;
mod watch;

pub use access::{service_account_namespace, ApiAccess, SERVICE_ACCOUNT_DIR};
pub use addresses::AddressRules;

use crate::{Discovery, DiscoveryError};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Which endpoints are the members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberSelector {
    /// The endpoints of one Service (EndpointSlices labelled
    /// `kubernetes.io/service-name=<name>`, or the Endpoints named so).
    Service(String),
    /// EndpointSlices (or Endpoints) matching a label selector. Kubernetes
    /// copies a Service's labels onto its EndpointSlices and Endpoints, so
    /// `app=hazelcast` finds every Service labelled so.
    Labels(String),
}

impl std::fmt::Display for MemberSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemberSelector::Service(name) => write!(f, "service {name}"),
            MemberSelector::Labels(l) => write!(f, "endpoints labelled {l}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct KubernetesConfig {
    pub access: ApiAccess,
    /// Namespace of the service; else the service account's, else `default`.
    pub namespace: Option<String>,
    pub selector: MemberSelector,
    pub rules: AddressRules,
    /// How long the first discovery waits for the first complete list.
    pub initial_sync_timeout: Duration,
}

/// Discovery through the Kubernetes API; see the module documentation.
pub struct KubernetesDiscovery {
    snapshots: tokio::sync::watch::Receiver<watch::Snapshot>,
    initial_sync_timeout: Duration,
    waited: AtomicBool,
    description: String,
    stop: CancellationToken,
}

impl KubernetesDiscovery {
    /// Reads the credentials and starts the watcher task; fails only on a
    /// configuration that cannot work (missing token or CA file, bad URL).
    /// An API server that does not answer yet is not an error here.
    pub async fn start(
        cfg: KubernetesConfig,
        stop: CancellationToken,
    ) -> Result<Self, DiscoveryError> {
        let (client, default_ns, server) = cfg.access.client().await?;
        let namespace = cfg.namespace.clone().unwrap_or(default_ns);
        let description = format!(
            "Kubernetes API {server}, {} in namespace {namespace}",
            cfg.selector
        );
        let (tx, rx) = tokio::sync::watch::channel(watch::Snapshot::default());
        let target = watch::Target {
            namespace,
            selector: cfg.selector,
            rules: cfg.rules,
            server,
        };
        tokio::spawn(watch::run(client, target, tx, stop.clone()));
        Ok(Self {
            snapshots: rx,
            initial_sync_timeout: cfg.initial_sync_timeout,
            waited: AtomicBool::new(false),
            description,
            stop,
        })
    }
}

impl Drop for KubernetesDiscovery {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[async_trait::async_trait]
impl Discovery for KubernetesDiscovery {
    async fn discover(&self) -> Result<Vec<SocketAddr>, DiscoveryError> {
        let mut rx = self.snapshots.clone();
        // Only the first round waits; later rounds (the member has started
        // alone by then, and its merge rounds keep asking) take what is there.
        if !self.waited.swap(true, Ordering::Relaxed) {
            let _ = tokio::time::timeout(
                self.initial_sync_timeout,
                rx.wait_for(|s| s.synced || s.failures >= watch::FAILURES_BEFORE_ALONE),
            )
            .await;
        }
        let s = rx.borrow_and_update();
        if s.synced {
            return Ok(s.addresses.clone());
        }
        Err(DiscoveryError::Kubernetes(
            s.problem.clone().unwrap_or_else(|| {
                format!(
                    "no complete list of endpoints from the Kubernetes API within {:?}",
                    self.initial_sync_timeout
                )
            }),
        ))
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
