//! What a newer partition table asks of this member, partition by
//! partition: copy a replica it does not hold, take over as owner (with
//! or without a copy first), release one it no longer holds.
//!
//! Maps may keep fewer backups than the table has places (`backup-count:
//! 0` or 1 next to a map with 2, asynchronous backups). A backup then holds
//! only the maps that keep a backup at its place, so whenever a member
//! takes a higher place than it had it gets the partition from a member
//! ahead of it: a backup moved up copies the maps it lacks from the owner
//! (an upgrade), a backup promoted copies the partition from the first
//! member ahead of it still alive; if none is left, it serves what it
//! holds.

use crate::service::PartitionService;
use crate::table::PartitionTable;
use crate::upgrade::{Upgrade, UpgradeLog};
use std::sync::atomic::Ordering;
use std::time::Instant;
use uuid::Uuid;

/// What a new table asks of this member.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TableChange {
    /// Partitions this member now holds a replica of without having the
    /// data, or with only part of it: (partition, whether we own it, the
    /// member to copy it from).
    pub needs_copy: Vec<(u32, bool, Uuid)>,
    /// Partitions a new replica will copy from us: (partition, that member).
    pub will_serve: Vec<(u32, Uuid)>,
    /// Partitions we no longer hold a replica of.
    pub released: Vec<u32>,
    /// Partitions whose backup this member was, promoted while members
    /// ahead of it that are still alive may hold them more completely:
    /// (partition, those members in order, this table's version), to copy
    /// from the first that can ([`PartitionService::finish_promotion`]).
    pub promotion_copies: Vec<(u32, Vec<Uuid>, u64)>,
    /// Of those, partitions this member was moving up a place in (an
    /// upgrade) when it was promoted: the members behind it, in order.
    /// Once no member ahead can send a copy, it merges the changes it
    /// logged since the move over a copy from the first of these, which
    /// holds the maps it lacked as they were before
    /// ([`PartitionService::finish_promotion_over_base`]).
    pub promotion_bases: Vec<(u32, Vec<Uuid>)>,
    /// Partitions whose backup this member was and stays, at a higher
    /// place: (partition, this table's version), to copy from the owner
    /// the maps it lacked ([`PartitionService::finish_upgrade`]).
    pub upgrades: Vec<(u32, u64)>,
}

/// Where a new replica of a partition copies it from. When the new owner
/// held the partition before (a promoted backup, an owner that stays), the
/// new owner: it numbers the changes from now on, so a copy from it lines
/// up with the batches that follow. Otherwise the previous owner if it is
/// alive, else the first living previous replica.
pub fn copy_source(prev: &[Uuid], cur: &[Uuid], alive: &[Uuid], except: Uuid) -> Option<Uuid> {
    if let Some(owner) = cur.first() {
        if *owner != except && prev.contains(owner) && alive.contains(owner) {
            return Some(*owner);
        }
    }
    prev.iter()
        .copied()
        .find(|m| *m != except && alive.contains(m))
}

/// Where a promoted member's partition was, in the tables that matter.
struct Moves<'a> {
    /// The table the new one was computed from.
    prev: &'a [Uuid],
    /// The new table.
    cur: &'a [Uuid],
    /// The last table this member applied.
    held: &'a [Uuid],
    /// Changes logged from an owner ahead of our table (see `early_log`).
    early: Option<UpgradeLog>,
}

fn place(replicas: &[Uuid], member: Uuid) -> Option<usize> {
    replicas.iter().position(|m| *m == member)
}

impl PartitionService {
    /// Installs a newer table and says what it asks of this member.
    pub fn apply_table(&self, next: PartitionTable, alive: &[Uuid]) -> Option<TableChange> {
        let mut table = self.table.write().ok()?;
        if next.version <= table.version || next.count() != table.count() {
            return None;
        }
        let now = Instant::now();
        let me = self.me();
        let partial = self.partial_backups.load(Ordering::SeqCst);
        let mut change = TableChange::default();
        for p in 0..next.count() {
            let held = &table.replicas[p as usize];
            let cur = &next.replicas[p as usize];
            // Where the data was: the table the master computed this one
            // from (we may never have seen it, e.g. right after joining).
            let prev = next.previous.get(p as usize).unwrap_or(held);
            // Changes logged early for this table (our owner applied it
            // first) start an upgrade below; otherwise they are not needed.
            let early = {
                let mut st = self.state(p);
                if next.version >= st.early_version {
                    st.early_log.take()
                } else {
                    None
                }
            };
            if held == cur {
                continue;
            }
            if tracing::enabled!(tracing::Level::TRACE) {
                let short = |v: &[Uuid]| -> Vec<String> {
                    v.iter().map(|u| u.to_string()[..8].to_string()).collect()
                };
                tracing::trace!(
                    "table {}: partition {p}: {:?} -> {:?} (computed from {:?})",
                    next.version,
                    short(held),
                    short(cur),
                    short(prev)
                );
            }
            // We hold the data only if we were a replica in the table this
            // one was computed from too (we may have missed a table that
            // took the partition away from us).
            // A promotion still waiting for its copy goes on while this
            // member stays owner: nobody changed the partition meanwhile
            // (operations wait for the copy), so its data and its sources
            // are as good as before. Any other table ends it and decides
            // anew: the data missed the changes the new owner makes, so it
            // is not held. (Ending it when this member stayed owner lost
            // entries: the regular copy that followed found nobody complete
            // after two failures and took a copy kept since the cluster
            // formed, over this member's own data.) Owner in the table the
            // new one was computed from too: a member that missed a table
            // in which the partition lived elsewhere must copy anew.
            let keeps_owning =
                cur.first() == Some(&me) && held.first() == Some(&me) && prev.first() == Some(&me);
            let had_promotion = !keeps_owning && {
                let mut st = self.state(p);
                st.kept_log = None;
                st.promotion.take().is_some()
            };
            if had_promotion && !cur.contains(&me) {
                self.awaiting[p as usize].store(false, Ordering::SeqCst);
            }
            let was = held.contains(&me) && prev.contains(&me) && !had_promotion;
            let is_owner = cur.first() == Some(&me);
            if cur.contains(&me) && !was {
                match copy_source(prev, cur, alive, me) {
                    Some(src) => {
                        let mut st = self.state(p);
                        st.retained |= st.synced;
                        st.synced = false;
                        st.upgrade = None;
                        st.copy_moved_up = None;
                        drop(st);
                        if is_owner {
                            self.awaiting[p as usize].store(true, Ordering::SeqCst);
                        }
                        change.needs_copy.push((p, is_owner, src));
                    }
                    // Nobody alive had it: the partition starts empty.
                    None => self.state(p).start_empty(),
                }
            } else if is_owner && held.first() != Some(&me) {
                let moves = Moves {
                    prev,
                    cur,
                    held,
                    early,
                };
                self.promoted(p, moves, alive, next.version, partial, now, &mut change);
            } else if was
                && !is_owner
                && partial
                && place(cur, me)
                    .is_some_and(|now| Some(now) < place(prev, me).max(place(held, me)))
            {
                // Moved up a place (the backup before us left): we lack
                // the maps that keep a backup at our new place but not at
                // our old one. We copy them from the owner, and meanwhile
                // go on backing up the maps we have. The old place is the
                // lower of where the table this one was computed from put
                // us and where the last table we applied did: a member that
                // missed the table moving it up still holds only the maps
                // of its place before.
                let mut st = self.state(p);
                if let Some(up) = st.upgrade.as_mut() {
                    // Moved up again before the last move's copy arrived
                    // (three or more backups, or a move down and up
                    // again): that upgrade goes on; its copy from the
                    // owner brings every map, and until it lands this
                    // member holds only the maps of its place before the
                    // first move (see `serves_base`). The copy must be
                    // asked for at this table or later (`moved_at`).
                    up.moved_at = up.moved_at.max(next.version);
                } else if !st.synced {
                    // Our copy is still in flight (we joined, or copy
                    // anew): it may be older than this move, so an upgrade
                    // follows it (see `copy_moved_up`).
                    st.copy_moved_up = Some(st.copy_moved_up.unwrap_or(0).max(next.version));
                } else {
                    st.upgrade = Some(match early {
                        Some(log) => Upgrade::with_log(next.version, log),
                        None => Upgrade::new(next.version, st.seq),
                    });
                    drop(st);
                    tracing::debug!(
                        "partition {p}: moved up to backup {}; copying the maps it lacks from the owner",
                        place(cur, me).unwrap_or(0)
                    );
                    change.upgrades.push((p, next.version));
                }
            }
            for r in cur.iter().filter(|r| **r != me && !prev.contains(r)) {
                if copy_source(prev, cur, alive, *r) == Some(me) {
                    change.will_serve.push((p, *r));
                }
            }
            if (was || had_promotion) && !cur.contains(&me) {
                change.released.push(p);
            }
            let mut st = self.state(p);
            st.replicas_version = next.version;
            if st.owned && !is_owner {
                // Changes numbered as owner so far belong to the past.
                st.epoch = st.epoch.wrapping_add(1);
                st.owned_until = st.synced.then_some(st.seq);
            }
            if is_owner && !st.owned {
                // A new term: its batches tell backups where it starts.
                st.owner_term = next.version;
                st.term_base = None;
            }
            st.owned = is_owner;
        }
        *table = next;
        drop(table);
        self.changed.notify_waiters();
        Some(change)
    }

    /// This backup of `p` becomes its owner. Members ahead of it (in the
    /// table the new one was computed from) may hold the partition more
    /// completely: the old owner leaving gracefully, or a join taking it
    /// over its share; the first backup when the owner failed and we were
    /// the second. We copy from them, in that order, when this backup may
    /// lack something they have: maps keeping fewer backups than our
    /// place, asynchronous ones. And from an old owner that stays a
    /// replica in any case: a write it applied as the table changed, whose
    /// backup this member refused (the write failed, to be retried here),
    /// would otherwise stay on it alone, under a change number this member
    /// then gives another write, which it would skip as its backup.
    #[allow(clippy::too_many_arguments)]
    fn promoted(
        &self,
        p: u32,
        moves: Moves<'_>,
        alive: &[Uuid],
        version: u64,
        partial: bool,
        now: Instant,
        change: &mut TableChange,
    ) {
        let Moves {
            prev,
            cur,
            held,
            early,
        } = moves;
        let me = self.me();
        // Our member list may still hold a member that failed (the table
        // can arrive first): the copy task moves on to the next one then.
        let ahead = prev
            .iter()
            .take(place(prev, me).unwrap_or(0))
            .copied()
            .filter(|m| alive.contains(m));
        let sources: Vec<Uuid> = if partial {
            ahead.collect()
        } else {
            ahead
                .take(1)
                .filter(|o| prev.first() == Some(o) && cur.contains(o))
                .collect()
        };
        let mut st = self.state(p);
        // Moved up a place before, its copy not in yet (or the table that
        // moved us up never reached us): we hold the maps we lacked only
        // as far as we logged them. A copy from a member ahead replaces
        // everything; without one, the members behind us hold those maps
        // as they were before the move (they had them then), and our log
        // goes over their copy.
        let missed_move = partial && place(held, me) > place(prev, me);
        let holds_all = st.upgrade.as_ref().is_some_and(|u| u.holds_all);
        let log = match st.upgrade.take() {
            Some(up) => Some(up.into_log()),
            None if missed_move => Some(early.unwrap_or(UpgradeLog {
                from: st.seq,
                seq: st.seq,
                changes: Vec::new(),
            })),
            None => None,
        };
        // Bases: the members behind us, then any other member alive (one
        // leaving gracefully, or that held the partition in an earlier
        // table, still keeps it for a while): a base that holds nothing
        // answers so and is passed over at once. Without any, the maps we
        // lacked keep only what we logged.
        let behind: Vec<Uuid> = match log {
            Some(log) if st.synced => {
                st.kept_log = Some(log);
                // Our store holding every map as of a whole copy (see
                // `Upgrade::holds_all`), the members behind us, which keep
                // fewer maps, are worse bases than our own data: only a
                // member that left the table (leaving gracefully from a
                // place ahead) may be better.
                let mut bases: Vec<Uuid> = prev
                    .iter()
                    .skip(place(prev, me).map_or(prev.len(), |i| i + 1))
                    .copied()
                    .filter(|m| alive.contains(m) && !holds_all)
                    .collect();
                for m in alive {
                    if *m != me && !prev.contains(m) && !bases.contains(m) {
                        bases.push(*m);
                    }
                }
                bases
            }
            _ => Vec::new(),
        };
        if !behind.is_empty() {
            tracing::debug!(
                "partition {p}: promoted before the maps it lacked arrived; merging its log over a copy from {behind:?} unless a member ahead sends one"
            );
        }
        if (sources.is_empty() && behind.is_empty()) || !st.synced {
            st.kept_log = None;
            if partial && st.synced {
                // Nobody ahead of us is left: the maps no backup keeps
                // died with the old owner; what we hold of them is stale.
                st.drop_maps_kept_nowhere(&*self.map_places());
            }
            drop(st);
            self.promote(p, now);
            return;
        }
        // Our own data stays, to fall back on. It is served to others as
        // a last resort only when it is complete.
        st.retained = !partial;
        st.synced = false;
        st.promotion = Some(version);
        st.promotion_prev = prev.to_vec();
        drop(st);
        self.awaiting[p as usize].store(true, Ordering::SeqCst);
        tracing::debug!("partition {p}: promoted; copying it from {sources:?} first");
        if !behind.is_empty() {
            change.promotion_bases.push((p, behind));
        }
        change.promotion_copies.push((p, sources, version));
    }
}
