//! The membership state machine: plain data driven by messages, probe
//! results and clock ticks, answering with [`Action`]s for a driver to carry
//! out. No sockets and no clocks of its own, so tests drive it directly
//! (see `tests/sim.rs`). Joining lives in `join.rs`, merging in `merge.rs`.

use crate::config::MembershipConfig;
use ferrocast_net::{MasterAnswer, MemberInfo, MemberListView, MemberMessage};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// What the state machine asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a one-way message.
    Send { to: SocketAddr, msg: MemberMessage },
    /// Ask the discovery for candidates (plus `extra`), send each one
    /// `WhoIsMaster` and report with [`Membership::on_probe_round`].
    Probe {
        purpose: ProbePurpose,
        extra: Vec<SocketAddr>,
    },
    /// Send `JoinRequest` to `master` and report with [`Membership::on_join_answer`].
    Join { master: SocketAddr },
    /// The member list changed: print it, tell whoever listens.
    MembersChanged,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbePurpose {
    /// Looking for a cluster to join.
    Join,
    /// A master looking for another cluster of its group.
    Merge,
}

/// One candidate's answer in a probe round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    Answer(MasterAnswer),
    Unreachable,
    /// Nothing listens there (connection refused): no member is running at
    /// that address, so there is nobody to wait for.
    NotListening,
    /// Authentication failed either way (group name or password).
    Refused(String),
    /// A member of this group's build that speaks another member protocol
    /// version (the reason): the two cannot form one cluster, and this one
    /// must not found a second next to it.
    OtherVersion(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    pub addr: SocketAddr,
    pub outcome: ProbeOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JoinState {
    pub next_round: Instant,
    pub busy: bool,
    /// Consecutive rounds with no master and no lower member in sight.
    pub quiet_rounds: u32,
    /// Where to send the next join request without probing (a redirect or a merge).
    pub target: Option<SocketAddr>,
    /// Until when a lower-addressed candidate with nothing listening is
    /// waited for (first start only, see `listed_peer_patience`).
    pub patience_until: Option<Instant>,
    /// Lower candidates already logged as waited for, so the log says it once.
    pub waited_for: Vec<SocketAddr>,
    /// When the last warning about members of another protocol version
    /// was logged (repeated every [`OTHER_VERSION_LOG_EVERY`]).
    pub other_version_logged: Option<Instant>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Joining(JoinState),
    Joined,
    Left,
}

/// One member's view of the cluster and everything it needs to keep it.
#[derive(Debug)]
pub struct Membership {
    pub(crate) me: MemberInfo,
    pub(crate) cfg: MembershipConfig,
    pub(crate) phase: Phase,
    pub(crate) view: MemberListView,
    pub(crate) last_heard: HashMap<Uuid, Instant>,
    /// Members that said they leave, until the master drops them.
    pub(crate) departed: HashSet<Uuid>,
    pub(crate) last_tick: Option<Instant>,
    pub(crate) next_heartbeat: Instant,
    pub(crate) next_merge_probe: Instant,
    pub(crate) merge_busy: bool,
    pub(crate) merge_hints: Vec<SocketAddr>,
    /// How many times this member has joined a cluster (a rejoin after being
    /// removed, or a merge, counts again).
    pub(crate) joins: u64,
}

impl Membership {
    pub fn new(me: MemberInfo, cfg: MembershipConfig, now: Instant) -> Self {
        let patience_until = Some(now + cfg.listed_peer_patience);
        Self {
            me,
            cfg,
            phase: Phase::Joining(JoinState {
                next_round: now,
                busy: false,
                quiet_rounds: 0,
                target: None,
                patience_until,
                waited_for: Vec::new(),
                other_version_logged: None,
            }),
            view: MemberListView::default(),
            last_heard: HashMap::new(),
            departed: HashSet::new(),
            last_tick: None,
            next_heartbeat: now,
            next_merge_probe: now,
            merge_busy: false,
            merge_hints: Vec::new(),
            joins: 0,
        }
    }

    pub fn joins(&self) -> u64 {
        self.joins
    }

    pub fn me(&self) -> MemberInfo {
        self.me
    }

    /// The current member list (empty while joining).
    pub fn view(&self) -> &MemberListView {
        &self.view
    }

    pub fn is_joined(&self) -> bool {
        self.phase == Phase::Joined
    }

    pub fn is_master(&self) -> bool {
        self.is_joined() && self.view.master().map(|m| m.uuid) == Some(self.me.uuid)
    }

    pub fn master(&self) -> Option<MemberInfo> {
        if self.is_joined() {
            self.view.master().copied()
        } else {
            None
        }
    }

    fn others(&self) -> impl Iterator<Item = &MemberInfo> {
        let me = self.me.uuid;
        self.view.members.iter().filter(move |m| m.uuid != me)
    }

    pub(crate) fn broadcast(&self, msg: MemberMessage) -> Vec<Action> {
        self.others()
            .map(|m| Action::Send {
                to: m.address,
                msg: msg.clone(),
            })
            .collect()
    }

    /// Called every ~100 ms by the driver.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        self.detect_pause(now);
        match &mut self.phase {
            Phase::Left => Vec::new(),
            Phase::Joining(js) => {
                if js.busy || now < js.next_round {
                    return Vec::new();
                }
                js.busy = true;
                match js.target.take() {
                    Some(master) => vec![Action::Join { master }],
                    None => vec![Action::Probe {
                        purpose: ProbePurpose::Join,
                        extra: Vec::new(),
                    }],
                }
            }
            Phase::Joined => {
                let mut actions = Vec::new();
                if now >= self.next_heartbeat {
                    self.next_heartbeat = now + self.cfg.heartbeat_interval;
                    let list = self.is_master().then(|| self.view.clone());
                    actions.extend(self.broadcast(MemberMessage::Heartbeat { list }));
                }
                actions.extend(self.detect_failures(now));
                actions.extend(self.maybe_probe_for_merge(now));
                actions
            }
        }
    }

    /// A process stopped (SIGSTOP, a long GC-like stall, a suspended VM) sees
    /// every peer as silent when it wakes up; it was us who were away, so the
    /// clocks restart instead of accusing everybody.
    fn detect_pause(&mut self, now: Instant) {
        let limit = (self.cfg.failure_timeout / 2).max(Duration::from_secs(1));
        if let Some(last) = self.last_tick {
            let gap = now.saturating_duration_since(last);
            if gap > limit {
                tracing::warn!(
                    "this member was paused for {gap:?}; restarting failure detection clocks"
                );
                for t in self.last_heard.values_mut() {
                    *t = now;
                }
            }
        }
        self.last_tick = Some(now);
    }

    fn suspects(&self, now: Instant) -> Vec<Uuid> {
        self.others()
            .filter(|m| {
                self.departed.contains(&m.uuid)
                    || self.last_heard.get(&m.uuid).is_none_or(|t| {
                        now.saturating_duration_since(*t) > self.cfg.failure_timeout
                    })
            })
            .map(|m| m.uuid)
            .collect()
    }

    /// The master drops suspects. If the master itself is a suspect, the
    /// oldest member not suspected takes over; everybody else waits for it.
    pub(crate) fn detect_failures(&mut self, now: Instant) -> Vec<Action> {
        let suspects = self.suspects(now);
        if suspects.is_empty() {
            return Vec::new();
        }
        // The old master may have sent lists we never got, one per
        // departure at most (several members leaving at once): a member
        // taking over numbers its list past them, so members that got
        // them take it.
        let mut version = self.view.version + 1;
        if !self.is_master() {
            if self.successor_of_gone_master(&suspects) != Some(self.me.uuid) {
                return Vec::new();
            }
            tracing::warn!(
                "master {} is gone; this member is the oldest left and takes over",
                self.view.members[0].address
            );
            version = self.view.version + suspects.len() as u64;
        }
        for uuid in &suspects {
            if let Some(m) = self.view.members.iter().find(|m| m.uuid == *uuid) {
                if self.departed.contains(uuid) {
                    tracing::info!("removing {m}: it left the cluster");
                } else {
                    tracing::warn!(
                        "removing {m}: no heartbeat for more than {:?}",
                        self.cfg.failure_timeout
                    );
                }
            }
        }
        let members = self.without(&suspects);
        self.publish_as(now, members, version)
    }

    /// When our master is among `suspects`: the oldest member of our list
    /// that is not, which takes over.
    fn successor_of_gone_master(&self, suspects: &[Uuid]) -> Option<Uuid> {
        let master = self.view.master().map(|m| m.uuid)?;
        if !suspects.contains(&master) {
            return None;
        }
        self.view
            .members
            .iter()
            .find(|m| !suspects.contains(&m.uuid))
            .map(|m| m.uuid)
    }

    /// Our list without `gone`.
    fn without(&self, gone: &[Uuid]) -> Vec<MemberInfo> {
        self.view
            .members
            .iter()
            .filter(|m| !gone.contains(&m.uuid))
            .copied()
            .collect()
    }

    /// Master only: installs a new list with the next version and sends it out.
    pub(crate) fn publish(&mut self, now: Instant, members: Vec<MemberInfo>) -> Vec<Action> {
        let version = self.view.version + 1;
        self.publish_as(now, members, version)
    }

    fn publish_as(&mut self, now: Instant, members: Vec<MemberInfo>, version: u64) -> Vec<Action> {
        let view = MemberListView {
            version,
            members,
            cluster_id: self.view.cluster_id,
        };
        let mut actions = self.apply_view(now, view);
        actions.extend(self.broadcast(MemberMessage::MemberList(self.view.clone())));
        actions
    }

    /// Installs `view` as ours (we are in it).
    pub(crate) fn apply_view(&mut self, now: Instant, view: MemberListView) -> Vec<Action> {
        for m in &view.members {
            self.last_heard.entry(m.uuid).or_insert(now);
        }
        self.last_heard.retain(|u, _| view.contains(u));
        self.departed.retain(|u| view.contains(u));
        if self.phase != Phase::Joined {
            // Whether the master's answer or its member list (sent to all
            // at once, and sometimes first) brought us in.
            if let Some(master) = view.master().filter(|m| m.uuid != self.me.uuid) {
                tracing::info!("joined the cluster of master {}", master.address);
            }
            self.joins += 1;
            self.phase = Phase::Joined;
            self.next_heartbeat = now;
            self.next_merge_probe = now + self.cfg.merge_interval;
            self.merge_busy = false;
        }
        self.view = view;
        vec![Action::MembersChanged]
    }

    /// A list from `from`. Taken when its sender is its master and it is
    /// newer than ours; a newer list without us means we were removed.
    pub(crate) fn on_member_list(
        &mut self,
        now: Instant,
        from: MemberInfo,
        view: MemberListView,
    ) -> Vec<Action> {
        if view.master().map(|m| m.uuid) != Some(from.uuid) || self.phase == Phase::Left {
            return Vec::new();
        }
        let contains_me = view.contains(&self.me.uuid);
        match self.phase {
            Phase::Joined
                if view.version <= self.view.version && !self.sent_by_successor(now, &from) =>
            {
                Vec::new()
            }
            Phase::Joined if !contains_me => {
                let ours = self.view.master().map(|m| m.uuid);
                if ours == Some(from.uuid) || ours == Some(self.me.uuid) {
                    tracing::warn!(
                        "master {} no longer lists this member (it was considered dead); rejoining",
                        from.address
                    );
                    self.reset_to_joining(now, Some(from.address));
                }
                Vec::new()
            }
            Phase::Joining(_) if !contains_me => Vec::new(),
            _ => self.apply_view(now, view),
        }
    }

    /// Whether `from` takes over from our master, which left or failed
    /// (the oldest member of our list not gone). Its list may be numbered
    /// no higher than one the old master sent us but not it, and is taken
    /// anyway: refusing it kept members listing a departed master, waiting
    /// for a successor whose every list they refused.
    fn sent_by_successor(&self, now: Instant, from: &MemberInfo) -> bool {
        self.view.master().map(|m| m.uuid) != Some(from.uuid)
            && self.successor_of_gone_master(&self.suspects(now)) == Some(from.uuid)
    }

    /// Leaves the cluster for good; peers drop us at once.
    pub fn leave(&mut self, _now: Instant) -> Vec<Action> {
        let actions = if self.is_joined() {
            self.broadcast(MemberMessage::Leave { member: self.me })
        } else {
            Vec::new()
        };
        self.phase = Phase::Left;
        actions
    }

    pub(crate) fn reset_to_joining(&mut self, now: Instant, target: Option<SocketAddr>) {
        self.view = MemberListView::default();
        self.last_heard.clear();
        self.departed.clear();
        self.merge_busy = false;
        self.merge_hints.clear();
        self.phase = Phase::Joining(JoinState {
            next_round: now,
            busy: false,
            quiet_rounds: 0,
            target,
            patience_until: None,
            waited_for: Vec::new(),
            other_version_logged: None,
        });
    }

    /// A message from a peer; returns the response for requests.
    pub fn on_message(
        &mut self,
        now: Instant,
        from: MemberInfo,
        msg: MemberMessage,
    ) -> (Option<MemberMessage>, Vec<Action>) {
        match msg {
            MemberMessage::WhoIsMaster => (Some(self.master_answer()), Vec::new()),
            MemberMessage::JoinRequest { member } => {
                let (answer, actions) = self.on_join_request(now, member);
                (Some(MemberMessage::JoinAnswer(answer)), actions)
            }
            MemberMessage::MemberList(view) => (None, self.on_member_list(now, from, view)),
            MemberMessage::Heartbeat { list } => (None, self.on_heartbeat(now, from, list)),
            MemberMessage::Leave { member } => (None, self.on_leave(now, from, member)),
            MemberMessage::MergeInto { master } => (None, self.on_merge_into(now, from, master)),
            MemberMessage::MergeProposal { master } => (None, self.on_merge_proposal(now, master)),
            MemberMessage::MasterAnswer(_)
            | MemberMessage::JoinAnswer(_)
            | MemberMessage::Ack
            | MemberMessage::Service(_)
            | MemberMessage::ServiceParts(_) => (None, Vec::new()),
        }
    }

    pub fn master_answer(&self) -> MemberMessage {
        MemberMessage::MasterAnswer(MasterAnswer {
            member: self.me,
            master: self.master(),
            cluster_size: if self.is_joined() {
                self.view.members.len() as u32
            } else {
                0
            },
            list_version: self.view.version,
        })
    }

    fn on_heartbeat(
        &mut self,
        now: Instant,
        from: MemberInfo,
        list: Option<MemberListView>,
    ) -> Vec<Action> {
        if !self.is_joined() {
            return Vec::new();
        }
        if self.view.contains(&from.uuid) {
            self.last_heard.insert(from.uuid, now);
        } else if self.is_master() {
            // It believes it is one of ours; our list tells it otherwise.
            return vec![Action::Send {
                to: from.address,
                msg: MemberMessage::MemberList(self.view.clone()),
            }];
        }
        match list {
            Some(view) => self.on_member_list(now, from, view),
            None => Vec::new(),
        }
    }

    fn on_leave(&mut self, now: Instant, from: MemberInfo, member: MemberInfo) -> Vec<Action> {
        if member.uuid != from.uuid || !self.is_joined() || !self.view.contains(&member.uuid) {
            return Vec::new();
        }
        tracing::info!("{member} is leaving the cluster");
        self.departed.insert(member.uuid);
        self.detect_failures(now)
    }
}
