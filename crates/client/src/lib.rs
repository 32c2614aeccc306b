//! The Rust client crate. It speaks the Hazelcast client protocol defined in
//! `ferrocast-protocol`; the connection, routing and map API arrive with the
//! partitioned-maps work.

pub use ferrocast_protocol::CLIENT_PREAMBLE;
