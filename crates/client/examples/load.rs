//! Loads a map with `count` entries of `size`-byte values through the Rust
//! client, in batches, and prints how long it took. Used by the migration
//! and hand-over benchmarks (bench/migration.py).
//!
//! `load <address> <map> <count> <size>`

use ferrocast_client::{Client, ClientConfig};
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, map, count, size] = &args[..] else {
        eprintln!("usage: load <address> <map> <count> <size>");
        std::process::exit(2);
    };
    let (count, size): (usize, usize) = (count.parse()?, size.parse()?);
    let client = Client::connect(ClientConfig::new(vec![addr.parse()?])).await?;
    let m = client.map(map);
    let value = vec![7u8; size];
    let start = Instant::now();
    let batch = (256 * 1024 / size.max(1)).clamp(1, 1000);
    let mut tasks = Vec::new();
    for chunk_start in (0..count).step_by(batch * 8) {
        let m = client.map(map);
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            for b in (chunk_start..(chunk_start + batch * 8).min(count)).step_by(batch) {
                let entries: Vec<(String, Vec<u8>)> = (b..(b + batch).min(count))
                    .map(|i| (format!("key-{i:012}"), value.clone()))
                    .collect();
                m.put_all(entries).await?;
            }
            Ok::<(), ferrocast_client::ClientError>(())
        }));
        if tasks.len() >= 4 {
            tasks.remove(0).await??;
        }
    }
    for t in tasks {
        t.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "loaded {count} entries of {size} bytes ({:.1} MB) in {secs:.2} s ({:.1} MB/s); map size {}",
        (count * size) as f64 / 1e6,
        (count * size) as f64 / 1e6 / secs,
        m.size().await?
    );
    client.shutdown();
    Ok(())
}
