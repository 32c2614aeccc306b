//! A member that stops reading (paused, or its host gone without a reset)
//! in the middle of copying partitions holds up only its own copies: a
//! third member joining meanwhile gets its data from the same holder at
//! once, not after the stalled connection gives up.

mod common;
use common::*;
use ferrocast_client::{Client, ClientConfig};
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

/// Loads a member, pauses a second one in the middle of copying from it,
/// waits `before_third`, starts a third and returns how long it took to
/// be in sync with data (`None`: not within `limit`).
async fn third_member_in_sync(
    subnet: u8,
    timings: &[&str],
    before_third: Duration,
    limit: Duration,
) -> Option<Duration> {
    let list = member_list(subnet, 2..5);
    // 16 partitions of ~10 MB each: a handful in flight is more than the
    // sockets' buffers take, so copies to a paused member stay queued.
    let mut args = vec!["--members", list.as_str(), "--partition-count", "16"];
    args.extend_from_slice(timings);
    let ip = |h: u8| format!("127.0.{subnet}.{h}");
    let holder = Member::start(&ip(2), &args);
    wait_converged(&[&holder], 1, Duration::from_secs(20));
    let addr = holder
        .addr
        .replace(['[', ']'], "")
        .parse()
        .expect("address");
    let client = Client::connect(ClientConfig::new(vec![addr]))
        .await
        .unwrap();
    let map = client.map("big");
    let value = vec![9u8; 4096];
    let entries: Vec<i64> = (0..40_000).collect();
    for chunk in entries.chunks(1000) {
        map.put_all(chunk.iter().map(|&i| (i, value.clone())))
            .await
            .unwrap();
    }
    client.shutdown();

    // It logs each partition it installs.
    let mut debug_args = args.clone();
    debug_args.extend_from_slice(&["--log", "info,ferrocast::partitions=debug"]);
    let stalled = Member::start(&ip(3), &debug_args);
    assert!(
        wait_until(Duration::from_secs(20), || stalled
            .log()
            .contains("Members {size:2")),
        "{}",
        stalled.log()
    );
    // Paused in the middle of its copy: once its first partition is in.
    assert!(
        wait_until(Duration::from_secs(20), || stalled
            .log()
            .contains(" entries from ")),
        "{}",
        stalled.log()
    );
    stalled.pause();
    let copied = |m: &Member| {
        m.log().lines().any(|l| {
            l.contains("replicas on this member are in sync (copied ")
                && !l.contains("(copied 0 entries")
        })
    };
    assert!(!copied(&stalled), "paused too late:\n{}", stalled.log());
    std::thread::sleep(before_third);

    let started = Instant::now();
    let third = Member::start(&ip(4), &args);
    let in_sync = wait_until(limit, || copied(&third));
    let took = started.elapsed();
    stalled.signal(Signal::SIGCONT);
    in_sync.then_some(took)
}

/// The third member starts once the paused one has left the table (2 s
/// failure timeout): it copies from the holder at once, not after the 10 s
/// a copy waits for a permit before it is declined, nor the 30 s after
/// which a connection that takes nothing is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_member_does_not_hold_up_copies_to_others() {
    let took = third_member_in_sync(90, FAST, Duration::from_secs(2), Duration::from_secs(8)).await;
    eprintln!("third member in sync after {took:?}");
    assert!(took.is_some(), "third member not in sync within 8 s");
}

/// The third member starts while the paused one is still in the table, so
/// some of its copies are asked of the paused member: they are asked of
/// the holder once the paused member leaves the member list, not after
/// the copy request's 30 s timeout (17 s to be in sync before, 5 s after,
/// with default timings in a release build).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_asked_of_a_stalled_member_move_on_when_it_leaves() {
    // Default timings (5 s failure timeout): the third member joins while
    // the paused one is still listed.
    let took = third_member_in_sync(113, &[], Duration::ZERO, Duration::from_secs(12)).await;
    eprintln!("third member in sync after {took:?}");
    assert!(took.is_some(), "third member not in sync within 12 s");
}
