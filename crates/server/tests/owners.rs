//! Owners after departures. A backup promoted for a departed owner may go
//! one partition over its share, so that nothing is copied while the
//! partition has one replica fewer; once every member is in sync again the
//! master evens owners out, moving partitions to members that copy them
//! from their old owners, so a map without backups keeps its entries too.
//! Real members, a real client, members killed with SIGKILL.

mod common;
use common::*;
use ferrocast_client::{Client, ToData};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

const KEYS: usize = 2_000;

/// Partitions owned per member, as the client's partition table says.
fn owned(client: &Client) -> HashMap<Uuid, usize> {
    let mut owned: HashMap<Uuid, usize> =
        client.members().into_iter().map(|(u, _)| (u, 0)).collect();
    for o in client.partition_owners().into_iter().flatten() {
        *owned.entry(o).or_default() += 1;
    }
    owned
}

fn spread(owned: &HashMap<Uuid, usize>) -> usize {
    let max = owned.values().max().copied().unwrap_or(0);
    let min = owned.values().min().copied().unwrap_or(0);
    max - min
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_left_apart_by_departures_are_evened_without_losing_data() {
    // Six members joining one at a time (as a StatefulSet starts its
    // pods), then the two oldest killed one at a time. In the partition
    // table's own test of this sequence the first departure leaves owners
    // 55/53/55/55/53 and the second 67/68/69/67.
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("ferrocast.yaml");
    std::fs::write(&yaml, "maps:\n  nob:\n    backup-count: 0\n").unwrap();
    let list = member_list(124, 2..8);
    let mut args = vec![
        "--members",
        list.as_str(),
        "--config",
        yaml.to_str().unwrap(),
    ];
    args.extend_from_slice(FAST);
    let mut members: Vec<Member> = Vec::new();
    let mut table = 0;
    for h in 2..8u8 {
        members.push(Member::start(&format!("127.0.124.{h}"), &args));
        wait_converged(&refs(&members), members.len(), Duration::from_secs(20));
        // A table for each join, as in the table's own test: the master
        // gathers joins that come close together into one table, and
        // from that history the departures below leave owners even.
        table = settle(&members, table).await;
    }
    let client = Client::connect(client_config(&members, None))
        .await
        .unwrap();
    let map = client.map("owners");
    map.put_all((0..KEYS).map(|i| (format!("k{i}"), i as i64)))
        .await
        .unwrap();

    // A map without backups: what its departed owners held is gone, the
    // rest must stay, whoever owns it after the evening.
    let nob = client.map("nob");
    let mut evened = 0;
    for _ in 0..2 {
        nob.put_all((0..KEYS).map(|i| (format!("k{i}"), i as i64)))
            .await
            .unwrap();
        let owners_before = client.partition_owners();
        let addr: std::net::SocketAddr = members[0].addr.replace(['[', ']'], "").parse().unwrap();
        let victim = client
            .members()
            .into_iter()
            .find(|(_, a)| *a == addr)
            .map(|m| m.0);
        let mut gone = members.remove(0);
        gone.kill9();
        wait_converged(&refs(&members), members.len(), Duration::from_secs(20));
        let n = members.len();
        let even = wait_until(Duration::from_secs(30), || {
            let owned = owned(&client);
            owned.len() == n && spread(&owned) <= 1
        });
        if !even {
            for m in &members {
                m.dump();
            }
        }
        assert!(even, "{n} members: owners {:?}", owned(&client));
        evened += members
            .iter()
            .filter(|m| m.log().contains("owners evened"))
            .count();
        // Every acknowledged write is still there, on whichever owner.
        for i in 0..KEYS {
            let got = map.get_as::<i64>(format!("k{i}")).await.unwrap();
            assert_eq!(got, Some(i as i64), "k{i} with {n} members");
            let key = format!("k{i}");
            let p = ferrocast_protocol::data::partition_id(&key.as_str().to_data(), 271);
            if owners_before[p as usize] != victim {
                let got = nob.get_as::<i64>(key).await.unwrap();
                assert_eq!(
                    got,
                    Some(i as i64),
                    "nob k{i} (partition {p}) with {n} members"
                );
            }
        }
    }
    // The departures did leave owners apart, and the master evened them
    // (without the evening the spread stays at 2 and the waits above fail).
    assert!(evened >= 1, "no table evened owners");
    client.shutdown();
}
