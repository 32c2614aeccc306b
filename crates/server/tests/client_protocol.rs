//! The client endpoint with raw protocol bytes: unknown and malformed
//! requests get clear error responses on a connection that stays usable;
//! an oversized or broken frame closes that connection only.

mod common;
use bytes::BytesMut;
use common::*;
use ferrocast_protocol::error_codes;
use ferrocast_protocol::messages::client_side;
use ferrocast_protocol::messages::types::{CLIENT_PING, EXCEPTION};
use ferrocast_protocol::messages::AuthenticationRequest;
use ferrocast_protocol::{ClientMessage, Frame, MessageDecoder, CLIENT_PREAMBLE};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

struct Raw {
    s: TcpStream,
    buf: BytesMut,
    dec: MessageDecoder,
}

impl Raw {
    fn connect(addr: &str) -> Raw {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(CLIENT_PREAMBLE).expect("preamble");
        Raw {
            s,
            buf: BytesMut::new(),
            dec: MessageDecoder::default(),
        }
    }

    fn send(&mut self, mut msg: ClientMessage, correlation: i64) {
        msg.set_correlation_id(correlation).expect("correlation");
        let mut out = BytesMut::new();
        msg.encode(&mut out);
        self.s.write_all(&out).expect("write");
    }

    /// The next message, or None when the member closed the connection.
    fn recv(&mut self) -> Option<ClientMessage> {
        loop {
            if let Some(m) = self.dec.decode(&mut self.buf).expect("well-formed answer") {
                return Some(m);
            }
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn authenticate(&mut self) {
        let auth = AuthenticationRequest {
            client_uuid: Some(uuid::Uuid::new_v4()),
            serialization_version: 1,
            cluster_name: "dev".into(),
            username: None,
            password: None,
            client_type: "RAW".into(),
            client_version: "0".into(),
            client_name: "raw".into(),
            labels: vec![],
        };
        self.send(client_side::authentication(&auth), 1);
        let resp = self.recv().expect("auth answer");
        assert_eq!(
            client_side::authentication_response(&resp)
                .expect("auth")
                .status,
            0
        );
    }

    fn ping_works(&mut self, correlation: i64) {
        self.send(client_side::bare(CLIENT_PING), correlation);
        let resp = self.recv().expect("ping answer");
        assert_eq!(resp.message_type().unwrap(), CLIENT_PING + 1);
        assert_eq!(resp.correlation_id().unwrap(), correlation);
    }
}

#[test]
fn unknown_and_malformed_requests_get_errors_and_the_connection_stays() {
    let _members = lone_member(85, FAST);
    let mut c = Raw::connect("127.0.85.2:5701");
    c.authenticate();

    c.send(client_side::bare(0x7F_0100), 2);
    let resp = c.recv().expect("answer to an unknown type");
    assert_eq!(resp.message_type().unwrap(), EXCEPTION);
    assert_eq!(resp.correlation_id().unwrap(), 2);
    let err = &client_side::error_response(&resp).unwrap()[0];
    assert_eq!(err.code, error_codes::UNSUPPORTED_OPERATION);
    assert!(
        err.message.as_deref().unwrap_or("").contains("0x7f0100"),
        "{err:?}"
    );
    c.ping_works(3);

    // A map.get without its name and key.
    c.send(client_side::bare(0x01_0200), 4);
    let resp = c.recv().expect("answer to a malformed request");
    let err = &client_side::error_response(&resp).unwrap()[0];
    assert_eq!(err.code, error_codes::ILLEGAL_ARGUMENT);
    c.ping_works(5);
}

#[test]
fn a_broken_frame_closes_only_its_connection() {
    let _members = lone_member(86, FAST);
    let mut good = Raw::connect("127.0.86.2:5701");
    good.authenticate();

    let mut big = Raw::connect("127.0.86.2:5701");
    big.authenticate();
    let mut frame = BytesMut::new();
    Frame::new(vec![0u8; 16]).write_to(&mut frame);
    frame[..4].copy_from_slice(&(64u32 * 1024 * 1024).to_le_bytes());
    big.s.write_all(&frame).expect("write");
    assert!(
        big.recv().is_none(),
        "an oversized frame must close the connection"
    );

    let mut short = Raw::connect("127.0.86.2:5701");
    short.authenticate();
    short.s.write_all(&[2, 0, 0, 0, 0, 0]).expect("write");
    assert!(
        short.recv().is_none(),
        "a frame shorter than its header must close the connection"
    );

    let mut unauth = Raw::connect("127.0.86.2:5701");
    unauth.send(client_side::bare(CLIENT_PING), 9);
    let resp = unauth.recv().expect("an error first");
    assert_eq!(
        client_side::error_response(&resp).unwrap()[0].code,
        error_codes::AUTHENTICATION
    );
    assert!(unauth.recv().is_none());

    good.ping_works(2);
}

/// A client that sends nothing, not even a ping, for the heartbeat timeout
/// is disconnected (its host may be gone without a reset: the member would
/// keep its connection and listeners forever); one that pings stays.
#[test]
fn a_silent_client_is_disconnected_and_a_pinging_one_stays() {
    let members = lone_member(115, &["--client-heartbeat-timeout", "1s"]);
    let mut silent = Raw::connect("127.0.115.2:5701");
    silent.authenticate();
    let started = std::time::Instant::now();
    let mut pinging = Raw::connect("127.0.115.2:5701");
    pinging.authenticate();
    for i in 0..10 {
        std::thread::sleep(Duration::from_millis(300));
        pinging.ping_works(10 + i);
    }
    // 3 s in: the silent one was closed after 1-1.25 s.
    assert!(
        silent.recv().is_none(),
        "the silent client is still connected"
    );
    let log = members[0].log();
    assert_eq!(
        log.matches("sent nothing for 1s; closing the connection")
            .count(),
        1,
        "{log}"
    );
    pinging.ping_works(30);
    eprintln!("checked after {:?}", started.elapsed());
}

/// A client that registered an entry listener and then stopped reading
/// (paused, or hung) is disconnected once its socket has taken nothing for
/// the write timeout, instead of the member queueing its events: here
/// 256 KiB events, 48 MiB of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_stops_reading_is_disconnected_after_the_write_timeout() {
    use ferrocast_protocol::messages::MapOp;
    let members = lone_member(117, &["--write-timeout", "1s"]);
    let mut stuck = Raw::connect("127.0.117.2:5701");
    stuck.authenticate();
    let listen = MapOp::AddEntryListener {
        key: None,
        include_value: true,
        flags: 0x7fff_ffff,
        local_only: false,
    };
    stuck.send(client_side::map_request("events", &listen, -1), 2);
    let answer = stuck.recv().expect("registration answer");
    assert_ne!(answer.message_type().unwrap(), EXCEPTION);
    // From here on `stuck` reads nothing.

    let addr = "127.0.117.2:5701".parse().expect("address");
    let client = ferrocast_client::Client::connect(ferrocast_client::ClientConfig::new(vec![addr]))
        .await
        .unwrap();
    let map = client.map("events");
    let value = vec![3u8; 256 * 1024];
    let started = std::time::Instant::now();
    let mut closed_after = None;
    for i in 0..192i64 {
        map.set(i, value.clone()).await.unwrap();
        if members[0]
            .log()
            .contains("took nothing for 1s; closing the connection")
        {
            closed_after = Some(started.elapsed());
            break;
        }
        if i % 16 == 15 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let closed = wait_until(Duration::from_secs(5), || {
        members[0]
            .log()
            .contains("took nothing for 1s; closing the connection")
    });
    assert!(closed, "{}", members[0].log());
    eprintln!("closed after {closed_after:?} of writes");
    // The member goes on serving others.
    map.set(-1i64, vec![1u8]).await.unwrap();
    assert!(map.get(-1i64).await.unwrap().is_some());
    client.shutdown();
}

/// Silence is counted in bytes, not whole messages: a client sending one
/// big request slowly, over more than the heartbeat timeout, is talking
/// and keeps its connection (the put goes through).
#[test]
fn a_client_sending_one_request_slowly_is_not_silent() {
    use ferrocast_protocol::data;
    use ferrocast_protocol::messages::MapOp;
    let members = lone_member(119, &["--client-heartbeat-timeout", "1s"]);
    let mut c = Raw::connect("127.0.119.2:5701");
    c.authenticate();
    let put = MapOp::Put {
        key: data::string("slow"),
        value: data::byte_array(&vec![4u8; 20_000]),
        ttl: -1,
    };
    let mut msg = client_side::map_request("slow", &put, -1);
    msg.set_correlation_id(2).expect("correlation");
    let mut bytes = BytesMut::new();
    msg.encode(&mut bytes);
    // 2.5 s for one message: 25 pieces, 100 ms apart.
    let piece = bytes.len().div_ceil(25);
    for part in bytes.chunks(piece) {
        c.s.write_all(part).expect("write");
        std::thread::sleep(Duration::from_millis(100));
    }
    let answer = c.recv().expect("the put's answer: the connection stayed");
    assert_ne!(answer.message_type().unwrap(), EXCEPTION);
    assert_eq!(answer.correlation_id().unwrap(), 2);
    let log = members[0].log();
    assert!(!log.contains("sent nothing for"), "{log}");
}
