//! The Rust client's connections against real ferrocast members: members
//! that pause, go silent, answer slowly or leave the member list, and what
//! the client does with the connections and the cluster view it holds.

mod common;
use common::*;
use ferrocast_client::{Client, ClientConfig};
use nix::sys::signal::Signal;
use std::time::Duration;

/// A member that stops answering (paused with SIGSTOP) fails the request
/// with a timeout near the invocation timeout, not never and not at once;
/// once it runs again, the same client works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_a_paused_member_times_out() {
    let members = lone_member(87, FAST);
    let mut cfg = client_config(&members, None);
    cfg.invocation_timeout = Duration::from_millis(1500);
    let client = Client::connect(cfg).await.unwrap();
    let m = client.map("paused");
    m.put("k", "v").await.unwrap();
    members[0].pause();
    let started = std::time::Instant::now();
    let outcome = m.get_as::<String>("k").await;
    let took = started.elapsed();
    members[0].signal(Signal::SIGCONT);
    assert!(
        matches!(outcome, Err(ferrocast_client::ClientError::Timeout(_))),
        "{outcome:?}"
    );
    assert!(
        took >= Duration::from_millis(1300) && took < Duration::from_secs(4),
        "timed out after {took:?}"
    );
    assert_eq!(m.get_as::<String>("k").await.unwrap().as_deref(), Some("v"));
    client.shutdown();
}

/// The client pings quiet connections, so a member that disconnects
/// silent clients (here after 1 s) keeps an idle one; a client that pings
/// less often than that is disconnected, which shows the pings are what
/// keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_client_pings_and_stays_connected() {
    let members = lone_member(116, &["--client-heartbeat-timeout", "1s"]);
    let closed = |m: &Member| {
        m.log()
            .matches("sent nothing for 1s; closing the connection")
            .count()
    };
    let mut cfg = client_config(&members, None);
    cfg.heartbeat.interval = Duration::from_millis(300);
    let client = Client::connect(cfg.clone()).await.unwrap();
    let map = client.map("idle");
    map.put(1i64, 1i64).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(closed(&members[0]), 0, "{}", members[0].log());
    assert_eq!(map.get_as::<i64>(1i64).await.unwrap(), Some(1));
    client.shutdown();

    cfg.heartbeat.interval = Duration::from_secs(30);
    let quiet = Client::connect(cfg).await.unwrap();
    quiet.map("idle").put(2i64, 2i64).await.unwrap();
    let gone = wait_until(Duration::from_secs(5), || closed(&members[0]) > 0);
    assert!(gone, "a client that does not ping was kept");
    quiet.shutdown();
}

/// A member that stops answering (paused: its socket stays open) is given
/// up by the client after the heartbeat timeout: the client closes that
/// connection instead of keeping it (and the requests on it) for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_silent_past_the_heartbeat_timeout_is_disconnected() {
    let members = lone_member(118, FAST);
    let mut cfg = client_config(&members, None);
    cfg.heartbeat.interval = Duration::from_millis(200);
    cfg.heartbeat.timeout = Duration::from_secs(1);
    let client = Client::connect(cfg).await.unwrap();
    client.map("paused").put(1i64, 1i64).await.unwrap();
    let me = nix::unistd::Pid::this();
    let before = connections_between(me, members[0].pid());
    assert!(!before.is_empty(), "the client holds no connection");
    members[0].pause();
    let started = std::time::Instant::now();
    // Puts of 1 MiB values while it is paused: more than the sockets'
    // buffers, so the client's writer is stuck in a write when the
    // heartbeat timeout closes the connection.
    let puts: Vec<_> = (0..48i64)
        .map(|k| {
            let client = client.clone();
            tokio::spawn(async move {
                let _ = client.map("paused").set(k, vec![9u8; 1 << 20]).await;
            })
        })
        .collect();
    let closed = wait_until(Duration::from_secs(5), || {
        still_established(&before).is_empty()
    });
    let took = started.elapsed();
    members[0].signal(Signal::SIGCONT);
    assert!(
        closed,
        "the client kept its connection to the paused member"
    );
    eprintln!("closed {took:?} after the pause");
    client.shutdown();
    for p in puts {
        p.abort();
    }
}

/// A proxy on `listen` to `member` that passes the member's bytes on in
/// pieces of 32 KiB every 50 ms (about 640 KiB/s), and the client's at
/// once: a slow link, for one connection.
async fn slow_link(listen: &str, member: &str) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let member = member.to_string();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let upstream = tokio::net::TcpStream::connect(&member).await.unwrap();
        let (mut cr, mut cw) = client.into_split();
        let (mut ur, mut uw) = upstream.into_split();
        tokio::spawn(async move { tokio::io::copy(&mut cr, &mut uw).await });
        let mut buf = vec![0u8; 32 << 10];
        loop {
            let n = match ur.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    addr
}

/// A response that takes longer than the heartbeat timeout to arrive but
/// keeps arriving does not get its connection closed: the client counts
/// the member's bytes, not whole messages, as members count a client's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_response_arriving_slowly_keeps_its_connection() {
    let members = lone_member(121, FAST);
    let member = members[0].addr.replace(['[', ']'], "");
    let proxy = slow_link("127.0.121.3:5701", &member).await;
    let mut cfg = ClientConfig::new(vec![proxy]);
    cfg.smart_routing = false;
    cfg.heartbeat.interval = Duration::from_millis(200);
    cfg.heartbeat.timeout = Duration::from_secs(1);
    let client = Client::connect(cfg).await.unwrap();
    let map = client.map("slow");
    let big = vec![7u8; 2 << 20];
    map.set(1i64, big.clone()).await.unwrap();
    let started = std::time::Instant::now();
    let back = map.get_as::<Vec<u8>>(1i64).await;
    let took = started.elapsed();
    assert!(
        matches!(&back, Ok(Some(v)) if *v == big),
        "after {took:?}: {:?}",
        back.map(|v| v.map(|v| v.len()))
    );
    assert!(
        took > Duration::from_secs(2),
        "the link was not slow: {took:?}"
    );
    client.shutdown();
}

/// A member that leaves the member list while its socket stays open (it is
/// paused) has its connection closed by the client once the new list
/// arrives, not just forgotten: requests in flight to it hold the
/// connection (forgetting it would leave it open until they time out), and
/// the client's heartbeat timeout (60 s here) is not what closes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_to_a_member_removed_from_the_list_is_closed() {
    let list = member_list(122, 2..4);
    let members = start_all(122, 2..4, &list, FAST);
    wait_converged(&refs(&members), 2, Duration::from_secs(20));
    let client = Client::connect(client_config(&members, None))
        .await
        .unwrap();
    client.map("m").put(1i64, 1i64).await.unwrap();
    let me = nix::unistd::Pid::this();
    let paused = &members[1];
    let mut before = Vec::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            before = connections_between(me, paused.pid());
            !before.is_empty()
        }),
        "the client opened no connection to the second member"
    );
    paused.signal(Signal::SIGSTOP);
    let t0 = std::time::Instant::now();
    // Gets of 32 keys: those the paused member owns wait on its connection.
    let gets: Vec<_> = (0..32i64)
        .map(|k| {
            let client = client.clone();
            tokio::spawn(async move { client.map("m").get_as::<i64>(k).await })
        })
        .collect();
    wait_converged(&[&members[0]], 1, Duration::from_secs(10));
    let removed = t0.elapsed();
    let closed = wait_until(Duration::from_secs(5), || {
        still_established(&before).is_empty()
    });
    paused.signal(Signal::SIGCONT);
    assert!(closed, "still established after the member left the list");
    eprintln!("removed after {removed:?}, closed after {:?}", t0.elapsed());
    // Retried on the member that owns their partitions now.
    for g in gets {
        let got = tokio::time::timeout(Duration::from_secs(10), g).await;
        assert!(matches!(got, Ok(Ok(Ok(_)))), "{got:?}");
    }
    client.shutdown();
}

/// The client's cluster view listener is on the first member it reached.
/// Paused, that member answers nothing, and its connection stays open until
/// the client's heartbeat timeout (60 s here): the listener moves to a
/// member that talks, so the client learns the member list and partition
/// table without the paused member from the others, and writes reach the
/// members that took its partitions over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_view_listener_moves_off_a_paused_member() {
    let list = member_list(123, 2..5);
    let members = start_all(123, 2..5, &list, FAST);
    wait_converged(&refs(&members), 3, Duration::from_secs(20));
    let mut cfg = client_config(&members, None);
    cfg.heartbeat.interval = Duration::from_millis(500);
    cfg.heartbeat.timeout = Duration::from_secs(60);
    let client = Client::connect(cfg).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || client.live_connections().len()
            == 3),
        "the client did not connect to every member"
    );
    let paused_addr = members[0].addr.replace(['[', ']'], "");
    let paused = client
        .members()
        .into_iter()
        .find(|(_, a)| a.to_string() == paused_addr)
        .map(|(u, _)| u)
        .expect("the first member in the client's list");
    let m = client.map("m");
    for k in 0..64i64 {
        m.put(k, k).await.unwrap();
    }
    members[0].signal(Signal::SIGSTOP);
    let t0 = std::time::Instant::now();
    wait_converged(&[&members[1], &members[2]], 2, Duration::from_secs(20));
    let removed = t0.elapsed();
    let learned = wait_until(Duration::from_secs(10), || {
        !client.members().iter().any(|(u, _)| *u == paused)
            && !client.partition_owners().contains(&Some(paused))
    });
    let learned_after = t0.elapsed();
    let writes = tokio::time::timeout(Duration::from_secs(10), async {
        for k in 0..64i64 {
            m.put(k, k + 1).await?;
        }
        Ok::<_, ferrocast_client::ClientError>(())
    })
    .await;
    members[0].signal(Signal::SIGCONT);
    assert!(
        learned,
        "after {learned_after:?} the client still routes to the paused member (removed from the cluster after {removed:?})"
    );
    assert!(matches!(writes, Ok(Ok(()))), "{writes:?}");
    for k in 0..64i64 {
        assert_eq!(m.get_as::<i64>(k).await.unwrap(), Some(k + 1));
    }
    eprintln!("removed after {removed:?}, the client's view without it after {learned_after:?}");
    client.shutdown();
}
