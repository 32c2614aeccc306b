//! The command line: documented, strict, and clear when something is wrong.

mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .env_remove("HC_PORT")
        .env_remove("HC_GROUP_NAME")
        .output()
        .expect("run ferrocast");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_documents_every_setting() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for needle in [
        "--bind",
        "--public-address",
        "--group",
        "--password",
        "--members",
        "--config",
        "--heartbeat-interval",
        "--failure-timeout",
        "--merge-interval",
        "--write-timeout",
        "--client-heartbeat-timeout",
        "HC_PORT",
        "HC_GROUP_NAME",
        "HC_GROUP_PASSWORD",
        "POD_IP",
        "HC_REST_ENABLED",
        "HAZELCAST_SERVICE",
        "POD_NAMESPACE",
        "DNS_DOMAIN",
        "KUBERNETES_MASTER",
    ] {
        assert!(
            out.contains(needle),
            "--help does not mention {needle}:\n{out}"
        );
    }
}

#[test]
fn bad_values_are_one_line_errors_with_exit_code_2() {
    for args in [
        &["--bind", "not-an-address"][..],
        &["--port", "70000"],
        &["--members", "a b"],
        &["--heartbeat-interval", "soon"],
        &["--heartbeat-interval", "2s", "--failure-timeout", "3s"],
        &["--write-timeout", "10ms"],
        &["--write-timeout", "later"],
        &["--client-heartbeat-timeout", "50ms"],
        &["--config", "/nonexistent/ferrocast.yaml"],
        &["--no-such-flag"],
    ] {
        let (code, _, err) = run(args);
        assert_eq!(code, 2, "{args:?}: exit {code}, stderr:\n{err}");
        let first = err.lines().next().unwrap_or_default();
        assert!(first.starts_with("error:"), "{args:?}: {err}");
    }
}

#[test]
fn an_explicit_port_that_is_taken_is_an_error() {
    let _holder = std::net::TcpListener::bind("127.0.51.2:5701").expect("bind");
    let (code, out, err) = run(&["--bind", "127.0.51.2:5701"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("cannot listen on 127.0.51.2:5701"),
        "{out}{err}"
    );
}

#[test]
fn a_taken_default_port_moves_to_the_next_one() {
    let _holder = std::net::TcpListener::bind("127.0.51.3:5701").expect("bind");
    let m = Member::start_bare(&["--bind", "127.0.51.3", "--members", "127.0.51.3"]);
    assert!(
        wait_until(Duration::from_secs(10), || {
            m.last_block()
                .is_some_and(|b| b.addresses() == ["[127.0.51.3]:5702"])
        }),
        "{}",
        m.log()
    );
}

#[test]
fn a_yaml_file_configures_the_member() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ferrocast.yaml");
    std::fs::write(
        &path,
        "group: yaml-group\npassword: pw\nmembers:\n  - 127.0.51.4\n",
    )
    .expect("write");
    let m = Member::start("127.0.51.4", &["--config", path.to_str().expect("utf8")]);
    assert!(wait_until(Duration::from_secs(10), || m
        .last_block()
        .is_some()));
    assert!(
        m.log().contains("group 'yaml-group' (password protected)"),
        "{}",
        m.log()
    );
}
