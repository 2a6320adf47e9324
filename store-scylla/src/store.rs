//! [`Store`] over CQL.

use crate::day::{self, DayRow, BUCKETS};
use crate::{migrations, ScyllaConfig};
use async_trait::async_trait;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};
use scylla::value::{CqlValue, Row};
use sentinel_event::{Decision, Outcome};
use sentinel_store::{
    day_of, DayCursor, RecordGuard, RecordKind, RecordWrite, RestorePoint, Store, StoreError,
    UserSnapshot, WriteOp, WriteResult,
};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The consistency named in the configuration.
pub(crate) fn consistency(name: &str) -> Result<Consistency, String> {
    Ok(match name {
        "any" => Consistency::Any,
        "one" => Consistency::One,
        "two" => Consistency::Two,
        "three" => Consistency::Three,
        "quorum" => Consistency::Quorum,
        "all" => Consistency::All,
        "local_quorum" => Consistency::LocalQuorum,
        "each_quorum" => Consistency::EachQuorum,
        "local_one" => Consistency::LocalOne,
        other => return Err(format!("unknown consistency `{other}`")),
    })
}

/// The serial consistency named in the configuration.
pub(crate) fn serial_consistency(name: &str) -> Result<SerialConsistency, String> {
    match name {
        "serial" => Ok(SerialConsistency::Serial),
        "local_serial" => Ok(SerialConsistency::LocalSerial),
        other => Err(format!("unknown serial consistency `{other}`")),
    }
}

fn backend(context: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("{context}: {e}"))
}

fn corrupt(table: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table,
        reason: e.to_string(),
    }
}

/// Every statement the store runs, prepared once.
struct Statements {
    insert_decision: PreparedStatement,
    decision_body: PreparedStatement,
    decision_owed: PreparedStatement,
    settle_owed: PreparedStatement,
    insert_by_user: PreparedStatement,
    insert_by_day: PreparedStatement,
    insert_flagged: PreparedStatement,
    count_decision: PreparedStatement,
    read_count: PreparedStatement,
    user_after: PreparedStatement,
    day_page: PreparedStatement,
    day_keys: PreparedStatement,
    put_snapshot: PreparedStatement,
    get_snapshot: PreparedStatement,
    put_record: PreparedStatement,
    put_record_if_absent: PreparedStatement,
    replace_record_if: PreparedStatement,
    delete_record: PreparedStatement,
    get_record: PreparedStatement,
    scan_from: PreparedStatement,
    scan_after: PreparedStatement,
    scan_from_below: PreparedStatement,
    scan_after_below: PreparedStatement,
}

impl Statements {
    async fn prepare(session: &Session, config: &ScyllaConfig) -> Result<Self, StoreError> {
        let ks = &config.keyspace;
        let level = consistency(&config.consistency).map_err(|e| backend("consistency", e))?;
        let serial = serial_consistency(&config.serial_consistency)
            .map_err(|e| backend("serial consistency", e))?;
        let prepare = async |cql: String, idempotent: bool| {
            let mut statement = session
                .prepare(cql.as_str())
                .await
                .map_err(|e| backend(&format!("preparing `{cql}`"), e))?;
            statement.set_consistency(level);
            statement.set_serial_consistency(Some(serial));
            // Idempotent statements may be retried by the driver on a timeout; the counter
            // increment may not.
            statement.set_is_idempotent(idempotent);
            Ok::<_, StoreError>(statement)
        };
        let scan = |op: &str, below: bool| {
            format!(
                "SELECT record_key, body FROM {ks}.records WHERE kind = ? AND bucket = ? \
                 AND record_key {op} ?{} LIMIT ?",
                if below { " AND record_key < ?" } else { "" }
            )
        };
        Ok(Statements {
            // A compare-and-set: true only for the first writer of a transaction id, also
            // when nodes race (the cluster's redelivery after a rebalance).
            insert_decision: prepare(
                format!(
                    "INSERT INTO {ks}.decisions_by_txn \
                     (transaction_id, user_id, user_seq, decided_us, body, owed) \
                     VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS USING TTL ?"
                ),
                true,
            )
            .await?,
            decision_body: prepare(
                format!("SELECT body FROM {ks}.decisions_by_txn WHERE transaction_id = ?"),
                true,
            )
            .await?,
            decision_owed: prepare(
                format!("SELECT body, owed FROM {ks}.decisions_by_txn WHERE transaction_id = ?"),
                true,
            )
            .await?,
            settle_owed: prepare(
                format!("UPDATE {ks}.decisions_by_txn SET owed = null WHERE transaction_id = ?"),
                true,
            )
            .await?,
            insert_by_user: prepare(
                format!(
                    "INSERT INTO {ks}.decisions_by_user (user_id, user_seq, transaction_id, body) \
                     VALUES (?, ?, ?, ?) USING TTL ?"
                ),
                true,
            )
            .await?,
            insert_by_day: prepare(
                format!(
                    "INSERT INTO {ks}.decisions_by_day \
                     (day, bucket, decided_us, transaction_id, body) \
                     VALUES (?, ?, ?, ?, ?) USING TTL ?"
                ),
                true,
            )
            .await?,
            insert_flagged: prepare(
                format!(
                    "INSERT INTO {ks}.flagged_by_day \
                     (day, bucket, decided_us, transaction_id, outcome, body) \
                     VALUES (?, ?, ?, ?, ?, ?) USING TTL ?"
                ),
                true,
            )
            .await?,
            count_decision: prepare(
                format!("UPDATE {ks}.counters SET total = total + 1 WHERE name = 'decisions'"),
                false,
            )
            .await?,
            read_count: prepare(
                format!("SELECT total FROM {ks}.counters WHERE name = 'decisions'"),
                true,
            )
            .await?,
            user_after: prepare(
                format!(
                    "SELECT body FROM {ks}.decisions_by_user \
                     WHERE user_id = ? AND user_seq > ? LIMIT ?"
                ),
                true,
            )
            .await?,
            day_page: prepare(
                format!(
                    "SELECT decided_us, transaction_id, body FROM {ks}.decisions_by_day \
                     WHERE day = ? AND bucket = ? AND (decided_us, transaction_id) > (?, ?) \
                     LIMIT ?"
                ),
                true,
            )
            .await?,
            day_keys: prepare(
                format!(
                    "SELECT decided_us, transaction_id FROM {ks}.decisions_by_day \
                     WHERE day = ? AND bucket = ? AND (decided_us, transaction_id) > (?, ?) \
                     LIMIT ?"
                ),
                true,
            )
            .await?,
            put_snapshot: prepare(
                format!(
                    "INSERT INTO {ks}.user_snapshots (user_id, seq, state) VALUES (?, ?, ?) \
                     USING TTL ?"
                ),
                true,
            )
            .await?,
            get_snapshot: prepare(
                format!("SELECT seq, state FROM {ks}.user_snapshots WHERE user_id = ?"),
                true,
            )
            .await?,
            put_record: prepare(
                format!("INSERT INTO {ks}.records (kind, bucket, record_key, body) VALUES (?, ?, ?, ?)"),
                true,
            )
            .await?,
            put_record_if_absent: prepare(
                format!(
                    "INSERT INTO {ks}.records (kind, bucket, record_key, body) VALUES (?, ?, ?, ?) \
                     IF NOT EXISTS"
                ),
                false,
            )
            .await?,
            replace_record_if: prepare(
                format!(
                    "UPDATE {ks}.records SET body = ? WHERE kind = ? AND bucket = ? AND record_key = ? \
                     IF body = ?"
                ),
                false,
            )
            .await?,
            delete_record: prepare(
                format!("DELETE FROM {ks}.records WHERE kind = ? AND bucket = ? AND record_key = ?"),
                true,
            )
            .await?,
            get_record: prepare(
                format!("SELECT body FROM {ks}.records WHERE kind = ? AND bucket = ? AND record_key = ?"),
                true,
            )
            .await?,
            scan_from: prepare(scan(">=", false), true).await?,
            scan_after: prepare(scan(">", false), true).await?,
            scan_from_below: prepare(scan(">=", true), true).await?,
            scan_after_below: prepare(scan(">", true), true).await?,
        })
    }
}

/// The ScyllaDB backend.
pub struct ScyllaStore {
    session: Session,
    statements: Statements,
    in_flight: Semaphore,
    decision_ttl: i32,
    snapshot_ttl: i32,
}

impl ScyllaStore {
    /// Connects, applies the schema migrations, and prepares every statement.
    pub async fn connect(config: &ScyllaConfig) -> Result<ScyllaStore, StoreError> {
        config.validate().map_err(|e| backend("configuration", e))?;
        let mut builder = SessionBuilder::new().known_nodes(&config.nodes);
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.user(user, password);
        }
        let session = builder
            .build()
            .await
            .map_err(|e| backend(&format!("connecting to {:?}", config.nodes), e))?;
        migrations::apply(&session, config).await?;
        let statements = Statements::prepare(&session, config).await?;
        Ok(ScyllaStore {
            session,
            statements,
            in_flight: Semaphore::new(config.max_in_flight),
            decision_ttl: config.decision_ttl(),
            snapshot_ttl: config.snapshot_ttl(),
        })
    }

    /// A place within the in-flight bound.
    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, StoreError> {
        self.in_flight
            .acquire()
            .await
            .map_err(|e| backend("in-flight bound", e))
    }

    /// Runs one prepared statement within the in-flight bound.
    async fn run(
        &self,
        statement: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<scylla::response::query_result::QueryResult, StoreError> {
        let _permit = self.permit().await?;
        self.session
            .execute_unpaged(statement, values)
            .await
            .map_err(|e| backend("executing a statement", e))
    }

    /// Runs one batch within the in-flight bound.
    async fn run_batch(
        &self,
        batch: &Batch,
        values: Vec<Vec<CqlValue>>,
        context: &str,
    ) -> Result<scylla::response::query_result::QueryResult, StoreError> {
        let _permit = self.permit().await?;
        self.session
            .batch(batch, values)
            .await
            .map_err(|e| backend(context, e))
    }

    /// Rows of one column of blobs.
    async fn blobs(
        &self,
        statement: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let rows = self
            .run(statement, values)
            .await?
            .into_rows_result()
            .map_err(|e| backend("reading rows", e))?;
        rows.rows::<(Vec<u8>,)>()
            .map_err(|e| backend("reading rows", e))?
            .map(|row| {
                row.map(|(body,)| body)
                    .map_err(|e| backend("reading rows", e))
            })
            .collect()
    }

    /// Adds record writes (inserts and deletes) to a batch.
    fn append_records(
        &self,
        batch: &mut Batch,
        values: &mut Vec<Vec<CqlValue>>,
        writes: Vec<RecordWrite>,
    ) {
        for write in writes {
            let (statement, row) = self.record_statement(write);
            batch.append_statement(statement.clone());
            values.push(row);
        }
    }

    /// The statement that puts or deletes `write`'s record, and its values.
    fn record_statement(&self, write: RecordWrite) -> (&PreparedStatement, Vec<CqlValue>) {
        let bucket = CqlValue::Int(record_bucket(write.kind, &write.key));
        let kind = CqlValue::Text(write.kind.as_str().to_owned());
        let key = CqlValue::Text(write.key);
        match write.value {
            Some(value) => (
                &self.statements.put_record,
                vec![kind, bucket, key, CqlValue::Blob(value)],
            ),
            None => (&self.statements.delete_record, vec![kind, bucket, key]),
        }
    }

    /// Puts or deletes one record with a single statement.
    async fn write_record(&self, write: RecordWrite) -> Result<(), StoreError> {
        let (statement, row) = self.record_statement(write);
        self.run(statement, row).await.map(drop)
    }

    /// Writes one decision once, and its rows in the per-query tables. `owed` are records
    /// the decision brings with it (alert outbox entries): they travel inside the decision's
    /// compare-and-set and are moved to `records` afterwards, so they exist exactly when the
    /// decision does, even if this writer dies in between (the redelivery finishes the move).
    async fn write_decision(
        &self,
        decision: Arc<Decision>,
        owed: Vec<RecordWrite>,
    ) -> Result<WriteResult, StoreError> {
        let body = serde_json::to_vec(&*decision).map_err(|e| backend("encoding", e))?;
        let owed_bytes = (!owed.is_empty()).then(|| encode_owed(&owed)).transpose()?;
        let decided_us = decision.decided_at.timestamp_micros();
        let result = self
            .run(
                &self.statements.insert_decision,
                (
                    decision.transaction_id.as_str(),
                    decision.user_id.as_str(),
                    decision.user_seq as i64,
                    decided_us,
                    body.as_slice(),
                    owed_bytes.as_deref(),
                    self.decision_ttl,
                ),
            )
            .await?;
        if applied(result)? {
            self.write_indexes(&decision, &body).await?;
            self.settle(&decision.transaction_id, owed).await?;
            self.run(&self.statements.count_decision, ()).await?;
            return Ok(WriteResult::Stored);
        }
        let rows = self
            .run(
                &self.statements.decision_owed,
                (decision.transaction_id.as_str(),),
            )
            .await?
            .into_rows_result()
            .map_err(|e| backend("reading a decided transaction", e))?;
        let (existing, still_owed) = rows
            .maybe_first_row::<(Vec<u8>, Option<Vec<u8>>)>()
            .map_err(|e| corrupt("decisions_by_txn", e))?
            .ok_or_else(|| backend("reading a decided transaction", "the row vanished"))?;
        let existing_decision = decode(&existing, "decisions_by_txn")?;
        // A writer that crashed after the compare-and-set left the index rows, and perhaps
        // the owed records, unwritten; both are idempotent, so finish them here.
        self.write_indexes(&existing_decision, &existing).await?;
        if let Some(bytes) = still_owed {
            self.settle(&decision.transaction_id, decode_owed(&bytes)?)
                .await?;
        }
        Ok(WriteResult::AlreadyDecided(Arc::new(existing_decision)))
    }

    /// Moves a decision's owed records into `records`, then clears them from the decision.
    async fn settle(&self, transaction_id: &str, owed: Vec<RecordWrite>) -> Result<(), StoreError> {
        if owed.is_empty() {
            return Ok(());
        }
        self.put_records(owed).await?;
        self.run(&self.statements.settle_owed, (transaction_id,))
            .await
            .map(drop)
    }

    /// The decision's rows in the by-user, by-day and flagged tables.
    async fn write_indexes(&self, decision: &Decision, body: &[u8]) -> Result<(), StoreError> {
        let txn = decision.transaction_id.as_str();
        let decided_us = decision.decided_at.timestamp_micros();
        let day = day_of(decision.decided_at) as i32;
        let bucket = day::bucket_of(txn);
        let by_user = self.run(
            &self.statements.insert_by_user,
            (
                decision.user_id.as_str(),
                decision.user_seq as i64,
                txn,
                body,
                self.decision_ttl,
            ),
        );
        let by_day = self.run(
            &self.statements.insert_by_day,
            (day, bucket, decided_us, txn, body, self.decision_ttl),
        );
        if decision.outcome == Outcome::Approve {
            futures::try_join!(by_user, by_day)?;
        } else {
            let flagged = self.run(
                &self.statements.insert_flagged,
                (
                    day,
                    bucket,
                    decided_us,
                    txn,
                    decision.outcome.as_str(),
                    body,
                    self.decision_ttl,
                ),
            );
            futures::try_join!(by_user, by_day, flagged)?;
        }
        Ok(())
    }

    async fn write_snapshot(&self, snapshot: &UserSnapshot) -> Result<(), StoreError> {
        self.run(
            &self.statements.put_snapshot,
            (
                snapshot.user_id.as_str(),
                snapshot.seq as i64,
                snapshot.state.as_slice(),
                self.snapshot_ttl,
            ),
        )
        .await
        .map(|_| ())
    }

    /// One bucket's page of a day after `after`: with the decisions' bodies, or (`keys_only`)
    /// their positions alone, body left empty.
    async fn day_bucket(
        &self,
        day: i32,
        bucket: i32,
        after: &DayCursor,
        limit: i32,
        keys_only: bool,
    ) -> Result<Vec<DayRow>, StoreError> {
        let statement = if keys_only {
            &self.statements.day_keys
        } else {
            &self.statements.day_page
        };
        let values = (
            day,
            bucket,
            after.decided_us,
            after.transaction_id.as_str(),
            limit,
        );
        let rows = self
            .run(statement, values)
            .await?
            .into_rows_result()
            .map_err(|e| backend("reading a day", e))?;
        let rows: Vec<(i64, String, Vec<u8>)> = if keys_only {
            rows.rows::<(i64, String)>()
                .map_err(|e| backend("reading a day", e))?
                .map(|row| row.map(|(us, id)| (us, id, Vec::new())))
                .collect::<Result<_, _>>()
                .map_err(|e| backend("reading a day", e))?
        } else {
            rows.rows::<(i64, String, Vec<u8>)>()
                .map_err(|e| backend("reading a day", e))?
                .collect::<Result<_, _>>()
                .map_err(|e| backend("reading a day", e))?
        };
        Ok(rows
            .into_iter()
            .map(|(decided_us, transaction_id, body)| DayRow {
                decided_us,
                transaction_id,
                body,
            })
            .collect())
    }

    /// The first `limit` rows of a day after `after`, merged over its buckets.
    async fn day_rows(
        &self,
        day: u32,
        after: Option<DayCursor>,
        limit: usize,
        keys_only: bool,
    ) -> Result<Vec<DayRow>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let after = after.unwrap_or(DayCursor {
            decided_us: i64::MIN,
            transaction_id: String::new(),
        });
        let day = day as i32;
        let limit = limit_i32(limit);
        let buckets = futures::future::try_join_all(
            (0..BUCKETS).map(|bucket| self.day_bucket(day, bucket, &after, limit, keys_only)),
        )
        .await?;
        Ok(day::merge(buckets, limit as usize))
    }
}

fn decode(body: &[u8], table: &'static str) -> Result<Decision, StoreError> {
    serde_json::from_slice(body).map_err(|e| corrupt(table, e))
}

/// Owed records as stored in `decisions_by_txn.owed`: `[[kind, key, value or null], …]`.
fn encode_owed(owed: &[RecordWrite]) -> Result<Vec<u8>, StoreError> {
    let rows: Vec<(&str, &str, Option<&[u8]>)> = owed
        .iter()
        .map(|w| (w.kind.as_str(), w.key.as_str(), w.value.as_deref()))
        .collect();
    serde_json::to_vec(&rows).map_err(|e| backend("encoding owed records", e))
}

fn decode_owed(bytes: &[u8]) -> Result<Vec<RecordWrite>, StoreError> {
    let rows: Vec<(String, String, Option<Vec<u8>>)> =
        serde_json::from_slice(bytes).map_err(|e| corrupt("decisions_by_txn", e))?;
    rows.into_iter()
        .map(|(kind, key, value)| {
            let kind = RecordKind::parse(&kind).ok_or_else(|| {
                corrupt("decisions_by_txn", format!("unknown record kind {kind}"))
            })?;
            Ok(RecordWrite { kind, key, value })
        })
        .collect()
}

/// The smallest string above every string starting with `prefix` (`None`: no bound).
fn prefix_end(prefix: &str) -> Option<String> {
    (!prefix.is_empty()).then(|| format!("{prefix}{}", char::MAX))
}

fn limit_i32(limit: usize) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX)
}

#[async_trait]
impl Store for ScyllaStore {
    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>, StoreError> {
        // Decisions first, then snapshots: a snapshot never lands before the decisions it
        // covers, so a restore never skips a decision that is not stored. Requests run
        // concurrently; the in-flight semaphore bounds them.
        let mut results: Vec<Option<WriteResult>> = vec![None; ops.len()];
        let mut decisions = Vec::new();
        let mut snapshots = Vec::new();
        let mut records = Vec::new();
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                WriteOp::Decision(d) => decisions.push((i, d, Vec::new())),
                WriteOp::DecisionWithRecords(d, owed) => decisions.push((i, d, owed)),
                WriteOp::Snapshot(s) => snapshots.push((i, s)),
                WriteOp::Records(writes) => records.push((i, writes)),
            }
        }
        let decided =
            futures::future::try_join_all(decisions.into_iter().map(|(i, d, owed)| async move {
                self.write_decision(d, owed).await.map(|r| (i, r))
            }))
            .await?;
        for (i, result) in decided {
            results[i] = Some(result);
        }
        futures::future::try_join_all(snapshots.iter().map(|(_, s)| self.write_snapshot(s)))
            .await?;
        for (i, _) in &snapshots {
            results[*i] = Some(WriteResult::Stored);
        }
        // Each record by a statement of its own, never a batch (a large idempotent answer could
        // pass ScyllaDB's batch size limit); a failure fails only its op, not the decisions,
        // which are stored.
        let written =
            futures::future::join_all(records.into_iter().map(|(i, writes)| async move {
                let written =
                    futures::future::try_join_all(writes.into_iter().map(|w| self.write_record(w)))
                        .await;
                (i, written)
            }))
            .await;
        for (i, written) in written {
            results[i] = Some(match written {
                Ok(_) => WriteResult::Stored,
                Err(e) => WriteResult::Failed(e.to_string()),
            });
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every op has a result"))
            .collect())
    }

    async fn decision(&self, transaction_id: &str) -> Result<Option<Decision>, StoreError> {
        self.blobs(&self.statements.decision_body, (transaction_id,))
            .await?
            .first()
            .map(|body| decode(body, "decisions_by_txn"))
            .transpose()
    }

    async fn decisions(
        &self,
        transaction_ids: Vec<String>,
    ) -> Result<Vec<Option<Decision>>, StoreError> {
        // Concurrent reads, as a batch's writes are: each id is its own partition.
        futures::future::try_join_all(transaction_ids.iter().map(|id| self.decision(id))).await
    }

    async fn decisions_for_user(
        &self,
        user_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.blobs(
            &self.statements.user_after,
            (user_id, after_seq as i64, limit_i32(limit)),
        )
        .await?
        .iter()
        .map(|body| decode(body, "decisions_by_user"))
        .collect()
    }

    async fn decisions_by_day(
        &self,
        day: u32,
        after: Option<DayCursor>,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        self.day_rows(day, after, limit, false)
            .await?
            .iter()
            .map(|row| decode(&row.body, "decisions_by_day"))
            .collect()
    }

    async fn decision_keys_by_day(
        &self,
        day: u32,
        after: Option<DayCursor>,
        limit: usize,
    ) -> Result<Vec<DayCursor>, StoreError> {
        Ok(self
            .day_rows(day, after, limit, true)
            .await?
            .into_iter()
            .map(|row| DayCursor {
                decided_us: row.decided_us,
                transaction_id: row.transaction_id,
            })
            .collect())
    }

    async fn snapshot(&self, user_id: &str) -> Result<Option<UserSnapshot>, StoreError> {
        let rows = self
            .run(&self.statements.get_snapshot, (user_id,))
            .await?
            .into_rows_result()
            .map_err(|e| backend("reading a snapshot", e))?;
        let row = rows
            .maybe_first_row::<(i64, Vec<u8>)>()
            .map_err(|e| corrupt("user_snapshots", e))?;
        Ok(row.map(|(seq, state)| UserSnapshot {
            user_id: user_id.to_owned(),
            seq: seq as u64,
            state,
        }))
    }

    async fn restore_point(&self, user_id: &str, limit: usize) -> Result<RestorePoint, StoreError> {
        let snapshot = self.snapshot(user_id).await?;
        let after = snapshot.as_ref().map_or(0, |s| s.seq);
        let decisions = self.decisions_for_user(user_id, after, limit).await?;
        Ok(RestorePoint {
            snapshot,
            decisions,
        })
    }

    async fn decision_count(&self) -> Result<u64, StoreError> {
        let rows = self
            .run(&self.statements.read_count, ())
            .await?
            .into_rows_result()
            .map_err(|e| backend("reading the decision count", e))?;
        let count = rows
            .maybe_first_row::<(scylla::value::Counter,)>()
            .map_err(|e| corrupt("counters", e))?;
        Ok(count.map_or(0, |(c,)| c.0.max(0) as u64))
    }

    async fn put_records(&self, mut writes: Vec<RecordWrite>) -> Result<(), StoreError> {
        if writes.len() <= 1 {
            // One write needs no batch, and a batch of one large record (an idempotent answer
            // up to the API's 2 MiB) would pass ScyllaDB's batch size limit.
            return match writes.pop() {
                Some(write) => self.write_record(write).await,
                None => Ok(()),
            };
        }
        // A logged batch: all of the writes are applied, or none.
        let mut batch = Batch::new(BatchType::Logged);
        let mut values: Vec<Vec<CqlValue>> = Vec::with_capacity(writes.len());
        self.append_records(&mut batch, &mut values, writes);
        self.run_batch(&batch, values, "writing records")
            .await
            .map(drop)
    }

    async fn put_records_if(
        &self,
        guard: RecordGuard,
        writes: Vec<RecordWrite>,
    ) -> Result<bool, StoreError> {
        let claim = guard.claim(&writes)?.to_vec();
        let bucket = record_bucket(guard.kind, &guard.key);
        let (kind, key) = (
            CqlValue::Text(guard.kind.as_str().to_owned()),
            CqlValue::Text(guard.key.clone()),
        );
        // The claim is a lightweight transaction on the guarded row (`IF body = ?`, or `IF NOT
        // EXISTS`). A conditional batch must stay in one partition: the writes sharing the
        // guarded row's partition go with the claim (for the catalogue: the policy version
        // record with its head), the others follow as a logged batch once it applied. A writer
        // dying in between leaves them unwritten: the analyst got an error, never a success,
        // and the published version keeps the rule records as they were.
        let mut batch = Batch::new(BatchType::Logged);
        let mut values: Vec<Vec<CqlValue>> = Vec::new();
        match &guard.expected {
            Some(expected) => {
                batch.append_statement(self.statements.replace_record_if.clone());
                values.push(vec![
                    CqlValue::Blob(claim),
                    kind,
                    CqlValue::Int(bucket),
                    key,
                    CqlValue::Blob(expected.clone()),
                ]);
            }
            None => {
                batch.append_statement(self.statements.put_record_if_absent.clone());
                values.push(vec![
                    kind,
                    CqlValue::Int(bucket),
                    key,
                    CqlValue::Blob(claim),
                ]);
            }
        }
        let (with_claim, rest): (Vec<RecordWrite>, Vec<RecordWrite>) = writes
            .into_iter()
            .filter(|w| !(w.kind == guard.kind && w.key == guard.key))
            .partition(|w| w.kind == guard.kind && record_bucket(w.kind, &w.key) == bucket);
        self.append_records(&mut batch, &mut values, with_claim);
        let result = self
            .run_batch(&batch, values, "writing a compare-and-set")
            .await?;
        let applied = applied(result)?;
        if applied {
            self.put_records(rest).await?;
        }
        Ok(applied)
    }

    async fn record(&self, kind: RecordKind, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .blobs(
                &self.statements.get_record,
                (kind.as_str(), record_bucket(kind, key), key),
            )
            .await?
            .pop())
    }

    async fn scan_records(
        &self,
        kind: RecordKind,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = limit_i32(limit);
        let end = prefix_end(prefix);
        // Start at the prefix, or just after the cursor when that is further on.
        let (statement, from) = match (after, &end) {
            (Some(a), None) if a >= prefix => (&self.statements.scan_after, a),
            (Some(a), Some(_)) if a >= prefix => (&self.statements.scan_after_below, a),
            (_, None) => (&self.statements.scan_from, prefix),
            (_, Some(_)) => (&self.statements.scan_from_below, prefix),
        };
        // Each bucket returns its first `limit` keys in order; the page is their merge.
        let pages = futures::future::try_join_all((0..record_buckets(kind)).map(|bucket| {
            let end = end.as_deref();
            async move {
                let result = match end {
                    Some(end) => {
                        self.run(statement, (kind.as_str(), bucket, from, end, limit))
                            .await?
                    }
                    None => {
                        self.run(statement, (kind.as_str(), bucket, from, limit))
                            .await?
                    }
                };
                let rows = result
                    .into_rows_result()
                    .map_err(|e| backend("scanning records", e))?;
                rows.rows::<(String, Vec<u8>)>()
                    .map_err(|e| backend("scanning records", e))?
                    .map(|row| row.map_err(|e| backend("scanning records", e)))
                    .collect::<Result<Vec<_>, StoreError>>()
            }
        }))
        .await?;
        Ok(merge_keys(pages, limit as usize))
    }
}

/// Whether a lightweight transaction applied (its `[applied]` column).
fn applied(result: scylla::response::query_result::QueryResult) -> Result<bool, StoreError> {
    let row = result
        .into_rows_result()
        .map_err(|e| backend("reading the compare-and-set", e))?
        .first_row::<Row>()
        .map_err(|e| backend("reading the compare-and-set", e))?;
    Ok(matches!(
        row.columns.first(),
        Some(Some(CqlValue::Boolean(true)))
    ))
}

/// Buckets of a record kind: kinds that grow with traffic or analysts' work are spread out.
fn record_buckets(kind: RecordKind) -> i32 {
    match kind {
        RecordKind::AlertOutbox
        | RecordKind::Idempotency
        | RecordKind::Audit
        | RecordKind::Label => 16,
        _ => 1,
    }
}

/// The bucket a record lives in.
fn record_bucket(kind: RecordKind, key: &str) -> i32 {
    day::stable_bucket(key, record_buckets(kind))
}

/// The first `limit` records of the buckets' pages (each in key order), in key order.
fn merge_keys(pages: Vec<Vec<(String, Vec<u8>)>>, limit: usize) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<(String, Vec<u8>)> = pages.into_iter().flatten().collect();
    all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    all.truncate(limit);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_bound_sits_above_every_key_with_that_prefix() {
        let end = prefix_end("rule/").unwrap();
        for key in ["rule/", "rule/a", "rule/zzzz", "rule/\u{10FFFE}x"] {
            assert!(key < end.as_str(), "{key}");
        }
        assert!("rulf" > end.as_str());
        assert_eq!(prefix_end(""), None);
    }

    #[test]
    fn growing_kinds_spread_over_buckets_and_pages_merge_in_key_order() {
        assert_eq!(record_buckets(RecordKind::RuleVersion), 1);
        assert_eq!(record_bucket(RecordKind::RuleVersion, "any/key"), 0);
        let used: std::collections::BTreeSet<i32> = (0..1000)
            .map(|i| record_bucket(RecordKind::AlertOutbox, &format!("pending/{i}")))
            .collect();
        assert_eq!(used.len(), 16);
        let page = |keys: &[&str]| -> Vec<(String, Vec<u8>)> {
            keys.iter().map(|k| (k.to_string(), vec![])).collect()
        };
        let merged = merge_keys(
            vec![page(&["a", "d", "g"]), page(&["b", "c"]), page(&[])],
            4,
        );
        let keys: Vec<&str> = merged.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c", "d"]);
    }

    #[test]
    fn owed_records_round_trip() {
        let owed = vec![
            RecordWrite {
                kind: RecordKind::AlertOutbox,
                key: "pending/a-1".into(),
                value: Some(b"{}".to_vec()),
            },
            RecordWrite {
                kind: RecordKind::Label,
                key: "t-1".into(),
                value: None,
            },
        ];
        let back = decode_owed(&encode_owed(&owed).unwrap()).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(
            (back[0].kind, back[0].key.as_str(), back[0].value.as_deref()),
            (RecordKind::AlertOutbox, "pending/a-1", Some(&b"{}"[..]))
        );
        assert_eq!(
            (back[1].kind, back[1].value.as_deref()),
            (RecordKind::Label, None)
        );
        assert!(decode_owed(br#"[["nonsense", "k", null]]"#).is_err());
    }

    #[test]
    fn every_documented_consistency_parses_and_an_unknown_one_is_named() {
        let levels = [
            ("any", Consistency::Any),
            ("one", Consistency::One),
            ("two", Consistency::Two),
            ("three", Consistency::Three),
            ("quorum", Consistency::Quorum),
            ("all", Consistency::All),
            ("local_quorum", Consistency::LocalQuorum),
            ("each_quorum", Consistency::EachQuorum),
            ("local_one", Consistency::LocalOne),
        ];
        for (name, level) in levels {
            assert_eq!(consistency(name), Ok(level), "{name}");
        }
        assert!(consistency("LOCAL_QUORUM").is_err(), "names are lower case");
        assert_eq!(
            consistency("most"),
            Err("unknown consistency `most`".to_owned())
        );
        assert_eq!(serial_consistency("serial"), Ok(SerialConsistency::Serial));
        assert_eq!(
            serial_consistency("quorum"),
            Err("unknown serial consistency `quorum`".to_owned())
        );
    }

    /// Decoding failures are `Corrupt` errors naming the table the bytes came from.
    #[test]
    fn undecodable_rows_are_corrupt_records_of_their_table() {
        let decision = sentinel_store::conformance::decision("t-1", "u-1", 3, 7);
        let body = serde_json::to_vec(&decision).unwrap();
        let back = decode(&body, "decisions_by_user").unwrap();
        assert_eq!((back.transaction_id.as_str(), back.user_seq), ("t-1", 3));
        match decode(b"{\"transaction_id\": 1}", "decisions_by_day") {
            Err(StoreError::Corrupt { table, .. }) => assert_eq!(table, "decisions_by_day"),
            other => panic!("{other:?}"),
        }
        match decode_owed(b"not json") {
            Err(StoreError::Corrupt { table, .. }) => assert_eq!(table, "decisions_by_txn"),
            other => panic!("{other:?}"),
        }
        match decode_owed(br#"[["nonsense", "k", null]]"#) {
            Err(StoreError::Corrupt { table, reason }) => {
                assert_eq!(table, "decisions_by_txn");
                assert_eq!(reason, "unknown record kind nonsense");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            backend("reading a day", "timed out").to_string(),
            StoreError::Backend("reading a day: timed out".into()).to_string()
        );
    }

    #[test]
    fn page_limits_saturate_at_the_cql_int_range() {
        assert_eq!(limit_i32(500), 500);
        assert_eq!(limit_i32(usize::MAX), i32::MAX);
    }

    /// Every growing kind is spread over 16 buckets, every other kind stays in bucket 0, and a
    /// key's bucket is fixed: records written by one release are found by the next.
    #[test]
    fn record_buckets_are_fixed_per_kind_and_key() {
        for kind in [
            RecordKind::AlertOutbox,
            RecordKind::Idempotency,
            RecordKind::Audit,
            RecordKind::Label,
        ] {
            assert_eq!(record_buckets(kind), 16, "{kind:?}");
        }
        for kind in [
            RecordKind::RuleVersion,
            RecordKind::RuleHead,
            RecordKind::PolicyVersion,
            RecordKind::List,
            RecordKind::Model,
            RecordKind::ModelDeployment,
            RecordKind::ApiKey,
            RecordKind::OpeningBalance,
        ] {
            assert_eq!(record_buckets(kind), 1, "{kind:?}");
            assert_eq!(record_bucket(kind, "pending/a-1"), 0, "{kind:?}");
        }
        assert_eq!(record_bucket(RecordKind::AlertOutbox, "pending/a-1"), 10);
        assert_eq!(record_bucket(RecordKind::Audit, "audit/2026-11-22/1"), 11);
        assert_eq!(record_bucket(RecordKind::Label, "t-1"), 1);
        assert_eq!(record_bucket(RecordKind::Idempotency, "idem/k"), 0);
    }
}
