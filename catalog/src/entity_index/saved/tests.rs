//! The live entity index saved and read back over a real store: a restarted catalogue counts
//! only what was stored since the save and ends with the index a full count builds; a file
//! that is damaged, another store's, or too short for the window is refused.

use super::*;
use crate::entity_index::tests::{counting_catalog, merchant_count, open, store_decided_at};
use chrono::Duration;
use sentinel_store::{LsmStore, Store};
use std::collections::HashMap;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

/// The activity `catalog`'s live index has counted.
async fn activity(catalog: &Catalog) -> EntityActivity {
    let sources = catalog.entity_sources.lock().await;
    sources.tail.as_ref().unwrap().activity.clone()
}

#[tokio::test]
async fn a_restart_reads_the_saved_index_and_counts_only_what_was_stored_since() {
    let dir = tempfile::tempdir().unwrap();
    let (counting, first) = counting_catalog(dir.path()).await;
    let now = Utc::now();
    // A month of history, a decision every 18 hours, the last an hour ago.
    for i in 0..40 {
        let at = now - Duration::hours(18 * i + 1);
        store_decided_at(&first, &format!("old-{i}"), at).await;
    }
    first.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    let path = dir.path().join("entity-index.bin");
    let saved = first.save_entity_index(&path).await.unwrap().unwrap();
    assert_eq!(
        saved.overlap, 1,
        "the last decision read is within its own overlap"
    );

    // Stored after the save: five new decisions, and one committed late, decided within the
    // overlap before the last one read.
    for i in 0..5 {
        store_decided_at(&first, &format!("new-{i}"), Utc::now()).await;
    }
    store_decided_at(
        &first,
        "late",
        now - Duration::hours(1) - Duration::seconds(60),
    )
    .await;

    let store: Arc<dyn Store> = Arc::clone(&counting) as Arc<dyn Store>;
    let restarted = open(&store).await;
    let outcome = restarted
        .restore_entity_index(&path, 0, Utc::now())
        .await
        .unwrap();
    let RestoreOutcome::Restored(restored) = outcome else {
        panic!("not restored: {outcome:?}");
    };
    assert_eq!(restored.entities, saved.entities);
    assert_eq!(restored.bytes, std::fs::metadata(&path).unwrap().len());
    let entries = counting.entries_read.load(SeqCst);
    let keys = counting.keys_read.load(SeqCst);
    let size = restarted
        .refresh_entity_risk(0, Utc::now(), 0)
        .await
        .unwrap();
    assert_eq!(size.counted.read, 6, "only what was stored since the save");
    assert_eq!(
        counting.entries_read.load(SeqCst) - entries,
        7,
        "one walk of the entries from the overlap on (old-0 among them), not the month"
    );
    assert_eq!(
        counting.keys_read.load(SeqCst) - keys,
        0,
        "no key looked up first"
    );

    // The same index as counting the whole window from the store.
    let recounted = open(&store).await;
    let size = recounted
        .refresh_entity_risk(0, Utc::now(), 0)
        .await
        .unwrap();
    assert_eq!(size.counted.read, 46);
    assert_eq!(activity(&restarted).await, activity(&recounted).await);
    assert_eq!(merchant_count(&restarted), merchant_count(&recounted));
    assert_eq!(
        merchant_count(&restarted),
        8.0,
        "the last day: the new five, the late one, old-0 and old-1"
    );
}

/// What a catalogue that has built nothing makes of `bytes` written to `path`.
async fn refusal(catalog: &Catalog, path: &Path, bytes: &[u8]) -> Refusal {
    std::fs::write(path, bytes).unwrap();
    match catalog.restore_entity_index(path, 0, Utc::now()).await {
        Ok(RestoreOutcome::Refused(why)) => why,
        other => panic!("{} bytes not refused: {other:?}", bytes.len()),
    }
}

#[tokio::test]
async fn a_saved_index_that_does_not_fit_is_refused_and_the_window_counted_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (counting, first) = counting_catalog(dir.path()).await;
    for i in 0..3 {
        store_decided_at(&first, &format!("d-{i}"), Utc::now() - Duration::hours(i)).await;
    }
    first.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    let path = dir.path().join("entity-index.bin");
    first.save_entity_index(&path).await.unwrap().unwrap();
    let good = std::fs::read(&path).unwrap();

    let store: Arc<dyn Store> = Arc::clone(&counting) as Arc<dyn Store>;
    let restarted = open(&store).await;
    let missing = dir.path().join("none.bin");
    let outcome = restarted
        .restore_entity_index(&missing, 0, Utc::now())
        .await;
    assert!(
        matches!(outcome, Ok(RestoreOutcome::Missing)),
        "{outcome:?}"
    );

    // Every truncation and every flipped byte: damaged, never a panic.
    let damaged = dir.path().join("damaged.bin");
    for len in 0..good.len() {
        let why = refusal(&restarted, &damaged, &good[..len]).await;
        assert!(matches!(why, Refusal::Damaged(_)), "{len} bytes: {why}");
    }
    for at in 0..good.len() {
        let mut bytes = good.clone();
        bytes[at] ^= 0x20;
        let why = refusal(&restarted, &damaged, &bytes).await;
        assert!(matches!(why, Refusal::Damaged(_)), "byte {at}: {why}");
    }
    // A right checksum over counts that cannot be: refused by their checks.
    let hours: HashMap<u64, Vec<(i64, u32)>> = HashMap::from([(7, vec![(2, 1), (1, 1)])]);
    let no_devices = HashMap::<u64, Vec<(i64, u32)>>::new();
    let no_overlap = Vec::<(i64, String)>::new();
    let forged = (
        (1_i64, "d-0"),
        0_i64,
        (hours, no_devices, 2_u64),
        no_overlap,
    );
    let body = rmp_serde::to_vec(&forged).unwrap();
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    bytes.extend_from_slice(&body);
    let why = refusal(&restarted, &damaged, &bytes).await;
    assert!(why.to_string().contains("not strictly ascending"), "{why}");

    // Another store's file: its last decision is not in this store.
    let other_dir = tempfile::tempdir().unwrap();
    let other: Arc<dyn Store> = Arc::new(LsmStore::open(&other_dir.path().join("s")).unwrap());
    let other = open(&other).await;
    store_decided_at(&other, "d-9", Utc::now()).await;
    assert_eq!(refusal(&other, &damaged, &good).await, Refusal::OtherStore);

    // A window reaching further back than the saved activity: a longer label delay.
    let outcome = restarted
        .restore_entity_index(&path, 10 * 86_400_000, Utc::now())
        .await;
    assert!(
        matches!(
            outcome,
            Ok(RestoreOutcome::Refused(Refusal::TooShort { .. }))
        ),
        "{outcome:?}"
    );
    // Forty days later nothing saved is in the window.
    let later = Utc::now() + Duration::days(40);
    let outcome = restarted.restore_entity_index(&path, 0, later).await;
    assert!(
        matches!(outcome, Ok(RestoreOutcome::Refused(Refusal::Outdated(_)))),
        "{outcome:?}"
    );
    // A catalogue that built its index already keeps it.
    let outcome = first.restore_entity_index(&path, 0, Utc::now()).await;
    assert!(
        matches!(outcome, Ok(RestoreOutcome::Refused(Refusal::AlreadyBuilt))),
        "{outcome:?}"
    );

    // After all that, the window is counted from the store.
    let size = restarted
        .refresh_entity_risk(0, Utc::now(), 0)
        .await
        .unwrap();
    assert_eq!(size.counted.read, 3);
    assert_eq!(activity(&restarted).await, activity(&first).await);
}

/// A save replaces the file whole, and saves nothing before a pass has read a decision.
#[tokio::test]
async fn a_save_needs_a_pass_and_replaces_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, catalog) = counting_catalog(dir.path()).await;
    let path = dir.path().join("sub").join("entity-index.bin");
    assert_eq!(catalog.save_entity_index(&path).await.unwrap(), None);
    catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    assert_eq!(
        catalog.save_entity_index(&path).await.unwrap(),
        None,
        "read nothing"
    );
    assert!(!path.exists());

    store_decided_at(&catalog, "a", Utc::now()).await;
    catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    let one = catalog.save_entity_index(&path).await.unwrap().unwrap();
    store_decided_at(&catalog, "b", Utc::now()).await;
    catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    let two = catalog.save_entity_index(&path).await.unwrap().unwrap();
    assert_eq!((one.overlap, two.overlap), (1, 2));
    assert_eq!(two.bytes, std::fs::metadata(&path).unwrap().len());
    assert!(!path.with_extension("tmp").exists());
    // The index is still live after lending itself to the save.
    assert_eq!(
        merchant_count(&catalog),
        2.0,
        "events of two hours ago, in the last day"
    );
    assert_eq!(activity(&catalog).await.transactions(), 2);
}

/// Decisions committed here and not yet passed to the index are taken into it by the save: one
/// committed late (decided before the overlap of the last decision read) is counted after a
/// restart as the running process counts it, and none twice.
#[tokio::test]
async fn decisions_committed_here_before_a_save_are_counted_once_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (counting, first) = counting_catalog(dir.path()).await;
    let now = Utc::now();
    store_decided_at(&first, "read", now - Duration::minutes(10)).await;
    first.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    // Committed here after that pass, the observer told: one decided now, and one decided
    // twenty minutes before the last decision read.
    let fresh = store_decided_at(&first, "fresh", now).await;
    let late = store_decided_at(&first, "late", now - Duration::minutes(30)).await;
    first.commit_observer().committed(&[fresh, late]);
    let path = dir.path().join("entity-index.bin");
    let saved = first.save_entity_index(&path).await.unwrap().unwrap();
    assert_eq!(saved.overlap, 3, "the last read, and both committed here");

    let store: Arc<dyn Store> = Arc::clone(&counting) as Arc<dyn Store>;
    let restarted = open(&store).await;
    let outcome = restarted.restore_entity_index(&path, 0, Utc::now()).await;
    assert!(
        matches!(outcome, Ok(RestoreOutcome::Restored(_))),
        "{outcome:?}"
    );
    let size = restarted
        .refresh_entity_risk(0, Utc::now(), 0)
        .await
        .unwrap();
    assert_eq!(size.counted.read, 0, "all three were in the save");
    assert_eq!(merchant_count(&restarted), 3.0);
    first.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    assert_eq!(
        merchant_count(&first),
        3.0,
        "the running process counts what its save took in"
    );
    assert_eq!(activity(&restarted).await, activity(&first).await);
}

/// A decision counted that the store does not list (on a store whose reads lag its writes) is
/// not left out of a file: nothing is saved until it is readable.
#[tokio::test]
async fn a_counted_decision_the_store_does_not_list_holds_the_save_back() {
    let dir = tempfile::tempdir().unwrap();
    let (_, catalog) = counting_catalog(dir.path()).await;
    store_decided_at(&catalog, "stored", Utc::now()).await;
    catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    let path = dir.path().join("entity-index.bin");
    catalog.save_entity_index(&path).await.unwrap().unwrap();
    let saved = std::fs::read(&path).unwrap();
    // Told as committed, not readable (yet).
    let mut unread = sentinel_store::conformance::decision("unread", "u-unread", 1, 0);
    unread.decided_at = Utc::now();
    catalog.commit_observer().committed(&[Arc::new(unread)]);
    let refused = catalog.save_entity_index(&path).await;
    assert!(
        matches!(
            refused,
            Err(SavedIndexError::Unreadable {
                counted: 2,
                found: 1
            })
        ),
        "{refused:?}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        saved,
        "the last good save kept"
    );
}
