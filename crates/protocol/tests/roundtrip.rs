//! Every request the client side builds decodes back to itself on the member
//! side; every response and event the member builds reads back on the client
//! side; and no byte sequence makes the decoders panic.

use bytes::{Bytes, BytesMut};
use ferrocast_protocol::codec::{Address, ErrorHolder, MemberDescription};
use ferrocast_protocol::messages::client_side::{self, MapResponse};
use ferrocast_protocol::messages::responses::{self, AuthenticationResponse, EntryEvent};
use ferrocast_protocol::messages::AuthenticationRequest;
use ferrocast_protocol::{data, ClientMessage, MapOp, MapRequest, MessageDecoder, Request};
use uuid::Uuid;

fn wire(msg: &ClientMessage) -> ClientMessage {
    let mut buf = BytesMut::new();
    msg.encode(&mut buf);
    MessageDecoder::default().decode(&mut buf).unwrap().unwrap()
}

fn ops() -> Vec<MapOp> {
    let k = data::string("key");
    let v = data::int(7);
    vec![
        MapOp::Put {
            key: k.clone(),
            value: v.clone(),
            ttl: 1500,
        },
        MapOp::Set {
            key: k.clone(),
            value: v.clone(),
            ttl: -1,
        },
        MapOp::PutTransient {
            key: k.clone(),
            value: v.clone(),
            ttl: 0,
        },
        MapOp::PutIfAbsent {
            key: k.clone(),
            value: v.clone(),
            ttl: 5,
        },
        MapOp::Get { key: k.clone() },
        MapOp::Remove { key: k.clone() },
        MapOp::Delete { key: k.clone() },
        MapOp::RemoveIfSame {
            key: k.clone(),
            value: v.clone(),
        },
        MapOp::Replace {
            key: k.clone(),
            value: v.clone(),
        },
        MapOp::ReplaceIfSame {
            key: k.clone(),
            expected: v.clone(),
            value: data::int(8),
        },
        MapOp::ContainsKey { key: k.clone() },
        MapOp::ContainsValue { value: v.clone() },
        MapOp::Size,
        MapOp::IsEmpty,
        MapOp::Clear,
        MapOp::GetAll {
            keys: vec![k.clone(), data::string("other")],
        },
        MapOp::PutAll {
            entries: vec![(k.clone(), v.clone()), (data::long(1), data::boolean(true))],
        },
        MapOp::KeySet,
        MapOp::Values,
        MapOp::EntrySet,
        MapOp::SetTtl {
            key: k.clone(),
            ttl: 1000,
        },
        MapOp::Evict { key: k.clone() },
        MapOp::EvictAll,
        MapOp::AddEntryListener {
            key: None,
            include_value: true,
            flags: 1 | 2 | 4,
            local_only: true,
        },
        MapOp::AddEntryListener {
            key: Some(k.clone()),
            include_value: false,
            flags: 16,
            local_only: false,
        },
        MapOp::RemoveEntryListener {
            registration: Uuid::new_v4(),
        },
        MapOp::GetEntryView { key: k },
    ]
}

#[test]
fn every_map_request_round_trips() {
    for op in ops() {
        let msg = wire(&client_side::map_request("my-map", &op, 17));
        assert_eq!(msg.partition_id().unwrap(), 17);
        let decoded = Request::decode(&msg).unwrap();
        assert_eq!(
            decoded,
            Request::Map(MapRequest {
                name: "my-map".into(),
                op: op.clone()
            }),
            "{op:?}"
        );
    }
}

/// Map names are kept inline up to 24 bytes and on the heap beyond: both
/// read back whole, multi-byte characters included.
#[test]
fn map_names_of_any_length_round_trip() {
    let op = MapOp::Get {
        key: Bytes::from_static(b"k"),
    };
    for name in [
        "",
        "m",
        "exactly-24-bytes-long-ok",
        "a-name-longer-than-24-bytes-ü-€-𝄞",
    ] {
        let msg = wire(&client_side::map_request(name, &op, 3));
        let Request::Map(decoded) = Request::decode(&msg).unwrap() else {
            panic!("not a map request");
        };
        assert_eq!(decoded.name, name);
    }
}

#[test]
fn authentication_round_trips() {
    let req = AuthenticationRequest {
        client_uuid: Some(Uuid::new_v4()),
        serialization_version: 1,
        cluster_name: "dev".into(),
        username: Some("dev".into()),
        password: None,
        client_type: "RST".into(),
        client_version: "0.1.0".into(),
        client_name: "rust-1".into(),
        labels: vec!["a".into(), "b".into()],
    };
    assert_eq!(
        Request::decode(&wire(&client_side::authentication(&req))).unwrap(),
        Request::Authentication(req)
    );

    let addr = Address {
        host: "127.0.0.2".into(),
        port: 5701,
    };
    let id = Uuid::new_v4();
    let resp = responses::authentication(
        9,
        &AuthenticationResponse {
            status: 0,
            address: Some(&addr),
            member_uuid: Some(id),
            serialization_version: 1,
            server_version: "5.7.0",
            partition_count: 271,
            cluster_id: Some(id),
        },
    );
    let back = client_side::authentication_response(&wire(&resp)).unwrap();
    assert_eq!(
        (back.status, back.partition_count, back.member_uuid),
        (0, 271, Some(id))
    );
    assert_eq!(back.address, Some(addr));
    assert_eq!(back.server_version, "5.7.0");
}

#[test]
fn responses_read_back() {
    let d = data::string("v");
    let get = MapOp::Get { key: d.clone() };
    let m = wire(&responses::nullable_data(0x010200, 3, Some(d.clone())));
    assert_eq!(m.correlation_id().unwrap(), 3);
    assert_eq!(m.message_type().unwrap(), 0x010201);
    assert_eq!(
        client_side::map_response(&get, &m).unwrap(),
        MapResponse::Data(Some(d.clone()))
    );
    assert_eq!(
        client_side::map_response(&get, &wire(&responses::nullable_data(0x010200, 3, None)))
            .unwrap(),
        MapResponse::Data(None)
    );
    assert_eq!(
        client_side::map_response(&MapOp::Size, &wire(&responses::int(0x012A00, 1, 42))).unwrap(),
        MapResponse::Int(42)
    );
    assert_eq!(
        client_side::map_response(
            &MapOp::IsEmpty,
            &wire(&responses::boolean(0x012B00, 1, true))
        )
        .unwrap(),
        MapResponse::Bool(true)
    );
    let entries = vec![(d.clone(), data::int(1))];
    assert_eq!(
        client_side::map_response(
            &MapOp::EntrySet,
            &wire(&responses::entry_list(0x012500, 1, entries.clone()))
        )
        .unwrap(),
        MapResponse::Entries(entries)
    );
    let err = ErrorHolder {
        code: 61,
        class_name: "java.lang.UnsupportedOperationException".into(),
        message: Some("no".into()),
    };
    assert_eq!(
        client_side::error_response(&wire(&responses::error(5, &err))).unwrap(),
        vec![err]
    );
}

#[test]
fn view_and_entry_events_read_back() {
    let members: Vec<MemberDescription> = (2..5)
        .map(|i| MemberDescription {
            uuid: Uuid::new_v4(),
            address: Address {
                host: format!("127.0.0.{i}"),
                port: 5701,
            },
            version: (5, 7, 0),
        })
        .collect();
    let ev = wire(&responses::members_view_event(4, 3, &members));
    assert!(ev.is_event());
    let (version, got) = client_side::members_view(&ev).unwrap();
    assert_eq!(version, 3);
    assert_eq!(
        got,
        members
            .iter()
            .map(|m| (m.uuid, m.address.clone()))
            .collect::<Vec<_>>()
    );

    let owners = vec![
        (members[0].uuid, vec![0, 2, 4]),
        (members[1].uuid, vec![1, 3]),
    ];
    let (v, back) =
        client_side::partitions_view(&wire(&responses::partitions_view_event(4, 9, &owners)))
            .unwrap();
    assert_eq!((v, back), (9, owners));

    let e = EntryEvent {
        event_type: 4,
        member: Uuid::new_v4(),
        affected: 1,
        key: Some(data::string("k")),
        value: Some(data::int(2)),
        old_value: Some(data::int(1)),
    };
    let msg = wire(&responses::entry_event(0x011900, 77, &e));
    assert_eq!(msg.message_type().unwrap(), 0x011902);
    assert_eq!(
        client_side::entry_event(&msg).unwrap(),
        (4, e.key, e.value, e.old_value)
    );
}

#[test]
fn partition_of_a_string_matches_hazelcast() {
    // Partition ids the Hazelcast Python client 5.7.0 computes for these keys
    // (271 partitions), recorded from `client.partition_service.get_partition_id`.
    for (key, expected) in KNOWN_PARTITIONS {
        assert_eq!(
            data::partition_id(&data::string(key), 271),
            *expected,
            "{key}"
        );
    }
}

const KNOWN_PARTITIONS: &[(&str, u32)] = include!("known_partitions.in");

/// Deterministic pseudo-random bytes (no extra crates).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn no_input_makes_the_decoders_panic() {
    // Valid messages, cut and corrupted, and pure noise.
    let valid: Vec<BytesMut> = ops()
        .iter()
        .map(|op| {
            let mut b = BytesMut::new();
            client_side::map_request("m", op, 1).encode(&mut b);
            b
        })
        .collect();
    for seed in 0..20_000u64 {
        let base = &valid[(seed as usize) % valid.len()];
        let mut bytes = base.to_vec();
        let n = noise(seed, 4);
        let pos = (n[0] as usize * 256 + n[1] as usize) % bytes.len();
        bytes[pos] ^= n[2] | 1;
        if seed % 3 == 0 {
            bytes.truncate((n[3] as usize * 7) % bytes.len());
        }
        if seed % 5 == 0 {
            bytes = noise(seed, (n[3] as usize) % 200);
        }
        let mut buf = BytesMut::from(&bytes[..]);
        let mut dec = MessageDecoder::new(4096, 16384);
        while let Ok(Some(msg)) = dec.decode(&mut buf) {
            let _ = Request::decode(&msg);
            let _ = client_side::members_view(&msg);
            let _ = client_side::partitions_view(&msg);
            let _ = client_side::authentication_response(&msg);
            let _ = client_side::error_response(&msg);
        }
    }
    let _ = Bytes::new();
}

#[test]
fn chunked_encoding_is_the_same_bytes_as_plain_encoding() {
    use ferrocast_protocol::frame::LARGE_FRAME;
    use ferrocast_protocol::Frame;
    let msg = ClientMessage {
        frames: vec![
            Frame::new(Bytes::from(vec![1u8; 22])),
            Frame::new(Bytes::from(vec![2u8; LARGE_FRAME + 10])),
            Frame::new(Bytes::from(vec![3u8; 5])),
            Frame::new(Bytes::from(vec![4u8; 3 * LARGE_FRAME])),
        ],
    };
    let mut plain = BytesMut::new();
    msg.encode(&mut plain);
    let (mut staging, mut chunks) = (BytesMut::new(), Vec::new());
    msg.encode_chunks(&mut staging, &mut chunks);
    chunks.push(staging.split().freeze());
    let joined: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    assert_eq!(joined, plain.to_vec());
    // The two large contents travel as their own chunks, not copied.
    assert!(chunks.iter().any(|c| c.len() == LARGE_FRAME + 10));
    assert!(chunks.iter().any(|c| c.len() == 3 * LARGE_FRAME));
}

#[test]
fn chunked_encoding_under_a_correlation_id_is_the_same_bytes() {
    use ferrocast_protocol::frame::LARGE_FRAME;
    let value = data::byte_array(&vec![9u8; 3 * LARGE_FRAME]);
    let op = MapOp::Set {
        key: data::string("key"),
        value,
        ttl: -1,
    };
    let msg = client_side::map_request("m", &op, 3);
    let mut plain = BytesMut::new();
    msg.encode_with_correlation(77, &mut plain).unwrap();
    let (mut staging, mut chunks) = (BytesMut::new(), Vec::new());
    // Something staged before it, as in a batch: the id goes at its offset
    // in this message, not the batch's.
    staging.extend_from_slice(b"before");
    msg.encode_chunks_with_correlation(77, &mut staging, &mut chunks)
        .unwrap();
    chunks.push(staging.split().freeze());
    let joined: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    assert_eq!(&joined[..6], b"before");
    assert_eq!(joined[6..], plain[..]);
    // The value travels as a chunk of its own, not copied.
    assert!(chunks.iter().any(|c| c.len() > 3 * LARGE_FRAME));
    let sent = MessageDecoder::default()
        .decode(&mut plain)
        .unwrap()
        .unwrap();
    assert_eq!(sent.correlation_id().unwrap(), 77);
}

#[test]
fn encoding_under_another_correlation_id_leaves_the_message_alone() {
    let op = MapOp::Get {
        key: data::string("key"),
    };
    let mut msg = client_side::map_request("m", &op, 3);
    msg.set_correlation_id(5).unwrap();
    let mut buf = BytesMut::from(&b"already queued"[..]);
    msg.encode_with_correlation(77, &mut buf).unwrap();
    assert_eq!(&buf[..14], b"already queued");
    let _ = buf.split_to(14);
    let sent = MessageDecoder::default().decode(&mut buf).unwrap().unwrap();
    assert_eq!(sent.correlation_id().unwrap(), 77);
    assert_eq!(
        msg.correlation_id().unwrap(),
        5,
        "the message keeps its own id"
    );
    let mut expected = msg.clone();
    expected.set_correlation_id(77).unwrap();
    assert_eq!(wire(&expected), sent);
    // A message without an initial frame is refused, not written half.
    let mut out = BytesMut::new();
    assert!(ClientMessage::default()
        .encode_with_correlation(1, &mut out)
        .is_err());
    assert!(out.is_empty());
}
