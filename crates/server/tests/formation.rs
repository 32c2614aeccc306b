//! Members started at the same instant form one cluster with one member list.

mod common;
use common::*;
use std::time::Duration;

fn forms_one_cluster(subnet: u8, n: u8) {
    let list = member_list(subnet, 2..2 + n);
    let members = start_all(subnet, 2..2 + n, &list, FAST);
    let block = wait_converged(&refs(&members), n as usize, Duration::from_secs(20));
    // One cluster: the first member's list is every member, master first, and
    // nobody ever printed a list naming a member from another cluster.
    assert_eq!(block.size, n as usize);
    for m in &members {
        for b in m.blocks() {
            assert!(
                b.list().iter().all(|x| block.list().contains(x)),
                "{} printed a foreign list {b:?}",
                m.addr
            );
        }
    }
    // The master is the oldest member and so the first line of every block.
    let master = &block.members[0].0;
    for m in &members {
        let first = &m.blocks()[0];
        assert_eq!(
            &first.members[0].0, master,
            "{} saw another master first",
            m.addr
        );
    }
    // Each says how it got in, once: the master founded the cluster, the
    // others joined it (whether the master's answer or its member list
    // reached them first).
    let joined = format!(
        "joined the cluster of master {}",
        master.replace(['[', ']'], "")
    );
    for m in &members {
        let log = m.log();
        let (founded, joins) = (
            log.matches("starting a new cluster as its master").count(),
            log.matches(&joined).count(),
        );
        if &m.addr == master {
            assert_eq!((founded, joins), (1, 0), "{}:\n{log}", m.addr);
        } else {
            assert_eq!((founded, joins), (0, 1), "{}:\n{log}", m.addr);
        }
    }
}

#[test]
fn three_members_started_at_once_form_one_cluster() {
    forms_one_cluster(11, 3);
}

#[test]
fn five_members_started_at_once_form_one_cluster() {
    forms_one_cluster(12, 5);
}

#[test]
fn zero_config_members_on_one_host_find_each_other() {
    // No --members: each probes 127.0.0.1:5701-5703; no port: each takes the
    // next free port from 5701.
    let members: Vec<Member> = (0..3)
        .map(|_| {
            let m = Member::start_bare(&[
                "--bind",
                "127.0.0.1",
                "--heartbeat-interval",
                "250ms",
                "--failure-timeout",
                "2s",
            ]);
            std::thread::sleep(Duration::from_millis(150));
            m
        })
        .collect();
    let mut ok = None;
    wait_until(Duration::from_secs(20), || {
        let blocks: Option<Vec<Block>> = members.iter().map(|m| m.last_block()).collect();
        ok = blocks.filter(|b| {
            b.iter()
                .all(|x| x.size == 3 && x.list() == b[0].list() && x.version == b[0].version)
        });
        ok.is_some()
    });
    let Some(blocks) = ok else {
        members.iter().for_each(|m| m.dump());
        panic!("zero-config members did not form one cluster");
    };
    let mut addrs = blocks[0].addresses();
    addrs.sort();
    assert_eq!(
        addrs,
        ["[127.0.0.1]:5701", "[127.0.0.1]:5702", "[127.0.0.1]:5703"]
    );
}

/// The lowest member of a static list starting a moment after a higher
/// one: the higher one waits for it (`--startup-patience`, 1 s for a
/// static list) instead of founding a cluster of its own that a merge
/// round would fold in later.
#[test]
fn a_higher_member_started_first_waits_for_the_lowest() {
    let list = member_list(13, 2..4);
    let mut args = vec!["--members", list.as_str()];
    args.extend_from_slice(FAST);
    let higher = Member::start("127.0.13.3", &args);
    std::thread::sleep(Duration::from_millis(300));
    let lowest = Member::start("127.0.13.2", &args);
    let block = wait_converged(&[&higher, &lowest], 2, Duration::from_secs(20));
    assert_eq!(block.members[0].0, lowest.addr, "the lowest is master");
    assert!(
        higher.blocks().iter().all(|b| b.size == 2),
        "the higher member founded a cluster first:\n{}",
        higher.log()
    );
    assert!(
        higher.log().contains("not listening yet"),
        "{}",
        higher.log()
    );
}
