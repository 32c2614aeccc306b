//! The membership state machine driven without sockets: a simulated network
//! of members with a virtual clock, where links can be cut and members can
//! crash, pause or leave. Deterministic, so every scenario runs in
//! milliseconds and fails the same way every time.

use ferrocast_cluster::{Action, Membership, MembershipConfig, ProbeOutcome, ProbeReport};
use ferrocast_net::{MemberInfo, MemberMessage};
use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use uuid::Uuid;

const STEP: Duration = Duration::from_millis(50);

struct Node {
    m: Membership,
    alive: bool,
    paused: bool,
}

struct Sim {
    nodes: Vec<Node>,
    now: Instant,
    queue: VecDeque<(usize, SocketAddr, MemberMessage)>,
    cut: HashSet<(usize, usize)>,
    cfg: MembershipConfig,
}

fn addr(i: usize) -> SocketAddr {
    format!("127.0.0.{}:5701", i + 2).parse().unwrap()
}

impl Sim {
    fn new(cfg: MembershipConfig) -> Sim {
        Sim {
            nodes: Vec::new(),
            now: Instant::now(),
            queue: VecDeque::new(),
            cut: HashSet::new(),
            cfg,
        }
    }

    fn start(&mut self) -> usize {
        let i = self.nodes.len();
        self.start_at(i);
        i
    }

    /// (Re)starts member `i` with a fresh UUID.
    fn start_at(&mut self, i: usize) {
        let me = MemberInfo::new(Uuid::new_v4(), addr(i));
        let node = Node {
            m: Membership::new(me, self.cfg.clone(), self.now),
            alive: true,
            paused: false,
        };
        if i < self.nodes.len() {
            self.nodes[i] = node;
        } else {
            self.nodes.push(node);
        }
    }

    fn index(&self, a: SocketAddr) -> Option<usize> {
        (0..self.nodes.len()).find(|i| addr(*i) == a)
    }

    fn reachable(&self, from: usize, to: usize) -> bool {
        let n = &self.nodes[to];
        n.alive && !n.paused && !self.cut.contains(&(from, to)) && !self.cut.contains(&(to, from))
    }

    fn split(&mut self, a: &[usize], b: &[usize]) {
        for x in a {
            for y in b {
                self.cut.insert((*x, *y));
            }
        }
    }

    fn execute(&mut self, from: usize, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send { to, msg } => self.queue.push_back((from, to, msg)),
                Action::Probe { purpose, extra } => {
                    let mut reports = Vec::new();
                    let mut targets: Vec<SocketAddr> = (0..self.nodes.len()).map(addr).collect();
                    targets.extend(extra);
                    targets.dedup();
                    for t in targets {
                        if t == addr(from) {
                            continue;
                        }
                        let outcome = match self.index(t) {
                            Some(j) if self.reachable(from, j) => {
                                match self.nodes[j].m.master_answer() {
                                    MemberMessage::MasterAnswer(a) => ProbeOutcome::Answer(a),
                                    _ => unreachable!(),
                                }
                            }
                            _ => ProbeOutcome::Unreachable,
                        };
                        reports.push(ProbeReport { addr: t, outcome });
                    }
                    let now = self.now;
                    let more = self.nodes[from].m.on_probe_round(now, purpose, reports);
                    self.execute(from, more);
                }
                Action::Join { master } => {
                    let now = self.now;
                    let answer = match self.index(master) {
                        Some(j) if self.reachable(from, j) => {
                            let me = self.nodes[from].m.me();
                            let (reply, actions) = self.nodes[j].m.on_message(
                                now,
                                me,
                                MemberMessage::JoinRequest { member: me },
                            );
                            self.execute(j, actions);
                            match reply {
                                Some(MemberMessage::JoinAnswer(a)) => Ok(a),
                                other => Err(format!("unexpected {other:?}")),
                            }
                        }
                        _ => Err("unreachable".to_string()),
                    };
                    let more = self.nodes[from].m.on_join_answer(now, master, answer);
                    self.execute(from, more);
                }
                Action::MembersChanged => {}
            }
        }
    }

    fn deliver(&mut self) {
        while let Some((from, to, msg)) = self.queue.pop_front() {
            let Some(j) = self.index(to) else { continue };
            if !self.reachable(from, j) || !self.nodes[from].alive {
                continue;
            }
            let sender = self.nodes[from].m.me();
            let now = self.now;
            let (_, actions) = self.nodes[j].m.on_message(now, sender, msg);
            self.execute(j, actions);
        }
    }

    fn step(&mut self) {
        self.now += STEP;
        for i in 0..self.nodes.len() {
            if self.nodes[i].alive && !self.nodes[i].paused {
                let now = self.now;
                let actions = self.nodes[i].m.tick(now);
                self.execute(i, actions);
            }
        }
        self.deliver();
    }

    fn run(&mut self, d: Duration) {
        let steps = d.as_millis() / STEP.as_millis();
        for _ in 0..steps {
            self.step();
        }
    }

    /// Runs until the given members agree on one list of exactly them.
    fn converge(&mut self, members: &[usize], limit: Duration) -> Duration {
        let start = self.now;
        while self.now - start < limit {
            if self.agree(members) {
                return self.now - start;
            }
            self.step();
        }
        panic!("{members:?} did not converge: {:#?}", self.views());
    }

    fn agree(&self, members: &[usize]) -> bool {
        let first = self.nodes[members[0]].m.view();
        let uuids: HashSet<Uuid> = members.iter().map(|i| self.nodes[*i].m.me().uuid).collect();
        members.iter().all(|i| {
            let m = &self.nodes[*i].m;
            m.is_joined() && m.view() == first
        }) && first.members.len() == members.len()
            && first.members.iter().all(|m| uuids.contains(&m.uuid))
    }

    fn views(&self) -> Vec<(SocketAddr, bool, u64, Vec<SocketAddr>)> {
        self.nodes
            .iter()
            .map(|n| {
                let v = n.m.view();
                (
                    n.m.me().address,
                    n.alive,
                    v.version,
                    v.members.iter().map(|m| m.address).collect(),
                )
            })
            .collect()
    }

    fn master_of(&self, i: usize) -> SocketAddr {
        self.nodes[i].m.view().members[0].address
    }
}

fn cfg() -> MembershipConfig {
    MembershipConfig::default()
}

#[test]
fn members_started_in_the_same_instant_form_one_cluster() {
    for n in [2, 3, 5, 8] {
        let mut sim = Sim::new(cfg());
        let all: Vec<usize> = (0..n).map(|_| sim.start()).collect();
        sim.converge(&all, Duration::from_secs(5));
        assert_eq!(
            sim.master_of(0),
            addr(0),
            "the lowest address claims mastership"
        );
        assert_eq!(
            sim.nodes[0].m.view().version,
            n as u64,
            "one version per join"
        );
    }
}

#[test]
fn members_started_one_by_one_join_in_order() {
    let mut sim = Sim::new(cfg());
    let mut started = Vec::new();
    for _ in 0..4 {
        started.push(sim.start());
        sim.run(Duration::from_millis(700));
    }
    sim.converge(&started, Duration::from_secs(5));
    let order: Vec<SocketAddr> = sim.nodes[3]
        .m
        .view()
        .members
        .iter()
        .map(|m| m.address)
        .collect();
    assert_eq!(order, (0..4).map(addr).collect::<Vec<_>>());
}

#[test]
fn a_crashed_member_is_removed_after_the_failure_timeout() {
    let mut sim = Sim::new(cfg());
    let all: Vec<usize> = (0..4).map(|_| sim.start()).collect();
    sim.converge(&all, Duration::from_secs(5));
    sim.nodes[2].alive = false;
    let took = sim.converge(&[0, 1, 3], Duration::from_secs(10));
    assert!(
        took > cfg().failure_timeout && took < cfg().failure_timeout + Duration::from_secs(2),
        "{took:?}"
    );
}

#[test]
fn a_crashed_master_is_replaced_by_the_next_oldest_without_a_split() {
    let mut sim = Sim::new(cfg());
    let all: Vec<usize> = (0..5).map(|_| sim.start()).collect();
    sim.converge(&all, Duration::from_secs(5));
    sim.nodes[0].alive = false;
    sim.converge(&[1, 2, 3, 4], Duration::from_secs(10));
    assert_eq!(sim.master_of(4), addr(1));
    // And again: the new master dies too.
    sim.nodes[1].alive = false;
    sim.converge(&[2, 3, 4], Duration::from_secs(10));
    assert_eq!(sim.master_of(3), addr(2));
}

#[test]
fn a_leaving_member_is_dropped_at_once() {
    let mut sim = Sim::new(cfg());
    let all: Vec<usize> = (0..3).map(|_| sim.start()).collect();
    sim.converge(&all, Duration::from_secs(5));
    for leaver in [1, 0] {
        let now = sim.now;
        let actions = sim.nodes[leaver].m.leave(now);
        sim.execute(leaver, actions);
        sim.deliver();
        sim.nodes[leaver].alive = false;
    }
    let took = sim.converge(&[2], Duration::from_millis(100));
    assert!(took < Duration::from_millis(100));
}

#[test]
fn a_restarted_member_replaces_its_old_self() {
    let mut sim = Sim::new(cfg());
    let all: Vec<usize> = (0..3).map(|_| sim.start()).collect();
    sim.converge(&all, Duration::from_secs(5));
    let old = sim.nodes[2].m.me().uuid;
    sim.start_at(2);
    sim.converge(&all, Duration::from_secs(3));
    assert!(!sim.nodes[0].m.view().contains(&old));
}

#[test]
fn a_split_cluster_heals_into_one_and_the_larger_side_keeps_its_master() {
    let mut sim = Sim::new(cfg());
    let all: Vec<usize> = (0..5).map(|_| sim.start()).collect();
    sim.converge(&all, Duration::from_secs(5));
    // {0,1} | {2,3,4}: each side goes on alone.
    sim.split(&[0, 1], &[2, 3, 4]);
    sim.converge(&[0, 1], Duration::from_secs(10));
    sim.converge(&[2, 3, 4], Duration::from_secs(10));
    assert_eq!(sim.master_of(3), addr(2));
    sim.cut.clear();
    sim.converge(&all, Duration::from_secs(20));
    assert_eq!(
        sim.master_of(0),
        addr(2),
        "the smaller side joins the larger"
    );
}

#[test]
fn equal_halves_merge_toward_the_lower_master_address() {
    let mut sim = Sim::new(cfg());
    let all: Vec<usize> = (0..4).map(|_| sim.start()).collect();
    sim.converge(&all, Duration::from_secs(5));
    sim.split(&[0, 1], &[2, 3]);
    sim.converge(&[0, 1], Duration::from_secs(10));
    sim.converge(&[2, 3], Duration::from_secs(10));
    sim.cut.clear();
    sim.converge(&all, Duration::from_secs(20));
    assert_eq!(sim.master_of(3), addr(0));
}

#[test]
fn a_paused_member_does_not_accuse_everyone_when_it_wakes() {
    let mut sim = Sim::new(cfg());
    let all: Vec<usize> = (0..3).map(|_| sim.start()).collect();
    sim.converge(&all, Duration::from_secs(5));
    sim.nodes[2].paused = true;
    sim.converge(&[0, 1], Duration::from_secs(10));
    sim.nodes[2].paused = false;
    sim.converge(&all, Duration::from_secs(5));
    // It rejoined the existing cluster instead of starting one of its own.
    assert_eq!(sim.master_of(2), addr(0));
}

/// A pod listed by Kubernetes discovery before its process listens: the
/// member with the higher address waits for it (within the patience) rather
/// than founding a cluster of its own that would only merge later.
#[test]
fn a_listed_lower_member_still_starting_is_waited_for_within_the_patience() {
    use ferrocast_cluster::ProbePurpose;
    let starting = vec![ProbeReport {
        addr: addr(0),
        outcome: ProbeOutcome::NotListening,
    }];
    let patience = Duration::from_secs(10);
    let mut c = cfg();
    c.listed_peer_patience = patience;
    let t0 = Instant::now();
    let mut m = Membership::new(MemberInfo::new(Uuid::new_v4(), addr(1)), c, t0);
    let mut now = t0;
    while now < t0 + patience {
        m.on_probe_round(now, ProbePurpose::Join, starting.clone());
        assert!(!m.is_joined(), "founded a cluster after {:?}", now - t0);
        now += Duration::from_millis(200);
    }
    m.on_probe_round(now, ProbePurpose::Join, starting.clone());
    assert!(m.is_joined(), "the patience is a bound: it founds after it");
    assert_eq!(m.view().members.len(), 1);

    // A higher-addressed candidate not listening is nobody to wait for,
    // and without patience (a static list) nobody is waited for at all.
    let higher = vec![ProbeReport {
        addr: addr(2),
        outcome: ProbeOutcome::NotListening,
    }];
    let mut c = cfg();
    c.listed_peer_patience = patience;
    let mut m = Membership::new(MemberInfo::new(Uuid::new_v4(), addr(1)), c, t0);
    m.on_probe_round(t0, ProbePurpose::Join, higher);
    assert!(m.is_joined());
    let mut m = Membership::new(MemberInfo::new(Uuid::new_v4(), addr(1)), cfg(), t0);
    m.on_probe_round(t0, ProbePurpose::Join, starting);
    assert!(m.is_joined());
}

/// Members of the group that speak another member protocol version (an
/// older build, mid-upgrade) refuse this one: it neither founds a cluster
/// next to theirs (clients would reach two clusters that never merge) nor
/// gives up, and founds once they are gone.
#[test]
fn members_of_another_protocol_version_hold_back_the_founding() {
    use ferrocast_cluster::ProbePurpose;
    let older = vec![
        ProbeReport {
            addr: addr(0),
            outcome: ProbeOutcome::OtherVersion(
                "member protocol version 3 is not supported (this member speaks 2)".into(),
            ),
        },
        ProbeReport {
            addr: addr(2),
            outcome: ProbeOutcome::NotListening,
        },
    ];
    let t0 = Instant::now();
    let mut m = Membership::new(MemberInfo::new(Uuid::new_v4(), addr(1)), cfg(), t0);
    let mut now = t0;
    while now < t0 + Duration::from_secs(120) {
        m.on_probe_round(now, ProbePurpose::Join, older.clone());
        assert!(!m.is_joined(), "founded a cluster after {:?}", now - t0);
        now += Duration::from_millis(200);
    }
    // A refusal for another reason (another group) holds nothing back.
    let other_group = vec![ProbeReport {
        addr: addr(0),
        outcome: ProbeOutcome::Refused("group name mismatch".into()),
    }];
    m.on_probe_round(now, ProbePurpose::Join, other_group);
    assert!(m.is_joined(), "the older members are gone: it founds");
    assert_eq!(m.view().members.len(), 1);
}

/// Several members leave at once (a parallel scale-down). The master's
/// list without the first of them reaches some members but not the one
/// that takes over when the master leaves too: the new master numbers its
/// list from the older one it had. Before 2026-11-26 the members that
/// held the old master's newer list refused the new master's (same
/// version, not newer) and waited for it forever, still listing the
/// departed master.
#[test]
fn a_list_the_leaving_master_sent_to_some_members_only_does_not_hold_them_apart() {
    let mut sim = Sim::new(cfg());
    let n: Vec<usize> = (0..4).map(|_| sim.start()).collect();
    sim.converge(&n, Duration::from_secs(30));
    let before = sim.nodes[3].m.view().version;
    // 2 leaves; the master's list without it reaches 3, not 1.
    sim.split(&[0], &[1]);
    let now = sim.now;
    let actions = sim.nodes[2].m.leave(now);
    sim.execute(2, actions);
    sim.deliver();
    sim.nodes[2].alive = false;
    assert!(
        sim.nodes[3].m.view().version > before,
        "3 took the master's newer list"
    );
    assert_eq!(sim.nodes[1].m.view().version, before, "1 missed it");
    sim.cut.clear();
    // The master leaves too; 1 takes over.
    let now = sim.now;
    let actions = sim.nodes[0].m.leave(now);
    sim.execute(0, actions);
    sim.deliver();
    sim.nodes[0].alive = false;
    sim.converge(&[1, 3], Duration::from_secs(30));
}
