//! A fault-injection switch for tests: a file listing member addresses
//! (one `IP:PORT` per line) this member can no longer talk to, as if the
//! network between them were cut. Messages to them fail, messages from them
//! are dropped, connections from them are refused. The file is re-read
//! every 100 ms, so a test splits and heals a cluster by editing it.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Default)]
pub struct Faults {
    blocked: RwLock<HashSet<SocketAddr>>,
}

impl Faults {
    pub fn is_blocked(&self, peer: SocketAddr) -> bool {
        self.blocked
            .read()
            .map(|b| b.contains(&peer))
            .unwrap_or(false)
    }

    pub fn set(&self, peers: HashSet<SocketAddr>) {
        if let Ok(mut b) = self.blocked.write() {
            if *b != peers {
                tracing::warn!("fault injection: cut off from {peers:?}");
                *b = peers;
            }
        }
    }

    /// Follows `path` until `shutdown`.
    pub fn watch(self: &Arc<Self>, path: PathBuf, shutdown: CancellationToken) {
        let faults = self.clone();
        tokio::spawn(async move {
            loop {
                // A small file read every 100 ms: blocking for microseconds is fine.
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let peers = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
                faults.set(peers);
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        });
    }
}
