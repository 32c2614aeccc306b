//! Feeds arbitrary bytes to the client-protocol decoder and request decoder:
//! they may refuse the input, never panic, and never grow past their limits.
//! Run with `cargo +nightly fuzz run client_frames` from this folder.
#![no_main]

use bytes::BytesMut;
use ferrocast_protocol::{MessageDecoder, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let mut buf = BytesMut::from(input);
    let mut decoder = MessageDecoder::new(64 * 1024, 256 * 1024);
    while let Ok(Some(msg)) = decoder.decode(&mut buf) {
        let _ = Request::decode(&msg);
    }
});
