//! One storage conformance suite that every backend must pass: the embedded store runs it in
//! the test suite; other backends call the same functions with a fresh, empty store of theirs.
//! Enabled by the `conformance` feature (tests and backend crates only).

use crate::chain::{LogReport, VerifyOptions, MIN_RETENTION};
use crate::{
    day_of, DayCursor, DayEntry, DecisionLog, RecordGuard, RecordKind, RecordWrite, Store, WriteOp,
    WriteResult, Writer, WriterConfig, WriterHooks,
};
use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;
use sentinel_event::{Decision, Outcome, Transaction};
use std::sync::Arc;

/// A plain approved decision for tests: transaction `txn` of `user` at position `seq`,
/// decided at 10:`minute` on 2026-11-22.
pub fn decision(txn: &str, user: &str, seq: u64, minute: u32) -> Decision {
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 10, minute, 0).unwrap();
    Decision {
        transaction_id: txn.to_owned(),
        user_id: user.to_owned(),
        outcome: Outcome::Approve,
        score: 0.0,
        reasons: vec![],
        shadow_hits: vec![],
        rule_set_version: 1,
        user_seq: seq,
        late: false,
        decided_at: at,
        latency_us: 10,
        event: Arc::new(Transaction {
            transaction_id: txn.to_owned(),
            user_id: user.to_owned(),
            card_id: None,
            device_id: None,
            ip: None,
            amount: Decimal::new(1234, 2),
            currency: "USD".into(),
            merchant_id: None,
            merchant_name: None,
            merchant_category: None,
            channel: None,
            kind: None,
            location: None,
            timestamp: at,
            metadata: None,
            base: None,
        }),
        ml: None,
    }
}

/// Conformance check: see the module docs.
pub async fn decisions_are_immutable_and_indexed(store: Arc<dyn Store>) {
    let first = Arc::new(decision("t1", "u1", 1, 1));
    let results = store
        .write_batch(vec![
            WriteOp::Decision(Arc::clone(&first)),
            WriteOp::Decision(Arc::new(decision("t2", "u1", 2, 2))),
            WriteOp::Decision(Arc::new(decision("t3", "u2", 1, 3))),
        ])
        .await
        .unwrap();
    assert!(results.iter().all(|r| matches!(r, WriteResult::Stored)));

    let mut changed = decision("t1", "u1", 9, 9);
    changed.outcome = Outcome::Decline;
    let results = store
        .write_batch(vec![WriteOp::Decision(Arc::new(changed))])
        .await
        .unwrap();
    match &results[0] {
        WriteResult::AlreadyDecided(d) => assert_eq!(**d, *first),
        other => panic!("expected the original decision back, got {other:?}"),
    }
    assert_eq!(store.decision("t1").await.unwrap().unwrap(), *first);
    assert_eq!(store.decision_count().await.unwrap(), 3);

    let after_first = store.decisions_for_user("u1", 1, 100).await.unwrap();
    assert_eq!(after_first.len(), 1);
    assert_eq!(after_first[0].transaction_id, "t2");
    assert_eq!(
        store.decisions_for_user("u1", 0, 100).await.unwrap().len(),
        2
    );

    let day = day_of(first.decided_at);
    let page = store.decisions_by_day(day, None, 2).await.unwrap();
    let ids: Vec<_> = page.iter().map(|d| d.transaction_id.as_str()).collect();
    assert_eq!(ids, ["t1", "t2"]);
    let cursor = DayCursor {
        decided_us: page[1].decided_at.timestamp_micros(),
        transaction_id: page[1].transaction_id.clone(),
    };
    let next = store
        .decisions_by_day(day, Some(cursor.clone()), 2)
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].transaction_id, "t3");

    // The day index alone lists the same positions, page by page.
    let position = |d: &Decision| DayCursor {
        decided_us: d.decided_at.timestamp_micros(),
        transaction_id: d.transaction_id.clone(),
    };
    let keys = store.decision_keys_by_day(day, None, 2).await.unwrap();
    assert_eq!(keys, page.iter().map(position).collect::<Vec<_>>());
    let next_keys = store
        .decision_keys_by_day(day, Some(cursor), 2)
        .await
        .unwrap();
    assert_eq!(next_keys, vec![position(&next[0])]);
    assert!(store
        .decision_keys_by_day(day + 1, None, 2)
        .await
        .unwrap()
        .is_empty());
}

/// Conformance check: the day index's entries ([`Store::day_entries`]) carry each decision's
/// position and event entities, page by page in decision-time order, telling an absent merchant
/// or device from an empty one.
pub async fn day_entries_carry_each_decisions_entities(store: Arc<dyn Store>) {
    let with = |txn: &str, second: u32, merchant: Option<&str>, device: Option<&str>| {
        let seq = txn[1..].parse().expect("e<n>");
        let mut d = decision(txn, "u1", seq, 7);
        d.decided_at += chrono::Duration::seconds(second.into());
        let mut event = (*d.event).clone();
        event.merchant_id = merchant.map(str::to_owned);
        event.device_id = device.map(str::to_owned);
        event.timestamp -= chrono::Duration::milliseconds(1_500);
        d.event = Arc::new(event);
        Arc::new(d)
    };
    let stored = [
        with("e1", 0, Some("m-1"), Some("d-1")),
        with("e2", 1, None, None),
        with("e3", 1, Some(""), None),
        with("e4", 2, None, Some("d-é")),
        with("e5", 3, Some("m-1"), Some("")),
    ];
    // Written out of time order, over two batches.
    let ops = |ds: &[Arc<Decision>]| {
        ds.iter()
            .map(|d| WriteOp::Decision(Arc::clone(d)))
            .collect::<Vec<_>>()
    };
    store.write_batch(ops(&stored[3..])).await.unwrap();
    store.write_batch(ops(&stored[..3])).await.unwrap();
    let day = day_of(stored[0].decided_at);
    let mut read = Vec::new();
    let mut after = None;
    loop {
        let page = store.day_entries(day, after.clone(), 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.position.clone());
        read.extend(page);
    }
    let expected: Vec<DayEntry> = stored.iter().map(|d| DayEntry::of(d)).collect();
    assert_eq!(read, expected);
    assert_eq!(read[2].merchant_id.as_deref(), Some(""));
    assert!(store
        .day_entries(day + 1, None, 10)
        .await
        .unwrap()
        .is_empty());
    // Any u32 a cluster peer may send is a day to read, the last one too (it has no next).
    assert!(store
        .day_entries(u32::MAX, None, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .decision_keys_by_day(u32::MAX, None, 10)
        .await
        .unwrap()
        .is_empty());
}

/// Conformance check: see the module docs.
pub async fn writer_acknowledges_after_commit_and_reports_duplicates(store: Arc<dyn Store>) {
    let writer = Writer::start(Arc::clone(&store), WriterConfig::default());
    let mut acks = Vec::new();
    for i in 0..500 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let d = Arc::new(decision(&format!("t{i}"), "u", i, 0));
        writer.submit_decision(d, tx).await.unwrap();
        acks.push(rx);
    }
    for rx in acks {
        assert!(!rx.await.unwrap().unwrap().duplicate);
    }
    assert_eq!(store.decision_count().await.unwrap(), 500);

    let (tx, rx) = tokio::sync::oneshot::channel();
    writer
        .submit_decision(Arc::new(decision("t7", "u", 999, 0)), tx)
        .await
        .unwrap();
    let stored = rx.await.unwrap().unwrap();
    assert!(stored.duplicate);
    assert_eq!(stored.decision.user_seq, 7);
    assert!(writer
        .lookup_after_writes("t7".into())
        .await
        .unwrap()
        .is_some());
    writer.flush().await.unwrap();
}

/// Conformance check: a batch read answers each transaction id with its own decision, in the
/// order asked (repeats and unknown ids included), and lookups queued together through the
/// writer, behind decisions not yet acknowledged, each see their own.
pub async fn lookups_read_together_answer_each_id(store: Arc<dyn Store>) {
    let writer = Writer::start(Arc::clone(&store), WriterConfig::default());
    let mut acks = Vec::new();
    for i in 0..200 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let d = Arc::new(decision(&format!("b{i}"), &format!("u{}", i % 7), i, 0));
        writer.submit_decision(d, tx).await.unwrap();
        acks.push(rx);
    }
    // Queued before any of those decisions is acknowledged: each must see the one it names.
    let asked: Vec<String> = (0..300).rev().map(|i| format!("b{i}")).collect();
    let found = futures::future::join_all(
        asked
            .iter()
            .map(|id| writer.lookup_after_writes(id.clone())),
    )
    .await;
    for (id, found) in asked.iter().zip(found) {
        let found = found.unwrap();
        let number: u64 = id[1..].parse().unwrap();
        if number < 200 {
            let found = found.unwrap_or_else(|| panic!("{id} was stored before its lookup"));
            assert_eq!(&found.transaction_id, id);
            assert_eq!(found.user_seq, number);
        } else {
            assert!(found.is_none(), "{id} was never stored");
        }
    }
    for rx in acks {
        assert!(!rx.await.unwrap().unwrap().duplicate);
    }

    let ids = ["b5", "nope", "b199", "b5", "", "b0"]
        .map(String::from)
        .to_vec();
    let found = store.decisions(ids.clone()).await.unwrap();
    let read: Vec<Option<&str>> = found
        .iter()
        .map(|d| d.as_ref().map(|d| d.transaction_id.as_str()))
        .collect();
    assert_eq!(
        read,
        [Some("b5"), None, Some("b199"), Some("b5"), None, Some("b0")]
    );
    assert!(store.decisions(Vec::new()).await.unwrap().is_empty());
}

/// Conformance check: records the writer stores beside decisions (idempotent answers) are
/// readable once acknowledged, and a batch of decisions and records reports a result for
/// each op, in order.
pub async fn records_share_a_batch_with_decisions(store: Arc<dyn Store>) {
    let answer = |key: &str| RecordWrite {
        kind: RecordKind::Idempotency,
        key: key.to_owned(),
        value: Some(format!("answer to {key}").into_bytes()),
    };
    let results = store
        .write_batch(vec![
            WriteOp::Decision(Arc::new(decision("r1", "u", 1, 0))),
            WriteOp::Records(vec![answer("a1"), answer("a2")]),
            WriteOp::Decision(Arc::new(decision("r1", "u", 2, 0))),
        ])
        .await
        .unwrap();
    assert!(matches!(
        results.as_slice(),
        [
            WriteResult::Stored,
            WriteResult::Stored,
            WriteResult::AlreadyDecided(_)
        ]
    ));
    let writer = Writer::start(Arc::clone(&store), WriterConfig::default());
    let (tx, decided) = tokio::sync::oneshot::channel();
    writer
        .submit_decision(Arc::new(decision("r2", "u", 2, 0)), tx)
        .await
        .unwrap();
    writer.store_records(vec![answer("a3")]).await.unwrap();
    assert!(!decided.await.unwrap().unwrap().duplicate);
    for key in ["a1", "a2", "a3"] {
        let stored = store.record(RecordKind::Idempotency, key).await.unwrap();
        assert_eq!(stored, Some(format!("answer to {key}").into_bytes()));
    }
    assert_eq!(store.decision_count().await.unwrap(), 2);
}

/// Conformance check: see the module docs.
pub async fn records_are_written_atomically_and_scanned_in_key_order(store: Arc<dyn Store>) {
    let put = |kind, key: &str, value: &str| RecordWrite {
        kind,
        key: key.to_owned(),
        value: Some(value.as_bytes().to_vec()),
    };
    store
        .put_records(vec![
            put(RecordKind::RuleVersion, "r1/0000000002", "b"),
            put(RecordKind::RuleVersion, "r1/0000000001", "a"),
            put(RecordKind::RuleVersion, "r2/0000000001", "c"),
            put(RecordKind::List, "r1/0000000001", "other kind"),
        ])
        .await
        .unwrap();
    let r1 = store
        .scan_records(RecordKind::RuleVersion, "r1/", None, 10)
        .await
        .unwrap();
    let keys: Vec<&str> = r1.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["r1/0000000001", "r1/0000000002"]);
    let page = store
        .scan_records(RecordKind::RuleVersion, "", Some("r1/0000000002"), 10)
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].0, "r2/0000000001");
    assert_eq!(
        store
            .record(RecordKind::List, "r1/0000000001")
            .await
            .unwrap()
            .unwrap(),
        b"other kind"
    );
    store
        .put_records(vec![RecordWrite {
            kind: RecordKind::List,
            key: "r1/0000000001".into(),
            value: None,
        }])
        .await
        .unwrap();
    assert!(store
        .record(RecordKind::List, "r1/0000000001")
        .await
        .unwrap()
        .is_none());
    // Several read together come back in the order asked, absent ones as `None`.
    let keys = ["r2/0000000001", "r1/0000000001", "nothing", "r1/0000000002"];
    let values = store
        .records(
            RecordKind::RuleVersion,
            keys.iter().map(|k| (*k).to_owned()).collect(),
        )
        .await
        .unwrap();
    let values: Vec<Option<&[u8]>> = values.iter().map(Option::as_deref).collect();
    assert_eq!(
        values,
        [Some(&b"c"[..]), Some(&b"a"[..]), None, Some(&b"b"[..])]
    );
    let none = store.records(RecordKind::List, Vec::new()).await.unwrap();
    assert!(none.is_empty());
}

/// Conformance check: concurrent writers through separate writers never lose or duplicate a
/// decision, and a transaction id written by two of them is stored once.
pub async fn concurrent_writers_store_each_decision_once(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for w in 0..4u64 {
        let writer = Writer::start(Arc::clone(&store), WriterConfig::default());
        tasks.push(tokio::spawn(async move {
            let mut duplicates = 0;
            for i in 0..200u64 {
                // Every writer also writes the shared ids s0..s49.
                let id = if i < 50 {
                    format!("s{i}")
                } else {
                    format!("w{w}-{i}")
                };
                let (tx, rx) = tokio::sync::oneshot::channel();
                let d = Arc::new(decision(&id, &format!("cw{w}"), i + 1, 0));
                writer.submit_decision(d, tx).await.unwrap();
                if rx.await.unwrap().unwrap().duplicate {
                    duplicates += 1;
                }
            }
            duplicates
        }));
    }
    let mut duplicates = 0;
    for t in tasks {
        duplicates += t.await.unwrap();
    }
    assert_eq!(
        duplicates, 150,
        "each shared id is stored by exactly one writer"
    );
    assert_eq!(store.decision_count().await.unwrap(), 4 * 150 + 50);
}

/// Conformance check: outbox records are stored in the same batch as a new decision, never
/// for a duplicate, and move between statuses atomically (see [`crate::outbox`]).
pub async fn alert_outbox_follows_new_decisions_and_moves_between_statuses(store: Arc<dyn Store>) {
    use crate::outbox::{self, AlertRecord, AlertRouting, AlertStatus};
    /// Routes every decision to two sinks and counts the records reported as committed.
    #[derive(Default)]
    struct EverySinkOnce(std::sync::atomic::AtomicUsize);
    impl AlertRouting for EverySinkOnce {
        fn alerts_for(&self, d: &Decision) -> Vec<RecordWrite> {
            ["ops", "slack"]
                .iter()
                .map(|sink| {
                    let id = format!("{}-{sink}", d.transaction_id);
                    AlertRecord::queued(id, sink, d, d.decided_at).write()
                })
                .collect()
        }
        fn committed(&self, _decision: &Decision, records: &[RecordWrite]) {
            self.0
                .fetch_add(records.len(), std::sync::atomic::Ordering::SeqCst);
        }
    }
    let routing = Arc::new(EverySinkOnce::default());
    let hooks = WriterHooks {
        alerts: Some(Arc::clone(&routing) as Arc<dyn AlertRouting>),
        observer: None,
    };
    let writer = Writer::start_with(Arc::clone(&store), WriterConfig::default(), hooks);
    let first = Arc::new(decision("a1", "u1", 1, 1));
    let (ack, stored) = tokio::sync::oneshot::channel();
    writer.submit_decision(first, ack).await.unwrap();
    assert!(!stored.await.unwrap().unwrap().duplicate);
    let pending = outbox::list(&*store, AlertStatus::Pending, None, 10)
        .await
        .unwrap();
    let ids: Vec<_> = pending.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["a1-ops", "a1-slack"]);

    // A redelivered decision owes nothing new: the duplicate's alerts are not written.
    let mut delivered = pending[0].clone();
    delivered.status = AlertStatus::Delivered;
    delivered.attempts = 1;
    outbox::save(&*store, AlertStatus::Pending, &delivered)
        .await
        .unwrap();
    let (ack, stored) = tokio::sync::oneshot::channel();
    writer
        .submit_decision(Arc::new(decision("a1", "u1", 1, 1)), ack)
        .await
        .unwrap();
    assert!(stored.await.unwrap().unwrap().duplicate);
    let pending = outbox::list(&*store, AlertStatus::Pending, None, 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].id, "a1-slack");
    assert_eq!(
        routing.0.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "only the new decision's records are reported committed"
    );
    assert_eq!(
        outbox::get(&*store, AlertStatus::Delivered, "a1-ops")
            .await
            .unwrap(),
        Some(delivered)
    );
    assert!(outbox::get(&*store, AlertStatus::Pending, "a1-ops")
        .await
        .unwrap()
        .is_none());

    // Paging by id.
    let after = outbox::list(&*store, AlertStatus::Pending, Some("a1-slack"), 10)
        .await
        .unwrap();
    assert!(after.is_empty());
}

/// Conformance check: a compare-and-set writes its records only while the guarded record holds
/// what the caller expects (absent, then each value in turn), refuses a stale expectation
/// without writing anything, refuses writes that do not set the guarded record, and among
/// concurrent claims of the same value exactly one wins.
pub async fn compare_and_set_claims_a_record_once(store: Arc<dyn Store>) {
    let write = |kind, key: &str, value: &str| RecordWrite {
        kind,
        key: key.to_owned(),
        value: Some(value.as_bytes().to_vec()),
    };
    let guard = |expected: Option<&str>| RecordGuard {
        kind: RecordKind::PolicyVersion,
        key: "head".into(),
        expected: expected.map(|e| e.as_bytes().to_vec()),
    };
    let claim = |version: u32, owner: &str| {
        vec![
            write(RecordKind::PolicyVersion, "head", &version.to_string()),
            write(
                RecordKind::PolicyVersion,
                &format!("{version:020}"),
                &format!("policy of {owner}"),
            ),
            write(RecordKind::RuleHead, &format!("rule-of-{owner}"), "1"),
        ]
    };
    let record = async |kind, key: &str| {
        store
            .record(kind, key)
            .await
            .unwrap()
            .map(|v| String::from_utf8(v).unwrap())
    };

    assert!(store
        .put_records_if(guard(None), claim(1, "a"))
        .await
        .unwrap());
    assert!(
        !store
            .put_records_if(guard(None), claim(1, "b"))
            .await
            .unwrap(),
        "the record exists now"
    );
    assert!(store
        .put_records_if(guard(Some("1")), claim(2, "c"))
        .await
        .unwrap());
    assert!(
        !store
            .put_records_if(guard(Some("1")), claim(2, "d"))
            .await
            .unwrap(),
        "stale expectation"
    );
    assert_eq!(
        record(RecordKind::PolicyVersion, "head").await.as_deref(),
        Some("2")
    );
    assert_eq!(
        record(RecordKind::PolicyVersion, &format!("{:020}", 1))
            .await
            .as_deref(),
        Some("policy of a")
    );
    assert_eq!(
        record(RecordKind::PolicyVersion, &format!("{:020}", 2))
            .await
            .as_deref(),
        Some("policy of c")
    );
    for loser in ["b", "d"] {
        assert_eq!(
            record(RecordKind::RuleHead, &format!("rule-of-{loser}")).await,
            None,
            "a refused compare-and-set writes nothing"
        );
    }
    assert_eq!(
        record(RecordKind::RuleHead, "rule-of-c").await.as_deref(),
        Some("1")
    );
    assert!(
        store
            .put_records_if(
                guard(Some("2")),
                vec![write(RecordKind::RuleHead, "unclaimed", "1")]
            )
            .await
            .is_err(),
        "writes that do not set the guarded record are refused"
    );
    assert_eq!(record(RecordKind::RuleHead, "unclaimed").await, None);

    // Eight writers claim version 3 at once: exactly one wins, and its writes are the ones kept.
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let store = Arc::clone(&store);
            let writes = claim(3, &format!("w{w}"));
            let guard = guard(Some("2"));
            tokio::spawn(async move { (w, store.put_records_if(guard, writes).await.unwrap()) })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (w, applied) = task.await.unwrap();
        if applied {
            winners.push(w);
        }
    }
    assert_eq!(winners.len(), 1, "one claim of version 3 wins: {winners:?}");
    let winner = format!("w{}", winners[0]);
    assert_eq!(
        record(RecordKind::PolicyVersion, &format!("{:020}", 3)).await,
        Some(format!("policy of {winner}"))
    );
    let heads = store
        .scan_records(RecordKind::RuleHead, "rule-of-w", None, 100)
        .await
        .unwrap();
    let owners: Vec<&str> = heads.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(owners, [format!("rule-of-{winner}")]);
}

/// Conformance check: a restore finds every user with anything stored (decisions only, a
/// snapshot only, both) and nothing for a user never seen, whatever shortcut a backend takes
/// for users without history.
pub async fn restore_point_finds_every_user_with_history(store: Arc<dyn Store>) {
    use crate::UserSnapshot;
    let snapshot = |user: &str, seq| UserSnapshot {
        user_id: user.to_owned(),
        seq,
        state: format!("state of {user}").into_bytes(),
    };
    assert!(store
        .restore_point("decided", 10)
        .await
        .unwrap()
        .decisions
        .is_empty());
    store
        .write_batch(vec![
            WriteOp::Decision(Arc::new(decision("h1", "decided", 1, 1))),
            WriteOp::Decision(Arc::new(decision("h2", "decided", 2, 2))),
            WriteOp::Snapshot(snapshot("snapshotted", 0)),
            WriteOp::Decision(Arc::new(decision("h3", "both", 1, 3))),
            WriteOp::Snapshot(snapshot("both", 1)),
            WriteOp::Decision(Arc::new(decision("h4", "both", 2, 4))),
        ])
        .await
        .unwrap();
    let decided = store.restore_point("decided", 10).await.unwrap();
    assert!(decided.snapshot.is_none());
    assert_eq!(decided.decisions.len(), 2);
    assert_eq!(
        store
            .decisions_for_user("decided", 1, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let snapshotted = store.restore_point("snapshotted", 10).await.unwrap();
    assert_eq!(snapshotted.snapshot, Some(snapshot("snapshotted", 0)));
    assert!(snapshotted.decisions.is_empty());
    assert_eq!(
        store.snapshot("snapshotted").await.unwrap(),
        Some(snapshot("snapshotted", 0))
    );
    let both = store.restore_point("both", 10).await.unwrap();
    assert_eq!(both.snapshot, Some(snapshot("both", 1)));
    let after: Vec<&str> = both
        .decisions
        .iter()
        .map(|d| d.transaction_id.as_str())
        .collect();
    assert_eq!(after, ["h4"]);
    let nobody = store.restore_point("nobody", 10).await.unwrap();
    assert!(nobody.snapshot.is_none() && nobody.decisions.is_empty());
    assert!(store.snapshot("nobody").await.unwrap().is_none());
    for user in ["decided", "snapshotted", "both"] {
        assert!(
            store.may_have_history(user),
            "{user} said to have no history"
        );
    }

    let users = ["both", "nobody", "decided", "snapshotted", "both"].map(String::from);
    let points = store.restore_points(&users, 10).await.unwrap();
    assert_eq!(points.len(), users.len());
    for (user, point) in users.iter().zip(points) {
        let alone = store.restore_point(user, 10).await.unwrap();
        assert_eq!(point.snapshot, alone.snapshot, "{user}");
        assert_eq!(point.decisions, alone.decisions, "{user}");
    }
    let points = store.restore_points(&["nobody".into()], 10).await.unwrap();
    assert!(points[0].snapshot.is_none() && points[0].decisions.is_empty());
}

/// Decided at 10:`minute`:`second` on 2026-11-22 (the day of [`decision`]).
fn at(minute: u32, second: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, minute, second)
        .unwrap()
}

/// Verifies `store`'s whole decision log as of 2030.
pub async fn verify_log(store: &dyn DecisionLog) -> LogReport {
    let now = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
    let options = VerifyOptions {
        expect_head: None,
        now,
    };
    store.verify_log(options).await.unwrap()
}

/// Conformance check for the embedded engines' retention: decisions `t1` … `t5` of user `u`
/// (10:01 … 10:05, log positions 1 … 5) pruned before 10:03:30 in passes of at most 1 and
/// 100 leave `t4` and `t5` in every index, the count at 2, and a log that verifies from
/// position 4 with both passes declared; new decisions extend the same chain. Before each
/// pass, the users expiring are those of the decisions it deletes, with the latest `user_seq`.
pub async fn retention_deletes_from_every_table_and_the_rest_verifies(store: &dyn DecisionLog) {
    let ops = (1..=5)
        .map(|i| WriteOp::Decision(Arc::new(decision(&format!("t{i}"), "u", i, i as u32))))
        .collect();
    store.write_batch(ops).await.unwrap();
    let cutoff = at(3, 30);
    let prune = |max| store.prune_decided_before(cutoff, cutoff + MIN_RETENTION, max);
    let expiring = |max| store.users_expiring(cutoff, cutoff + MIN_RETENTION, max);
    assert_eq!(expiring(1).await.unwrap(), [("u".to_owned(), 1)]);
    assert_eq!(prune(1).await.unwrap(), 1);
    assert_eq!(expiring(100).await.unwrap(), [("u".to_owned(), 3)]);
    assert_eq!(prune(100).await.unwrap(), 2);
    assert_eq!(expiring(100).await.unwrap(), []);
    assert_eq!(prune(100).await.unwrap(), 0);
    for gone in ["t1", "t2", "t3"] {
        assert!(store.decision(gone).await.unwrap().is_none(), "{gone}");
    }
    let kept: Vec<_> = store
        .decisions_for_user("u", 0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.transaction_id)
        .collect();
    assert_eq!(kept, ["t4", "t5"]);
    let day = day_of(at(0, 0));
    assert_eq!(
        store.decisions_by_day(day, None, 10).await.unwrap().len(),
        2
    );
    assert_eq!(store.decision_count().await.unwrap(), 2);
    let report = verify_log(store).await;
    // Two kept decisions and the two passes' declarations.
    assert_eq!(
        (report.first_seq, report.verified, report.problem),
        (4, 4, None)
    );
    assert_eq!(report.retention.len(), 2);
    assert_eq!(report.retention[1].first_kept, 4);
    let more = vec![WriteOp::Decision(Arc::new(decision("t6", "u", 6, 6)))];
    store.write_batch(more).await.unwrap();
    let report = verify_log(store).await;
    assert_eq!(
        (report.first_seq, report.verified, report.problem),
        (4, 5, None)
    );
}

/// Runs every conformance check, each on a fresh store from `fresh`.
pub async fn run_all<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Store>>,
{
    decisions_are_immutable_and_indexed(fresh().await).await;
    day_entries_carry_each_decisions_entities(fresh().await).await;
    writer_acknowledges_after_commit_and_reports_duplicates(fresh().await).await;
    lookups_read_together_answer_each_id(fresh().await).await;
    records_are_written_atomically_and_scanned_in_key_order(fresh().await).await;
    records_share_a_batch_with_decisions(fresh().await).await;
    concurrent_writers_store_each_decision_once(fresh().await).await;
    alert_outbox_follows_new_decisions_and_moves_between_statuses(fresh().await).await;
    compare_and_set_claims_a_record_once(fresh().await).await;
    restore_point_finds_every_user_with_history(fresh().await).await;
}
