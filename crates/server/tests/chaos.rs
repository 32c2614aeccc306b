//! Fault injection: clients write unique keys and record every write the
//! cluster acknowledged while members are killed, paused, restarted and
//! added; afterwards every acknowledged write must read back. Each scenario
//! prints writes acknowledged, lost and the longest write stall (recovery).

mod common;
use common::chaos_kit::*;
use common::*;
use nix::sys::signal::Signal;
use std::time::Duration;

/// The last partition table version a member reported fully in sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_kill_nine_twice_loses_no_acknowledged_write() {
    let (mut members, addrs) = cluster(91, 4, &[]);
    let client = connect(&addrs).await;
    let w = Writers::start(&client, "chaos");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let v = synced_now(&members);
    members[2].kill9();
    let v = settle(&members, v).await;
    // A second kill once the backups were re-created: it must cost nothing either.
    members[1].kill9();
    settle(&members, v).await;
    let (acked, lost) = w
        .finish(
            &client,
            "chaos",
            "kill -9 of two members, one after the other",
        )
        .await;
    assert!(acked > 100, "too few writes to mean anything: {acked}");
    dump_if_lost(&members, lost);
    assert_eq!(lost, 0);
    client.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_kill_nine_of_the_master_with_a_restart_loses_nothing() {
    let (mut members, addrs) = cluster(92, 3, &[]);
    let client = connect(&addrs).await;
    let w = Writers::start(&client, "chaos");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let v = synced_now(&members);
    members[0].kill9();
    settle(&members, v).await;
    members[0] = restart(92, 2, 3, &[]);
    wait_converged(&refs(&members), 3, Duration::from_secs(20));
    let v = settle(&members, 0).await;
    members[1].kill9();
    settle(&members, v).await;
    let (acked, lost) = w
        .finish(
            &client,
            "chaos",
            "kill -9 of the master, restart, kill -9 of another",
        )
        .await;
    assert!(acked > 100);
    dump_if_lost(&members, lost);
    assert_eq!(lost, 0);
    client.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_a_member_paused_past_the_failure_timeout_loses_nothing() {
    let (members, addrs) = cluster(93, 3, &[]);
    let client = connect(&addrs).await;
    let w = Writers::start(&client, "chaos");
    tokio::time::sleep(Duration::from_secs(1)).await;
    members[1].signal(Signal::SIGSTOP);
    tokio::time::sleep(Duration::from_secs(4)).await;
    members[1].signal(Signal::SIGCONT);
    wait_converged(&refs(&members), 3, Duration::from_secs(20));
    settle(&members, 0).await;
    let (acked, lost) = w
        .finish(&client, "chaos", "SIGSTOP for 4 s (timeout 2 s), SIGCONT")
        .await;
    assert!(acked > 100);
    dump_if_lost(&members, lost);
    assert_eq!(lost, 0);
    client.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_a_rolling_restart_with_sigterm_loses_nothing() {
    let (mut members, addrs) = cluster(94, 3, &[]);
    let client = connect(&addrs).await;
    let w = Writers::start(&client, "chaos");
    for i in 0..3 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        members[i].signal(Signal::SIGTERM);
        assert!(members[i]
            .wait_exit(Duration::from_secs(60))
            .is_some_and(|s| s.success()));
        members[i] = restart(94, 2 + i as u8, 3, &[]);
        wait_converged(&refs(&members), 3, Duration::from_secs(20));
    }
    settle(&members, 0).await;
    let (acked, lost) = w
        .finish(
            &client,
            "chaos",
            "rolling restart of 3 members with SIGTERM",
        )
        .await;
    assert!(acked > 100);
    dump_if_lost(&members, lost);
    assert_eq!(lost, 0);
    client.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_two_backups_survive_two_simultaneous_kills() {
    let (mut members, addrs) = cluster(95, 4, &["--backup-count", "2"]);
    let client = connect(&addrs).await;
    let w = Writers::start(&client, "chaos");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let v = synced_now(&members);
    members[1].kill9();
    members[3].kill9();
    settle(&members, v).await;
    let (acked, lost) = w
        .finish(
            &client,
            "chaos",
            "backup count 2, two members killed at once",
        )
        .await;
    assert!(acked > 100);
    dump_if_lost(&members, lost);
    assert_eq!(lost, 0);
    client.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_without_backups_a_crash_loses_the_dead_members_entries() {
    let (mut members, addrs) = cluster(96, 3, &["--backup-count", "0"]);
    let client = connect(&addrs).await;
    let m = client.map("nobackup");
    m.put_all((0..3000).map(|i| (i, i))).await.unwrap();
    let v = synced_now(&members);
    members[2].kill9();
    settle(&members, v).await;
    let left = m.size().await.unwrap();
    eprintln!(
        "chaos backup count 0: {left} of 3000 entries left after kill -9 of one of 3 members"
    );
    // Documented: the dead member's share (about a third) is gone.
    assert!((1500..2500).contains(&left), "{left}");
    client.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_scale_1_to_5_to_2_loses_nothing() {
    let (mut members, addrs) = cluster(103, 1, &[]);
    let client = connect(&addrs).await;
    let w = Writers::start(&client, "chaos");
    for host in 3..7u8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        members.push(restart(103, host, 5, &[]));
    }
    wait_converged(&refs(&members), 5, Duration::from_secs(30));
    settle(&members, 0).await;
    for i in (2..5).rev() {
        members[i].signal(Signal::SIGTERM);
        assert!(members[i]
            .wait_exit(Duration::from_secs(60))
            .is_some_and(|s| s.success()));
        let mut gone = members.remove(i);
        gone.kill9();
    }
    wait_converged(&refs(&members), 2, Duration::from_secs(30));
    settle(&members, 0).await;
    let (acked, lost) = w
        .finish(&client, "chaos", "scale 1 -> 5 -> 2 (joins, then SIGTERM)")
        .await;
    assert!(acked > 100);
    dump_if_lost(&members, lost);
    assert_eq!(lost, 0);
    client.shutdown();
}

/// Maps with 2, 1 and 0 + 1 asynchronous backups; two of four members
/// killed at once. With the default `backup-places: uniform` every backup
/// place keeps every map with backups, so `plain` (1 backup) is kept and
/// waited for on both places and survives too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_per_map_backup_counts_and_async_backups() {
    let (critical, plain, _) = mixed_counts_two_killed(101, "").await;
    assert_eq!(
        critical, 2000,
        "a map with two backups survives two failures"
    );
    assert_eq!(
        plain, 2000,
        "uniform places: every backup place keeps plain"
    );
}

/// The same with `backup-places: per-map`: each map on as many places as
/// its own count says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_per_map_backup_counts_taken_as_written() {
    let (critical, _, _) = mixed_counts_two_killed(105, "backup-places: per-map\n").await;
    assert_eq!(
        critical, 2000,
        "a map with two backups survives two failures"
    );
    // One backup does not promise to cover two simultaneous failures:
    // `plain` loses the partitions whose owner and first backup were the
    // two killed members. How many those are depends on the order the
    // members joined in (for 4 members joining 1, then 3, one pair shares
    // none), so sometimes it keeps all 2,000: what it keeps is reported,
    // not asserted.
}

/// The shape of the case `backup-places: per-map` leaves open, with the
/// default `uniform`: maps with 2 and 1 backups written while a member
/// joins (its copies in flight), another leaves gracefully at once, and
/// then an owner is killed. Every acknowledged write of both maps reads
/// back. (With `per-map` it passed too, 3 runs of 3: the open case needs
/// an owner to fail while a moved-up member's copy is in flight, a window
/// of milliseconds here; the service-level sequences in
/// `partition/tests/resent_content_review4.rs` and `uniform_places.rs`
/// are what shows it and its absence.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_mixed_counts_join_leave_then_kill() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("ferrocast.yaml");
    std::fs::write(&yaml, "maps:\n  critical:\n    backup-count: 2\n").unwrap();
    let extra = ["--config", yaml.to_str().unwrap()];
    let (mut members, addrs) = cluster(106, 3, &extra);
    stable_table(&members).await;
    let client = connect(&addrs).await;
    let critical = Writers::start(&client, "critical");
    let plain = Writers::start(&client, "plain");
    tokio::time::sleep(Duration::from_millis(500)).await;
    members.push(restart(106, 5, 4, &extra));
    tokio::time::sleep(Duration::from_millis(150)).await;
    members[1].signal(Signal::SIGTERM);
    assert!(members[1]
        .wait_exit(Duration::from_secs(60))
        .is_some_and(|s| s.success()));
    let mut gone = members.remove(1);
    gone.kill9();
    members[0].kill9();
    let mut dead = members.remove(0);
    dead.kill9();
    wait_converged(&refs(&members), 2, Duration::from_secs(30));
    settle(&members, 0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut lost = 0;
    for (w, map) in [(critical, "critical"), (plain, "plain")] {
        let scenario = format!("mixed counts, {map}: join, SIGTERM, kill -9");
        let (acked, l) = w.finish(&client, map, &scenario).await;
        assert!(acked > 100, "{map}: {acked} writes acknowledged");
        lost += l;
    }
    dump_if_lost(&members, lost);
    assert_eq!(lost, 0);
    client.shutdown();
}

/// 4 members on `127.0.<net>.x`, maps `critical` (2 backups), `plain` (1)
/// and `relaxed` (0 + 1 asynchronous), 2,000 entries each; two members
/// killed at once. Returns the entries each map still holds.
async fn mixed_counts_two_killed(net: u8, extra: &str) -> (usize, usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("ferrocast.yaml");
    std::fs::write(
        &yaml,
        format!("{extra}maps:\n  critical:\n    backup-count: 2\n  relaxed:\n    backup-count: 0\n    async-backup-count: 1\n"),
    )
    .unwrap();
    let (mut members, addrs) = cluster(net, 4, &["--config", yaml.to_str().unwrap()]);
    // Tables settle before the data is written: a partition moved after it
    // (owners evened) leaves a released copy on its old owner for a while,
    // which can rescue what the two failures below should cost `plain`.
    stable_table(&members).await;
    let client = connect(&addrs).await;
    for name in ["critical", "plain", "relaxed"] {
        client
            .map(name)
            .put_all((0..2000).map(|i| (i, i)))
            .await
            .unwrap();
    }
    // Asynchronous backups arrive shortly after the writes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let v = synced_now(&members);
    members[1].kill9();
    members[3].kill9();
    settle(&members, v).await;
    let critical = client.map("critical").size().await.unwrap();
    let plain = client.map("plain").size().await.unwrap();
    let relaxed = client.map("relaxed").size().await.unwrap();
    eprintln!(
        "chaos per-map backups ({}), two of four members killed at once: critical (2 backups) {critical}/2000, plain (1) {plain}/2000, relaxed (0 + 1 async) {relaxed}/2000",
        if extra.is_empty() { "uniform places" } else { "per-map places" }
    );
    // `plain` may lose entries with per-map places (see above).
    let promised = if extra.is_empty() {
        critical.min(plain)
    } else {
        critical
    };
    dump_if_lost(&members, 2000 - promised);
    client.shutdown();
    (critical, plain, relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_an_async_backup_holds_the_data_once_it_arrived() {
    let (mut members, addrs) = cluster(
        102,
        3,
        &["--backup-count", "0", "--async-backup-count", "1"],
    );
    let client = connect(&addrs).await;
    let m = client.map("async");
    m.put_all((0..3000).map(|i| (i, i))).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let v = synced_now(&members);
    members[2].kill9();
    settle(&members, v).await;
    assert_eq!(m.size().await.unwrap(), 3000);
    client.shutdown();
}
