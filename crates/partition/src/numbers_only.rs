//! The change numbers a backup took without their content. With maps of
//! different backup counts, a backup at a place that does not keep a map
//! gets only the numbers of that map's writes, to keep its numbering
//! contiguous. If the owner later sends such a change's content again (its
//! first backup refused it while the table changed, and the member now at
//! that place is this one), acknowledging it as already seen would count
//! the write as backed up while only its owner holds it. So the backup
//! remembers those numbers until a copy taken at or after them replaces
//! its data, and refuses their content meanwhile: the owner sends again
//! until then, or the write fails and the client retries it.
//!
//! The numbers are kept as runs (consecutive numbers are one entry, the
//! usual case when one map takes most writes). Past `RUN_LIMIT` runs the
//! oldest are forgotten, and every number up to them counts as taken
//! without content until a copy covers it: content the backup does hold,
//! sent again that late (a re-send after a lost answer on a busy
//! partition), is refused until the write's deadline and the write fails
//! for the client to retry; acknowledging content it lacks could lose an
//! acknowledged write.

use std::collections::VecDeque;

/// Runs kept per partition before the oldest are forgotten (16 bytes
/// each, so at most 16 KiB per partition, and only on a backup at a place
/// that does not keep some map). A re-sent change is one still in flight,
/// so a window of the last thousand runs covers many seconds of a
/// partition's writes.
const RUN_LIMIT: usize = 1024;

#[derive(Debug, Default)]
pub struct NumbersOnly {
    /// Inclusive runs of numbers, in increasing order.
    runs: VecDeque<(u64, u64)>,
    /// Numbers below this one were forgotten: taken as without content.
    forgotten_below: u64,
}

impl NumbersOnly {
    /// Change `seq`, the next applied, came without content.
    pub fn note(&mut self, seq: u64) {
        // Numbers applied go up; a lower one means the replica's numbering
        // was taken back (a new owner term): what we noted past it is void.
        self.taken_back_to(seq.saturating_sub(1));
        if let Some(last) = self.runs.back_mut() {
            if seq == last.1 + 1 {
                last.1 = seq;
                return;
            }
        }
        if self.runs.len() == RUN_LIMIT {
            // Forget the oldest before adding: the deque never grows past
            // the limit (nor its allocation past 16 KiB).
            if let Some((_, end)) = self.runs.pop_front() {
                self.forgotten_below = self.forgotten_below.max(end + 1);
            }
        }
        self.runs.push_back((seq, seq));
    }

    /// The replica's numbering went back to `seq` (a new owner term
    /// continues from there and gives the numbers after it to other
    /// changes): notes past it are void.
    pub fn taken_back_to(&mut self, seq: u64) {
        while let Some(last) = self.runs.back_mut() {
            if last.0 > seq {
                self.runs.pop_back();
            } else {
                last.1 = last.1.min(seq);
                break;
            }
        }
        if self.forgotten_below > seq + 1 {
            self.forgotten_below = seq + 1;
        }
    }

    /// Whether change `seq` may have been taken without its content.
    pub fn contains(&self, seq: u64) -> bool {
        if seq < self.forgotten_below {
            return true;
        }
        // Runs are sorted and disjoint: the last one starting at or before
        // `seq` is the only one that can hold it.
        let i = self.runs.partition_point(|(start, _)| *start <= seq);
        i > 0 && self.runs[i - 1].1 >= seq
    }

    /// A copy taken at change `seq` replaced the data: it holds every
    /// change up to it with its content.
    pub fn covered_to(&mut self, seq: u64) {
        while let Some(first) = self.runs.front_mut() {
            if first.1 <= seq {
                self.runs.pop_front();
            } else {
                first.0 = first.0.max(seq + 1);
                break;
            }
        }
        if self.forgotten_below <= seq + 1 {
            self.forgotten_below = 0;
        }
    }

    pub fn clear(&mut self) {
        self.runs.clear();
        self.forgotten_below = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_hold_exactly_the_numbers_noted() {
        let mut n = NumbersOnly::default();
        for s in [3, 4, 5, 8, 10, 11] {
            n.note(s);
        }
        let held: Vec<u64> = (0..14).filter(|s| n.contains(*s)).collect();
        assert_eq!(held, vec![3, 4, 5, 8, 10, 11]);
        assert_eq!(n.runs.len(), 3);
    }

    #[test]
    fn a_copy_covers_the_numbers_up_to_it() {
        let mut n = NumbersOnly::default();
        for s in [3, 4, 5, 8, 10, 11] {
            n.note(s);
        }
        n.covered_to(4);
        let held: Vec<u64> = (0..14).filter(|s| n.contains(*s)).collect();
        assert_eq!(held, vec![5, 8, 10, 11]);
        n.covered_to(10);
        assert!(!n.contains(10) && n.contains(11));
    }

    #[test]
    fn forgotten_runs_count_as_without_content_until_a_copy_covers_them() {
        let mut n = NumbersOnly::default();
        for i in 0..(RUN_LIMIT as u64 + 10) {
            n.note(i * 2 + 1);
        }
        assert_eq!(n.runs.len(), RUN_LIMIT);
        assert!(n.contains(2), "an even number in the forgotten range");
        assert!(
            !n.contains(2 * (RUN_LIMIT as u64 + 5)),
            "an even number in the kept range"
        );
        n.covered_to(40);
        assert!(!n.contains(2), "the copy holds it");
        assert!(n.contains(41));
    }

    #[test]
    fn numbering_taken_back_voids_what_was_noted_past_it() {
        let mut n = NumbersOnly::default();
        for s in [2, 5, 6, 7, 9] {
            n.note(s);
        }
        n.note(6);
        let held: Vec<u64> = (0..12).filter(|s| n.contains(*s)).collect();
        assert_eq!(held, vec![2, 5, 6]);
        n.taken_back_to(5);
        let held: Vec<u64> = (0..12).filter(|s| n.contains(*s)).collect();
        assert_eq!(held, vec![2, 5]);
    }
}
