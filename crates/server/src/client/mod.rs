//! The client endpoint: Hazelcast clients (any language) and our Rust
//! client connect to the member port with the `CP2` preamble.

pub mod codec;
pub mod endpoint;
pub mod listeners;
mod requests;
mod silence;
pub mod views;
