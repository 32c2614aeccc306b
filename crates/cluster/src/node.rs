//! The cluster actor: one task owns the [`Membership`] state machine and
//! carries out its actions over the transport. Others see it through a
//! [`ClusterHandle`].

use crate::config::MembershipConfig;
use crate::membership::{Action, Membership, ProbeOutcome, ProbePurpose, ProbeReport};
use ferrocast_discovery::Discovery;
use ferrocast_net::{
    Incoming, JoinAnswer, MemberInfo, MemberListView, MemberMessage, NetError, Transport,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What the rest of the member sees of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSnapshot {
    pub me: MemberInfo,
    pub joined: bool,
    pub view: MemberListView,
    /// Increments every time this member (re)joins a cluster.
    pub joins: u64,
    /// This member left the cluster on purpose (shutdown) and will not
    /// rejoin: what it holds is neither stale data to merge back nor
    /// anyone's to keep.
    pub left: bool,
}

impl ClusterSnapshot {
    pub fn is_master(&self) -> bool {
        self.joined && self.view.master().map(|m| m.uuid) == Some(self.me.uuid)
    }

    /// The UUIDs of the other members in the view.
    pub fn others(&self) -> Vec<uuid::Uuid> {
        self.view
            .members
            .iter()
            .map(|m| m.uuid)
            .filter(|u| *u != self.me.uuid)
            .collect()
    }
}

/// Called with every new member list (to print the Members block).
pub type MembersListener = Box<dyn Fn(&ClusterSnapshot) + Send + Sync>;

pub struct ClusterHandle {
    snapshots: watch::Receiver<ClusterSnapshot>,
    task: JoinHandle<()>,
}

impl ClusterHandle {
    pub fn snapshot(&self) -> ClusterSnapshot {
        self.snapshots.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<ClusterSnapshot> {
        self.snapshots.clone()
    }

    /// Waits until the actor has left the cluster (after cancellation).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

enum Internal {
    ProbeDone(ProbePurpose, Vec<ProbeReport>),
    JoinDone(SocketAddr, Result<JoinAnswer, String>),
}

struct Node {
    membership: Membership,
    transport: Transport,
    discovery: Arc<dyn Discovery>,
    request_timeout: Duration,
    internal_tx: mpsc::Sender<Internal>,
    snapshots: watch::Sender<ClusterSnapshot>,
    on_members: MembersListener,
    /// Set once `leave` has told the peers.
    left: bool,
    /// The other members of the last member list seen, to tell who left.
    /// Not the published snapshot's list: a reset to joining publishes an
    /// empty one, and members gone meanwhile must still be told apart.
    listed: Vec<MemberInfo>,
}

/// Starts the cluster actor. It looks for a cluster right away and leaves it
/// gracefully (telling every peer) when `shutdown` is cancelled.
pub fn spawn(
    transport: Transport,
    incoming: mpsc::Receiver<Incoming>,
    discovery: Arc<dyn Discovery>,
    cfg: MembershipConfig,
    on_members: MembersListener,
    shutdown: CancellationToken,
) -> ClusterHandle {
    let me = transport.me();
    let request_timeout = cfg.request_timeout;
    let membership = Membership::new(me, cfg, Instant::now());
    let (snap_tx, snap_rx) = watch::channel(ClusterSnapshot {
        me,
        joined: false,
        view: MemberListView::default(),
        joins: 0,
        left: false,
    });
    let (internal_tx, internal_rx) = mpsc::channel(64);
    let node = Node {
        membership,
        transport,
        discovery,
        request_timeout,
        internal_tx,
        snapshots: snap_tx,
        on_members,
        left: false,
        listed: Vec::new(),
    };
    let task = tokio::spawn(node.run(incoming, internal_rx, shutdown));
    ClusterHandle {
        snapshots: snap_rx,
        task,
    }
}

impl Node {
    async fn run(
        mut self,
        mut incoming: mpsc::Receiver<Incoming>,
        mut internal: mpsc::Receiver<Internal>,
        shutdown: CancellationToken,
    ) {
        tracing::info!(
            "looking for members of the cluster via {}",
            self.discovery.describe()
        );
        // The membership's clock: timeouts and rounds are due at most one
        // tick late (a join round while waiting for a starting member is
        // 25 ms, see `join.rs`).
        let mut ticker = tokio::time::interval(Duration::from_millis(25));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let actions = tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(msg) = incoming.recv() => {
                    let (reply, actions) =
                        self.membership.on_message(Instant::now(), msg.from, msg.body);
                    if let (Some(reply), Some(responder)) = (reply, msg.responder) {
                        tokio::spawn(responder.respond(reply));
                    }
                    actions
                }
                Some(done) = internal.recv() => match done {
                    Internal::ProbeDone(purpose, reports) => {
                        self.membership.on_probe_round(Instant::now(), purpose, reports)
                    }
                    Internal::JoinDone(master, answer) => {
                        self.membership.on_join_answer(Instant::now(), master, answer)
                    }
                },
                _ = ticker.tick() => self.membership.tick(Instant::now()),
            };
            self.execute(actions);
            self.publish_snapshot();
        }
        self.leave().await;
    }

    async fn leave(&mut self) {
        let actions = self.membership.leave(Instant::now());
        let sends = actions.into_iter().filter_map(|a| match a {
            Action::Send { to, msg } => {
                let t = self.transport.clone();
                Some(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(1), t.send(to, msg)).await;
                })
            }
            _ => None,
        });
        futures::future::join_all(sends).await;
        // Give the writer tasks a moment to flush the Leave frames.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.left = true;
        self.publish_snapshot();
        tracing::info!("left the cluster");
    }

    fn current(&self) -> ClusterSnapshot {
        ClusterSnapshot {
            me: self.membership.me(),
            joined: self.membership.is_joined(),
            view: self.membership.view().clone(),
            joins: self.membership.joins(),
            left: self.left,
        }
    }

    fn publish_snapshot(&self) {
        let snap = self.current();
        self.snapshots.send_if_modified(|old| {
            if *old != snap {
                *old = snap;
                true
            } else {
                false
            }
        });
    }

    fn execute(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send { to, msg } => {
                    let t = self.transport.clone();
                    tokio::spawn(async move {
                        if let Err(e) = t.send(to, msg).await {
                            tracing::debug!("send to {to} failed: {e}");
                        }
                    });
                }
                Action::Probe { purpose, extra } => {
                    tokio::spawn(probe_round(
                        self.transport.clone(),
                        self.discovery.clone(),
                        purpose,
                        extra,
                        self.request_timeout,
                        self.internal_tx.clone(),
                    ));
                }
                Action::Join { master } => {
                    let t = self.transport.clone();
                    let me = self.membership.me();
                    let timeout = self.request_timeout;
                    let tx = self.internal_tx.clone();
                    tokio::spawn(async move {
                        let answer = match t
                            .request(master, MemberMessage::JoinRequest { member: me }, timeout)
                            .await
                        {
                            Ok(MemberMessage::JoinAnswer(a)) => Ok(a),
                            Ok(other) => Err(format!("unexpected answer {other:?}")),
                            Err(e) => Err(e.to_string()),
                        };
                        let _ = tx.send(Internal::JoinDone(master, answer)).await;
                    });
                }
                Action::MembersChanged => {
                    let snapshot = self.current();
                    (self.on_members)(&snapshot);
                    // Published first: `close_departed` checks the
                    // published list again when it gets to a connection.
                    self.publish_snapshot();
                    self.close_departed(&snapshot);
                }
            }
        }
    }
}

impl Node {
    /// Closes the connections to members that are no longer listed
    /// (crashed, paused past the failure timeout, or left): what is queued
    /// for them is dropped instead of waiting on a peer nobody talks to,
    /// and the pool forgets their addresses (pods come back under new
    /// ones). Merge probes and a rejoin dial afresh.
    fn close_departed(&mut self, snapshot: &ClusterSnapshot) {
        let me = snapshot.me.uuid;
        let now: Vec<MemberInfo> = snapshot
            .view
            .members
            .iter()
            .filter(|m| m.uuid != me)
            .copied()
            .collect();
        for gone in self.listed.iter().filter(|m| !now.contains(m)) {
            let t = self.transport.clone();
            let gone = *gone;
            // Asked again when the transport gets to it: it may have
            // rejoined (same UUID) meanwhile.
            let view = self.snapshots.subscribe();
            tokio::spawn(async move {
                let still_gone = || !view.borrow().view.contains(&gone.uuid);
                t.disconnect(gone, still_gone).await
            });
        }
        self.listed = now;
    }
}

async fn probe_round(
    transport: Transport,
    discovery: Arc<dyn Discovery>,
    purpose: ProbePurpose,
    extra: Vec<SocketAddr>,
    timeout: Duration,
    tx: mpsc::Sender<Internal>,
) {
    let me = transport.me();
    let mut candidates = match discovery.discover().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("discovery failed: {e}");
            Vec::new()
        }
    };
    for a in extra {
        if !candidates.contains(&a) {
            candidates.push(a);
        }
    }
    candidates.retain(|a| *a != me.address);
    let probes = candidates.into_iter().map(|addr| {
        let t = transport.clone();
        async move {
            // One bound for connect, handshake and answer: a candidate that
            // accepts but never answers must not stall the round.
            let answer = tokio::time::timeout(
                timeout,
                t.request(addr, MemberMessage::WhoIsMaster, timeout),
            )
            .await
            .unwrap_or(Err(NetError::RequestTimeout(addr)));
            let outcome = match answer {
                Ok(MemberMessage::MasterAnswer(a)) => ProbeOutcome::Answer(a),
                Ok(_) => ProbeOutcome::Unreachable,
                Err(NetError::Refused { ref reason, .. })
                    if ferrocast_net::holds_back_founding(reason) =>
                {
                    ProbeOutcome::OtherVersion(reason.clone())
                }
                Err(e @ (NetError::Refused { .. } | NetError::PeerFailedProof { .. })) => {
                    tracing::warn!("cannot join {addr}: {e}");
                    ProbeOutcome::Refused(e.to_string())
                }
                Err(NetError::SelfConnection(_)) => return None,
                Err(NetError::Connect { source, .. })
                    if source.kind() == std::io::ErrorKind::ConnectionRefused =>
                {
                    ProbeOutcome::NotListening
                }
                Err(e) => {
                    tracing::trace!("probe of {addr}: {e}");
                    ProbeOutcome::Unreachable
                }
            };
            Some(ProbeReport { addr, outcome })
        }
    });
    // Our own address under another name (127.0.0.1 for 0.0.0.0) drops out.
    let reports: Vec<ProbeReport> = futures::future::join_all(probes)
        .await
        .into_iter()
        .flatten()
        .collect();
    let _ = tx.send(Internal::ProbeDone(purpose, reports)).await;
}
