//! Returning freed memory to the system. mimalloc purges freed pages (gives
//! them back to the kernel) only after a delay (10 ms, arenas 10x that),
//! and only when some later allocator call looks: a member that goes quiet
//! after a bulk load, or after a table grew and freed the old one, would
//! keep those pages in its resident set for good. Purging at once (delay
//! 0) fixed that but made busy members with big values fault the same
//! pages back in (3 members, 10 KB puts: 8.5% of their CPU in page faults
//! and madvise). So the delay stays, and a housekeeping task asks mimalloc
//! to purge what is due a few times a second, which costs nothing measurable.

use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
