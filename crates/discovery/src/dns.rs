//! Kubernetes DNS discovery: the A/AAAA records of a headless service
//! (`<service>.<namespace>.svc.<domain>`) are the members. When the
//! service names its member port `hazelcast`, its SRV records
//! (`_hazelcast._tcp.<service>...`) give the port too.
//!
//! Resolved with hickory (a Rust resolver): no glibc NSS, so the static
//! binary in the `scratch` image resolves as well as a dynamic one. A
//! headless service must publish not-ready addresses
//! (`publishNotReadyAddresses: true`), else a starting pod, not ready until
//! it joined, could never be found.

use crate::{Discovery, DiscoveryError};
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct DnsConfig {
    /// The fully qualified service name, e.g. `hazelcast.default.svc.cluster.local`.
    pub name: String,
    /// Port when there is no SRV record [5701].
    pub port: u16,
    /// A DNS server to ask instead of those in /etc/resolv.conf.
    pub server: Option<SocketAddr>,
    /// Bound on one lookup.
    pub timeout: Duration,
}

pub struct DnsDiscovery {
    cfg: DnsConfig,
    resolver: TokioResolver,
}

impl DnsDiscovery {
    pub fn new(cfg: DnsConfig) -> Result<Self, DiscoveryError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match cfg.server {
            Some(server) => {
                let mut ns = NameServerConfig::udp_and_tcp(server.ip());
                for c in &mut ns.connections {
                    c.port = server.port();
                }
                TokioResolver::builder_with_config(
                    ResolverConfig::from_parts(None, Vec::new(), vec![ns]),
                    provider,
                )
            }
            None => TokioResolver::builder(provider).map_err(|e| {
                DiscoveryError::Config(format!("cannot read the system DNS configuration: {e}"))
            })?,
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = cfg.timeout;
        opts.attempts = 2;
        // The names asked are absolute (trailing dot): no search list.
        opts.ndots = 0;
        let resolver = builder
            .build()
            .map_err(|e| DiscoveryError::Config(format!("DNS resolver: {e}")))?;
        Ok(Self { cfg, resolver })
    }

    fn absolute(name: &str) -> String {
        if name.ends_with('.') {
            name.to_string()
        } else {
            format!("{name}.")
        }
    }

    fn no_answer(&self) -> DiscoveryError {
        DiscoveryError::Resolve {
            host: self.cfg.name.clone(),
            reason: format!("no answer within {:?}", self.cfg.timeout),
        }
    }

    /// SRV records for the `hazelcast` port, resolved to addresses; empty
    /// when the service has no such named port. A server that does not
    /// answer at all is an error here, not a reason to ask it again for A
    /// records (which would double the wait of every round).
    async fn srv_addresses(&self) -> Result<Vec<SocketAddr>, DiscoveryError> {
        let name = Self::absolute(&format!("_hazelcast._tcp.{}", self.cfg.name));
        let Ok(lookup) =
            tokio::time::timeout(self.cfg.timeout, self.resolver.srv_lookup(name.as_str()))
                .await
                .map_err(|_| self.no_answer())?
        else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for record in lookup.answers() {
            let RData::SRV(srv) = &record.data else {
                continue;
            };
            let target = srv.target.to_string();
            let ips: Vec<std::net::IpAddr> = lookup
                .additionals()
                .iter()
                .filter(|r| r.name == srv.target)
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(std::net::IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(std::net::IpAddr::V6(a.0)),
                    _ => None,
                })
                .collect();
            let ips = if ips.is_empty() {
                match tokio::time::timeout(self.cfg.timeout, self.resolver.lookup_ip(target)).await
                {
                    Ok(Ok(found)) => found.iter().collect(),
                    _ => Vec::new(),
                }
            } else {
                ips
            };
            out.extend(ips.into_iter().map(|ip| SocketAddr::new(ip, srv.port)));
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Discovery for DnsDiscovery {
    async fn discover(&self) -> Result<Vec<SocketAddr>, DiscoveryError> {
        let mut found = self.srv_addresses().await?;
        if found.is_empty() {
            let name = Self::absolute(&self.cfg.name);
            let lookup = tokio::time::timeout(self.cfg.timeout, self.resolver.lookup_ip(name))
                .await
                .map_err(|_| self.no_answer())?
                .map_err(|e| DiscoveryError::Resolve {
                    host: self.cfg.name.clone(),
                    reason: e.to_string(),
                })?;
            found = lookup
                .iter()
                .map(|ip| SocketAddr::new(ip, self.cfg.port))
                .collect();
        }
        found.sort();
        found.dedup();
        Ok(found)
    }

    fn describe(&self) -> String {
        match self.cfg.server {
            Some(s) => format!("DNS {} (server {s})", self.cfg.name),
            None => format!("DNS {}", self.cfg.name),
        }
    }
}
