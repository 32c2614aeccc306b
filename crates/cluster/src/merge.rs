//! Split-brain healing: two clusters of the same group that can reach each
//! other become one. Masters probe their discovery candidates now and then;
//! when one finds another cluster, the smaller cluster (or, at equal size,
//! the one whose master has the higher address) joins the other, member by
//! member. A master that finds a cluster that should merge into it tells
//! that cluster's master, which checks for itself before acting.

use crate::membership::{Action, Membership, ProbeOutcome, ProbePurpose, ProbeReport};
use ferrocast_net::{MemberInfo, MemberMessage};
use std::net::SocketAddr;
use std::time::Instant;

impl Membership {
    pub(crate) fn maybe_probe_for_merge(&mut self, now: Instant) -> Vec<Action> {
        if !self.is_master() || self.merge_busy || now < self.next_merge_probe {
            return Vec::new();
        }
        self.merge_busy = true;
        vec![Action::Probe {
            purpose: ProbePurpose::Merge,
            extra: std::mem::take(&mut self.merge_hints),
        }]
    }

    pub(crate) fn on_merge_probe(
        &mut self,
        now: Instant,
        reports: Vec<ProbeReport>,
    ) -> Vec<Action> {
        self.merge_busy = false;
        self.next_merge_probe = now + self.cfg.merge_interval;
        if !self.is_master() {
            return Vec::new();
        }
        let ours = (self.view.members.len() as u32, self.me.address);
        let mut actions = Vec::new();
        let mut told = Vec::new();
        for report in reports {
            let ProbeOutcome::Answer(a) = report.outcome else {
                continue;
            };
            let Some(their_master) = a.master else {
                continue;
            };
            if self.view.contains(&their_master.uuid) || self.view.contains(&a.member.uuid) {
                continue;
            }
            let theirs = (a.cluster_size, their_master.address);
            if merges_into(ours, theirs) {
                tracing::warn!(
                    "found another cluster of this group (master {}, {} members); this cluster ({} members) merges into it",
                    their_master.address, theirs.0, ours.0
                );
                let mut out = self.broadcast(MemberMessage::MergeInto {
                    master: their_master.address,
                });
                self.reset_to_joining(now, Some(their_master.address));
                out.extend(actions);
                return out;
            }
            if !told.contains(&their_master.uuid) {
                told.push(their_master.uuid);
                tracing::info!(
                    "found another cluster of this group (master {}, {} members); asking it to merge into this one",
                    their_master.address, theirs.0
                );
                actions.push(Action::Send {
                    to: their_master.address,
                    msg: MemberMessage::MergeProposal { master: self.me },
                });
            }
        }
        actions
    }

    /// Our master tells us our cluster merges into another.
    pub(crate) fn on_merge_into(
        &mut self,
        now: Instant,
        from: MemberInfo,
        master: SocketAddr,
    ) -> Vec<Action> {
        if !self.is_joined() || self.master().map(|m| m.uuid) != Some(from.uuid) {
            return Vec::new();
        }
        tracing::warn!(
            "merging into the cluster of master {master}, as master {} decided",
            from.address
        );
        self.reset_to_joining(now, Some(master));
        Vec::new()
    }

    /// Another master says we should merge into its cluster: check at the next probe.
    pub(crate) fn on_merge_proposal(&mut self, now: Instant, master: MemberInfo) -> Vec<Action> {
        if self.is_master() && !self.merge_hints.contains(&master.address) {
            self.merge_hints.push(master.address);
            if !self.merge_busy {
                self.next_merge_probe = now;
            }
        }
        Vec::new()
    }
}

/// Whether a cluster `(size, master address)` merges into `theirs`.
pub fn merges_into(ours: (u32, SocketAddr), theirs: (u32, SocketAddr)) -> bool {
    theirs.0 > ours.0 || (theirs.0 == ours.0 && theirs.1 < ours.1)
}
