//! What the chaos scenarios share: writers that record every write the
//! cluster acknowledged and check them all afterwards, and clusters on
//! the short failure timings (`FAST`).

use super::*;
use ferrocast_client::{Client, ClientConfig};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const WRITERS: usize = 4;

pub struct Writers {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<HashMap<String, i64>>>,
    worst_stall: Arc<Mutex<Duration>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

pub fn config(members: &[&str]) -> ClientConfig {
    let mut cfg = ClientConfig::new(
        members
            .iter()
            .map(|a| a.parse().expect("address"))
            .collect(),
    );
    cfg.invocation_timeout = Duration::from_secs(60);
    cfg
}

impl Writers {
    pub fn start(client: &Client, map: &str) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(HashMap::new()));
        let worst_stall = Arc::new(Mutex::new(Duration::ZERO));
        let tasks = (0..WRITERS)
            .map(|w| {
                let (m, stop, acked, stall) = (
                    client.map(map),
                    stop.clone(),
                    acked.clone(),
                    worst_stall.clone(),
                );
                tokio::spawn(async move {
                    let mut i: i64 = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let key = format!("w{w}-{i}");
                        let t = Instant::now();
                        if m.set(key.as_str(), i).await.is_ok() {
                            acked.lock().expect("lock").insert(key, i);
                        }
                        let took = t.elapsed();
                        let mut s = stall.lock().expect("lock");
                        if took > *s {
                            *s = took;
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        Writers {
            stop,
            acked,
            worst_stall,
            tasks,
        }
    }

    /// Stops writing and checks every acknowledged write; returns (acked, lost).
    pub async fn finish(self, client: &Client, map: &str, scenario: &str) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        let acked = self.acked.lock().expect("lock").clone();
        let m = client.map(map);
        let mut lost = 0;
        let keys: Vec<&String> = acked.keys().collect();
        for chunk in keys.chunks(500) {
            let got: HashMap<String, i64> = m
                .get_all(chunk.iter().map(|k| k.as_str()))
                .await
                .expect("get_all")
                .into_iter()
                .map(|(k, v)| {
                    (
                        k.to::<String>().expect("key"),
                        v.to::<i64>().expect("value"),
                    )
                })
                .collect();
            for k in chunk
                .iter()
                .filter(|k| got.get(k.as_str()) != acked.get(k.as_str()))
            {
                if lost < 5 {
                    use ferrocast_client::ToData;
                    let partition =
                        ferrocast_protocol::data::partition_id(&k.as_str().to_data(), 271);
                    eprintln!(
                        "chaos {scenario}: key {k} (partition {partition}) acknowledged as {:?}, reads {:?}",
                        acked.get(k.as_str()),
                        got.get(k.as_str())
                    );
                }
                lost += 1;
            }
        }
        let stall = *self.worst_stall.lock().expect("lock");
        eprintln!(
            "chaos {scenario}: writes acknowledged {}, lost {lost}, longest write stall (recovery) {} ms",
            acked.len(),
            stall.as_millis()
        );
        (acked.len(), lost)
    }
}

/// A client to the members at `addrs` (`config`'s long timeout).
pub async fn connect(addrs: &[String]) -> Client {
    let addrs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    Client::connect(config(&addrs))
        .await
        .expect("client connects")
}

/// The members' logs on stderr (shown for a failed test) when a write was
/// lost: what a loss that shows once in many runs is diagnosed from.
pub fn dump_if_lost(members: &[Member], lost: usize) {
    if lost > 0 {
        for m in members {
            m.dump();
        }
    }
}

pub fn cluster(subnet: u8, n: u8, extra: &[&str]) -> (Vec<Member>, Vec<String>) {
    let list = member_list(subnet, 2..2 + n);
    let mut args = FAST.to_vec();
    args.extend_from_slice(extra);
    let members = start_all(subnet, 2..2 + n, &list, &args);
    wait_converged(&refs(&members), n as usize, Duration::from_secs(20));
    let addrs = (2..2 + n)
        .map(|h| format!("127.0.{subnet}.{h}:5701"))
        .collect();
    (members, addrs)
}

pub fn restart(subnet: u8, host: u8, n: u8, extra: &[&str]) -> Member {
    let list = member_list(subnet, 2..2 + n);
    let mut args = vec!["--members", list.as_str()];
    args.extend_from_slice(FAST);
    args.extend_from_slice(extra);
    Member::start(&format!("127.0.{subnet}.{host}"), &args)
}
