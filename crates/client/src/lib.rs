//! The Rust client for ferrocast (and Hazelcast 4.x/5.x members): speaks the
//! Hazelcast Open Binary Client Protocol 2.x, keeps the cluster view, routes
//! each key to its partition owner over one connection per member, and
//! retries when members come and go.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ferrocast_client::ClientError> {
//! use ferrocast_client::{Client, ClientConfig};
//! let client = Client::connect(ClientConfig::new(vec!["127.0.0.1:5701".parse().unwrap()])).await?;
//! let map = client.map("people");
//! map.put("alice", 42).await?;
//! let age: Option<i32> = map.get_as("alice").await?;
//! # Ok(()) }
//! ```

mod client;
mod clock;
mod connection;
mod error;
mod listener;
mod map;
mod serialization;
mod sweeper;
mod write;

pub use client::{Client, ClientConfig};
pub use error::ClientError;
pub use ferrocast_protocol::CLIENT_PREAMBLE;
pub use listener::{EntryEvent, EntryEventKind};
pub use map::{Map, Value};
pub use serialization::{FromData, Json, ToData};
pub use sweeper::Heartbeat;
