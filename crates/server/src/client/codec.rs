//! The client connection's framing: the protocol crate's pure decoder
//! behind tokio-util's `Decoder`, and encoding of outgoing messages.

use bytes::BytesMut;
use ferrocast_protocol::{ClientMessage, MessageDecoder, ProtocolError};
use tokio_util::codec::{Decoder, Encoder};

pub struct ClientCodec {
    decoder: MessageDecoder,
}

impl ClientCodec {
    pub fn new(max_frame: usize) -> Self {
        Self {
            decoder: MessageDecoder::new(max_frame, max_frame.saturating_mul(4)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Decoder for ClientCodec {
    type Item = ClientMessage;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<ClientMessage>, CodecError> {
        Ok(self.decoder.decode(src)?)
    }
}

impl Encoder<ClientMessage> for ClientCodec {
    type Error = CodecError;

    fn encode(&mut self, msg: ClientMessage, dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.reserve(msg.encoded_len());
        msg.encode(dst);
        Ok(())
    }
}
