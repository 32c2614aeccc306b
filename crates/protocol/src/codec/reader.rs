//! A cursor over a message's frames.

use crate::error::ProtocolError;
use crate::frame::{ClientMessage, Frame};
use bytes::Bytes;
use compact_str::CompactString;

pub struct MessageReader<'a> {
    frames: &'a [Frame],
    pos: usize,
}

impl<'a> MessageReader<'a> {
    pub fn new(msg: &'a ClientMessage) -> Self {
        Self {
            frames: &msg.frames,
            pos: 0,
        }
    }

    pub fn next_frame(&mut self) -> Result<&'a Frame, ProtocolError> {
        let f = self
            .frames
            .get(self.pos)
            .ok_or(ProtocolError::Truncated("frame"))?;
        self.pos += 1;
        Ok(f)
    }

    pub fn peek(&self) -> Option<&'a Frame> {
        self.frames.get(self.pos)
    }

    /// The initial frame's content.
    pub fn initial(&mut self) -> Result<&'a [u8], ProtocolError> {
        Ok(&self.next_frame()?.content)
    }

    pub fn string(&mut self) -> Result<String, ProtocolError> {
        let f = self.next_frame()?;
        String::from_utf8(f.content.to_vec())
            .map_err(|_| ProtocolError::Malformed("string is not UTF-8".into()))
    }

    /// A string without a heap allocation when it is short (names).
    pub fn compact_string(&mut self) -> Result<CompactString, ProtocolError> {
        let f = self.next_frame()?;
        CompactString::from_utf8(&f.content[..])
            .map_err(|_| ProtocolError::Malformed("string is not UTF-8".into()))
    }

    pub fn bytes(&mut self) -> Result<Bytes, ProtocolError> {
        Ok(self.next_frame()?.content.clone())
    }

    /// Consumes a null frame and returns true, or leaves a non-null frame.
    pub fn next_is_null(&mut self) -> bool {
        match self.peek() {
            Some(f) if f.is_null() => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    pub fn nullable_string(&mut self) -> Result<Option<String>, ProtocolError> {
        if self.next_is_null() {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    pub fn nullable_bytes(&mut self) -> Result<Option<Bytes>, ProtocolError> {
        if self.next_is_null() {
            Ok(None)
        } else {
            self.bytes().map(Some)
        }
    }

    fn begin(&mut self) -> Result<(), ProtocolError> {
        if self.next_frame()?.is_begin() {
            Ok(())
        } else {
            Err(ProtocolError::Malformed(
                "expected the start of a structure".into(),
            ))
        }
    }

    fn at_end(&self) -> Result<bool, ProtocolError> {
        Ok(self
            .peek()
            .ok_or(ProtocolError::Truncated("end of structure"))?
            .is_end())
    }

    /// A list whose items each take one frame (strings, `Data`).
    pub fn list_of_bytes(&mut self) -> Result<Vec<Bytes>, ProtocolError> {
        self.begin()?;
        let mut out = Vec::new();
        while !self.at_end()? {
            out.push(self.bytes()?);
        }
        self.pos += 1;
        Ok(out)
    }

    pub fn list_of_strings(&mut self) -> Result<Vec<String>, ProtocolError> {
        self.begin()?;
        let mut out = Vec::new();
        while !self.at_end()? {
            out.push(self.string()?);
        }
        self.pos += 1;
        Ok(out)
    }

    /// An entry list of (Data, Data).
    pub fn entry_list_of_bytes(&mut self) -> Result<Vec<(Bytes, Bytes)>, ProtocolError> {
        self.begin()?;
        let mut out = Vec::new();
        while !self.at_end()? {
            let k = self.bytes()?;
            let v = self.bytes()?;
            out.push((k, v));
        }
        self.pos += 1;
        Ok(out)
    }

    /// Skips to the end frame of the structure we are in (nested ones included).
    pub fn skip_to_struct_end(&mut self) -> Result<(), ProtocolError> {
        let mut depth = 1;
        while depth > 0 {
            let f = self.next_frame()?;
            if f.is_end() {
                depth -= 1;
            } else if f.is_begin() {
                depth += 1;
            }
        }
        Ok(())
    }

    /// Enters a custom type: its begin frame, then its initial frame's content.
    pub fn begin_struct(&mut self) -> Result<&'a [u8], ProtocolError> {
        self.begin()?;
        self.initial()
    }
}
