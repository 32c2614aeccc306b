//! Test harness: real `ferrocast` processes on distinct loopback addresses
//! (127.0.N.x:5701, like pods), observed through the Members blocks they log.
//! Each test uses its own 127.0.N.0/24 so tests can run in parallel.
#![allow(dead_code)]

pub mod chaos_kit;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Cuts the member reading `file` (its `--fault-file`) off from `peers`
/// (`ip:port`: it acts as if they were unreachable); an empty
/// list heals the cut.
pub fn cut(file: &std::path::Path, peers: &[&str]) {
    std::fs::write(file, peers.join("\n")).expect("fault file");
}

/// Short timings so failure tests take seconds, not minutes.
pub const FAST: &[&str] = &[
    "--heartbeat-interval",
    "250ms",
    "--failure-timeout",
    "2s",
    "--merge-interval",
    "1s",
];

pub struct Member {
    pub addr: String,
    reaped: bool,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// One Members block as printed in a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub size: usize,
    pub version: u64,
    /// (address as printed, uuid, marked "this")
    pub members: Vec<(String, String, bool)>,
}

impl Block {
    /// The list without the "this" marks: what every member must agree on.
    pub fn list(&self) -> Vec<(String, String)> {
        self.members
            .iter()
            .map(|(a, u, _)| (a.clone(), u.clone()))
            .collect()
    }
    pub fn addresses(&self) -> Vec<String> {
        self.members.iter().map(|m| m.0.clone()).collect()
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ferrocast")
}

impl Member {
    /// Starts a member bound to `ip:5701` with the given extra flags.
    pub fn start(ip: &str, args: &[&str]) -> Member {
        Self::start_with_env(ip, args, &[])
    }

    /// Starts a member with exactly these flags (no --bind added). Its
    /// address is learned from its log.
    pub fn start_bare(args: &[&str]) -> Member {
        let mut m = Self::start_with_env("", args, &[]);
        m.addr = String::new();
        m
    }

    pub fn start_with_env(ip: &str, args: &[&str], env: &[(&str, &str)]) -> Member {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("member.log");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut cmd = Command::new(bin());
        if !ip.is_empty() {
            cmd.arg("--bind").arg(format!("{ip}:5701"));
        }
        cmd.args(args)
            .env_remove("HC_GROUP_NAME")
            .env_remove("HC_GROUP_PASSWORD")
            .env_remove("HC_PORT")
            // FERROCAST_TEST_LOG=debug (say) for more detail in dumped logs.
            .env(
                "FERROCAST_LOG",
                std::env::var("FERROCAST_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn ferrocast");
        Member {
            addr: format!("[{ip}]:5701"),
            reaped: false,
            child,
            log,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    pub fn is_running(&self) -> bool {
        // A killed member's child was reaped by kill9().
        kill(self.pid(), None).is_ok() && !self.reaped
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn blocks(&self) -> Vec<Block> {
        parse_blocks(&self.log())
    }

    pub fn last_block(&self) -> Option<Block> {
        self.blocks().pop()
    }

    pub fn signal(&self, sig: Signal) {
        let _ = kill(self.pid(), sig);
    }

    /// Sends SIGSTOP and returns once the kernel shows every thread of the
    /// process stopped (a thread busy on another CPU stops a moment later).
    pub fn pause(&self) {
        self.signal(Signal::SIGSTOP);
        let tasks = format!("/proc/{}/task", self.pid());
        wait_until(Duration::from_secs(5), || {
            std::fs::read_dir(&tasks).is_ok_and(|dir| {
                dir.flatten().all(|t| {
                    std::fs::read_to_string(t.path().join("stat"))
                        .ok()
                        .and_then(|s| {
                            s.rsplit(')')
                                .next()
                                .map(|r| r.trim_start().starts_with('T'))
                        })
                        .unwrap_or(false)
                })
            })
        });
    }

    pub fn kill9(&mut self) {
        self.signal(Signal::SIGKILL);
        let _ = self.child.wait();
        self.reaped = true;
    }

    /// Waits for the process to exit; `None` if it did not within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.reaped = true;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Dumps the log to stderr (shown when a test fails).
    pub fn dump(&self) {
        eprintln!("===== log of {} =====\n{}", self.addr, self.log());
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if std::env::var_os("FERROCAST_TEST_DUMP").is_some() {
            self.dump();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn parse_blocks(log: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = log.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("Members {size:") else {
            continue;
        };
        let Some((size, rest)) = rest.split_once(", ver:") else {
            continue;
        };
        let Some((ver, _)) = rest.split_once("} [") else {
            continue;
        };
        let mut members = Vec::new();
        for m in lines.by_ref() {
            if m == "]" {
                break;
            }
            // "\tMember [127.0.0.2]:5701 - <uuid>[ this]"
            let m = m.trim_start_matches('\t');
            let Some(m) = m.strip_prefix("Member ") else {
                break;
            };
            let Some((addr, rest)) = m.split_once(" - ") else {
                break;
            };
            let this = rest.ends_with(" this");
            let uuid = rest.trim_end_matches(" this").to_string();
            members.push((addr.to_string(), uuid, this));
        }
        if let (Ok(size), Ok(version)) = (size.parse(), ver.parse()) {
            blocks.push(Block {
                size,
                version,
                members,
            });
        }
    }
    blocks
}

pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether every member's latest block is the same list and version, of
/// `size` members, each listing itself as "this".
pub fn converged(members: &[&Member], size: usize) -> Option<Block> {
    let blocks: Vec<Block> = members
        .iter()
        .map(|m| m.last_block())
        .collect::<Option<_>>()?;
    let first = &blocks[0];
    let agree = blocks.iter().zip(members).all(|(b, m)| {
        b.size == size
            && b.members.len() == size
            && b.version == first.version
            && b.list() == first.list()
            && b.members.iter().filter(|x| x.2).map(|x| &x.0).eq([&m.addr])
    });
    agree.then(|| first.clone())
}

/// Waits for [`converged`]; on timeout dumps every log and panics.
pub fn wait_converged(members: &[&Member], size: usize, timeout: Duration) -> Block {
    let mut result = None;
    wait_until(timeout, || {
        result = converged(members, size);
        result.is_some()
    });
    match result {
        Some(b) => b,
        None => {
            for m in members {
                m.dump();
            }
            panic!(
                "{} members did not converge on one list of {size} within {timeout:?}",
                members.len()
            );
        }
    }
}

/// "127.0.N.2,127.0.N.3,..." for hosts `first..first+count`.
pub fn member_list(subnet: u8, hosts: std::ops::Range<u8>) -> String {
    hosts
        .map(|h| format!("127.0.{subnet}.{h}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Starts members on 127.0.N.h for each h, all at once, with `--members list`.
pub fn start_all(
    subnet: u8,
    hosts: std::ops::Range<u8>,
    list: &str,
    extra: &[&str],
) -> Vec<Member> {
    hosts
        .map(|h| {
            let ip = format!("127.0.{subnet}.{h}");
            let mut args = vec!["--members", list];
            args.extend_from_slice(extra);
            Member::start(&ip, &args)
        })
        .collect()
}

pub fn refs(v: &[Member]) -> Vec<&Member> {
    v.iter().collect()
}

/// One row of the kernel's IPv4 TCP table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSocket {
    pub local: std::net::SocketAddrV4,
    pub remote: std::net::SocketAddrV4,
    pub established: bool,
    pub inode: u64,
}

/// Every IPv4 TCP socket on the machine (`/proc/net/tcp`; tests share the
/// network namespace with the members they start).
pub fn tcp_sockets() -> Vec<TcpSocket> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let decode = |hex: &str| -> Option<std::net::SocketAddrV4> {
        let (ip, port) = hex.split_once(':')?;
        // The address is in network order, printed as a host-order word.
        let ip = u32::from_str_radix(ip, 16).ok()?.to_le_bytes();
        Some(std::net::SocketAddrV4::new(
            ip.into(),
            u16::from_str_radix(port, 16).ok()?,
        ))
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            Some(TcpSocket {
                local: decode(cols.get(1)?)?,
                remote: decode(cols.get(2)?)?,
                // 01 is TCP_ESTABLISHED.
                established: *cols.get(3)? == "01",
                inode: cols.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// The inodes of the sockets process `pid` has open.
pub fn socket_inodes(pid: Pid) -> std::collections::HashSet<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Default::default();
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// `a`'s established connections to `b`: sockets of `a` whose other end
/// is a socket of `b` (members dial from any local address, so addresses
/// alone do not say whose a connection is).
pub fn connections_between(a: Pid, b: Pid) -> Vec<TcpSocket> {
    let table = tcp_sockets();
    let (ours, theirs) = (socket_inodes(a), socket_inodes(b));
    table
        .iter()
        .filter(|s| s.established && ours.contains(&s.inode))
        .filter(|s| {
            table
                .iter()
                .any(|t| theirs.contains(&t.inode) && t.local == s.remote && t.remote == s.local)
        })
        .cloned()
        .collect()
}

/// One member on 127.0.`subnet`.2:5701 (its own static list) with `extra`
/// flags, once it has founded its cluster; a Vec so tests can use
/// [`refs`] and index it like a started cluster.
pub fn lone_member(subnet: u8, extra: &[&str]) -> Vec<Member> {
    let me = format!("127.0.{subnet}.2");
    let members = start_all(subnet, 2..3, &me, extra);
    wait_converged(&refs(&members), 1, Duration::from_secs(20));
    members
}

/// Which of `before` (sockets seen earlier) are still established now.
pub fn still_established(before: &[TcpSocket]) -> Vec<TcpSocket> {
    let now = tcp_sockets();
    before
        .iter()
        .filter(|c| now.iter().any(|n| n.established && n.inode == c.inode))
        .cloned()
        .collect()
}

/// A Rust client's configuration for `members`, with the group password
/// they were started with, if any.
pub fn client_config(members: &[Member], password: Option<&str>) -> ferrocast_client::ClientConfig {
    let addrs = members
        .iter()
        .map(|m| m.addr.replace(['[', ']'], "").parse().expect("address"))
        .collect();
    let cfg = ferrocast_client::ClientConfig::new(addrs);
    match password {
        Some(p) => cfg.credentials("dev", p),
        None => cfg,
    }
}

/// The newest table version this member logged all its replicas in sync with.
pub fn in_sync_version(m: &Member) -> u64 {
    m.log()
        .lines()
        .filter_map(|l| l.split("partition table version ").nth(1))
        .filter(|rest| rest.contains("replicas on this member are in sync"))
        .filter_map(|rest| rest.split(':').next()?.parse().ok())
        .max()
        .unwrap_or(0)
}

/// Waits until the failure was detected, a new table published and every
/// live member holds all its replicas again (so the next failure is safe).
pub async fn settle(members: &[Member], before: u64) -> u64 {
    let live: Vec<&Member> = members.iter().filter(|m| m.is_running()).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let versions: Vec<u64> = live.iter().map(|m| in_sync_version(m)).collect();
        let v = versions[0];
        if v > before && versions.iter().all(|x| *x == v) {
            // Stable for a moment: no newer table on its way.
            tokio::time::sleep(Duration::from_millis(500)).await;
            if live.iter().all(|m| in_sync_version(m) == v) {
                return v;
            }
        }
        if Instant::now() > deadline {
            live.iter().for_each(|m| m.dump());
            panic!("replicas never got back in sync: {versions:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every member reports itself in sync with one table version
/// that then stays for 2.5 s: past the master's tick, so an evening of
/// owners (a move the master makes once the cluster is in sync) is done.
pub async fn stable_table(members: &[Member]) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let versions: Vec<u64> = members.iter().map(in_sync_version).collect();
        let v = versions[0];
        if v > 0 && versions.iter().all(|x| *x == v) {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            if members.iter().all(|m| in_sync_version(m) == v) {
                return v;
            }
        }
        if Instant::now() > deadline {
            members.iter().for_each(Member::dump);
            panic!("no stable table: {versions:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn synced_now(members: &[Member]) -> u64 {
    members
        .iter()
        .filter(|m| m.is_running())
        .map(in_sync_version)
        .max()
        .unwrap_or(0)
}
