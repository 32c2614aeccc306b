//! A network split between loopback members (the member protocol's
//! fault-injection switch), writes on both sides, heal and merge. With
//! split-brain protection (minimum cluster size 2 of 3) the minority side
//! refuses writes, so no acknowledged write is lost when the sides merge.

mod common;
use common::*;
use ferrocast_client::{Client, ClientConfig, ClientError};
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn cut(file: &std::path::Path, peers: &[&str]) {
    std::fs::write(file, peers.join("\n")).expect("fault file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_with_protection_heals_without_losing_acknowledged_writes() {
    let dir = tempfile::tempdir().expect("tmp");
    let ips = ["127.0.97.2", "127.0.97.3", "127.0.97.4"];
    let list = ips.join(",");
    let files: Vec<_> = ips
        .iter()
        .map(|ip| dir.path().join(format!("{ip}.cut")))
        .collect();
    let members: Vec<Member> = ips
        .iter()
        .zip(&files)
        .map(|(ip, f)| {
            cut(f, &[]);
            let mut args = vec![
                "--members",
                list.as_str(),
                "--min-cluster-size",
                "2",
                "--fault-file",
            ];
            args.push(f.to_str().expect("utf8"));
            args.extend_from_slice(FAST);
            Member::start(ip, &args)
        })
        .collect();
    wait_converged(&refs(&members), 3, Duration::from_secs(20));

    let majority = Client::connect(ClientConfig::new(vec!["127.0.97.2:5701".parse().unwrap()]))
        .await
        .unwrap();
    let mut lone_cfg = ClientConfig::new(vec!["127.0.97.4:5701".parse().unwrap()]);
    lone_cfg.smart_routing = false;
    lone_cfg.invocation_timeout = Duration::from_secs(5);
    let minority = Client::connect(lone_cfg).await.unwrap();
    let m = majority.map("split");
    let mut acked: HashMap<String, i32> = HashMap::new();
    for i in 0..200 {
        m.set(format!("before-{i}"), i).await.unwrap();
        acked.insert(format!("before-{i}"), i);
    }

    // Split {.2, .3} | {.4}.
    cut(&files[0], &["127.0.97.4:5701"]);
    cut(&files[1], &["127.0.97.4:5701"]);
    cut(&files[2], &["127.0.97.2:5701", "127.0.97.3:5701"]);
    wait_converged(&[&members[0], &members[1]], 2, Duration::from_secs(20));
    wait_converged(&[&members[2]], 1, Duration::from_secs(20));

    // The majority keeps serving; the minority refuses writes.
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < Duration::from_secs(2) {
        if m.set(format!("during-{i}"), i).await.is_ok() {
            acked.insert(format!("during-{i}"), i);
        }
        i += 1;
    }
    assert!(
        acked.len() > 250,
        "the majority side must keep accepting writes"
    );
    let refused = minority.map("split").set("minority-write", 1i32).await;
    match refused {
        Err(ClientError::Server { code, message, .. }) => {
            assert_eq!(
                code,
                ferrocast_protocol::error_codes::SPLIT_BRAIN_PROTECTION,
                "{message}"
            );
            assert!(message.contains("at least 2"), "{message}");
        }
        other => panic!("the minority side accepted a write: {other:?}"),
    }
    // Reads still work on the minority side.
    let _ = minority.map("split").get("before-1").await.unwrap();
    minority.shutdown();

    // Heal: the lone member merges back.
    for f in &files {
        cut(f, &[]);
    }
    wait_converged(&refs(&members), 3, Duration::from_secs(30));
    assert!(
        members[2].log().contains("merg"),
        "the minority side did not merge"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut lost = 0;
    for (k, v) in &acked {
        if m.get_as::<i32>(k.as_str()).await.unwrap() != Some(*v) {
            lost += 1;
        }
    }
    eprintln!(
        "split-brain: writes acknowledged {}, lost {lost}",
        acked.len()
    );
    assert_eq!(lost, 0);
    assert!(m.get("minority-write").await.unwrap().is_none());
    majority.shutdown();
}
