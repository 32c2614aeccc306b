//! Who a member is on the wire: its UUID and the address its peers reach it at.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use uuid::Uuid;

/// A member's identity. Two processes at the same address are different members
/// when their UUIDs differ (a restarted member gets a new UUID).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberInfo {
    pub uuid: Uuid,
    pub address: SocketAddr,
}

impl MemberInfo {
    pub fn new(uuid: Uuid, address: SocketAddr) -> Self {
        Self { uuid, address }
    }
}

/// Formats an address the way Hazelcast prints it: `[172.17.0.4]:5701`.
pub struct HzAddress(pub SocketAddr);

impl fmt::Display for HzAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]:{}", self.0.ip(), self.0.port())
    }
}

impl fmt::Display for MemberInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Member {} - {}", HzAddress(self.address), self.uuid)
    }
}
