//! Two things about memory that mimalloc's defaults get wrong for a member:
//! huge pages at the start of the heap (see [`small_pages_at_heap_start`]
//! and [`NO_HUGE_PAGES_BEFORE_MAIN`]),
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
use nix::sys::prctl;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How much of the heap's start stays in 4 KiB pages.
const SMALL_PAGED_START: usize = 16 << 20;

/// Whether [`NO_HUGE_PAGES_BEFORE_MAIN`] turned transparent huge pages off.
/// It does not when they were off already: `prctl(PR_SET_THP_DISABLE)` is
/// inherited across `exec`, and then they stay off, as whoever started us
/// asked.
static THP_OFF_UNTIL_MAIN: AtomicBool = AtomicBool::new(false);

/// Turns transparent huge pages off for the process before mimalloc starts:
/// mimalloc's constructor runs at priority 101, and init arrays run in
/// ascending priority, so this (100) runs first. mimalloc maps its arena and
/// asks for huge pages on all of it; the allocations of its own start-up and
/// of Rust's runtime before `main` then made the first 4 MiB of the heap
/// resident in two 2 MiB pages, of which about 0.6 MiB was ever written
/// (counted as non-zero pages after a 1M-entry load). With huge pages off
/// until `main`, those faults take 4 KiB pages; [`small_pages_at_heap_start`]
/// turns them back on for the rest of the arena.
#[used]
#[link_section = ".init_array.00100"]
static NO_HUGE_PAGES_BEFORE_MAIN: extern "C" fn() = no_huge_pages_before_main;

extern "C" fn no_huge_pages_before_main() {
    // No allocation and no panic here: the allocator is not up yet. A
    // failing prctl leaves things as they were (huge pages before main).
    if prctl::get_thp_disable() == Ok(false) && prctl::set_thp_disable(true).is_ok() {
        THP_OFF_UNTIL_MAIN.store(true, Ordering::Relaxed);
    }
}

/// Keeps the first [`SMALL_PAGED_START`] bytes of mimalloc's arena out of
/// transparent huge pages, then lets the rest of the arena have them again
/// (see [`NO_HUGE_PAGES_BEFORE_MAIN`]). mimalloc asks for huge pages on its
/// whole arena, so each 2 MiB of it that anything touches becomes resident
/// whole: a member at rest had the first 10 MiB resident for the 1-2 MiB
/// its start-up structures use (18.5 -> 13.9 MiB at rest with the advice
/// alone; 13.1 -> 8.8 MiB at rest and 150.6 -> 145.3 MiB with 1M entries
/// with huge pages off before `main` too, `bench/memory.sh`). Data
/// loaded later lies beyond and still gets huge pages: fewer TLB misses, 4-7%
/// less CPU per op with 10 KB values than with no huge pages at all. Call
/// first thing in `main`. Returns the range it advised, or why it did not.
pub fn small_pages_at_heap_start() -> Result<Range<usize>, String> {
    let advised = advise_heap_start();
    // Whatever the advice did, huge pages come back for the heap beyond it
    // (unless the parent had them off), or the whole heap would go without.
    if THP_OFF_UNTIL_MAIN.load(Ordering::Relaxed) {
        prctl::set_thp_disable(false).map_err(|e| format!("prctl: {e}"))?;
    }
    advised
}

fn advise_heap_start() -> Result<Range<usize>, String> {
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
        // Nothing in it was faulted in as a huge page before `main` either
        // (it held two, 4 MiB, before huge pages were off until then), and
        // huge pages are allowed again for the rest of the heap.
        let huge = smaps
            .lines()
            .skip_while(|l| !l.starts_with(&head))
            .find(|l| l.starts_with("AnonHugePages:"))
            .unwrap_or_else(|| panic!("no AnonHugePages for {head}"));
        assert_eq!(huge.split_whitespace().nth(1), Some("0"), "{huge}");
        if THP_OFF_UNTIL_MAIN.load(Ordering::Relaxed) {
            assert_eq!(prctl::get_thp_disable(), Ok(false));
        }
    }
}
