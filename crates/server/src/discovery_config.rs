//! Which discovery a member uses and its settings: a static TCP-IP list,
//! the Kubernetes API, or Kubernetes DNS. Chosen by `--discovery`, else
//! `kubernetes` in a pod (or with `--kubernetes-master`), else static.

use crate::config::parse_duration;
use anyhow::{anyhow, bail, Result};
use ferrocast_discovery::kubernetes::{service_account_namespace, AddressRules, ApiAccess};
use ferrocast_discovery::{Discovery, DiscoveryError};
use ferrocast_discovery::{
    DnsConfig, DnsDiscovery, KubernetesConfig, KubernetesDiscovery, MemberSelector, StaticDiscovery,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a member started by dynamic discovery waits for a listed pod
/// with a lower address that does not listen yet (see docs/kubernetes.md).
pub const DEFAULT_STARTUP_PATIENCE: Duration = Duration::from_secs(10);
/// The same for a static list: members of one list started together are
/// ready within milliseconds of each other, and a higher one that probed
/// before the lowest listened founded a second cluster (merged a merge
/// round later). A member whose lower peers are all down waits this once.
pub const STATIC_STARTUP_PATIENCE: Duration = Duration::from_secs(1);

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscoveryMode {
    /// `--members`, or 127.0.0.1:5701-5703.
    Static,
    /// The endpoints of a Kubernetes Service, from the Kubernetes API.
    Kubernetes,
    /// The DNS records of a headless Kubernetes Service.
    Dns,
}

#[derive(clap::Args, Debug, Default)]
pub struct DiscoveryArgs {
    /// How members find each other: static, kubernetes or dns [default:
    /// static with --members; kubernetes in a pod or with
    /// --kubernetes-master; else static on 127.0.0.1:5701-5703].
    #[arg(long, value_enum, value_name = "MODE", env = "FERROCAST_DISCOVERY")]
    pub discovery: Option<DiscoveryMode>,
    /// Bearer-token file for the Kubernetes API [default: the service account's].
    #[arg(long, value_name = "FILE", env = "FERROCAST_KUBERNETES_TOKEN_FILE")]
    pub kubernetes_token_file: Option<PathBuf>,
    /// CA bundle that signed the API server's certificate [default: the service account's].
    #[arg(long, value_name = "FILE", env = "FERROCAST_KUBERNETES_CA_FILE")]
    pub kubernetes_ca_file: Option<PathBuf>,
    /// Reach the Kubernetes API through this kubeconfig (its current context).
    #[arg(long, value_name = "FILE", env = "FERROCAST_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Find members by a label selector on EndpointSlices/Endpoints (e.g.
    /// app=hazelcast) instead of by service name.
    #[arg(
        long,
        value_name = "SELECTOR",
        env = "FERROCAST_KUBERNETES_LABEL_SELECTOR"
    )]
    pub kubernetes_label_selector: Option<String>,
    /// Member port when the service has no port named 'hazelcast' [default: 5701].
    #[arg(long, value_name = "PORT", env = "FERROCAST_DISCOVERY_PORT")]
    pub discovery_port: Option<u16>,
    /// Take not-ready endpoints as members too (they are taken anyway when none is ready).
    #[arg(long, value_name = "BOOL", env = "FERROCAST_INCLUDE_NOT_READY")]
    pub include_not_ready: Option<bool>,
    /// How long the first discovery waits for the Kubernetes API [default: 10s].
    #[arg(long, value_name = "DURATION", env = "FERROCAST_KUBERNETES_SYNC_TIMEOUT", value_parser = parse_duration)]
    pub kubernetes_sync_timeout: Option<Duration>,
    /// DNS server to ask, IP[:PORT], instead of /etc/resolv.conf's.
    #[arg(long, value_name = "IP[:PORT]", env = "FERROCAST_DNS_SERVER")]
    pub dns_server: Option<String>,
    /// Bound on one DNS lookup [default: 5s].
    #[arg(long, value_name = "DURATION", env = "FERROCAST_DNS_TIMEOUT", value_parser = parse_duration)]
    pub dns_timeout: Option<Duration>,
    /// How long to wait at start for a listed member with a lower address
    /// that does not listen yet [default: 10s with Kubernetes or DNS
    /// discovery, 1s with a static list].
    #[arg(long, value_name = "DURATION", env = "FERROCAST_STARTUP_PATIENCE", value_parser = parse_duration)]
    pub startup_patience: Option<Duration>,
    /// Set in every pod; selects Kubernetes discovery by default.
    #[arg(long, env = "KUBERNETES_SERVICE_HOST", hide = true)]
    pub kubernetes_service_host: Option<String>,
}

/// The discovery to start once the runtime runs.
#[derive(Debug, Clone)]
pub enum DiscoverySetting {
    Static(StaticDiscovery),
    Kubernetes(KubernetesConfig),
    Dns(DnsConfig),
}

/// The Kubernetes settings that predate this module (the seed's variables).
pub struct SeedSettings {
    pub service: Option<String>,
    pub namespace: Option<String>,
    pub dns_domain: Option<String>,
    pub kubernetes_master: Option<String>,
}

impl DiscoveryArgs {
    /// Picks the mode and checks its settings; `members` is the static list
    /// when one was given.
    pub fn resolve(
        &self,
        members: Option<StaticDiscovery>,
        seed: &SeedSettings,
    ) -> Result<DiscoverySetting> {
        let mode = self.discovery.unwrap_or(if members.is_some() {
            DiscoveryMode::Static
        } else if self.kubernetes_service_host.is_some()
            || seed.kubernetes_master.is_some()
            || self.kubeconfig.is_some()
        {
            DiscoveryMode::Kubernetes
        } else {
            DiscoveryMode::Static
        });
        if mode != DiscoveryMode::Static && members.is_some() {
            bail!("--members is a static list; it cannot be combined with --discovery {mode:?}");
        }
        let service = seed
            .service
            .clone()
            .unwrap_or_else(|| "hazelcast".to_string());
        Ok(match mode {
            DiscoveryMode::Static => {
                DiscoverySetting::Static(members.unwrap_or_else(StaticDiscovery::local_default))
            }
            DiscoveryMode::Kubernetes => {
                let access = match (&seed.kubernetes_master, &self.kubeconfig) {
                    (Some(_), Some(_)) => {
                        bail!("give --kubernetes-master or --kubeconfig, not both")
                    }
                    (Some(url), None) => ApiAccess::Explicit {
                        url: url.clone(),
                        token_file: self.kubernetes_token_file.clone(),
                        ca_file: self.kubernetes_ca_file.clone(),
                    },
                    (None, Some(path)) => ApiAccess::Kubeconfig(path.clone()),
                    (None, None) => ApiAccess::InCluster,
                };
                let selector = match &self.kubernetes_label_selector {
                    Some(l) if l.trim().is_empty() => {
                        bail!("--kubernetes-label-selector is empty")
                    }
                    Some(l) => MemberSelector::Labels(l.trim().to_string()),
                    None => MemberSelector::Service(service),
                };
                DiscoverySetting::Kubernetes(KubernetesConfig {
                    access,
                    namespace: seed.namespace.clone(),
                    selector,
                    rules: AddressRules {
                        port: self.discovery_port,
                        include_not_ready: self.include_not_ready.unwrap_or(false),
                    },
                    initial_sync_timeout: self
                        .kubernetes_sync_timeout
                        .unwrap_or(Duration::from_secs(10)),
                })
            }
            DiscoveryMode::Dns => {
                // POD_NAMESPACE, else the service account's.
                let namespace = seed
                    .namespace
                    .clone()
                    .or_else(service_account_namespace)
                    .unwrap_or_else(|| "default".to_string());
                let domain = seed
                    .dns_domain
                    .clone()
                    .unwrap_or_else(|| "cluster.local".to_string());
                let server = self
                    .dns_server
                    .as_deref()
                    .map(|s| {
                        s.parse::<SocketAddr>()
                            .or_else(|_| s.parse().map(|ip| SocketAddr::new(ip, 53)))
                            .map_err(|_| anyhow!("--dns-server '{s}' is not IP or IP:PORT"))
                    })
                    .transpose()?;
                DiscoverySetting::Dns(DnsConfig {
                    name: format!("{service}.{namespace}.svc.{domain}"),
                    port: self
                        .discovery_port
                        .unwrap_or(ferrocast_discovery::DEFAULT_PORT),
                    server,
                    timeout: self.dns_timeout.unwrap_or(Duration::from_secs(5)),
                })
            }
        })
    }

    /// The startup patience for the chosen mode.
    pub fn patience(&self, setting: &DiscoverySetting) -> Duration {
        let default = match setting {
            DiscoverySetting::Static(_) => STATIC_STARTUP_PATIENCE,
            _ => DEFAULT_STARTUP_PATIENCE,
        };
        self.startup_patience.unwrap_or(default)
    }
}

impl DiscoverySetting {
    /// Starts the discovery (the Kubernetes watcher runs until `stop`).
    pub async fn start(
        &self,
        stop: CancellationToken,
    ) -> Result<Arc<dyn Discovery>, DiscoveryError> {
        Ok(match self {
            DiscoverySetting::Static(s) => Arc::new(s.clone()),
            DiscoverySetting::Kubernetes(k) => {
                Arc::new(KubernetesDiscovery::start(k.clone(), stop).await?)
            }
            DiscoverySetting::Dns(d) => Arc::new(DnsDiscovery::new(d.clone())?),
        })
    }
}
