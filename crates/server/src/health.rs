//! Health checks over HTTP, for Kubernetes probes and load balancers:
//!
//! - `/hazelcast/health/live`: 200 while the process serves requests.
//! - `/hazelcast/health/ready`: 200 once the member has joined a cluster and
//!   every partition replica it should hold is in place (no copy awaited),
//!   503 before that and while it shuts down. A StatefulSet rolling restart
//!   waits for this before stopping the next pod, so no pod leaves while the
//!   previous one still lacks backups.
//! - `/hazelcast/health`: the same facts as a small JSON document.
//!
//! Served on the member port (requests told apart by their first bytes, as
//! a Hazelcast member does) and, with `--health-port`, on a port of its own.
//! A deliberately small HTTP/1.1 server: one request per connection, head
//! only, bounded in size and time.

use crate::data::DataPlane;
use crate::partitions::HandOver;
use ferrocast_net::HttpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A request head larger than this is refused (probes send ~100 bytes).
const MAX_HEAD: usize = 8 * 1024;
const READ_LIMIT: Duration = Duration::from_secs(5);

/// What the checks look at; cheap to clone.
#[derive(Clone)]
pub struct Health {
    data: Arc<DataPlane>,
    hand_over: Arc<HandOver>,
    shutting_down: Arc<AtomicBool>,
}

/// The member's state as the checks report it.
#[derive(Debug, PartialEq, Eq)]
pub struct Status {
    pub joined: bool,
    pub cluster_size: usize,
    pub table_version: u64,
    pub replicas_in_sync: bool,
    pub shutting_down: bool,
}

impl Status {
    pub fn ready(&self) -> bool {
        self.joined && self.table_version > 0 && self.replicas_in_sync && !self.shutting_down
    }
}

impl Health {
    pub fn new(data: Arc<DataPlane>, hand_over: Arc<HandOver>) -> Self {
        Self {
            data,
            hand_over,
            shutting_down: Arc::default(),
        }
    }

    /// From now on the member reports not ready (it is leaving).
    pub fn shutting_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn status(&self) -> Status {
        let snap = self.data.cluster();
        let table_version = self.data.service.table_version();
        Status {
            joined: snap.joined,
            cluster_size: snap.view.members.len(),
            table_version,
            replicas_in_sync: self.hand_over.own_in_sync.load(Ordering::SeqCst) >= table_version,
            shutting_down: self.shutting_down.load(Ordering::SeqCst),
        }
    }

    /// Serves the HTTP connections the member port hands over.
    pub fn spawn_on_member_port(
        self,
        mut streams: mpsc::Receiver<HttpStream>,
        stop: CancellationToken,
    ) {
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = stop.cancelled() => return,
                    s = streams.recv() => s,
                };
                let Some((stream, _remote, first)) = next else {
                    return;
                };
                let health = self.clone();
                tokio::spawn(async move { health.serve(stream, &first).await });
            }
        });
    }

    /// Serves health checks on a listener of their own (`--health-port`).
    pub fn spawn_listener(self, listener: TcpListener, stop: CancellationToken) {
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = stop.cancelled() => return,
                    a = listener.accept() => a,
                };
                match accepted {
                    Ok((stream, _)) => {
                        let health = self.clone();
                        tokio::spawn(async move { health.serve(stream, &[]).await });
                    }
                    Err(e) => {
                        tracing::warn!("health port: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }

    async fn serve(&self, mut stream: TcpStream, first: &[u8]) {
        let mut head = first.to_vec();
        let read = tokio::time::timeout(READ_LIMIT, read_head(&mut stream, &mut head)).await;
        let response = match read {
            Ok(Ok(())) => self.answer(&head),
            Ok(Err(HeadError::TooLarge)) => plain(431, "request head too large"),
            Ok(Err(HeadError::Closed)) | Err(_) => return,
        };
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }

    fn answer(&self, head: &[u8]) -> String {
        let Some((method, path)) = request_line(head) else {
            return plain(400, "malformed request line");
        };
        if method != "GET" && method != "HEAD" {
            return plain(405, "only GET and HEAD");
        }
        let body_wanted = method == "GET";
        let status = self.status();
        let response = match path.split('?').next().unwrap_or_default() {
            "/hazelcast/health/live" => plain(200, "live"),
            "/hazelcast/health/ready" if status.ready() => plain(200, "ready"),
            "/hazelcast/health/ready" => plain(503, "not ready"),
            "/hazelcast/health" => json(if status.ready() { 200 } else { 503 }, &status),
            _ => plain(404, "not found"),
        };
        if body_wanted {
            response
        } else {
            // Same headers, no body.
            response
                .split_once("\r\n\r\n")
                .map(|(h, _)| format!("{h}\r\n\r\n"))
                .unwrap_or(response)
        }
    }
}

enum HeadError {
    TooLarge,
    Closed,
}

/// Reads until the blank line that ends the head.
async fn read_head(stream: &mut TcpStream, head: &mut Vec<u8>) -> Result<(), HeadError> {
    let mut buf = [0u8; 1024];
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(());
        }
        if head.len() > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return Err(HeadError::Closed),
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
}

/// `GET /path HTTP/1.1` -> ("GET", "/path").
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let path = parts.next()?;
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") || !path.starts_with('/') || parts.next().is_some() {
        return None;
    }
    Some((method, path))
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    }
}

fn respond(code: u16, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reason(code),
        body.len()
    )
}

fn plain(code: u16, body: &str) -> String {
    respond(code, "text/plain; charset=utf-8", &format!("{body}\n"))
}

fn json(code: u16, s: &Status) -> String {
    let node_state = if s.shutting_down {
        "SHUTTING_DOWN"
    } else if s.joined {
        "ACTIVE"
    } else {
        "JOINING"
    };
    respond(
        code,
        "application/json",
        &format!(
            "{{\"nodeState\":\"{node_state}\",\"clusterSize\":{},\"partitionTableVersion\":{},\
             \"replicasInSync\":{},\"ready\":{}}}\n",
            s.cluster_size,
            s.table_version,
            s.replicas_in_sync,
            s.ready()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            request_line(b"GET /hazelcast/health/ready HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("GET", "/hazelcast/health/ready"))
        );
        assert_eq!(request_line(b"HEAD / HTTP/1.0\n\n"), Some(("HEAD", "/")));
        for bad in [
            &b"GET\r\n\r\n"[..],
            b"GET nopath HTTP/1.1\r\n\r\n",
            b"GET / SPDY/3\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"\xff\xfe / HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(request_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn readiness_needs_join_table_and_replicas() {
        let mut s = Status {
            joined: true,
            cluster_size: 3,
            table_version: 4,
            replicas_in_sync: true,
            shutting_down: false,
        };
        assert!(s.ready());
        s.replicas_in_sync = false;
        assert!(!s.ready());
        s.replicas_in_sync = true;
        s.shutting_down = true;
        assert!(!s.ready());
        s.shutting_down = false;
        s.table_version = 0;
        assert!(!s.ready());
        s.table_version = 4;
        s.joined = false;
        assert!(!s.ready());
    }

    #[test]
    fn responses_have_length_and_close() {
        let r = plain(503, "not ready");
        assert!(r.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(r.contains("Content-Length: 10\r\n"));
        assert!(r.ends_with("\r\n\r\nnot ready\n"));
    }
}
