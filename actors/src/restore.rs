//! Rebuilding a user's state from the store: the latest snapshot, then every decision stored
//! after it, folded in as live scoring folded them.

use sentinel_engine::{Ledger, UserState};
use sentinel_store::{RestorePoint, Store, StoreError, UserSnapshot, WriteOp};

/// Decisions read per store call.
pub(crate) const PAGE: usize = 1_000;

/// What a restore found in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Nothing: a user without history.
    Nothing,
    /// A snapshot, and no decision after it to replay.
    Snapshot,
    /// This many decisions replayed (after a snapshot, or from the start; or none, when only
    /// the ledger of a snapshot older than ledgers was rebuilt from the history).
    Replay(usize),
    /// Nothing read: the state the shard kept when the user's last actor passivated
    /// ([`crate::parked`]).
    Parked,
}

impl Source {
    /// The `kind` labels of [`crate::metrics::USER_RESTORES`], by [`Source::kind_index`].
    pub const KINDS: [&'static str; 4] = ["new", "snapshot", "replay", "parked"];

    /// This source's position in [`Source::KINDS`].
    pub fn kind_index(self) -> usize {
        match self {
            Source::Nothing => 0,
            Source::Snapshot => 1,
            Source::Replay(_) => 2,
            Source::Parked => 3,
        }
    }
}

/// The user's state as of the last stored decision, and what it was rebuilt from. A snapshot
/// written before ledgers were kept gets its ledger rebuilt once from the decisions it covers.
pub async fn restore(
    store: &dyn Store,
    user_id: &str,
    lateness_ms: i64,
) -> Result<(UserState, Source), StoreError> {
    let start = store.restore_point(user_id, PAGE).await?;
    let restored = restore_from(store, start, user_id, lateness_ms).await?;
    Ok((restored.user, restored.source))
}

/// A user's state rebuilt from the store.
pub struct Restored {
    /// The state as of the user's last stored decision.
    pub user: UserState,
    /// What it was rebuilt from.
    pub source: Source,
    /// The `seq` of the user's stored snapshot (0: none), which the state's later decisions
    /// build on; `None` when that snapshot must be written again (it was unreadable, or
    /// predates ledgers).
    pub snapshot_seq: Option<u64>,
}

/// [`restore`] from a restore point already read (with at most [`PAGE`] decisions).
pub async fn restore_from(
    store: &dyn Store,
    start: RestorePoint,
    user_id: &str,
    lateness_ms: i64,
) -> Result<Restored, StoreError> {
    let from_snapshot = start.snapshot.is_some();
    let (mut user, mut page, mut snapshot_seq) = match start.snapshot {
        None => (UserState::default(), start.decisions, Some(0)),
        Some(snapshot) => match crate::snapshot::decode(&snapshot.state) {
            Ok(state) => {
                let seq = state.seq;
                (state, start.decisions, Some(seq))
            }
            Err(e) => {
                tracing::error!(user = %user_id, error = %e, "unreadable snapshot; replaying all history");
                let all = store.decisions_for_user(user_id, 0, PAGE).await?;
                (UserState::default(), all, None)
            }
        },
    };
    let rebuilt_ledger = user.ledger.is_none();
    if rebuilt_ledger {
        snapshot_seq = None;
        user.ledger = Some(ledger_through(store, user_id, user.seq).await?);
    }
    let mut replayed = 0;
    loop {
        for decision in &page {
            user.replay(decision, lateness_ms);
        }
        replayed += page.len();
        if page.len() < PAGE {
            break;
        }
        page = store.decisions_for_user(user_id, user.seq, PAGE).await?;
    }
    let source = match (from_snapshot, replayed) {
        (false, 0) => Source::Nothing,
        (true, 0) if !rebuilt_ledger => Source::Snapshot,
        (_, n) => Source::Replay(n),
    };
    Ok(Restored {
        user,
        source,
        snapshot_seq,
    })
}

/// What [`snapshot_uncovered`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Covered {
    /// Snapshots written.
    pub written: usize,
    /// Users whose state could not be rebuilt (a stored record that does not decode): their
    /// restores fail as well, so their decisions go without a snapshot; each is logged.
    pub failed: usize,
}

/// Snapshots each of `users` (user key, `user_seq`) whose stored snapshot does not reach that
/// decision yet (or does not decode, or predates ledgers, whose rebuild reads the decisions it
/// covers), from its state rebuilt as a restore would. Retention calls it before deleting
/// those decisions, so the profile they built outlives them and the user's decision sequence
/// goes on from them. A backend error stops it; an undecodable record only skips its user,
/// unless more than `max_failed` users fail so (more than damage explains: a record format
/// this build cannot read, say), which stops it too. Nothing is written when it stops.
///
/// A live actor of the user may have written a later snapshot meanwhile; this one then replaces
/// it with an earlier, still valid state, and restores replay the decisions after it (kept,
/// because they are newer, or covered again by the next retention pass before they go).
pub async fn snapshot_uncovered(
    store: &dyn Store,
    users: &[(String, u64)],
    lateness_ms: i64,
    max_failed: usize,
) -> Result<Covered, StoreError> {
    let mut covered = Covered::default();
    let mut snapshots = Vec::new();
    for (user_id, expiring_seq) in users {
        match rebuilt_unless_covered(store, user_id, *expiring_seq, lateness_ms).await {
            Ok(None) => {}
            Ok(Some(snapshot)) => snapshots.push(WriteOp::Snapshot(snapshot)),
            Err(e @ StoreError::Corrupt { .. }) if covered.failed < max_failed => {
                tracing::error!(user = %user_id, error = %e, "the user's state cannot be rebuilt; retention deletes its decisions without a snapshot");
                covered.failed += 1;
            }
            Err(StoreError::Corrupt { table, reason }) => {
                return Err(StoreError::Corrupt {
                    table,
                    reason: format!(
                        "{reason} (user {user_id}: more than {max_failed} users of one retention transaction cannot be rebuilt; stopping rather than deleting their decisions)"
                    ),
                })
            }
            Err(e) => return Err(e),
        }
    }
    covered.written = snapshots.len();
    if covered.written > 0 {
        store.write_batch(snapshots).await?;
    }
    Ok(covered)
}

/// A snapshot of `user_id` rebuilt from the store, unless its stored one is readable, has a
/// ledger and reaches `seq`. Most users expiring are covered, so their snapshot alone is read
/// first, not their decisions.
async fn rebuilt_unless_covered(
    store: &dyn Store,
    user_id: &str,
    seq: u64,
    lateness_ms: i64,
) -> Result<Option<UserSnapshot>, StoreError> {
    if let Some(stored) = store.snapshot(user_id).await? {
        let whole = stored.seq >= seq
            && crate::snapshot::decode(&stored.state).is_ok_and(|s| s.ledger.is_some());
        if whole {
            return Ok(None);
        }
    }
    let point = store.restore_point(user_id, PAGE).await?;
    let user = restore_from(store, point, user_id, lateness_ms).await?.user;
    let state = crate::snapshot::encode(&user).map_err(|e| {
        StoreError::Backend(format!("encoding the snapshot of user {user_id}: {e}"))
    })?;
    Ok(Some(UserSnapshot {
        user_id: user_id.to_owned(),
        seq: user.seq,
        state,
    }))
}

/// The ledger of the user's stored decisions up to `seq`: the one-time rebuild for a snapshot
/// that predates ledgers.
async fn ledger_through(store: &dyn Store, user_id: &str, seq: u64) -> Result<Ledger, StoreError> {
    let mut ledger = Ledger::default();
    let mut after = 0;
    while after < seq {
        let page = store.decisions_for_user(user_id, after, PAGE).await?;
        for decision in page.iter().take_while(|d| d.user_seq <= seq) {
            ledger.record(&decision.event, decision.outcome);
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = last.user_seq,
            _ => break,
        }
    }
    Ok(ledger)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentinel_event::Outcome;
    use sentinel_store::conformance::decision;
    use sentinel_store::EmbeddedStore;
    use std::sync::Arc;

    /// Three stored decisions of 12.34 USD each, the second declined, and a snapshot after
    /// the second made from `state`.
    async fn store_with(state: impl FnOnce(&mut UserState)) -> (tempfile::TempDir, EmbeddedStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
        let mut decisions: Vec<_> = (1..=3)
            .map(|seq| decision(&format!("t{seq}"), "u", seq, seq as u32))
            .collect();
        decisions[1].outcome = Outcome::Decline;
        let mut user = UserState::default();
        for d in &decisions[..2] {
            user.replay(d, 0);
        }
        state(&mut user);
        let mut ops: Vec<WriteOp> = decisions
            .into_iter()
            .map(|d| WriteOp::Decision(Arc::new(d)))
            .collect();
        ops.push(WriteOp::Snapshot(UserSnapshot {
            user_id: "u".into(),
            seq: 2,
            state: serde_json::to_vec(&user).unwrap(),
        }));
        store.write_batch(ops).await.unwrap();
        (dir, store)
    }

    /// A snapshot stored as JSON by earlier versions and the binary one written now restore to
    /// the same state, from the snapshot alone.
    #[tokio::test]
    async fn json_and_binary_snapshots_of_one_state_restore_alike() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
        let mut user = UserState::default();
        for seq in 1..=3 {
            user.replay(&decision(&format!("t{seq}"), "u", seq, seq as u32), 0);
        }
        let snapshot = |user_id: &str, state| {
            WriteOp::Snapshot(UserSnapshot {
                user_id: user_id.into(),
                seq: 3,
                state,
            })
        };
        store
            .write_batch(vec![
                snapshot("old", serde_json::to_vec(&user).unwrap()),
                snapshot("new", crate::snapshot::encode(&user).unwrap()),
            ])
            .await
            .unwrap();
        for id in ["old", "new"] {
            let (restored, source) = restore(&store, id, 0).await.unwrap();
            assert_eq!(restored, user, "{id}");
            assert_eq!(source, Source::Snapshot, "{id}");
        }
    }

    #[tokio::test]
    async fn a_snapshot_without_a_ledger_gets_it_rebuilt_from_the_history() {
        let (_dir, store) = store_with(|user| user.ledger = None).await;
        let (user, source) = restore(&store, "u", 0).await.unwrap();
        assert_eq!(source, Source::Replay(1));
        let ledger = user.ledger.unwrap();
        assert_eq!(ledger.totals["USD"], "-24.68".parse().unwrap());
        assert_eq!(ledger.counted, 2);
        assert_eq!(user.seq, 3);
    }

    #[tokio::test]
    async fn a_snapshot_with_a_ledger_is_trusted_and_only_later_decisions_are_added() {
        let (_dir, store) = store_with(|user| {
            let ledger = user.ledger.as_mut().unwrap();
            ledger.totals.insert("USD".into(), "1000".parse().unwrap());
        })
        .await;
        let (user, _) = restore(&store, "u", 0).await.unwrap();
        let ledger = user.ledger.unwrap();
        assert_eq!(ledger.totals["USD"], "987.66".parse().unwrap());
        assert_eq!(ledger.counted, 2);
    }

    async fn snapshot_seq_of(store: &EmbeddedStore, user_id: &str) -> Option<u64> {
        let start = store.restore_point(user_id, PAGE).await.unwrap();
        let restored = restore_from(store, start, user_id, 0).await.unwrap();
        restored.snapshot_seq
    }

    /// What a restore says later passivations build on: the stored snapshot's `seq` (0 for
    /// none), or nothing when that snapshot must be written again.
    #[tokio::test]
    async fn a_restore_names_the_snapshot_later_decisions_build_on() {
        let (_dir, store) = store_with(|_| {}).await;
        assert_eq!(snapshot_seq_of(&store, "u").await, Some(2));
        assert_eq!(snapshot_seq_of(&store, "nobody").await, Some(0));
        let (_dir, store) = store_with(|user| user.ledger = None).await;
        assert_eq!(
            snapshot_seq_of(&store, "u").await,
            None,
            "a snapshot without a ledger is rewritten"
        );
        let unreadable = UserSnapshot {
            user_id: "u".into(),
            seq: 3,
            state: b"not a snapshot".to_vec(),
        };
        store
            .write_batch(vec![WriteOp::Snapshot(unreadable)])
            .await
            .unwrap();
        assert_eq!(
            snapshot_seq_of(&store, "u").await,
            None,
            "an unreadable snapshot is rewritten"
        );
    }
}
