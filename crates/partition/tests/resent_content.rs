//! A write the owner numbered on the old table while its first backup was
//! leaving: the leaving backup refused its content, and the second backup,
//! at a place that keeps only the write's number, took the number. The
//! owner then sends the content to the member at the first place of its
//! new table: that second backup, moved up. Before, it skipped the content
//! as a change it had seen and acknowledged it, so the write was on the
//! owner alone until the moved-up backup's upgrade copy landed, and on
//! nobody if the owner failed first (open since the third review of the
//! merge). Now a backup notes the numbers it took without content until a
//! copy taken at or after them replaces its data, and refuses their content
//! meanwhile: the owner sends again (as after any refusal) until the
//! upgrade copy, taken from it after the change, is in.

mod common;
use common::members::*;

use ferrocast_partition::{BackupBatch, PartitionTable};

/// B leaves gracefully: t2 = [A, C]. A numbers W on t1 after B applied
/// t2; B refuses it, C takes its number.
fn w_numbered_on_the_old_table(c: &Cluster) -> (PartitionTable, Vec<BackupBatch>) {
    let t1 = c.t1_with_data();
    let t2 = c.t(2, &[A, C], &t1);
    c.apply(B, &t2, &[A, B, C]);
    let w = c.exec("plain", set_to(&c.keys[8], b"w"), A);
    assert!(!w.is_empty());
    for b in &w {
        assert!(
            c.services[B]
                .receive_backup_from(b.clone(), c.ids[A])
                .is_err(),
            "B, on t2, refuses the owner's change of t1"
        );
        c.deliver(b, A, C, false);
    }
    (t2, w)
}

fn taken_by_c(c: &Cluster, w: &[BackupBatch]) -> bool {
    w.iter().all(|b| {
        c.services[C]
            .receive_backup_from(b.clone(), c.ids[A])
            .is_ok()
    })
}

#[test]
fn content_seen_as_a_number_is_acknowledged_only_once_the_upgrade_copy_holds_it() {
    let c = Cluster::new();
    let (t2, w) = w_numbered_on_the_old_table(&c);
    assert!(
        !taken_by_c(&c, &w),
        "C, at a place that keeps only numbers of `plain`, must not acknowledge W's content it skipped"
    );
    c.apply(A, &t2, &[A, B, C]);
    assert!(c.apply(C, &t2, &[A, B, C]).upgrades.contains(&(c.p, 2)));
    assert!(
        !taken_by_c(&c, &w),
        "nor while its upgrade copy is not in: the owner failing now would leave W on nobody"
    );
    let (seq, data) = c.services[A].snapshot(c.p);
    assert!(c.services[C].finish_upgrade(c.p, 2, seq, data));
    assert!(taken_by_c(&c, &w), "the copy holds W");
    assert_eq!(
        c.value(C, "plain", &c.keys[8]),
        c.value(A, "plain", &c.keys[8])
    );
    assert!(c.value(C, "plain", &c.keys[8]).is_some());
    assert_eq!(c.contents(C), c.contents(A));
}

/// The same content arriving again after a later write to its key is
/// skipped: the later value stays.
#[test]
fn ok_content_sent_again_after_a_later_write_is_skipped() {
    let c = Cluster::new();
    let (t2, w) = w_numbered_on_the_old_table(&c);
    c.apply(A, &t2, &[A, B, C]);
    assert!(c.apply(C, &t2, &[A, B, C]).upgrades.contains(&(c.p, 2)));
    let (seq, data) = c.services[A].snapshot(c.p);
    assert!(c.services[C].finish_upgrade(c.p, 2, seq, data));
    c.write("plain", set_to(&c.keys[8], b"later"), A, &[C], &[]);
    assert!(taken_by_c(&c, &w));
    assert_eq!(c.contents(C), c.contents(A), "the later value stays");
}

/// A duplicate of a change to a map every place keeps, at a backup that
/// is neither upgrading nor at a place lacking the map, is acknowledged
/// as before.
#[test]
fn ok_a_duplicate_the_backup_kept_is_acknowledged() {
    let c = Cluster::new();
    c.t1_with_data();
    let batches = c.exec("critical", set_to(&c.keys[9], b"x"), A);
    for b in &batches {
        c.deliver(b, A, B, true);
        c.deliver(b, A, C, true);
        assert!(c.services[C]
            .receive_backup_from(b.clone(), c.ids[A])
            .is_ok());
    }
    assert_eq!(
        c.value(C, "critical", &c.keys[9]),
        c.value(A, "critical", &c.keys[9])
    );
}
