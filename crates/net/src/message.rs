//! Member-to-member messages. Every layer above the transport speaks through
//! [`MemberMessage`]; the codec (see `codec.rs`) is the only place that knows
//! how they become bytes.

use crate::member::MemberInfo;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// A member list as the master publishes it: members in join order (the
/// first is the master) and a version that grows with every change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MemberListView {
    pub version: u64,
    pub members: Vec<MemberInfo>,
    /// Chosen by the member that founded the cluster, kept by everyone who
    /// joins it; clients use it to tell a restarted cluster from the same one.
    pub cluster_id: uuid::Uuid,
}

impl MemberListView {
    pub fn master(&self) -> Option<&MemberInfo> {
        self.members.first()
    }
    pub fn contains(&self, uuid: &uuid::Uuid) -> bool {
        self.members.iter().any(|m| &m.uuid == uuid)
    }
}

/// The answer to [`MemberMessage::WhoIsMaster`]: what a member knows of its cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterAnswer {
    /// The member that answers.
    pub member: MemberInfo,
    /// `None` while the member is still looking for a cluster.
    pub master: Option<MemberInfo>,
    pub cluster_size: u32,
    pub list_version: u64,
}

/// The master's answer to a [`MemberMessage::JoinRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinAnswer {
    /// Joined: this is the member list that includes the joiner.
    Accepted(MemberListView),
    /// Ask that address instead (`None`: the member knows no master yet).
    NotMaster { master: Option<SocketAddr> },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberMessage {
    /// Request: which cluster are you in? Answered with `MasterAnswer`.
    WhoIsMaster,
    MasterAnswer(MasterAnswer),
    /// Request to the master: add this member. Answered with `JoinAnswer`.
    JoinRequest {
        member: MemberInfo,
    },
    JoinAnswer(JoinAnswer),
    /// One-way, master to members: the current member list.
    MemberList(MemberListView),
    /// One-way liveness signal. The master attaches its member list so a
    /// member that missed an update repairs itself within one interval.
    Heartbeat {
        list: Option<MemberListView>,
    },
    /// One-way: the sender leaves the cluster now (graceful shutdown).
    Leave {
        member: MemberInfo,
    },
    /// One-way, master to its members: our cluster merges into the cluster
    /// whose master is at `master`; leave and join it.
    MergeInto {
        master: SocketAddr,
    },
    /// One-way, master to another cluster's master: "your cluster should
    /// merge into mine". The receiver checks this itself before acting.
    MergeProposal {
        master: MemberInfo,
    },
    /// Generic positive answer to a request.
    Ack,
    /// A message of a service above the cluster layer (partitions, maps),
    /// encoded by that service with this crate's codec. `Bytes`, not
    /// `Vec<u8>`: serde writes and reads a `Vec<u8>` one element at a time
    /// (a quarter of a member's CPU went there with 10 KB backups), `Bytes`
    /// as one block.
    Service(bytes::Bytes),
    /// A service message given in pieces: sent as the `Service` message of
    /// their concatenation (and received as one), without joining them.
    /// Big values travel this way from the buffer they live in.
    ServiceParts(Vec<bytes::Bytes>),
}
