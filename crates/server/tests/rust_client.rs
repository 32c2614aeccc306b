//! The Rust client crate against real ferrocast members.

mod common;
use common::*;
use ferrocast_client::{Client, EntryEventKind, FromData, Json, Value};
use nix::sys::signal::Signal;
use std::collections::HashSet;
use std::time::Duration;

/// `stats`: the members keep per-entry statistics (`--per-entry-stats`).
async fn every_operation(client: &Client, stats: bool) {
    let m = client.map("ops");
    assert!(m.put("a", "1").await.unwrap().is_none());
    assert_eq!(
        m.put("a", "2")
            .await
            .unwrap()
            .unwrap()
            .to::<String>()
            .unwrap(),
        "1"
    );
    assert_eq!(m.get_as::<String>("a").await.unwrap().as_deref(), Some("2"));
    m.set("b", 7i32).await.unwrap();
    assert_eq!(m.get_as::<i32>("b").await.unwrap(), Some(7));
    assert!(m.put_if_absent("b", 8i32).await.unwrap().is_some());
    assert!(m.put_if_absent("c", 1.5f64).await.unwrap().is_none());
    assert_eq!(
        m.replace("c", 2.5f64)
            .await
            .unwrap()
            .unwrap()
            .to::<f64>()
            .unwrap(),
        1.5
    );
    assert!(m.replace("none", 1i32).await.unwrap().is_none());
    assert!(m.replace_if_same("c", 2.5f64, 3.5f64).await.unwrap());
    assert!(!m.replace_if_same("c", 0.0f64, 1.0f64).await.unwrap());
    assert!(m.contains_key("c").await.unwrap());
    assert!(m.contains_value(3.5f64).await.unwrap());
    assert!(!m.remove_if_same("c", 0.0f64).await.unwrap());
    assert!(m.remove_if_same("c", 3.5f64).await.unwrap());
    assert_eq!(
        m.remove("a")
            .await
            .unwrap()
            .unwrap()
            .to::<String>()
            .unwrap(),
        "2"
    );
    m.delete("b").await.unwrap();
    assert!(m.is_empty().await.unwrap());

    m.put_all((0..300).map(|i| (format!("k{i}"), i)))
        .await
        .unwrap();
    assert_eq!(m.size().await.unwrap(), 300);
    let keys: HashSet<String> = m
        .key_set()
        .await
        .unwrap()
        .iter()
        .map(|k| k.to().unwrap())
        .collect();
    assert_eq!(keys.len(), 300);
    let sum: i32 = m
        .values()
        .await
        .unwrap()
        .iter()
        .map(|v| v.to::<i32>().unwrap())
        .sum();
    assert_eq!(sum, (0..300).sum::<i32>());
    assert_eq!(m.entry_set().await.unwrap().len(), 300);
    let some = m.get_all(["k1", "k2", "missing"]).await.unwrap();
    assert_eq!(some.len(), 2);
    m.put("bytes", vec![0u8, 1, 255]).await.unwrap();
    assert_eq!(
        m.get_as::<Vec<u8>>("bytes").await.unwrap(),
        Some(vec![0, 1, 255])
    );
    // A value serialized once (big enough to travel as a chunk of its
    // own), written under two keys, and a value read back written as it is.
    let big = Value::of(vec![7u8; 10_000].as_slice());
    m.set("big1", &big).await.unwrap();
    m.put("big2", &big).await.unwrap();
    let read = m.get("big1").await.unwrap().expect("big1 was set");
    assert_eq!(read, big);
    m.set("big3", &read).await.unwrap();
    for k in ["big1", "big2", "big3"] {
        assert_eq!(
            m.get_as::<Vec<u8>>(k).await.unwrap(),
            Some(vec![7u8; 10_000]),
            "{k}"
        );
    }
    m.put("json", Json(serde_json::json!({"x": 1})))
        .await
        .unwrap();
    let Json(j) = m
        .get_as::<Json<serde_json::Value>>("json")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(j["x"], 1);
    m.put("bool", false).await.unwrap();
    assert_eq!(m.get_as::<bool>("bool").await.unwrap(), Some(false));
    m.put(1i64 << 40, "long key").await.unwrap();
    assert_eq!(
        m.get_as::<String>(1i64 << 40).await.unwrap().as_deref(),
        Some("long key")
    );

    assert!(m.evict("k1").await.unwrap());
    assert!(!m.evict("k1").await.unwrap());
    m.put("view", 1i32).await.unwrap();
    m.get("view").await.unwrap();
    let (v, hits, _) = m.get_entry_view("view").await.unwrap().unwrap();
    // Without per-entry statistics hits are not tracked: -1, as Hazelcast reports.
    let expected_hits = if stats { 1 } else { -1 };
    assert_eq!((v.to::<i32>().unwrap(), hits), (1, expected_hits));

    m.put_with_ttl("ttl", "x", Some(Duration::from_millis(500)))
        .await
        .unwrap();
    assert!(m
        .set_ttl("k2", Some(Duration::from_millis(500)))
        .await
        .unwrap());
    assert!(m.get("ttl").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(m.get("ttl").await.unwrap().is_none());
    assert!(m.get("k2").await.unwrap().is_none());

    m.clear().await.unwrap();
    assert_eq!(m.size().await.unwrap(), 0);
    m.put("x", 1i32).await.unwrap();
    m.destroy().await.unwrap();
    assert_eq!(client.map("ops").size().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_against_one_member() {
    let members = lone_member(81, FAST);
    let client = Client::connect(client_config(&members, None))
        .await
        .unwrap();
    every_operation(&client, false).await;
    client.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_against_three_members_with_smart_routing() {
    let list = member_list(82, 2..5);
    let mut args = FAST.to_vec();
    args.extend(["--password", "s3cret", "--per-entry-stats"]);
    let members = start_all(82, 2..5, &list, &args);
    wait_converged(&refs(&members), 3, Duration::from_secs(20));
    let client = Client::connect(client_config(&members, Some("s3cret")))
        .await
        .unwrap();
    every_operation(&client, true).await;
    let owners: HashSet<_> = client.partition_owners().into_iter().flatten().collect();
    assert_eq!(owners.len(), 3, "partitions spread over all members");
    assert_eq!(client.partition_owners().len(), 271);
    assert!(wait_until(Duration::from_secs(10), || client
        .live_connections()
        .len()
        == 3));
    client.shutdown();

    let wrong = Client::connect(client_config(&members, Some("nope"))).await;
    assert!(
        matches!(
            wrong,
            Err(ferrocast_client::ClientError::Authentication { .. })
        ),
        "{:?}",
        wrong.err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_listeners_get_added_updated_removed_and_expired() {
    let list = member_list(83, 2..5);
    let members = start_all(83, 2..5, &list, FAST);
    wait_converged(&refs(&members), 3, Duration::from_secs(20));
    let client = Client::connect(client_config(&members, None))
        .await
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || client
        .live_connections()
        .len()
        == 3));
    let m = client.map("events");
    // Written while nobody listens (the members build no events then)...
    m.set(200, 1).await.unwrap();
    let (id, mut events) = m.add_entry_listener(None, true).await.unwrap();
    for i in 0..30 {
        m.put(i, i).await.unwrap();
    }
    m.put(0, 100).await.unwrap();
    // ...and once someone does: an update.
    m.set(200, 2).await.unwrap();
    m.remove(1).await.unwrap();
    m.put_with_ttl(99, 1, Some(Duration::from_millis(300)))
        .await
        .unwrap();
    let mut kinds = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while kinds
        .iter()
        .filter(|k| **k == EntryEventKind::Expired)
        .count()
        == 0
    {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(e)) => kinds.push(e.kind),
            _ => break,
        }
    }
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == EntryEventKind::Added)
            .count(),
        31
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == EntryEventKind::Updated)
            .count(),
        2
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == EntryEventKind::Removed)
            .count(),
        1
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == EntryEventKind::Expired)
            .count(),
        1
    );
    assert!(m.remove_entry_listener(id).await.unwrap());
    client.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_leaving_gracefully_loses_no_entry() {
    let list = member_list(84, 2..5);
    let mut members = start_all(84, 2..5, &list, FAST);
    wait_converged(&refs(&members), 3, Duration::from_secs(20));
    let client = Client::connect(client_config(&members, None))
        .await
        .unwrap();
    let m = client.map("durable");
    m.put_all((0..5000).map(|i| (i, format!("v{i}"))))
        .await
        .unwrap();
    let mut leaving = members.remove(1);
    leaving.signal(Signal::SIGTERM);
    // Keep writing while the member hands its partitions over.
    for i in 5000..5500 {
        m.put(i, format!("v{i}")).await.unwrap();
    }
    let status = leaving
        .wait_exit(Duration::from_secs(30))
        .expect("member exits");
    assert!(status.success());
    assert!(leaving.log().contains("handed over"), "{}", leaving.log());
    wait_converged(&refs(&members), 2, Duration::from_secs(10));
    assert_eq!(m.size().await.unwrap(), 5500);
    for i in (0..5500).step_by(37) {
        assert_eq!(
            m.get_as::<String>(i).await.unwrap(),
            Some(format!("v{i}")),
            "key {i}"
        );
    }
    let all = m.get_all(0..5500).await.unwrap();
    assert_eq!(all.len(), 5500);
    client.shutdown();
}

/// A listener whose registration on a member failed (the member was
/// paused past the timeout) is registered again once the member answers,
/// by the client's maintenance loop; it used to stay claimed and missing
/// on that member for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_listener_registration_is_retried() {
    let members = lone_member(111, FAST);
    let mut cfg = client_config(&members, None);
    cfg.connect_timeout = Duration::from_millis(500);
    let client = Client::connect(cfg).await.unwrap();
    let m = client.map("retried");
    members[0].pause();
    // The registration times out; adding the listener still succeeds (it
    // is registered wherever it can be, and later where it could not).
    let (_, mut events) = m.add_entry_listener(None, true).await.unwrap();
    members[0].signal(Signal::SIGCONT);
    // Every write until the listener is back goes unseen; keep writing.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut seen = None;
    let mut i = 0;
    while seen.is_none() && tokio::time::Instant::now() < deadline {
        m.put(i, i).await.unwrap();
        i += 1;
        seen = tokio::time::timeout(Duration::from_millis(200), events.recv())
            .await
            .ok()
            .flatten();
    }
    assert!(seen.is_some(), "no event after {i} puts");
    client.shutdown();
}

/// Two clients writing one key at once: the listener's last event is the
/// value the map ends with. Events used to be dispatched after the
/// partition's lock was released, so two writes' events could reach
/// listeners in the other order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_for_one_key_arrive_in_the_order_of_its_writes() {
    let members = lone_member(112, FAST);
    let watcher = Client::connect(client_config(&members, None))
        .await
        .unwrap();
    let (a, b) = (
        Client::connect(client_config(&members, None))
            .await
            .unwrap(),
        Client::connect(client_config(&members, None))
            .await
            .unwrap(),
    );
    let (ma, mb) = (a.map("ordered"), b.map("ordered"));
    let (_, mut events) = watcher
        .map("ordered")
        .add_entry_listener(None, true)
        .await
        .unwrap();
    let mut mismatches = Vec::new();
    for round in 0..200 {
        let (ra, rb) = tokio::join!(
            ma.set("k", format!("a{round}")),
            mb.set("k", format!("b{round}"))
        );
        ra.unwrap();
        rb.unwrap();
        let now: String = ma.get_as("k").await.unwrap().expect("value");
        // Both events of this round, in the order they came.
        let mut last = None;
        for _ in 0..2 {
            let e = tokio::time::timeout(Duration::from_secs(5), events.recv())
                .await
                .expect("an event")
                .expect("open");
            last = e.value.map(|v| String::from_data(&v).expect("a string"));
        }
        if last.as_deref() != Some(now.as_str()) {
            mismatches.push((round, last, now));
        }
    }
    assert!(
        mismatches.is_empty(),
        "last event is not the value: {mismatches:?}"
    );
    for c in [watcher, a, b] {
        c.shutdown();
    }
}
