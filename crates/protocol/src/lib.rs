//! The Hazelcast Open Binary Client Protocol 2.x, as pure data and functions.
//!
//! Only the connection preamble lives here so far; frames, codecs, error
//! codes and partition hashing arrive with the partitioned-maps work.

/// The three bytes a Hazelcast 4.x/5.x client writes before its first frame.
pub const CLIENT_PREAMBLE: &[u8; 3] = b"CP2";
