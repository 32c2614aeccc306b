//! Only members of the same group with the same password join; the others
//! stay alone and both sides say why.

mod common;
use common::*;
use std::time::Duration;

fn with(extra: &[&'static str], list: &'static str) -> Vec<&'static str> {
    let mut v = vec!["--members", list];
    v.extend_from_slice(FAST);
    v.extend_from_slice(extra);
    v
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[test]
fn wrong_password_stays_out_and_both_sides_log_why() {
    let list = leak(member_list(31, 2..5));
    let good = ["--group", "prod", "--password", "right-one"];
    let a = Member::start("127.0.31.2", &with(&good, list));
    let b = Member::start("127.0.31.3", &with(&good, list));
    let bad = Member::start(
        "127.0.31.4",
        &with(&["--group", "prod", "--password", "wrong-one"], list),
    );
    wait_converged(&[&a, &b], 2, Duration::from_secs(20));
    // The intruder ends up alone, and keeps saying why.
    assert!(
        wait_until(Duration::from_secs(10), || {
            bad.log().matches("wrong group password").count() >= 2
        }),
        "intruder log:\n{}",
        bad.log()
    );
    assert!(
        wait_until(Duration::from_secs(10), || bad.last_block().is_some()),
        "it starts a cluster of its own"
    );
    assert_eq!(bad.last_block().map(|b| b.size), Some(1));
    for m in [&a, &b] {
        assert_eq!(m.last_block().map(|b| b.size), Some(2));
    }
    // The cluster's side logged the refusal too.
    assert!(wait_until(Duration::from_secs(10), || {
        a.log().contains("wrong group password") || b.log().contains("wrong group password")
    }));
    // The password itself is never logged.
    for m in [&a, &b, &bad] {
        assert!(!m.log().contains("right-one") && !m.log().contains("wrong-one"));
    }
}

#[test]
fn wrong_group_stays_out_and_both_sides_log_why() {
    let list = leak(member_list(32, 2..5));
    let a = Member::start("127.0.32.2", &with(&["--group", "blue"], list));
    let b = Member::start("127.0.32.3", &with(&["--group", "blue"], list));
    let other = Member::start("127.0.32.4", &with(&["--group", "green"], list));
    wait_converged(&[&a, &b], 2, Duration::from_secs(20));
    assert!(
        wait_until(Duration::from_secs(10), || {
            other.log().matches("group name mismatch").count() >= 2
        }),
        "outsider log:\n{}",
        other.log()
    );
    // Its own Members block follows the refusals (CI once read the log in
    // between), as in the wrong-password test above.
    assert!(
        wait_until(Duration::from_secs(10), || other.last_block().is_some()),
        "it starts a cluster of its own"
    );
    assert_eq!(other.last_block().map(|b| b.size), Some(1));
    assert!(a.log().contains("group name mismatch") || b.log().contains("group name mismatch"));
}

#[test]
fn password_from_the_environment_works() {
    let list = leak(member_list(33, 2..4));
    let env = [
        ("HC_GROUP_NAME", "envgroup"),
        ("HC_GROUP_PASSWORD", "from-env"),
    ];
    let a = Member::start_with_env("127.0.33.2", &with(&[], list), &env);
    let b = Member::start_with_env("127.0.33.3", &with(&[], list), &env);
    wait_converged(&[&a, &b], 2, Duration::from_secs(20));
    assert!(a.log().contains("group 'envgroup' (password protected)"));
}

/// A member of another member protocol version (a build standing in for
/// the old one of an upgrade) is refused, and instead of founding a second
/// cluster next to the running one (the Service would route clients to
/// both) it stays out of any cluster and unready, saying why; once the
/// other version's members are gone, it founds its own.
#[test]
fn a_member_of_another_protocol_version_stays_unready_until_they_are_gone() {
    use std::io::{Read, Write};
    let list = leak(member_list(34, 2..4));
    let mut old = Member::start("127.0.34.2", &with(&[], list));
    wait_converged(&[&old], 1, Duration::from_secs(20));
    let env = [("FERROCAST_TEST_MEMBER_PROTOCOL_VERSION", "99")];
    let new = Member::start_with_env("127.0.34.3", &with(&[], list), &env);
    assert!(
        wait_until(Duration::from_secs(10), || {
            new.log().contains("not starting a cluster")
        }),
        "new member's log:\n{}",
        new.log()
    );
    assert!(new
        .log()
        .contains("member protocol version 99 is not supported"));
    // Well past the rounds after which it would found a cluster (a static
    // list founds at once), it still has none and is not ready.
    std::thread::sleep(Duration::from_secs(3));
    assert!(new.last_block().is_none(), "{}", new.log());
    let ready = |addr: &str| -> String {
        let mut s = std::net::TcpStream::connect(addr).expect("member port");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /hazelcast/health/ready HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    assert!(ready("127.0.34.3:5701").contains("503"), "not ready");
    assert_eq!(old.last_block().map(|b| b.size), Some(1));
    old.kill9();
    assert!(
        wait_until(Duration::from_secs(20), || new.last_block().is_some()),
        "it founds once the other version is gone:\n{}",
        new.log()
    );
    assert_eq!(new.last_block().map(|b| b.size), Some(1));
    assert!(wait_until(Duration::from_secs(10), || ready(
        "127.0.34.3:5701"
    )
    .contains("200")));
}
