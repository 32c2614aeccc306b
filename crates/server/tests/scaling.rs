//! Scaling by several members at once. Kubernetes starts every pod a
//! scale-up adds, and sends SIGTERM to every pod a scale-down removes, at
//! the same moment when a StatefulSet has `podManagementPolicy: Parallel`
//! (as `deploy/kubernetes` does) and for a Deployment.
//!
//! Down: Each leaving member asks for a table without itself
//! and waits until the others hold its replicas; partitions whose owner
//! and backup both leave are copied from members that are themselves on
//! their way out. Clients write throughout; every acknowledged write must
//! read back, and every leaving member must go once it handed over, not
//! at its shutdown timeout.

mod common;
use common::chaos_kit::*;
use common::*;
use ferrocast_client::Client;
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

/// 2 -> 5: three members start at once while clients write; they join,
/// partitions move to them (copies from the two holders, many at a time)
/// and every acknowledged write must read back once the five are in sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_three_members_joining_at_once_lose_nothing() {
    let subnet = 135;
    let (mut members, client, w) = writing_cluster(subnet, 2).await;
    let before = members[0].log().len();
    let start = Instant::now();
    for host in 4..7u8 {
        members.push(restart(subnet, host, 5, &[]));
    }
    wait_converged(&refs(&members), 5, Duration::from_secs(30));
    let joined = start.elapsed();
    settle(&members, 0).await;
    let in_sync = start.elapsed();
    // Writes go on a moment past the last copy.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (acked, lost) = w
        .finish(&client, "scale", "scale 2 -> 5, three started at once")
        .await;
    eprintln!(
        "chaos scale 2 -> 5: five members listed after {joined:?}, in sync after {in_sync:?}"
    );
    dump_if_lost(&members, lost);
    assert!(acked > 100, "{acked} writes acknowledged");
    assert_eq!(lost, 0, "acknowledged writes lost");
    client.shutdown();
    // The master gathers the three joins into one table (before
    // 2026-11-27 it published one per join).
    assert_eq!(tables_published(&members[0], before, "scale 2 -> 5"), 1);
}

/// Tables `member` published after the first `from` bytes of its log,
/// owners evened aside.
fn tables_published(member: &Member, from: usize, scenario: &str) -> usize {
    member.log()[from..]
        .lines()
        .filter(|l| l.contains("partition table version") && l.contains("change owner"))
        .filter(|l| !l.contains("owners evened"))
        .inspect(|l| eprintln!("chaos {scenario}: {l}"))
        .count()
}

/// 5 -> 2, the master (`.2`, the lowest address founds the cluster) stays,
/// as in a StatefulSet scale-down (the highest ordinals go).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_three_of_five_leave_at_once_loses_nothing() {
    let tables = scale_down_at_once(133, 5, &[2, 3, 4]).await;
    // The master gathers the three intents into one table (before
    // 2026-11-27 it published one per intent, moving partitions onto
    // members whose own intent came a few ms later).
    assert_eq!(tables, 1, "tables the master published for the leaves");
}

/// 5 -> 2 with the master among those leaving (a Deployment removes any
/// pods).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_three_of_five_leave_at_once_with_the_master_loses_nothing() {
    scale_down_at_once(134, 5, &[0, 2, 4]).await;
}

/// 6 -> 2, four leaving at once, among them the master and the member at
/// the next address (often the next to take over as master, which then
/// leaves too). Before 2026-11-26 it lost 3-44 acknowledged writes in about
/// half the runs: in the round over every member a copy took the first
/// answer, from a member that had released the partition at the cluster's
/// formation and still called its data (change 0, empty) complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_four_of_six_leave_at_once_with_two_masters_in_turn_loses_nothing() {
    scale_down_at_once(137, 6, &[0, 1, 3, 5]).await;
}

/// Returns how many tables the first member (`.2`, the master unless it
/// leaves) published from the signals on, owners evened aside.
async fn scale_down_at_once(subnet: u8, size: u8, leaving: &[usize]) -> usize {
    let (members, client, w) = writing_cluster(subnet, size).await;
    let before = members[0].log().len();

    let start = Instant::now();
    for &i in leaving {
        members[i].signal(Signal::SIGTERM);
    }
    let (mut gone, mut stay) = (Vec::new(), Vec::new());
    for (i, m) in members.into_iter().enumerate() {
        if leaving.contains(&i) {
            gone.push(m);
        } else {
            stay.push(m);
        }
    }
    let mut exits = Vec::new();
    for m in gone.iter_mut() {
        let status = m.wait_exit(Duration::from_secs(60));
        exits.push((m.addr.clone(), status, start.elapsed()));
    }
    wait_converged(&refs(&stay), stay.len(), Duration::from_secs(30));
    settle(&stay, 0).await;
    let scenario = format!(
        "scale {size} -> {}, members {leaving:?} sent SIGTERM at once",
        size as usize - leaving.len()
    );
    let (acked, lost) = w.finish(&client, "scale", &scenario).await;
    for (addr, status, after) in &exits {
        eprintln!("chaos {scenario}: {addr} exited {status:?} after {after:?}");
    }
    let timed_out: Vec<&str> = gone
        .iter()
        .filter(|m| !m.log().contains("handed over") || m.log().contains("shutdown timeout"))
        .map(|m| m.addr.as_str())
        .collect();
    if lost > 0 || !timed_out.is_empty() {
        gone.iter().for_each(Member::dump);
        stay.iter().for_each(Member::dump);
    }
    assert!(
        exits.iter().all(|(_, s, _)| s.is_some_and(|s| s.success())),
        "a leaving member did not exit cleanly: {exits:?}"
    );
    assert!(acked > 100, "{acked} writes acknowledged");
    assert_eq!(lost, 0, "acknowledged writes lost");
    assert!(
        timed_out.is_empty(),
        "left at the shutdown timeout instead of handing over: {timed_out:?}"
    );
    client.shutdown();
    let first = if leaving.contains(&0) {
        &gone[0]
    } else {
        &stay[0]
    };
    tables_published(first, before, &scenario)
}

/// Every member sent SIGTERM at once (scaled to zero, uninstalled): each
/// leaves without waiting for the shutdown timeout (30 s), since nobody is
/// left to hand its partitions to. Before 2026-11-26 the last member to
/// leave, holding everything the others had handed it, waited the full
/// timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_cluster_stopping_at_once_does_not_wait_for_the_timeout() {
    let (mut members, _) = cluster(136, 3, &[]);
    stable_table(&members).await;
    let start = Instant::now();
    for m in &members {
        m.signal(Signal::SIGTERM);
    }
    let exits: Vec<_> = members
        .iter_mut()
        .map(|m| m.wait_exit(Duration::from_secs(60)))
        .collect();
    eprintln!(
        "3 of 3 members sent SIGTERM at once: all exited after {:?}",
        start.elapsed()
    );
    let waited: Vec<&str> = members
        .iter()
        .filter(|m| m.log().contains("shutdown timeout"))
        .map(|m| m.addr.as_str())
        .collect();
    if !waited.is_empty() {
        members.iter().for_each(Member::dump);
    }
    assert!(
        exits.iter().all(|s| s.is_some_and(|s| s.success())),
        "{exits:?}"
    );
    assert!(
        waited.is_empty(),
        "waited for the shutdown timeout: {waited:?}"
    );
}

/// `n` members on `127.0.<subnet>.x` settled on a stable table, a client
/// to all of them, and writers on map `scale` running for a second.
async fn writing_cluster(subnet: u8, n: u8) -> (Vec<Member>, Client, Writers) {
    let (members, addrs) = cluster(subnet, n, &[]);
    stable_table(&members).await;
    let client = connect(&addrs).await;
    let w = Writers::start(&client, "scale");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    (members, client, w)
}
