//! `ferrocast`: one data-grid member. Reads its configuration, binds the
//! member port, finds its peers and keeps the cluster until SIGTERM/SIGINT,
//! when it leaves gracefully.

/// mimalloc: per-thread free lists make the many small, short-lived
/// allocations of request handling cheaper than glibc's malloc (measured in
/// docs/performance.md), and it returns memory to the system promptly.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod allocator;
mod backup_wire;
mod cli;
mod client;
mod config;
mod data;
mod discovery_config;
mod health;
mod listen;
mod members_block;
mod partitions;
mod router;
mod service_msg;

use anyhow::Result;
use clap::Parser;
use client::endpoint::{ClientEndpoint, ClientLimits};
use client::listeners::Listeners;
use client::views;
use config::{Cli, Config};
use data::DataPlane;
use ferrocast_cluster::ClusterSnapshot;
use ferrocast_net::{Credentials, MemberInfo, Transport, TransportConfig};
use ferrocast_partition::PartitionService;
use partitions::{hand_over, Coordinator};
use std::process::ExitCode;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Upper bound on waiting for client connections to go quiet at shutdown.
const CLIENT_DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

fn main() -> ExitCode {
    let heap = allocator::small_pages_at_heap_start();
    // clap prints its own one-line error and exits with 2 for bad flags.
    let cli = Cli::parse();
    let cfg = match Config::resolve(cli) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_logging(&cfg.log);
    match heap {
        Ok(r) => tracing::debug!("heap {:#x}..{:#x} in small pages", r.start, r.end),
        Err(e) => tracing::debug!("heap start left to huge pages: {e}"),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cfg));
    // Dropping the runtime waits for tasks still running to reach a yield
    // point, so the peak below covers the whole run, shutdown included.
    drop(runtime);
    match outcome {
        Ok(()) => {
            match peak_resident_mib() {
                Some(mib) => tracing::info!("ferrocast stopped (peak resident memory {mib} MiB)"),
                None => tracing::info!("ferrocast stopped"),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: &str) {
    // kube's watcher logs every failed attempt with the raw API status; the
    // discovery logs the same failure once, worded for operators.
    let filter = if filter.contains("kube") {
        filter.to_string()
    } else {
        format!("{filter},kube_runtime=error")
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_target(false)
        .init();
}

async fn run(cfg: Config) -> Result<()> {
    let listener = listen::bind(&cfg).await?;
    let bound = listener.local_addr()?;
    let me = MemberInfo::new(uuid::Uuid::new_v4(), listen::public_address(&cfg, bound));
    tracing::info!(
        "ferrocast {} listening on {bound} as {me}, group '{}'{}",
        env!("CARGO_PKG_VERSION"),
        cfg.group,
        if cfg.password.is_empty() {
            " (no password)"
        } else {
            " (password protected)"
        }
    );
    if cfg.rest_enabled {
        tracing::info!(
            "HC_REST_ENABLED: health checks are served on the member port \
             (/hazelcast/health/ready, /live); the REST map API is not served"
        );
    }
    for (map, was, now) in &cfg.backups_raised {
        let which = map
            .as_ref()
            .map_or("maps without settings of their own".to_string(), |m| {
                format!("map '{m}'")
            });
        tracing::info!(
            "{which}: backup-count {}, async-backup-count {} kept as {}, {} \
             (backup-places: uniform, every backup place keeps every map with backups; \
             per-map takes the counts as written)",
            was.0,
            was.1,
            now.0,
            now.1
        );
    }
    let discovery_stop = CancellationToken::new();
    let discovery = cfg
        .discovery
        .start(discovery_stop.clone())
        .await
        .map_err(|e| anyhow::anyhow!("discovery: {e}"))?;

    let transport_stop = CancellationToken::new();
    let cluster_stop = CancellationToken::new();
    let data_stop = CancellationToken::new();
    allocator::spawn_housekeeping(data_stop.clone());
    let mut tcfg = TransportConfig::new(Credentials {
        group: cfg.group.clone(),
        password: cfg.password.clone(),
    });
    tcfg.max_frame = cfg.max_frame;
    tcfg.write_stall_limit = cfg.write_timeout;
    tcfg.fault_file = cfg.fault_file.clone();
    let (http_tx, http_rx) = mpsc::channel(64);
    tcfg.http = Some(http_tx);
    let (client_tx, client_rx) = mpsc::channel(1024);
    let (transport, incoming) =
        Transport::start(listener, me, tcfg, Some(client_tx), transport_stop.clone());
    let (cluster_tx, cluster_rx) = mpsc::channel(4096);
    let cluster = ferrocast_cluster::spawn(
        transport.clone(),
        cluster_rx,
        discovery,
        cfg.membership.clone(),
        Box::new(|snap: &ClusterSnapshot| {
            tracing::info!("\n\n{}\n", members_block::format(snap));
        }),
        cluster_stop.clone(),
    );

    ferrocast_partition::set_per_entry_stats(cfg.per_entry_stats);
    let service = Arc::new(PartitionService::new(me.uuid, cfg.partition_count));
    service.set_partial_backups(cfg.backups.partial());
    let counts = cfg.backups.clone();
    service.set_map_places(Arc::new(move |map: &str| {
        let (sync, asynchronous) = counts.for_map(map);
        sync + asynchronous
    }));
    let listeners = Arc::new(Listeners::new(me.uuid));
    let data = Arc::new(DataPlane::new(
        service.clone(),
        listeners.clone(),
        transport.clone(),
        cluster.subscribe(),
        cfg.operation_timeout,
        cfg.min_cluster_size,
        cfg.backups.clone(),
    ));
    let (tables_tx, tables_rx) = watch::channel(0u64);
    let (coord_tx, coord_rx) = mpsc::channel(1024);
    let coordinator = Coordinator::new(
        data.clone(),
        cluster.subscribe(),
        tables_tx,
        cfg.backup_count,
        cfg.merge_policy,
        coord_tx.clone(),
    );
    let hand_over_state = coordinator.hand_over();
    let health = health::Health::new(data.clone(), hand_over_state.clone());
    health
        .clone()
        .spawn_on_member_port(http_rx, transport_stop.clone());
    if let Some(port) = cfg.health_port {
        let addr = std::net::SocketAddr::new(cfg.bind_ip, port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on health port {addr}: {e}"))?;
        tracing::info!("health checks also on http://{addr}/hazelcast/health/ready");
        health
            .clone()
            .spawn_listener(listener, transport_stop.clone());
    }
    coordinator.spawn(coord_rx, data_stop.clone());
    router::spawn(incoming, cluster_tx, coord_tx.clone(), data.clone());
    views::spawn_publisher(
        listeners,
        service.clone(),
        cluster.subscribe(),
        tables_rx,
        data_stop.clone(),
    );
    let endpoint = Arc::new(ClientEndpoint::new(
        data.clone(),
        cfg.group.clone(),
        cfg.password.clone(),
        cfg.max_frame,
        ClientLimits {
            heartbeat_timeout: cfg.client_heartbeat_timeout,
            write_timeout: cfg.write_timeout,
        },
    ));
    endpoint.clone().spawn(client_rx, data_stop.clone());

    wait_for_signal().await?;
    health.shutting_down();
    tracing::info!("shutting down: handing over partitions, then leaving the cluster");
    // A second signal means "now": exit without finishing the hand-over.
    tokio::spawn(async {
        if wait_for_signal().await.is_ok() {
            tracing::warn!("second signal: exiting at once");
            std::process::exit(130);
        }
    });
    hand_over(&data, &coord_tx, &hand_over_state, cfg.shutdown_timeout).await;
    // Still a member, so requests that arrive meanwhile are forwarded to the
    // partitions' new owners; clients move on as their connections close.
    let left = endpoint.drain(CLIENT_DRAIN_LIMIT).await;
    if left > 0 {
        tracing::warn!(
            "{left} client connection(s) still busy after {CLIENT_DRAIN_LIMIT:?}; closing them"
        );
    }
    cluster_stop.cancel();
    cluster.stopped().await;
    data_stop.cancel();
    discovery_stop.cancel();
    transport_stop.cancel();
    Ok(())
}

/// The most memory this process has held (VmHWM), for sizing a pod's
/// memory limit: the peak, not the last figure a metrics scrape saw.
fn peak_resident_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.div_ceil(1024))
}

async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM"),
        _ = int.recv() => tracing::info!("received SIGINT"),
    }
    Ok(())
}
