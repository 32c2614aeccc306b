//! A member leaving gracefully while another is hung: the partitions the
//! two shared move to the third, which asks the hung one for them first
//! and gets nothing; the leaving member still holds them (it waits until
//! the others are in sync before it goes), and the third copies them from
//! it. Nothing is lost after this single failure. (This order passed
//! before too: the copy task still lists the leaving member from the
//! table it started with. When the table naming only the survivor comes
//! first, nobody is listed at all; since 2026-11-26 the copy then asks
//! every member, last resort first, before it starts the partition empty.
//! That order is reproduced at the service level in the third review's
//! notes, not here.)

mod common;
use common::*;
use ferrocast_client::Client;
use nix::sys::signal::Signal;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_leave_with_another_member_hung_loses_nothing() {
    let list = member_list(128, 2..5);
    let mut members = start_all(128, 2..5, &list, FAST);
    let (client, map) = settled_and_loaded(&members).await;
    // .4 hangs (not the master, which is .2: the lowest address founds).
    members[2].pause();
    members[1].signal(Signal::SIGTERM);
    let left = members[1].wait_exit(Duration::from_secs(60)).is_some();
    let live = [&members[0]];
    wait_converged(&live, 1, Duration::from_secs(30));
    let mut lost = 0;
    for i in 0..3000 {
        if map.get_as::<i64>(format!("k{i}")).await.unwrap() != Some(i as i64) {
            lost += 1;
        }
    }
    eprintln!("entries lost of 3,000 after a graceful leave with another member hung: {lost}");
    if lost > 0 {
        members[0].dump();
    }
    assert!(left, "the leaving member exits");
    assert_eq!(lost, 0);
    if std::env::var("DUMP").is_ok() {
        members[0].dump();
        members[1].dump();
    }
    client.shutdown();
}

/// The master fails while another member hands over its partitions (the
/// backups moving up into its places copy what they lack from the owners,
/// held back 4 s here, so the hand-over is still under way). The member
/// that takes over as master must know who is leaving: before 2026-11-26
/// only the old master had heard it, the new one handed the leaving member
/// half the partitions back, copies went round in circles between the two,
/// and the leaving member went only at its shutdown timeout (30 s), its
/// partitions not handed over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_failing_while_a_member_hands_over_loses_nothing() {
    let list = member_list(132, 2..5);
    let mut args = vec![
        "--members",
        list.as_str(),
        "--backup-count",
        "1",
        "--async-backup-count",
        "1",
    ];
    args.extend_from_slice(FAST);
    let env = [("FERROCAST_TEST_UPGRADE_DELAY_MS", "4000")];
    let mut members: Vec<Member> = (2..5)
        .map(|h| Member::start_with_env(&format!("127.0.132.{h}"), &args, &env))
        .collect();
    let (client, map) = settled_and_loaded(&members).await;
    members[1].signal(Signal::SIGTERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(members[1].is_running(), "left before its hand-over began");
    // The master (.2: the lowest address founds the cluster).
    members[0].kill9();
    let left = members[1].wait_exit(Duration::from_secs(60)).is_some();
    let log = members[1].log();
    wait_converged(&[&members[2]], 1, Duration::from_secs(30));
    let mut lost = 0;
    for i in 0..3000 {
        if map.get_as::<i64>(format!("k{i}")).await.unwrap() != Some(i as i64) {
            lost += 1;
        }
    }
    let handed_over = log.contains("handed over") && !log.contains("shutdown timeout");
    if lost > 0 || !handed_over {
        members[1].dump();
        members[2].dump();
    }
    assert!(left, "the leaving member never exited");
    assert_eq!(lost, 0, "entries lost");
    assert!(
        handed_over,
        "left at the shutdown timeout, not once handed over"
    );
    client.shutdown();
}

/// Waits for the three members to settle on a stable table, connects a
/// client and writes `k0`..`k2999` -> 0..2999 into map `m`.
async fn settled_and_loaded(members: &[Member]) -> (Client, ferrocast_client::Map) {
    wait_converged(&refs(members), 3, Duration::from_secs(20));
    stable_table(members).await;
    let client = Client::connect(client_config(members, None)).await.unwrap();
    let map = client.map("m");
    map.put_all((0..3000).map(|i| (format!("k{i}"), i as i64)))
        .await
        .unwrap();
    (client, map)
}

/// A member stopped right after it joined, before the copies of the
/// partitions its first table gave it arrived (held back 3 s here): the
/// table without it promotes the backups in its place. They lack the
/// entries of a map without backups, so each asks the member for the
/// partition complete first. Before 2026-11-27 it declined, its data
/// "still arriving" (and, taken away, never to arrive); they asked again
/// until the copy limit (60 s), and it waited for them to be in sync until
/// its shutdown timeout (30 s). Seen on CI in `partial_backups.rs` when
/// SIGTERM came within ~100 ms of the join (1 run in 12 there). It now
/// answers that it never held it; they ask the others for what they kept
/// and keep their own data when it is current.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_stopped_before_its_first_copies_arrived_hands_over_at_once() {
    let joiner = [("FERROCAST_TEST_COPY_DELAY_MS", "3000")];
    stopped_right_after_joining(138, &joiner, &[], Duration::from_millis(200)).await;
}

/// A member stopped just as the master published the table that gave it
/// partitions (a join's), before it applied it (held back 1 s here): in
/// the table it followed it held nothing, so before 2026-11-27 it left at
/// once ("handed over 0 partition(s)"), and the backups promoted in its
/// place dropped the map without backups as stale, or never had it. Seen
/// in `partial_backups.rs` (331 and 1,023 of 2,000 entries lost) once the
/// first fix made that test leave at once. The master now answers an
/// intent with the table it follows, and the member leaves only once it
/// applied that one and handed over what it gave it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_stopped_before_it_applied_its_first_table_hands_over_what_it_was_given() {
    let joiner = [("FERROCAST_TEST_TABLE_DELAY_MS", "1000")];
    stopped_right_after_joining(139, &joiner, &[], Duration::ZERO).await;
}

/// A member stopped while the copies its first table asked for were on
/// their way (the others send each copy 250 ms after taking it here): they
/// landed after the table without it. Installed then, as a member that
/// owned nothing any more, they kept only the maps backups keep and
/// counted as complete; the backups promoted in its place asked it first
/// and took that, without the map without backups (before 2026-11-27;
/// seen in `partial_backups.rs`, 244 of 2,000 entries lost). Such a copy
/// is no longer installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_stopped_while_its_first_copies_travelled_hands_over_without_them() {
    let others = [("FERROCAST_TEST_SERVE_DELAY_MS", "250")];
    stopped_right_after_joining(140, &[], &others, Duration::ZERO).await;
}

/// Two members hold 3,000 entries in `m` (1 backup) and 3,000 in `nob`
/// (`backup-count: 0`); a third joins (with `joiner_env`, the others with
/// `others_env`) and gets SIGTERM `after` the master logged the table that
/// gives it partitions. It must hand over and leave, not at the shutdown
/// timeout, and no entry may be lost.
async fn stopped_right_after_joining(
    subnet: u8,
    joiner_env: &[(&str, &str)],
    others_env: &[(&str, &str)],
    after: Duration,
) {
    let (_dir, owned) = nob_args(subnet);
    let args: Vec<&str> = owned.iter().map(String::as_str).collect();
    let mut members: Vec<Member> = (2..4)
        .map(|h| Member::start_with_env(&format!("127.0.{subnet}.{h}"), &args, others_env))
        .collect();
    wait_converged(&refs(&members), 2, Duration::from_secs(20));
    let before = stable_table(&members).await;
    let client = Client::connect(client_config(&members, None))
        .await
        .unwrap();
    let (map, nob) = loaded_m_and_nob(&client).await;
    let ip = format!("127.0.{subnet}.4");
    members.push(Member::start_with_env(&ip, &args, joiner_env));
    wait_converged(&refs(&members), 3, Duration::from_secs(20));
    // Its first table is the master's next one (.2 founds the cluster).
    let first_table = published_after(&members[0], before);
    assert!(first_table, "no table for the new member");
    tokio::time::sleep(after).await;
    members[2].signal(Signal::SIGTERM);
    let left = members[2].wait_exit(Duration::from_secs(60)).is_some();
    let log = members[2].log();
    let handed_over = log.contains("handed over") && !log.contains("shutdown timeout");
    let nothing_handed_over = log.contains("handed over 0 partition(s)");
    wait_converged(&refs(&members[..2]), 2, Duration::from_secs(30));
    let lost = lost_of(&[&map, &nob]).await;
    if lost > 0 || !handed_over || nothing_handed_over || std::env::var("DUMP").is_ok() {
        members.iter().for_each(Member::dump);
    }
    assert!(left, "the leaving member never exited");
    assert_eq!(lost, 0, "entries lost");
    assert!(
        handed_over,
        "left at the shutdown timeout, not once handed over"
    );
    assert!(
        !nothing_handed_over,
        "left without applying the table that gave it partitions"
    );
    client.shutdown();
}

/// One member holds the data; two join at once, one of them slow to ask
/// for its copies (1 s here), and the other is stopped as soon as the
/// table for both is out. In the table without it the slow one still owns
/// partitions it has not copied, and the member it copies them from is now
/// their backup, copying them back from it: that member declines, and the
/// leaving one, their backup until then, offers a backup's copy, without
/// the map no backup keeps. Before 2026-11-27 the slow member took that
/// (seen in `partial_backups.rs` with `--test-threads=3`: 8 of 2,000 lost);
/// it now asks the others for what they kept and takes the old owner's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_whose_source_copies_back_from_it_takes_the_old_owners_copy() {
    let (_dir, owned) = nob_args(141);
    let args: Vec<&str> = owned.iter().map(String::as_str).collect();
    let mut members = vec![Member::start("127.0.141.2", &args)];
    wait_converged(&refs(&members), 1, Duration::from_secs(20));
    let before = stable_table(&members).await;
    let client = Client::connect(client_config(&members, None))
        .await
        .unwrap();
    let (map, nob) = loaded_m_and_nob(&client).await;
    let slow = [("FERROCAST_TEST_COPY_DELAY_MS", "1000")];
    members.push(Member::start("127.0.141.3", &args));
    members.push(Member::start_with_env("127.0.141.4", &args, &slow));
    wait_converged(&refs(&members), 3, Duration::from_secs(20));
    let table_for_both = published_after(&members[0], before);
    assert!(table_for_both, "no table for the new members");
    members[1].signal(Signal::SIGTERM);
    let left = members[1].wait_exit(Duration::from_secs(60)).is_some();
    wait_converged(&[&members[0], &members[2]], 2, Duration::from_secs(30));
    let lost = lost_of(&[&map, &nob]).await;
    if lost > 0 || std::env::var("DUMP").is_ok() {
        members.iter().for_each(Member::dump);
    }
    assert!(left, "the leaving member never exited");
    assert_eq!(lost, 0, "entries lost");
    client.shutdown();
}

/// Writes `k0`..`k2999` -> 0..2999 into `m` (1 backup) and `nob` (none).
async fn loaded_m_and_nob(client: &Client) -> (ferrocast_client::Map, ferrocast_client::Map) {
    let (map, nob) = (client.map("m"), client.map("nob"));
    for m in [&map, &nob] {
        m.put_all((0..3000).map(|i| (format!("k{i}"), i as i64)))
            .await
            .unwrap();
    }
    (map, nob)
}

/// Whether the master logged a table newer than `before` within 10 s.
fn published_after(master: &Member, before: u64) -> bool {
    wait_until(Duration::from_secs(10), || {
        master.log().lines().any(|l| {
            l.split("partition table version ")
                .nth(1)
                .and_then(|r| r.split(':').next()?.parse::<u64>().ok())
                .is_some_and(|v| v > before)
                && l.contains("change owner")
        })
    })
}

/// Keys `k0`..`k2999` of `maps` not read back as written by `loaded_m_and_nob`.
async fn lost_of(maps: &[&ferrocast_client::Map]) -> usize {
    let mut lost = 0;
    for m in maps {
        for i in 0..3000 {
            if m.get_as::<i64>(format!("k{i}")).await.unwrap() != Some(i as i64) {
                lost += 1;
            }
        }
    }
    lost
}

/// Arguments for members `127.0.<subnet>.2..5` with the fast failure
/// settings and a config file in which `nob` keeps no backup (the file's
/// directory lives as long as the returned guard).
fn nob_args(subnet: u8) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("ferrocast.yaml");
    std::fs::write(&yaml, "maps:\n  nob:\n    backup-count: 0\n").unwrap();
    let mut args = vec![
        "--members".to_string(),
        member_list(subnet, 2..5),
        "--config".to_string(),
        yaml.to_string_lossy().into_owned(),
    ];
    args.extend(FAST.iter().map(|a| a.to_string()));
    (dir, args)
}
