//! `ferrocast-bench`: drives a map through the Rust client (so the same
//! Hazelcast protocol reaches a ferrocast or a Hazelcast member) with a
//! get/set mix, and reports throughput and latency percentiles (HDR
//! histogram), optionally as JSON.
//!
//! Latency is measured from when a request was due, not when it was sent,
//! so a fixed-rate run does not hide queueing (no coordinated omission).

mod cpu;

use anyhow::{bail, Context, Result};
use clap::Parser;
use ferrocast_client::{Client, ClientConfig, Value};
use hdrhistogram::Histogram;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The load generator shares the machine with the members it measures:
/// glibc's malloc was 7.5% of its CPU, mimalloc (as in the member) costs
/// less, and the same generator drives Hazelcast and ferrocast alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "ferrocast-bench",
    about = "Map load generator for the Hazelcast client protocol"
)]
struct Args {
    /// Members to connect to, comma-separated IP:PORT.
    #[arg(long, default_value = "127.0.0.1:5701", value_delimiter = ',')]
    addresses: Vec<SocketAddr>,
    #[arg(long, default_value = "dev")]
    cluster_name: String,
    #[arg(long)]
    password: Option<String>,
    #[arg(long, default_value = "bench")]
    map: String,
    /// Distinct keys.
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// Key size in bytes (string keys, at least 8).
    #[arg(long, default_value_t = 16)]
    key_size: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Percentage of gets.
    #[arg(long, default_value_t = 90)]
    get_percent: u32,
    /// Percentage of puts (which return the old value); the rest are sets.
    #[arg(long, default_value_t = 0)]
    put_percent: u32,
    /// Client instances (each with its own connections).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Requests in flight per client.
    #[arg(long, default_value_t = 16)]
    in_flight: usize,
    /// Seconds of warm-up (not measured).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Stop after this many measured operations (instead of --duration).
    #[arg(long)]
    ops: Option<u64>,
    /// Total requests per second across all workers; 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Put every key once before the run.
    #[arg(long)]
    preload: bool,
    /// Process ids of the servers, comma-separated: the JSON then also
    /// tells how busy they and this generator were (cores) and the
    /// servers' CPU time per operation, over the measured part (--duration).
    #[arg(long, value_delimiter = ',')]
    server_pids: Vec<u32>,
    /// Write the results here as JSON.
    #[arg(long)]
    json: Option<String>,
    /// A label for the JSON (e.g. "ferrocast" or "hazelcast").
    #[arg(long, default_value = "")]
    label: String,
    /// Only wait until the member serves clients (connect, then one set),
    /// retrying every millisecond, and print the Unix time in microseconds
    /// at which it first did. For start-up measurements.
    #[arg(long)]
    probe_ready: bool,
}

fn key(i: u64, size: usize) -> String {
    let digits = size.max(8) - 1;
    format!("k{i:0digits$}")
}

fn unix_micros() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

/// Retries until one client can connect and write; prints when it could.
async fn probe_ready(args: &Args) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut cfg = ClientConfig::new(args.addresses.clone());
        cfg.cluster_name = args.cluster_name.clone();
        if let Some(p) = &args.password {
            cfg = cfg.credentials(&args.cluster_name, p);
        }
        cfg.connect_timeout = Duration::from_millis(200);
        cfg.invocation_timeout = Duration::from_secs(5);
        if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_secs(5), Client::connect(cfg)).await
        {
            if c.map(&args.map).set("ready", 1i64).await.is_ok() {
                println!("{}", unix_micros());
                c.shutdown();
                return Ok(());
            }
            c.shutdown();
        }
        if Instant::now() > deadline {
            bail!("the member did not serve clients within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Waits until `due`, to well under a millisecond: tokio's timers fire on
/// millisecond ticks, so sleeping the whole way made requests leave up to a
/// millisecond late, and latency counted from when they were due showed
/// that tick instead of the server. Sleep to a millisecond before, then
/// yield to the other workers until it is time.
async fn wait_until(due: Instant) {
    let now = Instant::now();
    if due > now + Duration::from_millis(2) {
        tokio::time::sleep_until((due - Duration::from_millis(1)).into()).await;
    }
    while Instant::now() < due {
        tokio::task::yield_now().await;
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

async fn connect(args: &Args) -> Result<Client> {
    let mut cfg = ClientConfig::new(args.addresses.clone());
    cfg.cluster_name = args.cluster_name.clone();
    if let Some(p) = &args.password {
        cfg = cfg.credentials(&args.cluster_name, p);
    }
    Client::connect(cfg).await.context("connecting")
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.get_percent + args.put_percent > 100
        || args.keys == 0
        || args.connections == 0
        || args.in_flight == 0
    {
        bail!("--get-percent plus --put-percent must be at most 100, and --keys, --connections, --in-flight positive");
    }
    if args.probe_ready {
        return probe_ready(&args).await;
    }
    let mut clients = Vec::new();
    for _ in 0..args.connections {
        clients.push(connect(&args).await?);
    }
    let value = Arc::new(vec![0x5au8; args.value_size]);
    // Serialized once, as a user holding a value they write often would:
    // serializing it again for every request copied the value each time,
    // a third of the generator's CPU with 10 KB values, where the
    // generator was the limit (docs/performance.md). The bytes on the
    // wire are the same.
    let serialized = Value::of(value.as_slice());
    // The keys, formatted once: formatting one per operation was a few
    // percent of the generator's CPU, the core that limits the fastest rows.
    let keys: Arc<Vec<String>> = Arc::new((0..args.keys).map(|i| key(i, args.key_size)).collect());
    if args.preload {
        let t = Instant::now();
        let m = clients[0].map(&args.map);
        let batch = 1000u64;
        for start in (0..args.keys).step_by(batch as usize) {
            let entries: Vec<(String, Vec<u8>)> = (start..(start + batch).min(args.keys))
                .map(|i| (keys[i as usize].clone(), value.to_vec()))
                .collect();
            m.put_all(entries).await?;
        }
        eprintln!(
            "preloaded {} keys in {:.1} s",
            args.keys,
            t.elapsed().as_secs_f64()
        );
    }
    let workers = args.connections * args.in_flight;
    let per_worker_interval =
        (args.rate > 0).then(|| Duration::from_secs_f64(workers as f64 / args.rate as f64));
    let warmup_end = Instant::now() + Duration::from_secs_f64(args.warmup);
    // With --ops the run ends when the shared budget is spent (the time
    // bound then only guards against a server that stopped answering).
    let end = warmup_end
        + if args.ops.is_some() {
            Duration::from_secs(3600)
        } else {
            Duration::from_secs_f64(args.duration)
        };
    let budget = Arc::new(std::sync::atomic::AtomicI64::new(
        args.ops.map(|o| o as i64).unwrap_or(i64::MAX),
    ));
    let started = Instant::now();
    // CPU of this generator and of the servers over the measured part.
    let cpu_window = (args.ops.is_none() && !args.server_pids.is_empty()).then(|| {
        let pids = args.server_pids.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(warmup_end.into()).await;
            let first = (Instant::now(), cpu::sample(&pids)?);
            tokio::time::sleep_until(end.into()).await;
            let last = (Instant::now(), cpu::sample(&pids)?);
            anyhow::Ok((first, last))
        })
    });
    let mut tasks = Vec::new();
    for (c, client) in clients.iter().enumerate() {
        for w in 0..args.in_flight {
            let m = client.map(&args.map);
            let (value, args, budget) = (serialized.clone(), args.clone(), budget.clone());
            let keys = keys.clone();
            tasks.push(tokio::spawn(async move {
                let mut hist =
                    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((c * 1000 + w) as u64 + 1));
                let (mut ops, mut errors) = (0u64, 0u64);
                let mut due = Instant::now();
                // One clock read per operation, not two: a closed-loop
                // worker starts its next request as the last one ends, so
                // that end is the next start (the few instructions between
                // them count in the next latency). Clock reads were 3.3% of
                // the generator's CPU, and the generator is the limit on
                // the 100-byte rows.
                let mut last_end = due;
                loop {
                    if let Some(iv) = per_worker_interval {
                        due += iv;
                        wait_until(due).await;
                    } else {
                        due = last_end;
                    }
                    if due >= end {
                        break;
                    }
                    let measured = due >= warmup_end;
                    if measured && budget.fetch_sub(1, std::sync::atomic::Ordering::Relaxed) <= 0 {
                        break;
                    }
                    let k = &keys[(rng.next() % args.keys) as usize];
                    let dice = (rng.next() % 100) as u32;
                    let ok = if dice < args.get_percent {
                        m.get(k.as_str()).await.is_ok()
                    } else if dice < args.get_percent + args.put_percent {
                        m.put(k.as_str(), &value).await.is_ok()
                    } else {
                        m.set(k.as_str(), &value).await.is_ok()
                    };
                    last_end = Instant::now();
                    if measured {
                        let micros = last_end.duration_since(due).as_micros().max(1) as u64;
                        let _ = hist.record(micros.min(60_000_000));
                        ops += 1;
                        errors += u64::from(!ok);
                    }
                }
                (hist, ops, errors)
            }));
        }
    }
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut ops, mut errors) = (0u64, 0u64);
    for t in tasks {
        let (h, o, e) = t.await?;
        total.add(&h)?;
        ops += o;
        errors += e;
    }
    let secs = if args.ops.is_some() {
        (started.elapsed().as_secs_f64() - args.warmup).max(1e-6)
    } else {
        args.duration
    };
    let mut result = serde_json::json!({
        "label": args.label,
        "value_size": args.value_size,
        "get_percent": args.get_percent,
        "put_percent": args.put_percent,
        "key_size": args.key_size,
        "keys": args.keys,
        "seconds": secs,
        "connections": args.connections,
        "in_flight": args.in_flight,
        "rate": args.rate,
        "ops": ops,
        "errors": errors,
        "ops_per_sec": (ops as f64 / secs).round(),
        "p50_us": total.value_at_quantile(0.50),
        "p99_us": total.value_at_quantile(0.99),
        "p999_us": total.value_at_quantile(0.999),
    });
    if let Some(window) = cpu_window {
        let ((t0, a), (t1, b)) = window.await??;
        let wall = (t1 - t0).as_secs_f64().max(1e-6);
        let per_sec = ops as f64 / secs;
        let client = (b.client - a.client) / wall;
        let servers = (b.servers - a.servers) / wall;
        result["client_cores_busy"] = client.into();
        result["server_cores_busy"] = servers.into();
        let server_us = servers * 1e6 / per_sec.max(1e-9);
        result["client_us_per_op"] = (client * 1e6 / per_sec.max(1e-9)).into();
        result["server_us_per_op"] = server_us.into();
        eprintln!(
            "cores busy: generator {client:.2}, servers {servers:.2}; servers' CPU per op {server_us:.2} us"
        );
    }
    println!(
        "{} ops/s  p50 {} us  p99 {} us  p99.9 {} us  ({} ops, {} errors, {} workers)",
        result["ops_per_sec"],
        result["p50_us"],
        result["p99_us"],
        result["p999_us"],
        ops,
        errors,
        workers
    );
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&result)?)?;
    }
    for c in clients {
        c.shutdown();
    }
    Ok(())
}
