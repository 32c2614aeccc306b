//! Members that die, leave or come back: the member list follows.

mod common;
use common::*;
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

#[test]
fn killed_member_is_removed_within_ten_seconds_with_default_timings() {
    let list = member_list(21, 2..5);
    let mut members = start_all(21, 2..5, &list, &[]);
    let before = wait_converged(&refs(&members), 3, Duration::from_secs(20));
    let mut victim = members.pop().expect("three members");
    victim.kill9();
    let killed = Instant::now();
    let after = wait_converged(&refs(&members), 2, Duration::from_secs(10));
    eprintln!("kill -9 detected in {:?}", killed.elapsed());
    assert!(after.version > before.version);
    assert!(!after.addresses().contains(&victim.addr));
}

#[test]
fn killed_master_is_replaced_by_the_next_oldest() {
    let list = member_list(22, 2..6);
    let mut members = start_all(22, 2..6, &list, FAST);
    let before = wait_converged(&refs(&members), 4, Duration::from_secs(20));
    let master_addr = before.members[0].0.clone();
    let successor = before.members[1].0.clone();
    let idx = members
        .iter()
        .position(|m| m.addr == master_addr)
        .expect("master is ours");
    let mut master = members.remove(idx);
    master.kill9();
    let after = wait_converged(&refs(&members), 3, Duration::from_secs(15));
    assert_eq!(
        after.members[0].0, successor,
        "the next oldest member must be master"
    );
    assert!(after.version > before.version);
    // The survivors keep their join order.
    let expected: Vec<_> = before
        .list()
        .into_iter()
        .filter(|(a, _)| *a != master_addr)
        .collect();
    assert_eq!(after.list(), expected);
}

#[test]
fn graceful_leave_is_seen_at_once() {
    let list = member_list(23, 2..5);
    // Default (slow) failure detection: only the Leave message can explain a fast removal.
    let mut members = start_all(23, 2..5, &list, &[]);
    wait_converged(&refs(&members), 3, Duration::from_secs(20));
    let leaving = members.remove(1);
    let t = Instant::now();
    leaving.signal(Signal::SIGTERM);
    // Under the 5 s failure timeout: only the Leave message explains it. The
    // leaving member first waits until the others hold their replicas.
    wait_converged(&refs(&members), 2, Duration::from_secs(4));
    eprintln!("graceful leave seen in {:?}", t.elapsed());
    let mut leaving = leaving;
    let status = leaving
        .wait_exit(Duration::from_secs(5))
        .expect("member exits after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    assert!(leaving.log().contains("left the cluster"));
}

#[test]
fn graceful_leave_of_the_master_hands_over_at_once() {
    let list = member_list(24, 2..5);
    let mut members = start_all(24, 2..5, &list, &[]);
    let before = wait_converged(&refs(&members), 3, Duration::from_secs(20));
    let idx = members
        .iter()
        .position(|m| m.addr == before.members[0].0)
        .expect("master");
    let master = members.remove(idx);
    master.signal(Signal::SIGINT);
    let after = wait_converged(&refs(&members), 2, Duration::from_secs(4));
    assert_eq!(after.members[0].0, before.members[1].0);
}

#[test]
fn restarted_member_rejoins_with_a_new_uuid() {
    let list = member_list(25, 2..5);
    let mut members = start_all(25, 2..5, &list, FAST);
    let before = wait_converged(&refs(&members), 3, Duration::from_secs(20));
    let victim = members.pop().expect("three");
    let old_uuid = before
        .members
        .iter()
        .find(|m| m.0 == victim.addr)
        .expect("listed")
        .1
        .clone();
    let mut victim = victim;
    victim.kill9();
    // Restart at once, before the failure detector noticed: the master must
    // replace the old incarnation rather than keep both.
    members.push(Member::start(
        "127.0.25.4",
        &["--members", &list, FAST[0], FAST[1], FAST[2], FAST[3]],
    ));
    let after = wait_converged(&refs(&members), 3, Duration::from_secs(15));
    let new_uuid = after
        .members
        .iter()
        .find(|m| m.0 == victim.addr)
        .expect("rejoined")
        .1
        .clone();
    assert_ne!(old_uuid, new_uuid);
    assert!(after.version > before.version);
}

#[test]
fn paused_member_is_removed_then_rejoins_after_it_resumes() {
    let list = member_list(26, 2..5);
    let members = start_all(26, 2..5, &list, FAST);
    let before = wait_converged(&refs(&members), 3, Duration::from_secs(20));
    let paused = &members[2];
    paused.signal(Signal::SIGSTOP);
    let others = [&members[0], &members[1]];
    wait_converged(&others, 2, Duration::from_secs(10));
    paused.signal(Signal::SIGCONT);
    let after = wait_converged(&refs(&members), 3, Duration::from_secs(15));
    assert!(after.version > before.version + 1);
    assert_eq!(after.members[0], before.members[0], "the master stays");
}

/// Members close their connections to a member once it is off the list
/// (here: paused past the failure timeout), instead of keeping them open,
/// with whatever is queued for it, until it resumes or the connection
/// stalls. New connections for merge probes may come and go; the ones the
/// cluster used before the pause must be gone.
#[test]
fn connections_to_a_removed_member_are_closed() {
    let list = member_list(27, 2..5);
    let members = start_all(27, 2..5, &list, FAST);
    wait_converged(&refs(&members), 3, Duration::from_secs(20));
    let paused = &members[2];
    let survivors = [&members[0], &members[1]];
    // Heartbeats flow on every pair: each survivor has a connection.
    let mut before = Vec::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            let found: Vec<_> = survivors
                .iter()
                .map(|s| connections_between(s.pid(), paused.pid()))
                .collect();
            let all = found.iter().all(|c| !c.is_empty());
            before = found.concat();
            all
        }),
        "a survivor has no connection to the member to pause: {before:?}"
    );
    let t0 = Instant::now();
    paused.signal(Signal::SIGSTOP);
    wait_converged(&survivors, 2, Duration::from_secs(10));
    eprintln!(
        "removed after {:?}; connections before: {before:?}",
        t0.elapsed()
    );
    let mut open = Vec::new();
    let closed = wait_until(Duration::from_secs(5), || {
        open = still_established(&before);
        open.is_empty()
    });
    paused.signal(Signal::SIGCONT);
    assert!(closed, "still established after the removal: {open:?}");
    eprintln!("closed after {:?}", t0.elapsed());
    // It comes back over new connections.
    wait_converged(&refs(&members), 3, Duration::from_secs(15));
    eprintln!("back after {:?}", t0.elapsed());
}
