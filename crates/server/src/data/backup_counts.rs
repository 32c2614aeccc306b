//! How many backups each map keeps, and which backup places keep it.
//!
//! A partition has one owner and as many backup places as the map with the
//! most backups needs (`table_slots`). With per-map counts taken as written
//! (`BackupPlaces::PerMap`), a map with fewer backups than that is kept on
//! the first places only, and the places behind take its changes as numbers
//! only. A member that moves up a place then lacks maps its new place keeps
//! and must copy them from the owner while writes go on; that hand-over has
//! one known way to lose an acknowledged write on a single crash (a replica
//! made owner while its copy travels, see `docs/architecture.md` and
//! `partition/tests/resent_content_review4.rs`).
//!
//! `BackupPlaces::Uniform`, the default, removes the difference instead of
//! handling it: every backup place keeps every map that has backups, and the
//! owner of any map with synchronous backups waits for as many places as the
//! map with the most synchronous backups. Moving up a place then never
//! changes what a member must hold, and no replica holds a change of a
//! backed-up map as a number only. The cost falls only on configurations
//! that mix counts: their maps with fewer backups are stored on more
//! members. When every map keeps the same counts (the default
//! configuration), both settings are the same.

use std::collections::HashMap;

/// Synchronous and asynchronous backup counts, by map.
#[derive(Clone, Debug, Default)]
pub struct BackupCounts {
    pub default: (usize, usize),
    pub per_map: HashMap<String, (usize, usize)>,
}

/// Whether per-map backup counts are taken as written or evened out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackupPlaces {
    /// Every backup place keeps every map that has backups (see the module doc).
    #[default]
    Uniform,
    /// Each map on as many places as its own counts say.
    PerMap,
}

impl std::str::FromStr for BackupPlaces {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "uniform" => Ok(Self::Uniform),
            "per-map" | "per_map" => Ok(Self::PerMap),
            other => Err(format!(
                "unknown backup places '{other}' (expected uniform or per-map)"
            )),
        }
    }
}

/// A map whose counts `BackupCounts::uniform` changed: its name (`None`
/// for the default, which every map not named in the configuration uses),
/// the counts as configured and as kept.
pub type Raised = (Option<String>, (usize, usize), (usize, usize));

impl BackupCounts {
    pub fn for_map(&self, name: &str) -> (usize, usize) {
        self.per_map.get(name).copied().unwrap_or(self.default)
    }

    /// Whether some map keeps fewer synchronous backups than the table
    /// has slots: a backup then may lack that map's entries (none kept, or
    /// sent asynchronously).
    pub fn partial(&self) -> bool {
        let slots = self.table_slots();
        self.all().any(|(sync, _)| sync < slots)
    }

    /// Backup slots the partition table needs: the most any map uses.
    pub fn table_slots(&self) -> usize {
        self.all().map(|(s, a)| s + a).max().unwrap_or(0)
    }

    fn all(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.per_map
            .values()
            .copied()
            .chain(std::iter::once(self.default))
    }

    /// The counts with every backup place keeping every map that has
    /// backups: a map with synchronous backups waits for as many as the
    /// map with the most, and is sent to the places after those without
    /// waiting; a map with asynchronous backups only is sent to every
    /// place; a map without backups stays on its owner alone. Returns the
    /// counts and the maps whose counts changed.
    pub fn uniform(&self) -> (BackupCounts, Vec<Raised>) {
        let slots = self.table_slots();
        let most_sync = self.all().map(|(s, _)| s).max().unwrap_or(0);
        let even = |(sync, asynchronous): (usize, usize)| match (sync, asynchronous) {
            (0, 0) => (0, 0),
            (0, _) => (0, slots),
            _ => (most_sync, slots - most_sync),
        };
        let mut raised = Vec::new();
        let default = even(self.default);
        if default != self.default {
            raised.push((None, self.default, default));
        }
        let mut per_map = HashMap::new();
        let mut names: Vec<&String> = self.per_map.keys().collect();
        names.sort();
        for name in names {
            let was = self.per_map[name];
            let now = even(was);
            if now != was {
                raised.push((Some(name.clone()), was, now));
            }
            per_map.insert(name.clone(), now);
        }
        (BackupCounts { default, per_map }, raised)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(default: (usize, usize), maps: &[(&str, (usize, usize))]) -> BackupCounts {
        BackupCounts {
            default,
            per_map: maps.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
        }
    }

    #[test]
    fn the_same_counts_everywhere_stay_as_they_are() {
        for c in [
            counts((1, 0), &[]),
            counts((2, 1), &[("a", (2, 1))]),
            counts((0, 0), &[]),
        ] {
            let (u, raised) = c.uniform();
            assert!(raised.is_empty(), "{c:?}");
            assert_eq!((u.default, u.per_map), (c.default, c.per_map));
        }
    }

    #[test]
    fn fewer_synchronous_backups_are_raised_to_the_most() {
        let (u, raised) = counts((1, 0), &[("critical", (2, 0))]).uniform();
        assert_eq!(u.for_map("critical"), (2, 0));
        assert_eq!(u.for_map("anything"), (2, 0));
        assert_eq!(raised, vec![(None, (1, 0), (2, 0))]);
        assert!(!u.partial(), "every place keeps and waits for every map");
        assert_eq!(u.table_slots(), 2);
    }

    #[test]
    fn places_past_the_synchronous_ones_get_every_map_without_waiting() {
        let (u, raised) = counts((1, 0), &[("y", (1, 1)), ("nob", (0, 0))]).uniform();
        assert_eq!(u.for_map("other"), (1, 1));
        assert_eq!(u.for_map("y"), (1, 1));
        assert_eq!(u.for_map("nob"), (0, 0), "a map without backups stays so");
        assert_eq!(raised, vec![(None, (1, 0), (1, 1))]);
        assert_eq!(u.table_slots(), 2);
    }

    #[test]
    fn a_map_with_asynchronous_backups_only_is_sent_to_every_place() {
        let (u, raised) = counts((2, 0), &[("fast", (0, 1))]).uniform();
        assert_eq!(u.for_map("fast"), (0, 2));
        assert_eq!(u.for_map("x"), (2, 0));
        assert_eq!(raised, vec![(Some("fast".into()), (0, 1), (0, 2))]);
    }

    #[test]
    fn the_setting_parses() {
        assert_eq!("uniform".parse(), Ok(BackupPlaces::Uniform));
        assert_eq!("per-map".parse(), Ok(BackupPlaces::PerMap));
        assert!("exact"
            .parse::<BackupPlaces>()
            .unwrap_err()
            .contains("per-map"));
    }
}
