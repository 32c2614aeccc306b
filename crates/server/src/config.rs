//! Member configuration from flags, environment variables and an optional
//! YAML file. Flags win over the environment, which wins over the file,
//! which wins over the defaults.

use crate::discovery_config::{DiscoveryArgs, DiscoverySetting, SeedSettings};
use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use ferrocast_cluster::MembershipConfig;
use ferrocast_discovery::StaticDiscovery;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_PORT: u16 = 5701;
/// How far the port is incremented when it is taken and was not given explicitly.
pub const PORT_AUTO_INCREMENT: u16 = 100;

#[derive(Parser, Debug, Default)]
#[command(
    name = "ferrocast",
    version,
    about = "A ferrocast data-grid member: forms a Hazelcast-style cluster with its peers",
    after_help = "Flags win over environment variables, which win over the YAML file (--config).\n\
With no discovery configured the member probes 127.0.0.1:5701-5703, so three members\n\
started on one machine form a cluster."
)]
pub struct Cli {
    /// YAML file with any of the settings below (keys as the long flags, with '_' or '-').
    #[arg(long, value_name = "FILE", env = "FERROCAST_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on, IP or IP:PORT [default: 0.0.0.0:5701].
    #[arg(long, value_name = "IP[:PORT]", env = "FERROCAST_BIND")]
    pub bind: Option<String>,
    /// Port to listen on; a port given here or in --bind is not auto-incremented.
    #[arg(long, value_name = "PORT", env = "HC_PORT")]
    pub port: Option<u16>,
    /// Address peers reach this member at [default: POD_IP, else the bind
    /// address, else the first non-loopback interface when bound to 0.0.0.0].
    #[arg(long, value_name = "IP[:PORT]", env = "FERROCAST_PUBLIC_ADDRESS")]
    pub public_address: Option<String>,
    /// The pod's IP (set by Kubernetes through the downward API).
    #[arg(long, value_name = "IP", env = "POD_IP")]
    pub pod_ip: Option<IpAddr>,
    /// Cluster group name; only members of the same group join [default: dev].
    #[arg(long, value_name = "NAME", env = "HC_GROUP_NAME")]
    pub group: Option<String>,
    /// Group password, proved by challenge-response and never sent [default: none].
    #[arg(
        long,
        value_name = "PW",
        env = "HC_GROUP_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// Static TCP-IP member list: host, host:port or IP, comma-separated; an
    /// entry without a port stands for ports 5701-5703; names are resolved at
    /// every discovery round.
    #[arg(long, value_name = "A,B,...", env = "FERROCAST_MEMBERS")]
    pub members: Option<String>,
    /// How often a member tells the others it is alive [default: 1s].
    #[arg(long, value_name = "DURATION", env = "FERROCAST_HEARTBEAT_INTERVAL", value_parser = parse_duration)]
    pub heartbeat_interval: Option<Duration>,
    /// Silence after which a member is removed [default: 5s].
    #[arg(long, value_name = "DURATION", env = "FERROCAST_FAILURE_TIMEOUT", value_parser = parse_duration)]
    pub failure_timeout: Option<Duration>,
    /// How often a master looks for other clusters of its group to merge with [default: 5s].
    #[arg(long, value_name = "DURATION", env = "FERROCAST_MERGE_INTERVAL", value_parser = parse_duration)]
    pub merge_interval: Option<Duration>,
    /// Pause between discovery rounds while joining [default: 200ms].
    #[arg(long, value_name = "DURATION", env = "FERROCAST_JOIN_INTERVAL", value_parser = parse_duration)]
    pub join_interval: Option<Duration>,
    /// Largest member-protocol frame accepted [default: 16777216].
    #[arg(long, value_name = "BYTES", env = "FERROCAST_MAX_FRAME_BYTES")]
    pub max_frame_bytes: Option<usize>,
    /// Synchronous backups of every partition, 0 to 6 [default: 1]. A write
    /// is acknowledged once all its backups have it.
    #[arg(long, value_name = "N", env = "FERROCAST_BACKUP_COUNT")]
    pub backup_count: Option<usize>,
    /// Split-brain protection: writes are refused while this member's side
    /// of the cluster has fewer members [default: 0, off].
    #[arg(long, value_name = "N", env = "FERROCAST_MIN_CLUSTER_SIZE")]
    pub min_cluster_size: Option<usize>,
    /// What happens to the smaller side's entries when a split heals:
    /// put-if-absent, latest-update, pass-through or discard [default: put-if-absent].
    #[arg(long, value_name = "POLICY", env = "FERROCAST_MERGE_POLICY")]
    pub merge_policy: Option<ferrocast_partition::MergePolicy>,
    /// Testing only: a file of member addresses to act as cut off from.
    #[arg(long, value_name = "FILE", env = "FERROCAST_FAULT_FILE", hide = true)]
    pub fault_file: Option<PathBuf>,
    /// Asynchronous backups of every partition (the write does not wait for
    /// them) [default: 0]. Backup and async backup counts add up to at most 6.
    #[arg(long, value_name = "N", env = "FERROCAST_ASYNC_BACKUP_COUNT")]
    pub async_backup_count: Option<usize>,
    /// Number of partitions; every member of a cluster must use the same [default: 271].
    #[arg(long, value_name = "N", env = "FERROCAST_PARTITION_COUNT")]
    pub partition_count: Option<u32>,
    /// How long a member shutting down may take to hand its partitions over [default: 30s].
    #[arg(long, value_name = "DURATION", env = "FERROCAST_SHUTDOWN_TIMEOUT", value_parser = parse_duration)]
    pub shutdown_timeout: Option<Duration>,
    /// A member or client connection whose peer takes nothing for this long
    /// (paused, or its host gone without a reset) is closed and what was
    /// queued on it dropped [default: 30s].
    #[arg(long, value_name = "DURATION", env = "FERROCAST_WRITE_TIMEOUT", value_parser = parse_duration)]
    pub write_timeout: Option<Duration>,
    /// A client that sends nothing, not even a ping, for this long is
    /// disconnected (Hazelcast's client max-no-heartbeat) [default: 60s].
    #[arg(long, value_name = "DURATION", env = "FERROCAST_CLIENT_HEARTBEAT_TIMEOUT", value_parser = parse_duration)]
    pub client_heartbeat_timeout: Option<Duration>,
    /// Bound on one client operation, retries included [default: 60s].
    #[arg(long, value_name = "DURATION", env = "FERROCAST_OPERATION_TIMEOUT", value_parser = parse_duration)]
    pub operation_timeout: Option<Duration>,
    /// Log filter, e.g. "info" or "ferrocast_cluster=debug" [default: info].
    #[arg(long, value_name = "FILTER", env = "FERROCAST_LOG")]
    pub log: Option<String>,
    /// Accepted for the seed's manifests; the health checks
    /// (/hazelcast/health/ready, /live) are always served on the member port.
    #[arg(long, value_name = "BOOL", env = "HC_REST_ENABLED")]
    pub rest_enabled: Option<bool>,
    /// Keep hits and last access time of every entry, for entry views
    /// (Hazelcast's per-entry-stats-enabled). Off, entries are smaller and
    /// entry views report -1 for both [default: false].
    #[arg(long, value_name = "BOOL", env = "FERROCAST_PER_ENTRY_STATS", num_args = 0..=1, default_missing_value = "true")]
    pub per_entry_stats: Option<bool>,
    /// Also serve the health checks on this port (plain HTTP).
    #[arg(long, value_name = "PORT", env = "FERROCAST_HEALTH_PORT")]
    pub health_port: Option<u16>,
    /// Kubernetes service whose endpoints are the members [default: hazelcast].
    #[arg(long, value_name = "NAME", env = "HAZELCAST_SERVICE")]
    pub service: Option<String>,
    /// Kubernetes namespace of the service [default: the service account's, else default].
    #[arg(long, value_name = "NS", env = "POD_NAMESPACE")]
    pub namespace: Option<String>,
    /// Cluster DNS domain for DNS discovery [default: cluster.local].
    #[arg(long, value_name = "DOMAIN", env = "DNS_DOMAIN")]
    pub dns_domain: Option<String>,
    /// URL of the Kubernetes API server when running outside the cluster
    /// (https; with --kubernetes-token-file and --kubernetes-ca-file).
    #[arg(long, value_name = "URL", env = "KUBERNETES_MASTER")]
    pub kubernetes_master: Option<String>,
    #[command(flatten)]
    pub discovery_args: DiscoveryArgs,
}

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
    pub min_cluster_size: usize,
    pub merge_policy: ferrocast_partition::MergePolicy,
    pub fault_file: Option<PathBuf>,
    pub shutdown_timeout: Duration,
    pub write_timeout: Duration,
    pub client_heartbeat_timeout: Duration,
    pub operation_timeout: Duration,
    pub log: String,
}

/// Parses "250ms", "5s", "2m" or a bare number of milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "ms"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (examples: 250ms, 5s, 1m)"))?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        _ => return Err(format!("'{s}' is not a duration (examples: 250ms, 5s, 1m)")),
    };
    if d.is_zero() {
        return Err(format!("'{s}' must be longer than zero"));
    }
    Ok(d)
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
