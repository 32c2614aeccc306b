//! A member that stops reading (paused, or its host gone without a reset)
//! in the middle of copying partitions holds up only its own copies: a
//! third member joining meanwhile gets its data from the same holder at
//! once, not after the stalled connection gives up.

mod common;
use common::*;
use ferrocast_client::{Client, ClientConfig};
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_member_does_not_hold_up_copies_to_others() {
    let list = member_list(90, 2..5);
    // 16 partitions of ~10 MB each: a handful in flight is more than the
    // sockets' buffers take, so copies to a paused member stay queued.
    let mut args = vec!["--members", list.as_str(), "--partition-count", "16"];
    args.extend_from_slice(FAST);
    let holder = Member::start("127.0.90.2", &args);
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
    let stalled = Member::start("127.0.90.3", &debug_args);
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
    // Time for the holder to queue what it can for the paused member.
    std::thread::sleep(Duration::from_secs(2));

    let started = Instant::now();
    let third = Member::start("127.0.90.4", &args);
    // In sync with data copied from the holder within seconds (the paused
    // member has left the table by now: 2 s failure timeout), not after
    // the 10 s a copy waits for a permit before it is declined, nor the
    // 30 s after which a connection that takes nothing is closed.
    let in_sync = wait_until(Duration::from_secs(8), || copied(&third));
    let took = started.elapsed();
    eprintln!("third member in sync after {took:?}");
    stalled.signal(Signal::SIGCONT);
    assert!(
        in_sync,
        "third member not in sync after {took:?}:\n{}\n--- holder:\n{}",
        third.log(),
        holder.log()
    );
}
