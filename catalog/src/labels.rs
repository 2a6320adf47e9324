//! Labels: verdicts on stored decisions, one by one (an analyst) or in batches (a chargeback
//! file). Each carries the time the verdict became known (`labelled_at`), which the
//! entity-risk features and point-in-time training read; a repeated label changes nothing, so
//! a batch can be sent again after a failure.

use crate::catalog::{put, read, Catalog};
use crate::error::CatalogError;
use crate::records::{Label, LabelSource, LabelValue};
use chrono::{DateTime, Duration, Utc};
use sentinel_store::RecordKind;
use serde::{Deserialize, Serialize};

/// Most labels one batch may carry.
pub const MAX_LABEL_BATCH: usize = 10_000;
/// How far ahead of this node's clock a label time may be (clocks differ a little).
const MAX_LABEL_SKEW: Duration = Duration::minutes(5);
const MAX_NOTE_CHARS: usize = 2_000;
const MAX_SCENARIO_CHARS: usize = 64;
/// Labels written to the store per write.
const WRITE_CHUNK: usize = 500;

/// One label to store.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LabelInput {
    /// The labelled transaction.
    pub transaction_id: String,
    /// `fraud` or `legit`.
    pub label: LabelValue,
    /// When the verdict became known (RFC 3339; default now); not before the transaction,
    /// not in the future.
    #[serde(default)]
    pub labelled_at: Option<DateTime<Utc>>,
    /// `analyst` (default), `chargeback` or `other`.
    #[serde(default)]
    pub source: LabelSource,
    /// The fraud pattern, when known (at most 64 characters).
    #[serde(default)]
    pub scenario: Option<String>,
    /// Why, for the next analyst (at most 2000 characters).
    #[serde(default)]
    pub note: String,
}

impl LabelInput {
    /// A label given now by an analyst, with no note.
    pub fn new(transaction_id: impl Into<String>, label: LabelValue) -> Self {
        LabelInput {
            transaction_id: transaction_id.into(),
            label,
            labelled_at: None,
            source: LabelSource::Analyst,
            scenario: None,
            note: String::new(),
        }
    }
}

/// One row of a labels file (a chargeback export: CSV with a header, or JSON lines) as read:
/// every field text and optional but the id and verdict, so a bad value is reported naming
/// its field instead of failing the whole row's parse.
#[derive(Debug, Deserialize)]
pub struct LabelRow {
    /// The labelled transaction.
    pub transaction_id: String,
    /// `fraud`/`1`/`true` or `legit`/`0`/`false`, any case.
    pub label: String,
    /// RFC 3339; empty or missing: when the label is stored.
    #[serde(default)]
    pub labelled_at: Option<String>,
    /// `chargeback` (the default for a file), `analyst` or `other`.
    #[serde(default)]
    pub source: Option<String>,
    /// The fraud pattern, when known.
    #[serde(default)]
    pub scenario: Option<String>,
    /// Why, for the next analyst.
    #[serde(default)]
    pub note: Option<String>,
}

impl LabelRow {
    /// The label to store, or the field at fault and why.
    pub fn into_input(self) -> Result<LabelInput, (&'static str, String)> {
        let label = match self.label.to_ascii_lowercase().as_str() {
            "fraud" | "1" | "true" => LabelValue::Fraud,
            "legit" | "0" | "false" => LabelValue::Legit,
            other => return Err(("label", format!("`{other}` is not fraud or legit"))),
        };
        let labelled_at = match self.labelled_at.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(text.parse::<DateTime<Utc>>().map_err(|e| {
                (
                    "labelled_at",
                    format!("`{text}` is not an RFC 3339 time: {e}"),
                )
            })?),
        };
        let source = match self.source.as_deref().map(str::trim) {
            None | Some("") => LabelSource::Chargeback,
            Some(name) => LabelSource::from_name(name).ok_or_else(|| {
                (
                    "source",
                    format!("`{name}` is not chargeback, analyst or other"),
                )
            })?,
        };
        Ok(LabelInput {
            transaction_id: self.transaction_id,
            label,
            labelled_at,
            source,
            scenario: self.scenario.filter(|s| !s.is_empty()),
            note: self.note.unwrap_or_default(),
        })
    }
}

/// What became of one label of a batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LabelOutcome {
    /// Stored (replacing an earlier label, if any).
    Stored {
        /// The stored label.
        label: Label,
    },
    /// Already stored with the same verdict and time, or a later verdict is stored.
    Unchanged {
        /// The label kept.
        label: Label,
    },
    /// Refused; nothing was stored for it.
    Rejected {
        /// The labelled transaction, as sent.
        transaction_id: String,
        /// The field at fault.
        field: String,
        /// Why.
        reason: String,
    },
}

impl LabelOutcome {
    fn rejected(transaction_id: &str, error: CatalogError) -> LabelOutcome {
        let (field, reason) = match error {
            CatalogError::Invalid { field, message, .. } => (field, message),
            CatalogError::NotFound(message) => ("transaction_id".to_owned(), message),
            other => ("label".to_owned(), other.to_string()),
        };
        LabelOutcome::Rejected {
            transaction_id: transaction_id.to_owned(),
            field,
            reason,
        }
    }
}

impl Catalog {
    /// Checks `input` against its decision and the label stored for it: the label to store,
    /// or `None` when the stored one already says this (or something later).
    async fn checked_label(
        &self,
        input: LabelInput,
        principal: &str,
        now: DateTime<Utc>,
    ) -> Result<(Label, bool), CatalogError> {
        if input.note.chars().count() > MAX_NOTE_CHARS {
            return Err(CatalogError::invalid(
                "note",
                format!("must be at most {MAX_NOTE_CHARS} characters"),
            ));
        }
        if let Some(scenario) = &input.scenario {
            if scenario.is_empty()
                || scenario.chars().count() > MAX_SCENARIO_CHARS
                || scenario.chars().any(char::is_control)
            {
                return Err(CatalogError::invalid(
                    "scenario",
                    format!("must be 1 to {MAX_SCENARIO_CHARS} printable characters"),
                ));
            }
        }
        let Some(decision) = self.store.decision(&input.transaction_id).await? else {
            return Err(CatalogError::NotFound(format!(
                "no decision for transaction {}",
                input.transaction_id
            )));
        };
        let labelled_at = input.labelled_at.unwrap_or(now);
        if labelled_at > now + MAX_LABEL_SKEW {
            return Err(CatalogError::invalid(
                "labelled_at",
                format!("{labelled_at} is in the future"),
            ));
        }
        if labelled_at < decision.event.timestamp {
            return Err(CatalogError::invalid(
                "labelled_at",
                format!(
                    "{labelled_at} is before the transaction it labels ({})",
                    decision.event.timestamp
                ),
            ));
        }
        let stored: Option<Label> =
            read(&*self.store, RecordKind::Label, &input.transaction_id).await?;
        if let Some(stored) = stored {
            let same = stored.labelled_at == labelled_at && stored.label == input.label;
            if same || stored.labelled_at > labelled_at {
                return Ok((stored, false));
            }
        }
        Ok((
            Label {
                transaction_id: input.transaction_id,
                label: input.label,
                note: input.note,
                labelled_at,
                source: input.source,
                scenario: input.scenario,
                by: principal.to_owned(),
                stored_at: Some(now),
            },
            true,
        ))
    }

    /// Records a label on a stored decision; a later label replaces it, the same one again
    /// changes nothing.
    pub async fn label(&self, input: LabelInput, principal: &str) -> Result<Label, CatalogError> {
        Ok(self.record_label(input, principal).await?.0)
    }

    /// Like [`Catalog::label`], also saying whether this call stored it (`false`: the same
    /// label, or a later one, was already stored).
    pub async fn record_label(
        &self,
        input: LabelInput,
        principal: &str,
    ) -> Result<(Label, bool), CatalogError> {
        let (label, fresh) = self.checked_label(input, principal, Utc::now()).await?;
        if fresh {
            self.store
                .put_records(vec![put(
                    RecordKind::Label,
                    label.transaction_id.clone(),
                    &label,
                )?])
                .await?;
            // The node's refresher rebuilds the index at once (other nodes at their next
            // periodic refresh); a burst of labels coalesces into one rebuild.
            self.label_posted.notify_one();
        }
        Ok((label, fresh))
    }

    /// Records up to [`MAX_LABEL_BATCH`] labels: each is stored, unchanged or rejected with
    /// its reason (a bad item never fails the others). Fails as a whole only when the store
    /// does, or when the batch is too large.
    pub async fn label_batch(
        &self,
        inputs: Vec<LabelInput>,
        principal: &str,
    ) -> Result<Vec<LabelOutcome>, CatalogError> {
        if inputs.len() > MAX_LABEL_BATCH {
            return Err(CatalogError::invalid(
                "labels",
                format!(
                    "{} labels; a batch carries at most {MAX_LABEL_BATCH}",
                    inputs.len()
                ),
            ));
        }
        let now = Utc::now();
        let mut outcomes = Vec::with_capacity(inputs.len());
        let mut writes = Vec::new();
        // Within a batch, the latest label of a transaction wins as across batches.
        let mut pending: std::collections::HashMap<String, usize> = Default::default();
        for input in inputs {
            let id = input.transaction_id.clone();
            match self.checked_label(input, principal, now).await {
                Ok((label, true)) => {
                    if let Some(&earlier) = pending.get(&id) {
                        if let LabelOutcome::Stored { label: e } = &outcomes[earlier] {
                            if e.labelled_at > label.labelled_at {
                                outcomes.push(LabelOutcome::Unchanged { label: e.clone() });
                                continue;
                            }
                        }
                    }
                    pending.insert(id, outcomes.len());
                    outcomes.push(LabelOutcome::Stored { label });
                }
                Ok((label, false)) => outcomes.push(LabelOutcome::Unchanged { label }),
                Err(CatalogError::Store(e)) => return Err(CatalogError::Store(e)),
                Err(e) => outcomes.push(LabelOutcome::rejected(&id, e)),
            }
        }
        for &i in pending.values() {
            if let LabelOutcome::Stored { label } = &outcomes[i] {
                writes.push(put(RecordKind::Label, label.transaction_id.clone(), label)?);
            }
        }
        let any = !writes.is_empty();
        while !writes.is_empty() {
            let rest = writes.split_off(writes.len().min(WRITE_CHUNK));
            self.store.put_records(writes).await?;
            writes = rest;
        }
        if any {
            self.label_posted.notify_one();
        }
        Ok(outcomes)
    }

    /// The label of a decision, if any.
    pub async fn label_of(&self, transaction_id: &str) -> Result<Option<Label>, CatalogError> {
        read(&*self.store, RecordKind::Label, transaction_id).await
    }
}

#[cfg(test)]
mod tests;
