//! The static TCP-IP member list (`--members a,b:5702,host`).
//!
//! Host names are resolved at every round, so a list of DNS names follows
//! address changes. An entry without a port stands for ports 5701-5703, the
//! ports a member takes when several share one host.

use crate::{Discovery, DiscoveryError};
use std::net::{IpAddr, SocketAddr};

pub const DEFAULT_PORT: u16 = 5701;
/// How many ports from [`DEFAULT_PORT`] an entry without a port stands for.
pub const DEFAULT_PORT_TRY_COUNT: u16 = 3;

/// One entry of the list: a host (IP literal or name) and maybe a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticEntry {
    pub host: String,
    pub port: Option<u16>,
}

impl StaticEntry {
    /// Parses `1.2.3.4`, `1.2.3.4:5701`, `[::1]:5701`, `::1`, `name`, `name:5701`.
    pub fn parse(s: &str) -> Result<StaticEntry, DiscoveryError> {
        let s = s.trim();
        let invalid = |reason: &str| DiscoveryError::InvalidEntry {
            entry: s.to_string(),
            reason: reason.to_string(),
        };
        if s.is_empty() {
            return Err(invalid("empty entry"));
        }
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(StaticEntry {
                host: addr.ip().to_string(),
                port: Some(addr.port()),
            });
        }
        if let Ok(ip) = s.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>() {
            return Ok(StaticEntry {
                host: ip.to_string(),
                port: None,
            });
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| invalid("the port must be a number from 1 to 65535"))?;
                if port == 0 {
                    return Err(invalid("the port must be a number from 1 to 65535"));
                }
                (h, Some(port))
            }
            None => (s, None),
        };
        let valid_name = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
        if !valid_name {
            return Err(invalid("not an IP address or host name"));
        }
        Ok(StaticEntry {
            host: host.to_string(),
            port,
        })
    }

    fn ports(&self) -> Vec<u16> {
        match self.port {
            Some(p) => vec![p],
            None => (DEFAULT_PORT..DEFAULT_PORT + DEFAULT_PORT_TRY_COUNT).collect(),
        }
    }
}

/// Discovery from a fixed list of entries.
#[derive(Clone, Debug)]
pub struct StaticDiscovery {
    entries: Vec<StaticEntry>,
}

impl StaticDiscovery {
    pub fn new(entries: Vec<StaticEntry>) -> Self {
        Self { entries }
    }

    /// Parses a comma-separated list.
    pub fn parse_list(list: &str) -> Result<Self, DiscoveryError> {
        let entries = list
            .split(',')
            .filter(|e| !e.trim().is_empty())
            .map(StaticEntry::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(entries))
    }

    /// What a member with no discovery configured probes: 127.0.0.1:5701-5703.
    pub fn local_default() -> Self {
        Self::new(vec![StaticEntry {
            host: "127.0.0.1".into(),
            port: None,
        }])
    }

    pub fn entries(&self) -> &[StaticEntry] {
        &self.entries
    }
}

#[async_trait::async_trait]
impl Discovery for StaticDiscovery {
    async fn discover(&self) -> Result<Vec<SocketAddr>, DiscoveryError> {
        let mut out = Vec::new();
        for entry in &self.entries {
            let ips: Vec<IpAddr> = match entry.host.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) => match tokio::net::lookup_host((entry.host.as_str(), 0)).await {
                    Ok(addrs) => addrs.map(|a| a.ip()).collect(),
                    Err(e) => {
                        tracing::warn!("cannot resolve member '{}': {e}", entry.host);
                        continue;
                    }
                },
            };
            for ip in ips {
                for port in entry.ports() {
                    let addr = SocketAddr::new(ip, port);
                    if !out.contains(&addr) {
                        out.push(addr);
                    }
                }
            }
        }
        Ok(out)
    }

    fn describe(&self) -> String {
        let list: Vec<String> = self
            .entries
            .iter()
            .map(|e| match e.port {
                Some(p) if e.host.contains(':') => format!("[{}]:{p}", e.host),
                Some(p) => format!("{}:{p}", e.host),
                None => e.host.clone(),
            })
            .collect();
        format!("static member list {}", list.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries() {
        let e = |s| StaticEntry::parse(s).unwrap();
        assert_eq!(e("127.0.0.2").port, None);
        assert_eq!(e("127.0.0.2:5702").port, Some(5702));
        assert_eq!(e("[::1]:5701").host, "::1");
        assert_eq!(e("::1").port, None);
        assert_eq!(e("hazelcast-0.hazelcast").host, "hazelcast-0.hazelcast");
        assert_eq!(e("node:6000").port, Some(6000));
        for bad in ["", "a b", "host:", "host:99999", "host:0", "x:y:z"] {
            assert!(StaticEntry::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[tokio::test]
    async fn entries_without_port_expand_and_names_resolve() {
        let d = StaticDiscovery::parse_list("127.0.0.2, 127.0.0.3:6000,localhost:7000").unwrap();
        let got = d.discover().await.unwrap();
        let want: Vec<SocketAddr> = [
            "127.0.0.2:5701",
            "127.0.0.2:5702",
            "127.0.0.2:5703",
            "127.0.0.3:6000",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert_eq!(&got[..4], &want[..]);
        assert!(got[4..]
            .iter()
            .all(|a| a.port() == 7000 && a.ip().is_loopback()));
        assert!(got.len() > 4, "localhost resolved to nothing");
    }

    #[tokio::test]
    async fn unresolvable_names_are_skipped() {
        let d = StaticDiscovery::parse_list("no-such-host.invalid,127.0.0.9:5701").unwrap();
        let got = d.discover().await.unwrap();
        assert_eq!(got, vec!["127.0.0.9:5701".parse::<SocketAddr>().unwrap()]);
    }
}
