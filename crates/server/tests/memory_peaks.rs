//! Peaks of resident memory in a member's life besides serving: the moment
//! it stops, and the moment a new member copies its partitions. A pod's
//! memory limit has to cover the peak, so these must stay near what the
//! data itself takes.

mod common;
use common::*;
use ferrocast_client::{Client, ClientConfig};
use nix::sys::signal::Signal;
use std::time::Duration;

/// Entries loaded: ~48 MiB as the client serializes them (8-byte keys,
/// 100-byte values), enough to see a copy of them above the noise.
const ENTRIES: i64 = 300_000;

/// The most memory the process has held so far (VmHWM), in KiB.
fn peak_kib(m: &Member) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", m.pid())).expect("status");
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .expect("VmHWM")
}

/// The peak a stopped member printed last, in KiB.
fn peak_at_exit_kib(m: &Member) -> u64 {
    let log = m.log();
    let mib: u64 = log
        .split("peak resident memory ")
        .nth(1)
        .and_then(|t| t.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no peak in the log: {log}"));
    mib * 1024
}

async fn load(m: &Member) {
    let addr = m.addr.replace(['[', ']'], "").parse().expect("address");
    let client = Client::connect(ClientConfig::new(vec![addr]))
        .await
        .unwrap();
    let map = client.map("kept");
    let value = vec![7u8; 100];
    for chunk in (0..ENTRIES).collect::<Vec<i64>>().chunks(10_000) {
        map.put_all(chunk.iter().map(|&i| (i, value.clone())))
            .await
            .unwrap();
    }
    assert_eq!(map.size().await.unwrap(), ENTRIES as usize);
    client.shutdown();
}

/// The last member stopping gracefully drops its data without copying it
/// first (it used to copy every entry to offer it for a split-brain merge
/// no cluster would ever take: ~3x the data at the moment a pod stops).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_member_does_not_copy_its_data() {
    let mut members = lone_member(88, FAST);
    load(&members[0]).await;
    let loaded = peak_kib(&members[0]);
    assert!(loaded > 40 * 1024, "peak after loading: {loaded} KiB");
    members[0].signal(Signal::SIGTERM);
    let status = members[0].wait_exit(Duration::from_secs(30));
    assert!(status.expect("member exits").success());
    assert!(!members[0].log().contains("offered"));
    let at_exit = peak_at_exit_kib(&members[0]);
    eprintln!("peak at exit {at_exit} KiB, after loading {loaded} KiB");
    assert!(
        at_exit < loaded + 16 * 1024,
        "peak at exit {at_exit} KiB, after loading {loaded} KiB"
    );
}

/// A member joining a loaded one copies its partitions a few at a time:
/// the loaded member's peak grows by a few partitions, not by a copy of
/// everything (asking for all 271 at once took it to ~1.9x its data).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_member_copies_without_doubling_the_holders_memory() {
    let list = member_list(89, 2..4);
    let mut args = vec!["--members", list.as_str()];
    args.extend_from_slice(FAST);
    let first = Member::start("127.0.89.2", &args);
    wait_converged(&[&first], 1, Duration::from_secs(20));
    load(&first).await;
    let loaded = peak_kib(&first);
    let second = Member::start("127.0.89.3", &args);
    wait_converged(&[&first, &second], 2, Duration::from_secs(20));
    let copied = format!("copied {ENTRIES} entries");
    assert!(
        wait_until(Duration::from_secs(60), || second.log().contains(&copied)),
        "{}",
        second.log()
    );
    let after = peak_kib(&first);
    eprintln!("holder's peak {after} KiB, after loading {loaded} KiB");
    // Copying everything at once grew it by ~57 MiB (release build); a
    // few partitions at a time by 8 (release) to 17 (debug, slower to
    // drain), allocator pages of the copying threads included.
    assert!(
        after < loaded + 28 * 1024,
        "holder's peak {after} KiB while copying, after loading {loaded} KiB"
    );
}
