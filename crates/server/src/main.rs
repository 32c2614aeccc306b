//! `ferrocast`: one data-grid member. Reads its configuration, binds the
//! member port, finds its peers and keeps the cluster until SIGTERM/SIGINT,
//! when it leaves gracefully.

mod config;
mod listen;
mod members_block;

use anyhow::Result;
use clap::Parser;
use config::{Cli, Config};
use ferrocast_cluster::ClusterSnapshot;
use ferrocast_net::{Credentials, MemberInfo, Transport, TransportConfig};
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
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
    match runtime.block_on(run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
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
    note_later_settings(&cfg);

    let transport_stop = CancellationToken::new();
    let cluster_stop = CancellationToken::new();
    let mut tcfg = TransportConfig::new(Credentials {
        group: cfg.group.clone(),
        password: cfg.password.clone(),
    });
    tcfg.max_frame = cfg.max_frame;
    let (transport, incoming) = Transport::start(listener, me, tcfg, None, transport_stop.clone());
    let cluster = ferrocast_cluster::spawn(
        transport,
        incoming,
        Arc::new(cfg.discovery.clone()),
        cfg.membership.clone(),
        Box::new(|snap: &ClusterSnapshot| {
            tracing::info!("\n\n{}\n", members_block::format(snap));
        }),
        cluster_stop.clone(),
    );

    wait_for_signal().await?;
    tracing::info!("shutting down: leaving the cluster");
    cluster_stop.cancel();
    cluster.stopped().await;
    transport_stop.cancel();
    tracing::info!("ferrocast stopped");
    Ok(())
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

/// Kubernetes, DNS and REST settings are read now and served by later versions.
fn note_later_settings(cfg: &Config) {
    let l = &cfg.later;
    if l.service.is_some() || l.kubernetes_master.is_some() || l.dns_domain.is_some() {
        tracing::info!(
            "Kubernetes settings noted (service {:?}, namespace {:?}, DNS domain {:?}, API {:?}); \
             this version discovers members through {}",
            l.service,
            l.namespace,
            l.dns_domain,
            l.kubernetes_master,
            ferrocast_discovery::Discovery::describe(&cfg.discovery)
        );
    }
    if l.rest_enabled {
        tracing::info!("HC_REST_ENABLED is set; the REST endpoint is not served by this version");
    }
}
