//! Member configuration from flags, environment variables and an optional
//! YAML file. Flags win over the environment, which wins over the file,
//! which wins over the defaults.

pub use crate::cli::{parse_duration, Cli};
use crate::discovery_config::{DiscoverySetting, SeedSettings};
use anyhow::{anyhow, bail, Context, Result};
use ferrocast_cluster::MembershipConfig;
use ferrocast_discovery::StaticDiscovery;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_PORT: u16 = 5701;
/// How far the port is incremented when it is taken and was not given explicitly.
pub const PORT_AUTO_INCREMENT: u16 = 100;

/// The YAML file: the same settings, durations written like "5s" or "250ms".
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    #[serde(alias = "bind_address")]
    bind: Option<String>,
    port: Option<u16>,
    #[serde(alias = "public_address")]
    public_address: Option<String>,
    group: Option<String>,
    password: Option<String>,
    members: Option<MembersSetting>,
    #[serde(alias = "heartbeat_interval")]
    heartbeat_interval: Option<String>,
    #[serde(alias = "failure_timeout")]
    failure_timeout: Option<String>,
    #[serde(alias = "merge_interval")]
    merge_interval: Option<String>,
    #[serde(alias = "join_interval")]
    join_interval: Option<String>,
    #[serde(alias = "max_frame_bytes")]
    max_frame_bytes: Option<usize>,
    #[serde(alias = "partition_count")]
    partition_count: Option<u32>,
    #[serde(alias = "backup_count")]
    backup_count: Option<usize>,
    #[serde(alias = "min_cluster_size")]
    min_cluster_size: Option<usize>,
    #[serde(alias = "async_backup_count")]
    async_backup_count: Option<usize>,
    #[serde(alias = "backup_places")]
    backup_places: Option<String>,
    /// Per-map settings: `maps: {orders: {backup-count: 2}}`.
    #[serde(default)]
    maps: std::collections::HashMap<String, MapFileConfig>,
    #[serde(alias = "merge_policy")]
    merge_policy: Option<String>,
    #[serde(alias = "shutdown_timeout")]
    shutdown_timeout: Option<String>,
    #[serde(alias = "write_timeout")]
    write_timeout: Option<String>,
    #[serde(alias = "client_heartbeat_timeout")]
    client_heartbeat_timeout: Option<String>,
    #[serde(alias = "operation_timeout")]
    operation_timeout: Option<String>,
    log: Option<String>,
    #[serde(alias = "rest_enabled")]
    rest_enabled: Option<bool>,
    #[serde(alias = "per_entry_stats")]
    per_entry_stats: Option<bool>,
    service: Option<String>,
    namespace: Option<String>,
    #[serde(alias = "dns_domain")]
    dns_domain: Option<String>,
    #[serde(alias = "kubernetes_master")]
    kubernetes_master: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct MapFileConfig {
    #[serde(alias = "backup_count")]
    backup_count: Option<usize>,
    #[serde(alias = "async_backup_count")]
    async_backup_count: Option<usize>,
}

/// `members:` may be a YAML list or one comma-separated string.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum MembersSetting {
    List(Vec<String>),
    Text(String),
}

#[derive(Debug)]
pub struct Config {
    pub bind_ip: IpAddr,
    pub port: u16,
    /// Given by flag, environment or file: never auto-incremented.
    pub port_explicit: bool,
    pub public_ip: Option<IpAddr>,
    pub public_port: Option<u16>,
    pub group: String,
    pub password: String,
    pub discovery: DiscoverySetting,
    pub health_port: Option<u16>,
    pub rest_enabled: bool,
    pub per_entry_stats: bool,
    pub membership: MembershipConfig,
    pub max_frame: usize,
    pub partition_count: u32,
    pub backup_count: usize,
    pub backups: crate::data::BackupCounts,
    /// Maps whose counts `backup-places: uniform` changed (logged at start).
    pub backups_raised: Vec<crate::data::backup_counts::Raised>,
    pub min_cluster_size: usize,
    pub merge_policy: ferrocast_partition::MergePolicy,
    pub fault_file: Option<PathBuf>,
    pub shutdown_timeout: Duration,
    pub write_timeout: Duration,
    pub client_heartbeat_timeout: Duration,
    pub operation_timeout: Duration,
    pub log: String,
}

/// Splits `IP` or `IP:PORT` (IPv6 as `[::1]:5701` or `::1`).
fn parse_ip_port(s: &str, what: &str) -> Result<(IpAddr, Option<u16>)> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok((a.ip(), Some(a.port())));
    }
    s.trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
        .map(|ip| (ip, None))
        .map_err(|_| anyhow!("{what} '{s}' is not IP or IP:PORT (e.g. 127.0.0.2:5701)"))
}

impl Config {
    pub fn resolve(cli: Cli) -> Result<Config> {
        let file = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                serde_yaml::from_str::<FileConfig>(&text)
                    .map_err(|e| anyhow!("config file {}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let file_duration = |v: &Option<String>, key: &str| -> Result<Option<Duration>> {
            v.as_deref()
                .map(parse_duration)
                .transpose()
                .map_err(|e| anyhow!("config file key {key}: {e}"))
        };

        let bind = cli.bind.or(file.bind);
        let (bind_ip, bind_port) = match &bind {
            Some(b) => parse_ip_port(b, "--bind")?,
            None => (IpAddr::V4(Ipv4Addr::UNSPECIFIED), None),
        };
        let explicit_port = cli.port.or(bind_port).or(file.port);
        if explicit_port == Some(0) {
            bail!("the port must be from 1 to 65535");
        }
        let (public_ip, public_port) = match cli.public_address.or(file.public_address) {
            Some(p) => {
                let (ip, port) = parse_ip_port(&p, "--public-address")?;
                (Some(ip), port)
            }
            None => (cli.pod_ip, None),
        };
        if public_ip.is_some_and(|ip| ip.is_unspecified()) {
            bail!("--public-address must be an address peers can reach, not 0.0.0.0");
        }

        let group = cli.group.or(file.group).unwrap_or_else(|| "dev".into());
        if group.trim().is_empty() {
            bail!("--group must not be empty");
        }
        let password = cli.password.or(file.password).unwrap_or_default();

        let members = cli.members.or(file.members.map(|m| match m {
            MembersSetting::List(v) => v.join(","),
            MembersSetting::Text(t) => t,
        }));
        let static_list = match members {
            Some(list) => {
                let d =
                    StaticDiscovery::parse_list(&list).map_err(|e| anyhow!("--members: {e}"))?;
                if d.entries().is_empty() {
                    bail!("--members is empty; leave it out to probe 127.0.0.1:5701-5703");
                }
                Some(d)
            }
            None => None,
        };
        let discovery = cli.discovery_args.resolve(
            static_list,
            &SeedSettings {
                service: cli.service.or(file.service),
                namespace: cli.namespace.or(file.namespace),
                dns_domain: cli.dns_domain.or(file.dns_domain),
                kubernetes_master: cli.kubernetes_master.or(file.kubernetes_master),
            },
        )?;

        let mut membership = MembershipConfig {
            listed_peer_patience: cli.discovery_args.patience(&discovery),
            ..MembershipConfig::default()
        };
        if let Some(d) = cli.heartbeat_interval.or(file_duration(
            &file.heartbeat_interval,
            "heartbeat-interval",
        )?) {
            membership.heartbeat_interval = d;
        }
        if let Some(d) = cli
            .failure_timeout
            .or(file_duration(&file.failure_timeout, "failure-timeout")?)
        {
            membership.failure_timeout = d;
        }
        if let Some(d) = cli
            .merge_interval
            .or(file_duration(&file.merge_interval, "merge-interval")?)
        {
            membership.merge_interval = d;
        }
        if let Some(d) = cli
            .join_interval
            .or(file_duration(&file.join_interval, "join-interval")?)
        {
            membership.join_round_interval = d;
        }
        if membership.failure_timeout <= membership.heartbeat_interval * 2 {
            bail!(
                "--failure-timeout ({:?}) must be more than twice --heartbeat-interval ({:?})",
                membership.failure_timeout,
                membership.heartbeat_interval
            );
        }
        let max_frame = cli
            .max_frame_bytes
            .or(file.max_frame_bytes)
            .unwrap_or(ferrocast_net::DEFAULT_MAX_FRAME);
        if max_frame < 4096 {
            bail!("--max-frame-bytes must be at least 4096");
        }

        let partition_count = cli.partition_count.or(file.partition_count).unwrap_or(271);
        if partition_count == 0 || partition_count > 65_536 {
            bail!("--partition-count must be from 1 to 65536");
        }
        let merge_policy = match (cli.merge_policy, file.merge_policy) {
            (Some(p), _) => p,
            (None, Some(text)) => text
                .parse()
                .map_err(|e| anyhow!("config file key merge-policy: {e}"))?,
            (None, None) => ferrocast_partition::MergePolicy::PutIfAbsent,
        };
        let backup_count = cli.backup_count.or(file.backup_count).unwrap_or(1);
        let async_count = cli
            .async_backup_count
            .or(file.async_backup_count)
            .unwrap_or(0);
        if backup_count + async_count > 6 {
            bail!("--backup-count plus --async-backup-count must be at most 6");
        }
        let mut backups = crate::data::BackupCounts {
            default: (backup_count, async_count),
            per_map: Default::default(),
        };
        for (name, m) in &file.maps {
            let counts = (
                m.backup_count.unwrap_or(backup_count),
                m.async_backup_count.unwrap_or(async_count),
            );
            if counts.0 + counts.1 > 6 {
                bail!("map '{name}': backup-count plus async-backup-count must be at most 6");
            }
            backups.per_map.insert(name.clone(), counts);
        }
        let places = match (cli.backup_places, &file.backup_places) {
            (Some(p), _) => p,
            (None, Some(text)) => text
                .parse()
                .map_err(|e| anyhow!("config file key backup-places: {e}"))?,
            (None, None) => crate::data::BackupPlaces::Uniform,
        };
        let mut backups_raised = Vec::new();
        if places == crate::data::BackupPlaces::Uniform {
            (backups, backups_raised) = backups.uniform();
        }
        let shutdown_timeout = cli
            .shutdown_timeout
            .or(file_duration(&file.shutdown_timeout, "shutdown-timeout")?)
            .unwrap_or(Duration::from_secs(30));
        let write_timeout = cli
            .write_timeout
            .or(file_duration(&file.write_timeout, "write-timeout")?)
            .unwrap_or(Duration::from_secs(30));
        if write_timeout < Duration::from_millis(100) {
            bail!("--write-timeout must be at least 100ms");
        }
        let client_heartbeat_timeout = cli
            .client_heartbeat_timeout
            .or(file_duration(
                &file.client_heartbeat_timeout,
                "client-heartbeat-timeout",
            )?)
            .unwrap_or(Duration::from_secs(60));
        if client_heartbeat_timeout < Duration::from_millis(100) {
            bail!("--client-heartbeat-timeout must be at least 100ms");
        }
        let operation_timeout = cli
            .operation_timeout
            .or(file_duration(&file.operation_timeout, "operation-timeout")?)
            .unwrap_or(Duration::from_secs(60));

        Ok(Config {
            partition_count,
            backup_count: backups.table_slots(),
            backups,
            backups_raised,
            min_cluster_size: cli.min_cluster_size.or(file.min_cluster_size).unwrap_or(0),
            fault_file: cli.fault_file,
            merge_policy,
            shutdown_timeout,
            write_timeout,
            client_heartbeat_timeout,
            operation_timeout,
            bind_ip,
            port: explicit_port.unwrap_or(DEFAULT_PORT),
            port_explicit: explicit_port.is_some(),
            public_ip,
            public_port,
            group,
            password,
            discovery,
            membership,
            max_frame,
            log: cli.log.or(file.log).unwrap_or_else(|| "info".into()),
            health_port: cli.health_port,
            rest_enabled: cli.rest_enabled.or(file.rest_enabled).unwrap_or(false),
            per_entry_stats: cli
                .per_entry_stats
                .or(file.per_entry_stats)
                .unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn resolve(args: &[&str]) -> Result<Config> {
        let mut argv = vec!["ferrocast"];
        argv.extend_from_slice(args);
        Config::resolve(Cli::try_parse_from(argv).map_err(|e| anyhow!("{e}"))?)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("40"), Ok(Duration::from_millis(40)));
        for bad in ["", "s", "5x", "0s", "-1s", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bind_and_ports() {
        let c = resolve(&["--bind", "127.0.0.2:5710"]).unwrap();
        assert_eq!(
            (c.bind_ip.to_string().as_str(), c.port, c.port_explicit),
            ("127.0.0.2", 5710, true)
        );
        let c = resolve(&["--bind", "127.0.0.2"]).unwrap();
        assert_eq!((c.port, c.port_explicit), (5701, false));
        let c = resolve(&["--bind", "127.0.0.2", "--port", "6000"]).unwrap();
        assert_eq!((c.port, c.port_explicit), (6000, true));
        assert!(resolve(&["--bind", "nonsense"]).is_err());
        assert!(resolve(&["--public-address", "0.0.0.0:5701"]).is_err());
    }

    #[test]
    fn timeouts_are_checked() {
        assert!(resolve(&["--heartbeat-interval", "1s", "--failure-timeout", "1s"]).is_err());
        let c = resolve(&[
            "--heartbeat-interval",
            "200ms",
            "--failure-timeout",
            "1500ms",
        ])
        .unwrap();
        assert_eq!(c.membership.failure_timeout, Duration::from_millis(1500));
    }

    #[test]
    fn yaml_file_is_below_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferrocast.yaml");
        std::fs::write(
            &path,
            "group: prod\npassword: s3cret\nmembers: [127.0.0.2, '127.0.0.3:5702']\nfailure-timeout: 3s\nbind: 127.0.0.9\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let c = resolve(&["--config", p, "--group", "flag-wins"]).unwrap();
        assert_eq!(c.group, "flag-wins");
        assert_eq!(c.password, "s3cret");
        match &c.discovery {
            DiscoverySetting::Static(d) => assert_eq!(d.entries().len(), 2),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.membership.failure_timeout, Duration::from_secs(3));
        assert_eq!(c.bind_ip.to_string(), "127.0.0.9");

        std::fs::write(&path, "grup: typo\n").unwrap();
        let err = resolve(&["--config", p]).unwrap_err().to_string();
        assert!(err.contains("grup"), "{err}");
    }

    #[test]
    fn backup_places_even_out_mixed_counts_unless_per_map() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferrocast.yaml");
        std::fs::write(&path, "maps:\n  critical:\n    backup-count: 2\n").unwrap();
        let p = path.to_str().unwrap();
        let c = resolve(&["--config", p]).unwrap();
        assert_eq!(c.backups.for_map("plain"), (2, 0));
        assert_eq!(c.backups.for_map("critical"), (2, 0));
        assert_eq!(c.backups_raised, vec![(None, (1, 0), (2, 0))]);
        assert_eq!(c.backup_count, 2);

        let c = resolve(&["--config", p, "--backup-places", "per-map"]).unwrap();
        assert_eq!(c.backups.for_map("plain"), (1, 0));
        assert_eq!(c.backups.for_map("critical"), (2, 0));
        assert!(c.backups_raised.is_empty());
        assert_eq!(c.backup_count, 2);

        std::fs::write(
            &path,
            "backup-places: per-map\nmaps:\n  critical:\n    backup-count: 2\n",
        )
        .unwrap();
        assert_eq!(
            resolve(&["--config", p]).unwrap().backups.for_map("plain"),
            (1, 0)
        );
        std::fs::write(&path, "backup-places: exact\n").unwrap();
        let err = resolve(&["--config", p]).unwrap_err().to_string();
        assert!(
            err.contains("backup-places") && err.contains("per-map"),
            "{err}"
        );
        assert!(resolve(&["--backup-places", "sometimes"]).is_err());
    }

    #[test]
    fn discovery_mode_and_its_settings() {
        let c = resolve(&[]).unwrap();
        assert!(matches!(c.discovery, DiscoverySetting::Static(_)));
        assert_eq!(c.membership.listed_peer_patience, Duration::from_secs(1));

        let c = resolve(&[
            "--kubernetes-master",
            "https://127.0.0.1:6443",
            "--service",
            "grid",
            "--namespace",
            "prod",
        ])
        .unwrap();
        let DiscoverySetting::Kubernetes(k) = &c.discovery else {
            panic!("{:?}", c.discovery)
        };
        assert_eq!(
            k.selector,
            ferrocast_discovery::MemberSelector::Service("grid".into())
        );
        assert_eq!(k.namespace.as_deref(), Some("prod"));
        assert_eq!(c.membership.listed_peer_patience, Duration::from_secs(10));

        let c = resolve(&[
            "--discovery",
            "dns",
            "--namespace",
            "prod",
            "--dns-server",
            "127.0.53.1:5353",
            "--startup-patience",
            "3s",
        ])
        .unwrap();
        let DiscoverySetting::Dns(d) = &c.discovery else {
            panic!("{:?}", c.discovery)
        };
        assert_eq!(d.name, "hazelcast.prod.svc.cluster.local");
        assert_eq!(d.server, Some("127.0.53.1:5353".parse().unwrap()));
        assert_eq!(c.membership.listed_peer_patience, Duration::from_secs(3));

        for bad in [
            &["--discovery", "kubernetes", "--members", "127.0.0.2"][..],
            &["--discovery", "dns", "--dns-server", "nowhere"],
            &["--discovery", "nonsense"],
            &[
                "--kubernetes-label-selector",
                " ",
                "--discovery",
                "kubernetes",
            ],
        ] {
            assert!(resolve(bad).is_err(), "{bad:?}");
        }
    }
}
