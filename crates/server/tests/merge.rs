//! Two clusters of one group that can reach each other become one: the
//! smaller joins the larger. To have two clusters form apart, one of them
//! is started with a member list that does not name the other; the other
//! knows every address and finds it through its periodic merge probes.

mod common;
use common::*;
use std::time::Duration;

fn merge(subnet: u8, small_knows_all: bool) {
    let all = member_list(subnet, 2..7);
    let small_list = member_list(subnet, 2..4);
    let big_list = member_list(subnet, 4..7);
    let (small_members, big_members) = if small_knows_all {
        (all.clone(), big_list.clone())
    } else {
        (small_list.clone(), all.clone())
    };
    // The side that knows everybody starts first, so it cannot join the
    // other side while starting: the other side does not exist yet.
    let (small, big) = if small_knows_all {
        // Its first merge probe comes 4 s after it formed: by then the
        // other side (started right after) has all three members. Were it
        // sooner, it would find a 2-member cluster and, at equal sizes, the
        // lower master address (its own) would win: correct, but not this test.
        let mut slow_merge = FAST[..4].to_vec();
        slow_merge.extend(["--merge-interval", "4s"]);
        let small = start_all(subnet, 2..4, &small_members, &slow_merge);
        wait_converged(&refs(&small), 2, Duration::from_secs(20));
        let big = start_all(subnet, 4..7, &big_members, FAST);
        (small, big)
    } else {
        let big = start_all(subnet, 4..7, &big_members, FAST);
        wait_converged(&refs(&big), 3, Duration::from_secs(20));
        let small = start_all(subnet, 2..4, &small_members, FAST);
        (small, big)
    };
    let big_block = wait_converged(&refs(&big), 3, Duration::from_secs(20));
    let mut everyone = refs(&small);
    everyone.extend(refs(&big));
    let merged = wait_converged(&everyone, 5, Duration::from_secs(30));
    // The larger cluster's master stays master, its members keep their order.
    assert_eq!(merged.list()[..3], big_block.list()[..]);
    // The first small-side member always founds its own cluster (its list
    // names only its side) and must merge; the second may have merged with
    // it or, arriving late, joined the merged cluster directly.
    assert!(
        small.iter().any(|m| m.log().contains("merg")),
        "no member of the smaller cluster says it merged"
    );
}

#[test]
fn a_smaller_cluster_that_finds_a_larger_one_merges_into_it() {
    merge(41, true);
}

#[test]
fn a_larger_cluster_that_finds_a_smaller_one_asks_it_to_merge() {
    merge(42, false);
}
