//! Two things about memory that mimalloc's defaults get wrong for a member:
//! huge pages at the start of the heap (see [`small_pages_at_heap_start`]),
//! and returning freed memory to the system. mimalloc purges freed pages (gives
//! them back to the kernel) only after a delay (10 ms, arenas 10x that),
//! and only when some later allocator call looks: a member that goes quiet
//! after a bulk load, or after a table grew and freed the old one, would
//! keep those pages in its resident set for good. Purging at once (delay
//! 0) fixed that but made busy members with big values fault the same
//! pages back in (3 members, 10 KB puts: 8.5% of their CPU in page faults
//! and madvise). So the delay stays, and a housekeeping task asks mimalloc
//! to purge what is due a few times a second, which costs nothing measurable.

use nix::sys::mman::{madvise, MmapAdvise};
use std::ops::Range;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How much of the heap's start stays in 4 KiB pages.
const SMALL_PAGED_START: usize = 16 << 20;

/// Keeps the first [`SMALL_PAGED_START`] bytes of mimalloc's arena out of
/// transparent huge pages. mimalloc asks for huge pages on its whole arena,
/// so each 2 MiB of it that anything touches becomes resident whole: a
/// member at rest had the first 10 MiB resident for the 1-2 MiB its
/// start-up structures use (18.5 -> 13.9 MiB at rest with this; the first
/// 4 MiB are touched before `main` and stay huge). Data loaded later lies
/// beyond and still gets huge pages: fewer TLB misses, 4-7% less CPU per op
/// with 10 KB values than with no huge pages at all. Call first thing in
/// `main`. Returns the range it advised, or why it did not.
pub fn small_pages_at_heap_start() -> Result<Range<usize>, String> {
    let probe = Box::new(0u64);
    let at = &*probe as *const u64 as usize;
    let maps = std::fs::read_to_string("/proc/self/maps")
        .map_err(|e| format!("cannot read /proc/self/maps: {e}"))?;
    let (start, end) = maps
        .lines()
        .find_map(|line| {
            let (a, b) = line.split_whitespace().next()?.split_once('-')?;
            let a = usize::from_str_radix(a, 16).ok()?;
            let b = usize::from_str_radix(b, 16).ok()?;
            (a <= at && at < b).then_some((a, b))
        })
        .ok_or("the heap is in no mapping of /proc/self/maps")?;
    let len = SMALL_PAGED_START.min(end - start);
    let ptr = std::ptr::NonNull::new(start as *mut std::ffi::c_void).ok_or("a null mapping")?;
    // SAFETY: the range is a mapping of this process (from its maps);
    // MADV_NOHUGEPAGE changes only how later faults in it are backed.
    unsafe { madvise(ptr, len, MmapAdvise::MADV_NOHUGEPAGE) }
        .map_err(|e| format!("madvise: {e}"))?;
    Ok(start..start + len)
}

/// How often pending purges are checked.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(250);

/// Runs until `stop`: lets mimalloc purge freed pages whose delay expired.
pub fn spawn_housekeeping(stop: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {
                    // SAFETY: mi_collect only walks mimalloc's own state; a
                    // non-forced collect frees this thread's unused pages and
                    // purges (process-wide) what is past its delay.
                    unsafe { libmimalloc_sys::mi_collect(false) };
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's view of the range: a mapping of its own, flagged `nh`.
    #[test]
    fn the_start_of_the_heap_is_marked_for_small_pages() {
        let range = small_pages_at_heap_start().expect("advised");
        // The heap's mapping, or its first 16 MiB.
        assert!(
            !range.is_empty() && range.len() <= SMALL_PAGED_START,
            "{range:?}"
        );
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let head = format!("{:x}-{:x} ", range.start, range.end);
        let flags = smaps
            .lines()
            .skip_while(|l| !l.starts_with(&head))
            .find(|l| l.starts_with("VmFlags"))
            .unwrap_or_else(|| panic!("no mapping {head}in /proc/self/smaps"));
        assert!(flags.split_whitespace().any(|f| f == "nh"), "{flags}");
    }
}
