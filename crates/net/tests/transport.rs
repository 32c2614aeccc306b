//! The transport over real loopback sockets: authentication, request and
//! response, and hostile input that must close one connection and nothing else.

use ferrocast_net::{
    Credentials, MemberInfo, MemberMessage, NetError, Transport, TransportConfig, PREAMBLE_CLIENT,
    PREAMBLE_MEMBER,
};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(3);

async fn start(
    ip: &str,
    group: &str,
    password: &str,
    clients: Option<mpsc::Sender<ferrocast_net::ClientStream>>,
) -> (
    Transport,
    mpsc::Receiver<ferrocast_net::Incoming>,
    SocketAddr,
) {
    let listener = TcpListener::bind(format!("{ip}:0")).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let me = MemberInfo::new(uuid::Uuid::new_v4(), addr);
    let mut cfg = TransportConfig::new(Credentials {
        group: group.into(),
        password: password.into(),
    });
    cfg.max_frame = 64 * 1024;
    let (t, rx) = Transport::start(listener, me, cfg, clients, CancellationToken::new());
    (t, rx, addr)
}

/// Answers every request with Ack, forever.
fn ack_all(mut rx: mpsc::Receiver<ferrocast_net::Incoming>) -> mpsc::Receiver<MemberMessage> {
    let (tx, seen) = mpsc::channel(100);
    tokio::spawn(async move {
        while let Some(inc) = rx.recv().await {
            let _ = tx.send(inc.body.clone()).await;
            if let Some(r) = inc.responder {
                let _ = r.respond(MemberMessage::Ack).await;
            }
        }
    });
    seen
}

#[tokio::test]
async fn same_group_and_password_talk() {
    let (a, _rx_a, _) = start("127.0.61.2", "g", "pw", None).await;
    let (_b, rx_b, b_addr) = start("127.0.61.3", "g", "pw", None).await;
    let mut seen = ack_all(rx_b);
    for _ in 0..50 {
        let reply = a
            .request(b_addr, MemberMessage::WhoIsMaster, T)
            .await
            .unwrap();
        assert_eq!(reply, MemberMessage::Ack);
    }
    a.send(b_addr, MemberMessage::Heartbeat { list: None })
        .await
        .unwrap();
    let mut got = 0;
    while let Ok(Some(m)) = tokio::time::timeout(T, seen.recv()).await {
        got += 1;
        if m == (MemberMessage::Heartbeat { list: None }) {
            break;
        }
    }
    assert_eq!(got, 51);
    // The connection was reused: one pooled connection for all of them.
    let c1 = a.connection(b_addr).await.unwrap();
    let c2 = a.connection(b_addr).await.unwrap();
    assert_eq!(c1.peer(), c2.peer());
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_never_sent() {
    let (a, _rx_a, _) = start("127.0.61.4", "g", "one", None).await;
    let (_b, _rx_b, b_addr) = start("127.0.61.5", "g", "two", None).await;
    match a.request(b_addr, MemberMessage::WhoIsMaster, T).await {
        Err(NetError::PeerFailedProof { .. }) => {}
        other => panic!("expected a failed proof, got {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_group_is_refused_with_the_reason() {
    let (a, _rx_a, _) = start("127.0.61.6", "blue", "", None).await;
    let (_b, _rx_b, b_addr) = start("127.0.61.7", "green", "", None).await;
    match a.request(b_addr, MemberMessage::WhoIsMaster, T).await {
        Err(NetError::Refused { reason, .. }) => {
            assert!(reason.contains("group name mismatch"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn the_password_never_crosses_the_wire() {
    // A fake member records what a real one sends while joining.
    let listener = TcpListener::bind("127.0.61.8:0").await.unwrap();
    let fake = listener.local_addr().unwrap();
    let (a, _rx, _) = start("127.0.61.9", "g", "very-secret-password", None).await;
    let probe = tokio::spawn(async move { a.request(fake, MemberMessage::WhoIsMaster, T).await });
    let (mut s, _) = listener.accept().await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(T, s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    drop(s);
    let bytes = &buf[..n];
    assert_eq!(&bytes[..3], PREAMBLE_MEMBER);
    assert!(
        !bytes.windows(8).any(|w| w == b"very-sec"),
        "password sent in clear"
    );
    assert!(probe.await.unwrap().is_err());
}

#[tokio::test]
async fn hostile_connections_are_closed_and_others_keep_working() {
    let (client_tx, mut client_rx) = mpsc::channel(4);
    let (a, _rx_a, _) = start("127.0.61.10", "g", "pw", None).await;
    let (_b, rx_b, b_addr) = start("127.0.61.11", "g", "pw", Some(client_tx)).await;
    let _seen = ack_all(rx_b);

    // Unknown preamble: closed.
    let mut junk = TcpStream::connect(b_addr).await.unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        tokio::time::timeout(T, junk.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0),
        0
    );

    // A member preamble and then a frame larger than the limit: closed.
    let mut big = TcpStream::connect(b_addr).await.unwrap();
    big.write_all(PREAMBLE_MEMBER).await.unwrap();
    big.write_all(&(10u32 * 1024 * 1024).to_be_bytes())
        .await
        .unwrap();
    let _ = big.write_all(&[0u8; 1024]).await;
    assert_eq!(
        tokio::time::timeout(T, big.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0),
        0
    );

    // A well-sized frame of garbage: closed.
    let mut garbage = TcpStream::connect(b_addr).await.unwrap();
    garbage.write_all(PREAMBLE_MEMBER).await.unwrap();
    garbage.write_all(&8u32.to_be_bytes()).await.unwrap();
    garbage.write_all(&[0xff; 8]).await.unwrap();
    assert_eq!(
        tokio::time::timeout(T, garbage.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0),
        0
    );

    // A client-protocol connection is handed over, preamble consumed.
    let mut client = TcpStream::connect(b_addr).await.unwrap();
    client.write_all(PREAMBLE_CLIENT).await.unwrap();
    client.write_all(b"rest").await.unwrap();
    let (mut handed, _) = tokio::time::timeout(T, client_rx.recv())
        .await
        .unwrap()
        .unwrap();
    let mut rest = [0u8; 4];
    handed.read_exact(&mut rest).await.unwrap();
    assert_eq!(&rest, b"rest");

    // The member is still fine.
    assert_eq!(
        a.request(b_addr, MemberMessage::WhoIsMaster, T)
            .await
            .unwrap(),
        MemberMessage::Ack
    );
}

#[tokio::test]
async fn members_dialing_each_other_at_once_both_work() {
    let (a, rx_a, a_addr) = start("127.0.61.12", "g", "pw", None).await;
    let (b, rx_b, b_addr) = start("127.0.61.13", "g", "pw", None).await;
    let _sa = ack_all(rx_a);
    let _sb = ack_all(rx_b);
    for _ in 0..20 {
        let (x, y) = tokio::join!(
            a.request(b_addr, MemberMessage::WhoIsMaster, T),
            b.request(a_addr, MemberMessage::WhoIsMaster, T)
        );
        assert_eq!(x.unwrap(), MemberMessage::Ack);
        assert_eq!(y.unwrap(), MemberMessage::Ack);
    }
    // Both sides settled on the connection dialed by the lower address.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ca = a.connection(b_addr).await.unwrap();
    let cb = b.connection(a_addr).await.unwrap();
    assert_eq!(
        ca.origin(),
        ferrocast_net::Origin::Dialed,
        "a (lower) keeps its dial"
    );
    assert_eq!(
        cb.origin(),
        ferrocast_net::Origin::Accepted,
        "b uses a's dial"
    );
}
