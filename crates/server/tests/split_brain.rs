//! A network split between loopback members (the member protocol's
//! fault-injection switch), writes on both sides, heal and merge. With
//! split-brain protection (minimum cluster size 2 of 3) the minority side
//! refuses writes, so no acknowledged write is lost when the sides merge.

mod common;
use common::*;
use ferrocast_client::{Client, ClientConfig, ClientError};
use std::collections::HashMap;
use std::time::{Duration, Instant};

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

/// Without protection both sides take writes; the merge policy decides
/// what the smaller side's entries become when the split heals.
async fn split_and_merge(subnet: u8, policy: &str) -> HashMap<&'static str, Option<String>> {
    let dir = tempfile::tempdir().expect("tmp");
    let ips: Vec<String> = (2..5).map(|h| format!("127.0.{subnet}.{h}")).collect();
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
                "--merge-policy",
                policy,
                "--fault-file",
            ];
            args.push(f.to_str().expect("utf8"));
            args.extend_from_slice(FAST);
            Member::start(ip, &args)
        })
        .collect();
    wait_converged(&refs(&members), 3, Duration::from_secs(20));
    let addr = |i: usize| format!("{}:5701", ips[i]).parse().unwrap();
    let majority = Client::connect(ClientConfig::new(vec![addr(0)]))
        .await
        .unwrap();
    let m = majority.map("merge");
    m.set("shared", "before").await.unwrap();

    let a = format!("{}:5701", ips[0]);
    let b = format!("{}:5701", ips[1]);
    let c = format!("{}:5701", ips[2]);
    cut(&files[0], &[&c]);
    cut(&files[1], &[&c]);
    cut(&files[2], &[&a, &b]);
    wait_converged(&[&members[0], &members[1]], 2, Duration::from_secs(20));
    wait_converged(&[&members[2]], 1, Duration::from_secs(20));
    // Let the lone member promote and settle its own table.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut lone_cfg = ClientConfig::new(vec![addr(2)]);
    lone_cfg.smart_routing = false;
    let minority = Client::connect(lone_cfg).await.unwrap();
    let mm = minority.map("merge");
    // Last update times are whole seconds (as in Hazelcast): for the
    // latest-update policy, the two sides write a second apart, so that
    // "newer-on-majority" is newer on the majority and "shared" on the
    // minority, and ties (where the incoming entry wins) are not what the
    // test sees.
    let apart = match policy {
        "latest-update" => Duration::from_millis(1100),
        _ => Duration::from_millis(50),
    };
    mm.set("newer-on-majority", "minority").await.unwrap();
    tokio::time::sleep(apart).await;
    m.set("shared", "majority").await.unwrap();
    m.set("newer-on-majority", "majority").await.unwrap();
    m.set("only-majority", "1").await.unwrap();
    tokio::time::sleep(apart).await;
    mm.set("shared", "minority").await.unwrap();
    mm.set("only-minority", "1").await.unwrap();
    minority.shutdown();

    for f in &files {
        cut(f, &[]);
    }
    wait_converged(&refs(&members), 3, Duration::from_secs(30));
    let mut out = HashMap::new();
    for key in [
        "shared",
        "newer-on-majority",
        "only-majority",
        "only-minority",
    ] {
        // The merge runs right after the rejoin; give it a moment.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut v = m.get_as::<String>(key).await.unwrap();
        while key == "only-minority"
            && v.is_none()
            && policy != "discard"
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
            v = m.get_as::<String>(key).await.unwrap();
        }
        out.insert(key, v);
    }
    // Entries the minority's side may still be replacing (each
    // partition merges on its own): wait for them to change.
    let replaced: &[&str] = match policy {
        "latest-update" => &["shared"],
        "pass-through" => &["shared", "newer-on-majority"],
        _ => &[],
    };
    for key in replaced {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let v = m.get_as::<String>(key).await.unwrap();
            if v.as_deref() == Some("minority") {
                out.insert(key, v);
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    majority.shutdown();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_if_absent_keeps_the_larger_side_and_adds_what_it_lacks() {
    let r = split_and_merge(98, "put-if-absent").await;
    assert_eq!(r["shared"].as_deref(), Some("majority"));
    assert_eq!(r["only-majority"].as_deref(), Some("1"));
    assert_eq!(r["only-minority"].as_deref(), Some("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_update_takes_the_newer_entry() {
    let r = split_and_merge(99, "latest-update").await;
    assert_eq!(r["shared"].as_deref(), Some("minority"));
    assert_eq!(r["newer-on-majority"].as_deref(), Some("majority"));
    assert_eq!(r["only-majority"].as_deref(), Some("1"));
    assert_eq!(r["only-minority"].as_deref(), Some("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discard_drops_the_smaller_sides_entries() {
    let r = split_and_merge(100, "discard").await;
    assert_eq!(r["shared"].as_deref(), Some("majority"));
    assert_eq!(r["only-minority"], None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_through_takes_the_smaller_sides_entry() {
    let r = split_and_merge(104, "pass-through").await;
    assert_eq!(r["shared"].as_deref(), Some("minority"));
    assert_eq!(r["newer-on-majority"].as_deref(), Some("minority"));
    assert_eq!(r["only-majority"].as_deref(), Some("1"));
    assert_eq!(r["only-minority"].as_deref(), Some("1"));
}
