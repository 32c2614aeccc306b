//! Cluster membership: join with group authentication, one master (the
//! oldest member), a versioned member list every member converges on,
//! heartbeats and failure detection, graceful leave, and split-brain merge.
//!
//! The protocol is a state machine ([`Membership`]) fed with messages,
//! probe results and clock ticks; [`node::spawn`] runs it as an actor over
//! the real transport.

mod config;
mod join;
mod membership;
mod merge;
pub mod node;

pub use config::MembershipConfig;
pub use membership::{Action, Membership, ProbeOutcome, ProbePurpose, ProbeReport};
pub use merge::merges_into;
pub use node::{spawn, ClusterHandle, ClusterSnapshot, MembersListener};
