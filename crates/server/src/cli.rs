//! The command line: every member setting as a flag with its environment
//! variable (clap). `config.rs` merges these with the YAML file and the
//! defaults.

use crate::discovery_config::DiscoveryArgs;
use clap::Parser;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Which backup places keep which maps when maps keep different backup
    /// counts: `uniform` (every place keeps every map that has backups; a
    /// map with fewer synchronous backups than another waits for as many)
    /// or `per-map` (each map's counts as written; see the README)
    /// [default: uniform].
    #[arg(long, value_name = "uniform|per-map", env = "FERROCAST_BACKUP_PLACES")]
    pub backup_places: Option<crate::data::BackupPlaces>,
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
