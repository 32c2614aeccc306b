//! The slot array of a [`SlotTable`](crate::slot_table::SlotTable):
//! zeroed 64-bit words, in a mapping of their own once a table is large.
//!
//! Why not a `Box<[u64]>` for every size: a map partition's table grows by
//! a quarter many times as the map fills, and each grown table frees the one
//! before it. On the heap those freed arrays became holes between entries
//! that the allocator kept resident (its arena is backed by huge pages, so
//! a hole is only returned when a whole 2 MiB page empties): 4-9 MiB of a
//! member holding 1,000,000 entries. A table of its own mapping goes back
//! to the kernel, all of it, when it is freed, and a new one comes zeroed
//! (an empty slot is a zero word), so it is never written before use.
//! Small tables, which most maps have, stay on the heap: a mapping rounds
//! up to 4 KiB and costs two system calls.

use nix::sys::mman::{mmap_anonymous, munmap, MapFlags, ProtFlags};
use std::alloc::{alloc_zeroed, dealloc, handle_alloc_error, Layout};
use std::num::NonZeroUsize;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// Arrays from this size (4,096 slots) on get a mapping of their own.
const MAPPED_MIN_BYTES: usize = 32 * 1024;

/// Zeroed words, owned like a `Box<[u64]>`.
pub(crate) struct SlotWords {
    ptr: NonNull<u64>,
    len: usize,
    /// In a mapping of its own (else on the heap, or empty).
    mapped: bool,
}

// SAFETY: SlotWords owns its memory exclusively, like a Box<[u64]>.
unsafe impl Send for SlotWords {}
unsafe impl Sync for SlotWords {}

fn layout(len: usize) -> Layout {
    // A table's slot count is bounded by the entries a member can hold,
    // far below isize::MAX bytes.
    Layout::array::<u64>(len).unwrap_or_else(|_| panic!("table of {len} slots"))
}

impl SlotWords {
    pub fn empty() -> Self {
        Self {
            ptr: NonNull::dangling(),
            len: 0,
            mapped: false,
        }
    }

    /// `len` zero words.
    pub fn zeroed(len: usize) -> Self {
        let Some(bytes) = NonZeroUsize::new(layout(len).size()) else {
            return Self::empty();
        };
        if bytes.get() >= MAPPED_MIN_BYTES {
            // SAFETY: a new private anonymous mapping aliases nothing.
            let mapped = unsafe {
                mmap_anonymous(
                    None,
                    bytes,
                    ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                    MapFlags::MAP_PRIVATE,
                )
            };
            // A refused mapping (out of memory, or the process at its
            // limit of mappings, vm.max_map_count) falls back to the heap.
            if let Ok(ptr) = mapped {
                return Self {
                    ptr: ptr.cast(),
                    len,
                    mapped: true,
                };
            }
        }
        let layout = layout(len);
        // SAFETY: the layout's size is not zero.
        let ptr = unsafe { alloc_zeroed(layout) };
        match NonNull::new(ptr.cast::<u64>()) {
            Some(ptr) => Self {
                ptr,
                len,
                mapped: false,
            },
            None => handle_alloc_error(layout),
        }
    }
}

impl Deref for SlotWords {
    type Target = [u64];

    fn deref(&self) -> &[u64] {
        // SAFETY: `len` initialised words (or a dangling, aligned pointer
        // with a length of zero), owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for SlotWords {
    fn deref_mut(&mut self) -> &mut [u64] {
        // SAFETY: as in `deref`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for SlotWords {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        let layout = layout(self.len);
        if self.mapped {
            // SAFETY: the whole mapping made in `zeroed`, unmapped once.
            // It can still fail: unmapping part of a merged mapping splits
            // it, which the process's limit of mappings (vm.max_map_count)
            // may refuse. The memory then stays mapped; say so.
            if let Err(e) = unsafe { munmap(self.ptr.cast(), layout.size()) } {
                tracing::warn!(
                    "a map table's {} KiB could not be returned to the kernel (munmap: {e}); raise vm.max_map_count",
                    layout.size() / 1024
                );
            }
        } else {
            // SAFETY: allocated in `zeroed` with this layout.
            unsafe { dealloc(self.ptr.as_ptr().cast(), layout) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_arrays_are_mapped_zeroed_and_writable_small_ones_are_not_mapped() {
        for (len, mapped) in [
            (0, false),
            (8, false),
            (4095, false),
            (4096, true),
            (9000, true),
        ] {
            let mut w = SlotWords::zeroed(len);
            assert_eq!((w.len(), w.mapped), (len, mapped), "{len} words");
            assert!(w.iter().all(|x| *x == 0));
            for (i, x) in w.iter_mut().enumerate() {
                *x = i as u64 * 3;
            }
            assert!(w.iter().enumerate().all(|(i, x)| *x == i as u64 * 3));
        }
    }
}
