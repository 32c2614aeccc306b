//! Scaling down several members at once. Kubernetes sends SIGTERM to
//! every pod a scale-down removes at the same moment when a StatefulSet
//! has `podManagementPolicy: Parallel` (as `deploy/kubernetes` does) and
//! for a Deployment. Each leaving member asks for a table without itself
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

/// 5 -> 2, the master (`.2`, the lowest address founds the cluster) stays,
/// as in a StatefulSet scale-down (the highest ordinals go).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_three_of_five_leave_at_once_loses_nothing() {
    scale_down_at_once(133, &[2, 3, 4]).await;
}

/// 5 -> 2 with the master among those leaving (a Deployment removes any
/// pods).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_three_of_five_leave_at_once_with_the_master_loses_nothing() {
    scale_down_at_once(134, &[0, 2, 4]).await;
}

async fn scale_down_at_once(subnet: u8, leaving: &[usize]) {
    let (members, addrs) = cluster(subnet, 5, &[]);
    stable_table(&members).await;
    let client = Client::connect(config(
        &addrs.iter().map(String::as_str).collect::<Vec<_>>(),
    ))
    .await
    .unwrap();
    let w = Writers::start(&client, "scale");
    tokio::time::sleep(Duration::from_millis(1000)).await;

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
    wait_converged(&refs(&stay), 2, Duration::from_secs(30));
    settle(&stay, 0).await;
    let scenario = format!("scale 5 -> 2, members {leaving:?} sent SIGTERM at once");
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
}
