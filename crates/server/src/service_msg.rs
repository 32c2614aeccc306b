//! Member-to-member messages of the data layer, carried inside
//! `MemberMessage::Service` and encoded with the transport's codec.

use crate::backup_wire;
use bytes::Bytes;
use ferrocast_net::{MemberMessage, NetError};
use ferrocast_partition::{
    BackupBatch, Change, MapResult, MergeEntry, MergePolicy, PartitionData, PartitionTable,
    UpgradeLog,
};
use ferrocast_protocol::{ClientMessage, Frame};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use uuid::Uuid;

/// What a `CopyRequest` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CopyWanted {
    /// The partition complete (an upgrading backup answers with its log).
    Complete,
    /// Nobody had it complete: data retained from when the source last
    /// held the partition is good enough.
    LastResort,
    /// The data the source holds as a replica, complete for the place it
    /// had in the table the promotion by table `promoted_by` was computed
    /// from (still upgrading for that promotion's move is fine): the base
    /// a promoted member merges its log over.
    Base { promoted_by: u64 },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ServiceMessage {
    /// One-way, master to members: the current partition table.
    Table(PartitionTable),
    /// Request to the master: this member is shutting down; move its partitions away.
    LeaveIntent {
        member: Uuid,
    },
    /// Request from a new replica: a full copy of `partition`, taken once
    /// the source follows at least `table_version`. Answered with `Copy`.
    CopyRequest {
        partition: u32,
        table_version: u64,
        wanted: CopyWanted,
    },
    Copy {
        partition: u32,
        seq: u64,
        /// The owner term the data continues (0: unknown), see
        /// `PartitionService::install_copy`.
        term: u64,
        data: PartitionData,
        /// Changes the source took ahead of their turn (acknowledged, not
        /// in `data` yet), by number.
        pending: Vec<(u64, Vec<Change>)>,
    },
    /// Answer to a `CopyRequest` for a base (`CopyWanted::Base`) from a
    /// member that holds no data of the partition (it is copying it), or
    /// for the complete partition from one that a newer table took it
    /// away from before its copy was complete.
    NoData {
        partition: u32,
    },
    /// Answer to `CopyRequest` from a backup that moved up a place and
    /// still waits for the maps it lacked (an upgrade): what it logged
    /// since the move, for a member promoted behind it to merge.
    CopyLog {
        partition: u32,
        log: UpgradeLog,
    },
    /// One-way, to every member: the sender holds the data of all its
    /// replicas in tables up to this version. A member shutting down leaves
    /// once every other member said so for a table without it.
    InSync {
        version: u64,
    },
    /// Request, owner to backup: the changes of one operation. Answered with `Ack`.
    Backup(BackupBatch),
    /// Request: entries of the smaller side of a healed split, for the
    /// partitions this member owns, to merge by `policy`. Answered with `Merged`.
    Merge {
        policy: MergePolicy,
        entries: Vec<MergeEntry>,
    },
    /// The partitions of a `Merge` this member does not own.
    Merged {
        not_owned: Vec<u32>,
    },
    /// Answer to `Backup` from a member that does not take changes from the
    /// sender for that partition (not its owner, or we are not its backup).
    BackupRefused,
    /// One-way, owner to backup: the last change number of each partition
    /// it owns and the backup holds, so a backup that fell behind resyncs.
    ReplicaSeqs(Vec<(u32, u64)>),
    /// Request: run a client's map request here, on `partitions` (or on the
    /// key's partition). Answered with `Executed`.
    Execute {
        request: Vec<(u16, Bytes)>,
        partitions: Option<Vec<u32>>,
    },
    Executed {
        result: Result<MapResult, String>,
        /// Partitions of the request this member does not own (any more).
        not_owned: Vec<u32>,
    },
    /// One-way: a client created (or destroyed) a distributed object.
    Proxy {
        created: bool,
        service: String,
        name: String,
    },
    Ack,
    /// Answer to `LeaveIntent`: the version of the table the member that
    /// took it follows. The leaving member hands over only once it applied
    /// that table: one naming it may still be on its way to it.
    LeaveNoted {
        table_version: u64,
    },
}

impl ServiceMessage {
    pub fn wrap(&self) -> Result<MemberMessage, NetError> {
        if let ServiceMessage::Backup(batch) = self {
            // The one message sent for every write: by hand (`backup_wire.rs`).
            return Ok(MemberMessage::ServiceParts(backup_wire::encode(batch)));
        }
        Ok(MemberMessage::Service(ferrocast_net::encode(self)?))
    }

    /// `Ack`, wrapped: encoded once, shared by every answer to a backup.
    pub fn ack() -> Option<MemberMessage> {
        static ACK: OnceLock<Option<MemberMessage>> = OnceLock::new();
        ACK.get_or_init(|| ServiceMessage::Ack.wrap().ok()).clone()
    }

    pub fn unwrap(msg: &MemberMessage) -> Option<Result<ServiceMessage, NetError>> {
        match msg {
            MemberMessage::Service(bytes) if bytes.first() == Some(&backup_wire::MARK) => {
                Some(backup_wire::decode(bytes).map(ServiceMessage::Backup))
            }
            MemberMessage::Service(bytes) => Some(ferrocast_net::decode(bytes)),
            // Never arrives from a peer (it is received as `Service`).
            MemberMessage::ServiceParts(parts) => {
                let joined: Bytes = parts.concat().into();
                ServiceMessage::unwrap(&MemberMessage::Service(joined))
            }
            _ => None,
        }
    }
}

pub fn frames_of(msg: &ClientMessage) -> Vec<(u16, Bytes)> {
    msg.frames
        .iter()
        .map(|f| (f.flags, f.content.clone()))
        .collect()
}

pub fn message_of(frames: Vec<(u16, Bytes)>) -> ClientMessage {
    ClientMessage {
        frames: frames
            .into_iter()
            .map(|(flags, c)| Frame::with_flags(flags, c))
            .collect(),
    }
}
