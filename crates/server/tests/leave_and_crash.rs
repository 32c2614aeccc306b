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
    wait_converged(&refs(&members), 3, Duration::from_secs(20));
    stable_table(&members).await;
    let client = Client::connect(client_config(&members, None))
        .await
        .unwrap();
    let map = client.map("m");
    map.put_all((0..3000).map(|i| (format!("k{i}"), i as i64)))
        .await
        .unwrap();
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
