//! Leaving gracefully: this member's partitions move to the members that
//! stay, and it waits until they hold the data before it leaves.

use super::CoordinatorInput;
use crate::data::DataPlane;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// What a member shutting down waits for before it leaves: every other
/// member holding the data of its replicas in a table without us (whoever
/// they copied it from), and no copy of ours still being sent.
#[derive(Default)]
pub struct HandOver {
    /// The last table version each member said it is in sync with.
    pub in_sync: Mutex<HashMap<Uuid, u64>>,
    pub copies_in_flight: AtomicUsize,
    /// The last table version whose replicas are all on this member (what
    /// the readiness check compares with the current table version).
    pub own_in_sync: AtomicU64,
}

impl HandOver {
    /// The members of `others` not yet in sync with table `version`.
    pub fn lagging(&self, others: &[Uuid], version: u64) -> Vec<Uuid> {
        let seen = self.in_sync.lock().map(|s| s.clone()).unwrap_or_default();
        others
            .iter()
            .filter(|m| seen.get(m).copied().unwrap_or(0) < version)
            .copied()
            .collect()
    }

    pub fn done(&self, others: &[Uuid], version: u64) -> bool {
        self.lagging(others, version).is_empty()
            && self.copies_in_flight.load(Ordering::SeqCst) == 0
    }
}

/// Moves this member's partitions to the members that stay, so a graceful
/// shutdown loses nothing; bounded by `limit`.
pub async fn hand_over(
    data: &DataPlane,
    coordinator: &mpsc::Sender<CoordinatorInput>,
    state: &HandOver,
    limit: Duration,
) {
    let snap = data.cluster();
    if !snap.joined || snap.view.members.len() < 2 {
        return;
    }
    let start = Instant::now();
    let owned_before = data.service.replicated_here().len();
    if !tell_leaving(coordinator).await {
        return;
    }
    let mut told = (master_of(data), Instant::now());
    while start.elapsed() < limit {
        let others = data.cluster().others();
        if data.service.replicated_here().is_empty()
            && state.done(&others, data.service.table_version())
        {
            tracing::info!(
                "handed over {owned_before} partition(s) in {} ms",
                start.elapsed().as_millis()
            );
            return;
        }
        // A master that fails before it moved our partitions away takes
        // our intent with it: its successor would give them back to us
        // and we would leave only at the limit. Told again when the
        // master changes, and every second as long as we still hold
        // replicas (the request may have been lost); the master takes it
        // as often as it comes.
        let master = master_of(data);
        if (master != told.0 || told.1.elapsed() >= RETELL)
            && !data.service.replicated_here().is_empty()
        {
            if master != told.0 {
                tracing::info!("the master changed while this member hands over; telling the new one it leaves");
            }
            told = (master, Instant::now());
            if !tell_leaving(coordinator).await {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let others = data.cluster().others();
    let lagging = state.lagging(&others, data.service.table_version());
    tracing::warn!(
        "shutdown timeout ({limit:?}) reached with {} partition(s) still here, {} member(s) not yet in sync with table version {} ({:?}), {} copies in flight",
        data.service.replicated_here().len(),
        lagging.len(),
        data.service.table_version(),
        lagging,
        state.copies_in_flight.load(Ordering::SeqCst)
    );
}

/// How often a member handing over repeats its intent to leave.
const RETELL: Duration = Duration::from_secs(1);

fn master_of(data: &DataPlane) -> Option<Uuid> {
    data.cluster().view.master().map(|m| m.uuid)
}

/// Has the coordinator tell the master (or itself, as master) that this
/// member leaves; false once the coordinator is gone.
async fn tell_leaving(coordinator: &mpsc::Sender<CoordinatorInput>) -> bool {
    let (tx, rx) = oneshot::channel();
    if coordinator
        .send(CoordinatorInput::LeaveSelf(tx))
        .await
        .is_err()
    {
        return false;
    }
    let _ = rx.await;
    true
}
