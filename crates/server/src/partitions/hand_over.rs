//! Leaving gracefully: this member's partitions move to the members that
//! stay, and it waits until they hold the data before it leaves.

use super::CoordinatorInput;
use crate::data::DataPlane;
use crate::service_msg::ServiceMessage;
use std::collections::{HashMap, HashSet};
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
    /// Members known to have said they shut down (their intent reaches
    /// every member), this one included once it leaves; kept after they
    /// left the list. The hand-over looks every 20 ms, and a member whose
    /// intent and departure both fell between two looks counted as
    /// vanished (crashed), so the others waited for the shutdown timeout.
    leaving: Mutex<HashSet<Uuid>>,
    /// 1 + the version of the table the master followed when it took our
    /// intent to leave (0: no answer yet). A member that got SIGTERM just
    /// as the master published a table naming it (a join's) saw no
    /// partitions in the table it followed and left at once; what the
    /// master had given it was then promoted without the maps no backup
    /// keeps (`tests/leave_and_crash.rs`).
    master_table: AtomicU64,
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

    pub fn note_leaving(&self, leaving: &HashSet<Uuid>) {
        if let Ok(mut l) = self.leaving.lock() {
            l.extend(leaving.iter().copied());
        }
    }

    /// The master took our intent while it followed table `version`.
    pub fn note_master_table(&self, version: u64) {
        self.master_table
            .fetch_max(version.saturating_add(1), Ordering::SeqCst);
    }

    /// The table the master followed when it took our intent, once it did.
    fn master_table(&self) -> Option<u64> {
        self.master_table.load(Ordering::SeqCst).checked_sub(1)
    }

    fn leaving(&self) -> HashSet<Uuid> {
        self.leaving.lock().map(|l| l.clone()).unwrap_or_default()
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
    // The most replicas held at once while handing over: a table that
    // arrives meanwhile may give us some.
    let mut held = data.service.replicated_here().len();
    if !tell_leaving(coordinator).await {
        return;
    }
    let mut told = (master_of(data), Instant::now());
    let mut departures = Departures::default();
    while start.elapsed() < limit {
        held = held.max(data.service.replicated_here().len());
        let others = data.cluster().others();
        // Judged by a table at least as new as the one the master followed
        // when it took our intent: an older one may not name us yet.
        let current = state
            .master_table()
            .is_some_and(|v| data.service.table_version() >= v);
        if current
            && data.service.replicated_here().is_empty()
            && state.done(&others, data.service.table_version())
        {
            tracing::info!(
                "handed over {held} partition(s) in {} ms",
                start.elapsed().as_millis()
            );
            return;
        }
        // The whole cluster shuts down (scaled to zero, uninstalled):
        // waiting for the others to hold our data only kept the last
        // member to leave up until the shutdown timeout (30 s), and its
        // data went with it anyway.
        if departures.nobody_to_hand_over_to(&others, &state.leaving()) {
            tracing::info!(
                "every other member is shutting down too: nobody to hand {} partition(s) over to; leaving",
                data.service.replicated_here().len()
            );
            confirm_leaving(data, &others).await;
            return;
        }
        // A master that fails before it moved our partitions away takes
        // our intent with it: its successor would give them back to us
        // and we would leave only at the limit. Told again when the
        // master changes, and every second as long as we still hold
        // replicas or the master has not answered (the request may have
        // been lost); the master takes it as often as it comes.
        let master = master_of(data);
        if (master != told.0 || told.1.elapsed() >= RETELL)
            && (!data.service.replicated_here().is_empty() || state.master_table().is_none())
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

/// Tells each of `others` once more that we leave, and waits (briefly)
/// for each to confirm: the intent broadcast when the hand-over began may
/// still sit unsent when a member that has nobody to hand over to exits at
/// once, and a member that never heard it takes our going for a crash and
/// waits for us to come back (seen: the last of three members stopped at
/// once waited the full shutdown timeout).
async fn confirm_leaving(data: &DataPlane, others: &[Uuid]) {
    let me = data.service.me();
    let Ok(msg) = (ServiceMessage::LeaveIntent { member: me }).wrap() else {
        return;
    };
    let asks = others
        .iter()
        .filter_map(|m| data.address_of(*m))
        .map(|addr| {
            let msg = msg.clone();
            async move {
                let _ = data
                    .transport()
                    .request(addr, msg, Duration::from_millis(500))
                    .await;
            }
        });
    futures::future::join_all(asks).await;
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

/// Who left the member list while this member hands over, and how.
#[derive(Debug, Default)]
struct Departures {
    /// Every other member listed since the hand-over began.
    seen: HashSet<Uuid>,
    /// Every member that said it shuts down.
    leaving: HashSet<Uuid>,
    /// A member left the list without saying so (it crashed): it may be
    /// back in seconds as a new member (a restarted pod) to hand over to.
    vanished: bool,
}

impl Departures {
    /// Takes the other members listed now and those known to be leaving;
    /// true when nobody is left to hand over to: every member listed since
    /// the hand-over began has left, or is leaving, on purpose.
    fn nobody_to_hand_over_to(&mut self, others: &[Uuid], leaving: &HashSet<Uuid>) -> bool {
        self.leaving.extend(leaving.iter().copied());
        if self
            .seen
            .iter()
            .any(|m| !others.contains(m) && !self.leaving.contains(m))
        {
            self.vanished = true;
        }
        self.seen.extend(others.iter().copied());
        !self.vanished && others.iter().all(|m| self.leaving.contains(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<Uuid> {
        (0..n).map(|_| Uuid::new_v4()).collect()
    }

    #[test]
    fn nobody_to_hand_over_to_only_when_every_other_member_leaves_on_purpose() {
        let m = ids(3);
        let mut d = Departures::default();
        assert!(!d.nobody_to_hand_over_to(&m, &HashSet::from([m[0], m[1]])));
        assert!(d.nobody_to_hand_over_to(&m, &HashSet::from([m[0], m[1], m[2]])));
        // They left (gone from the list and from the leaving set, which
        // keeps only listed members): still nobody.
        assert!(d.nobody_to_hand_over_to(&[], &HashSet::new()));
    }

    #[test]
    fn a_member_that_crashed_may_come_back_so_the_hand_over_waits() {
        let m = ids(2);
        let mut d = Departures::default();
        assert!(!d.nobody_to_hand_over_to(&m, &HashSet::from([m[0]])));
        // m[1] vanished without a word; m[0] leaves as it said.
        assert!(!d.nobody_to_hand_over_to(&[m[0]], &HashSet::from([m[0]])));
        assert!(!d.nobody_to_hand_over_to(&[], &HashSet::new()));
        // A new member (the crashed pod, restarted) is handed over to.
        let back = Uuid::new_v4();
        assert!(!d.nobody_to_hand_over_to(&[back], &HashSet::new()));
    }

    /// The coordinator's own set keeps listed members only; the hand-over's
    /// copy must remember one that said it leaves and left between two
    /// looks (the last two of three members stopped at once waited the
    /// shutdown timeout for the first, taken for crashed).
    #[test]
    fn a_member_that_said_it_leaves_and_left_between_two_looks_left_on_purpose() {
        let m = ids(2);
        let state = HandOver::default();
        let mut d = Departures::default();
        assert!(!d.nobody_to_hand_over_to(&m, &state.leaving()));
        state.note_leaving(&HashSet::from([m[0]]));
        state.note_leaving(&HashSet::new());
        state.note_leaving(&HashSet::from([m[1]]));
        assert!(d.nobody_to_hand_over_to(&[m[1]], &state.leaving()));
    }

    #[test]
    fn a_member_joining_meanwhile_stays_to_be_handed_over_to() {
        let m = ids(1);
        let mut d = Departures::default();
        let joined = Uuid::new_v4();
        assert!(!d.nobody_to_hand_over_to(&[m[0], joined], &HashSet::from([m[0]])));
    }
}
