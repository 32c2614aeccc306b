//! Maps with fewer backups than others (`backup-count: 0`) on a graceful
//! leave: a backup promoted for the leaving owner holds only the maps that
//! keep backups.

mod common;
use common::*;
use ferrocast_client::Client;
use nix::sys::signal::Signal;
use std::time::Duration;

/// The leaving member's partitions go to their backups, which never
/// received the entries of a map with `backup-count: 0`: each copies the
/// partition from the leaving owner, which is still alive (before
/// 2026-11-26 they were promoted as they were, and a scale-down lost 652
/// of 2,000 entries: the third the leaving member owned).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_leave_keeps_a_map_without_backups() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("ferrocast.yaml");
    std::fs::write(&yaml, "maps:\n  nob:\n    backup-count: 0\n").unwrap();
    let list = member_list(125, 2..5);
    let mut args = vec!["--config", yaml.to_str().unwrap()];
    args.extend_from_slice(FAST);
    let mut members = start_all(125, 2..5, &list, &args);
    wait_converged(&refs(&members), 3, Duration::from_secs(20));
    let client = Client::connect(client_config(&members, None))
        .await
        .unwrap();
    let nob = client.map("nob");
    nob.put_all((0..2000).map(|i| (format!("k{i}"), i as i64)))
        .await
        .unwrap();
    let mut gone = members.remove(1);
    gone.signal(Signal::SIGTERM);
    assert!(gone.wait_exit(Duration::from_secs(30)).is_some(), "left");
    wait_converged(&refs(&members), 2, Duration::from_secs(20));
    let mut lost = 0;
    for i in 0..2000 {
        if nob.get_as::<i64>(format!("k{i}")).await.unwrap().is_none() {
            lost += 1;
        }
    }
    assert_eq!(lost, 0, "entries of the map without backups lost");
    client.shutdown();
}
