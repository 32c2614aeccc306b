//! Joining: finding the master through the discovery candidates, claiming
//! mastership when there is none, and (as master) admitting joiners.

use crate::membership::{Action, Membership, Phase, ProbeOutcome, ProbePurpose, ProbeReport};
use ferrocast_net::{JoinAnswer, MasterAnswer, MemberInfo, MemberListView};
use std::time::{Duration, Instant};

/// The next probe round, while waiting for a lower-addressed member that is
/// starting too: it founds the cluster (or starts listening) within
/// milliseconds, so a full round (200 ms) would only delay the join. With
/// it, three members started together form in ~60 ms instead of ~260.
const WAITING_ROUND: Duration = Duration::from_millis(25);

/// How often a member held back by members of another protocol version
/// says so again.
pub(crate) const OTHER_VERSION_LOG_EVERY: Duration = Duration::from_secs(30);

impl Membership {
    /// The results of a probe round started by [`Action::Probe`].
    pub fn on_probe_round(
        &mut self,
        now: Instant,
        purpose: ProbePurpose,
        reports: Vec<ProbeReport>,
    ) -> Vec<Action> {
        match purpose {
            ProbePurpose::Join => self.on_join_probe(now, reports),
            ProbePurpose::Merge => self.on_merge_probe(now, reports),
        }
    }

    fn on_join_probe(&mut self, now: Instant, reports: Vec<ProbeReport>) -> Vec<Action> {
        let me = self.me;
        let claim_rounds = self.cfg.claim_rounds;
        let interval = self.cfg.join_round_interval;
        let Phase::Joining(js) = &mut self.phase else {
            return Vec::new();
        };
        js.busy = false;
        js.next_round = now + interval;
        let answers: Vec<&MasterAnswer> = reports
            .iter()
            .filter_map(|r| match &r.outcome {
                ProbeOutcome::Answer(a) if a.member.uuid != me.uuid => Some(a),
                _ => None,
            })
            .collect();
        // Prefer the biggest cluster; among equals the lowest master address,
        // the same order the merge uses, so joiners and merges agree.
        let best_master = answers
            .iter()
            .filter_map(|a| a.master.map(|m| (a.cluster_size, m)))
            .filter(|(_, m)| m.uuid != me.uuid)
            .max_by(|(sa, ma), (sb, mb)| sa.cmp(sb).then(mb.address.cmp(&ma.address)));
        if let Some((_, master)) = best_master {
            js.quiet_rounds = 0;
            js.busy = true;
            return vec![Action::Join {
                master: master.address,
            }];
        }
        // Members of this group that speak another member protocol version
        // (an older build during an upgrade) refuse us, and we them: were
        // this member to found a cluster now, the Service would route
        // clients to two clusters that never merge. It stays unready
        // instead, and joins or founds once they are gone.
        let other_version: Vec<String> = reports
            .iter()
            .filter_map(|r| match &r.outcome {
                ProbeOutcome::OtherVersion(reason) => Some(format!("{}: {reason}", r.addr)),
                _ => None,
            })
            .collect();
        if !other_version.is_empty() {
            if js
                .other_version_logged
                .is_none_or(|t| now.duration_since(t) >= OTHER_VERSION_LOG_EVERY)
            {
                js.other_version_logged = Some(now);
                tracing::error!(
                    "not starting a cluster: members of this group speak another member protocol version ({}); stop them first (a cluster cannot be upgraded one member at a time across a protocol version, docs/kubernetes.md, Upgrading); retrying",
                    other_version.join("; ")
                );
            }
            js.quiet_rounds = 0;
            return Vec::new();
        }
        if let Some(lower) = answers.iter().find(|a| a.member.address < me.address) {
            tracing::debug!(
                "{} is also starting and has a lower address; waiting for it to start the cluster",
                lower.member.address
            );
            js.quiet_rounds = 0;
            // It founds within milliseconds: ask again soon, not a round later.
            js.next_round = now + WAITING_ROUND.min(interval);
            return Vec::new();
        }
        // A lower-addressed candidate that dynamic discovery lists but that
        // does not listen yet is a pod still starting: within the patience
        // window wait for it rather than found a second cluster.
        let patient = js.patience_until.is_some_and(|until| now < until);
        if patient {
            let starting: Vec<_> = reports
                .iter()
                .filter(|r| r.outcome == ProbeOutcome::NotListening && r.addr < me.address)
                .map(|r| r.addr)
                .collect();
            if !starting.is_empty() {
                for addr in starting {
                    if !js.waited_for.contains(&addr) {
                        tracing::info!(
                            "{addr} is listed with a lower address but not listening yet; \
                             waiting for it to start the cluster"
                        );
                        js.waited_for.push(addr);
                    }
                }
                js.quiet_rounds = 0;
                js.next_round = now + WAITING_ROUND.min(interval);
                return Vec::new();
            }
        }
        js.quiet_rounds += 1;
        // Nobody to wait for: every other candidate either has nothing
        // listening, is of another group, or is starting too with a higher
        // address (it waits for us). Then this member founds the cluster at
        // once, so a lone member serves clients within milliseconds.
        // Otherwise it waits a few rounds for a lower-addressed member.
        let nobody_to_wait_for = reports.iter().all(|r| match &r.outcome {
            ProbeOutcome::NotListening | ProbeOutcome::Refused(_) => true,
            ProbeOutcome::Answer(a) => a.member.address > me.address,
            ProbeOutcome::Unreachable | ProbeOutcome::OtherVersion(_) => false,
        });
        if js.quiet_rounds < claim_rounds && !nobody_to_wait_for {
            return Vec::new();
        }
        tracing::info!(
            "no cluster found ({} other member(s) answered); starting a new cluster as its master",
            answers.len()
        );
        self.apply_view(
            now,
            MemberListView {
                version: 1,
                members: vec![me],
                cluster_id: uuid::Uuid::new_v4(),
            },
        )
    }

    /// The master's answer (or the failure) of a join request.
    pub fn on_join_answer(
        &mut self,
        now: Instant,
        master: std::net::SocketAddr,
        answer: Result<JoinAnswer, String>,
    ) -> Vec<Action> {
        let interval = self.cfg.join_round_interval;
        let me = self.me.uuid;
        let Phase::Joining(js) = &mut self.phase else {
            return Vec::new();
        };
        js.busy = false;
        js.next_round = now + interval;
        match answer {
            Ok(JoinAnswer::Accepted(view)) if view.contains(&me) => self.apply_view(now, view),
            Ok(JoinAnswer::Accepted(_)) => Vec::new(),
            Ok(JoinAnswer::NotMaster { master: Some(real) }) if real != master => {
                js.target = Some(real);
                js.next_round = now;
                Vec::new()
            }
            Ok(JoinAnswer::NotMaster { .. }) => Vec::new(),
            Err(e) => {
                tracing::warn!("join request to {master} failed: {e}");
                Vec::new()
            }
        }
    }

    /// A member asks to join. Only the master admits; others redirect.
    pub(crate) fn on_join_request(
        &mut self,
        now: Instant,
        member: MemberInfo,
    ) -> (JoinAnswer, Vec<Action>) {
        if !self.is_master() {
            let master = self.master().map(|m| m.address);
            return (JoinAnswer::NotMaster { master }, Vec::new());
        }
        if self.view.contains(&member.uuid) {
            return (JoinAnswer::Accepted(self.view.clone()), Vec::new());
        }
        let mut members: Vec<MemberInfo> = self.view.members.clone();
        if let Some(old) = members.iter().find(|m| m.address == member.address) {
            tracing::info!("{old} was restarted as {}; replacing it", member.uuid);
        }
        members.retain(|m| m.address != member.address);
        members.push(member);
        let actions = self.publish(now, members);
        (JoinAnswer::Accepted(self.view.clone()), actions)
    }
}
