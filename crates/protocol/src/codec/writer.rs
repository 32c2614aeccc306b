//! Building a message frame by frame.

use crate::frame::{ClientMessage, Frame};
use bytes::Bytes;

/// Frames a message usually has at most.
const FRAMES_USUALLY: usize = 4;

#[derive(Default)]
pub struct MessageWriter {
    frames: Vec<Frame>,
}

impl MessageWriter {
    pub fn new(initial: Frame) -> Self {
        // Room for the frames most messages have (a response: the initial
        // frame and one or two more), so the first push does not
        // reallocate: `vec![initial]` held one, and growing it was a
        // `realloc` for every response (perf, 1 member 90/10 10 KB).
        let mut frames = Vec::with_capacity(FRAMES_USUALLY);
        frames.push(initial);
        Self { frames }
    }

    pub fn frame(&mut self, f: Frame) -> &mut Self {
        self.frames.push(f);
        self
    }

    pub fn string(&mut self, s: &str) -> &mut Self {
        self.frame(Frame::new(Bytes::copy_from_slice(s.as_bytes())))
    }

    pub fn bytes(&mut self, b: Bytes) -> &mut Self {
        self.frame(Frame::new(b))
    }

    pub fn null(&mut self) -> &mut Self {
        self.frame(Frame::null())
    }

    pub fn nullable_bytes(&mut self, b: Option<Bytes>) -> &mut Self {
        match b {
            Some(b) => self.bytes(b),
            None => self.null(),
        }
    }

    pub fn nullable_string(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.string(s),
            None => self.null(),
        }
    }

    pub fn begin(&mut self) -> &mut Self {
        self.frame(Frame::begin())
    }

    pub fn end(&mut self) -> &mut Self {
        self.frame(Frame::end())
    }

    pub fn list_of_bytes(&mut self, items: impl IntoIterator<Item = Bytes>) -> &mut Self {
        self.begin();
        for i in items {
            self.bytes(i);
        }
        self.end()
    }

    pub fn list_of_strings<'s>(&mut self, items: impl IntoIterator<Item = &'s str>) -> &mut Self {
        self.begin();
        for i in items {
            self.string(i);
        }
        self.end()
    }

    pub fn entry_list_of_bytes(
        &mut self,
        items: impl IntoIterator<Item = (Bytes, Bytes)>,
    ) -> &mut Self {
        self.begin();
        for (k, v) in items {
            self.bytes(k);
            self.bytes(v);
        }
        self.end()
    }

    /// A list of fixed-size ints in one frame.
    pub fn int_list(&mut self, items: &[i32]) -> &mut Self {
        let mut b = Vec::with_capacity(items.len() * 4);
        for i in items {
            b.extend_from_slice(&i.to_le_bytes());
        }
        self.frame(Frame::new(b))
    }

    /// A list of UUIDs in one frame (17 bytes each).
    pub fn uuid_list(&mut self, items: &[uuid::Uuid]) -> &mut Self {
        let mut b = vec![0u8; items.len() * super::UUID_SIZE];
        for (i, u) in items.iter().enumerate() {
            super::write_uuid(&mut b, i * super::UUID_SIZE, Some(*u));
        }
        self.frame(Frame::new(b))
    }

    pub fn build(self) -> ClientMessage {
        ClientMessage {
            frames: self.frames,
        }
    }
}
