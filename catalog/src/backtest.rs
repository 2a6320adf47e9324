//! Backtests: replay stored history through the same window and rule code as live traffic
//! (`UserState::decide`), under a candidate policy, and compare with what was decided.
//!
//! Each user's entire stored history is replayed in processing order (`user_seq`), so windows
//! and profiles are exactly what live scoring saw; only events whose time falls in the range
//! (and passes the filters) are counted.

use crate::catalog::Catalog;
use crate::error::CatalogError;
use crate::records::LabelValue;
use chrono::{DateTime, Duration, Utc};
use sentinel_engine::{Policy, UserState};
use sentinel_event::{Decision, Outcome};
use sentinel_store::Store;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

/// Which stored events count.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BacktestFilter {
    /// Only this user.
    pub user_id: Option<String>,
    /// Only this channel (`pos`, `web`, `mobile`, `atm`).
    pub channel: Option<String>,
    /// Only this merchant category.
    pub merchant_category: Option<String>,
    /// Only transactions in this country.
    pub country: Option<String>,
}

impl BacktestFilter {
    fn accepts(&self, d: &Decision) -> bool {
        let e = &d.event;
        self.user_id.as_ref().is_none_or(|u| *u == d.user_id)
            && self
                .channel
                .as_ref()
                .is_none_or(|c| e.channel.is_some_and(|ch| ch.as_str() == c))
            && self
                .merchant_category
                .as_ref()
                .is_none_or(|m| e.merchant_category.as_ref() == Some(m))
            && self
                .country
                .as_ref()
                .is_none_or(|c| e.location.as_ref().is_some_and(|l| l.country == *c))
    }
}

/// What a backtest found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BacktestReport {
    /// Policy version replayed (the candidate's own number for unsaved candidates).
    pub policy_version: u64,
    /// Events counted (in range and filtered in).
    pub events: u64,
    /// Events replayed in all, history before the range included.
    pub replayed: u64,
    /// Hits per rule name among counted events (active and shadow).
    pub hits: BTreeMap<String, u64>,
    /// Counted events per (original outcome → would-be outcome).
    pub outcomes: Vec<OutcomeChange>,
    /// Counted events whose outcome would change.
    pub changed: u64,
    /// Counted events with an analyst label.
    pub labelled: u64,
    /// Would-be quality against labels (flagged = review or decline), when labels exist.
    pub would_be: Option<Quality>,
    /// What the live decisions scored against the same labels.
    pub live: Option<Quality>,
}

/// Count of events moving from one outcome to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutcomeChange {
    /// What was decided live.
    pub from: Outcome,
    /// What the candidate policy decides.
    pub to: Outcome,
    /// How many events.
    pub count: u64,
}

/// Precision, recall and F1 of flagging (review or decline) against fraud labels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quality {
    /// Flagged and labelled fraud.
    pub true_positives: u64,
    /// Flagged but labelled legit.
    pub false_positives: u64,
    /// Not flagged but labelled fraud.
    pub false_negatives: u64,
    /// tp / (tp + fp).
    pub precision: f64,
    /// tp / (tp + fn).
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
}

#[derive(Default)]
struct Confusion {
    tp: u64,
    fp: u64,
    fn_: u64,
}

impl Confusion {
    fn add(&mut self, flagged: bool, fraud: bool) {
        match (flagged, fraud) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            (false, false) => {}
        }
    }

    fn quality(&self) -> Option<Quality> {
        if self.tp + self.fp + self.fn_ == 0 {
            return None;
        }
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = ratio(self.tp, self.tp + self.fp);
        let recall = ratio(self.tp, self.tp + self.fn_);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Some(Quality {
            true_positives: self.tp,
            false_positives: self.fp,
            false_negatives: self.fn_,
            precision,
            recall,
            f1,
        })
    }
}

fn flagged(o: Outcome) -> bool {
    o != Outcome::Approve
}

/// Progress of a running backtest.
pub trait Progress: Send + Sync {
    /// `done` of `total` users replayed.
    fn update(&self, done: u64, total: u64);
}

/// What to replay.
#[derive(Debug, Clone)]
pub struct BacktestRange {
    /// Events at or after this time count.
    pub from: DateTime<Utc>,
    /// Events before this time count.
    pub until: DateTime<Utc>,
    /// Which of them count.
    pub filter: BacktestFilter,
}

impl BacktestRange {
    /// Checks the range before any work starts, naming the field at fault: `until` after
    /// `from`, at most 366 days, and a day of margin on each side that the calendar can hold
    /// (a `from` or `until` at chrono's limits would overflow the day arithmetic).
    pub fn validate(&self) -> Result<(), CatalogError> {
        let (from, until) = (self.from, self.until);
        if until <= from {
            return Err(CatalogError::invalid("until", "must be after from"));
        }
        if until - from > Duration::days(366) {
            return Err(CatalogError::invalid(
                "until",
                "a backtest covers at most 366 days",
            ));
        }
        scan_bounds(from, until).map(|_| ())
    }
}

/// The decision days to scan for events in `[from, until)`: a day of margin on each side.
fn scan_bounds(
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), CatalogError> {
    let first = from
        .checked_sub_signed(Duration::days(1))
        .ok_or_else(|| CatalogError::invalid("from", "too far in the past"))?;
    let last = until
        .checked_add_signed(Duration::days(1))
        .ok_or_else(|| CatalogError::invalid("until", "too far in the future"))?;
    Ok((first, last))
}

/// Replays the range under `policy`.
pub async fn run(
    store: &Arc<dyn Store>,
    catalog: &Catalog,
    policy: &Policy,
    range: &BacktestRange,
    lateness_ms: i64,
    progress: &dyn Progress,
) -> Result<BacktestReport, CatalogError> {
    let BacktestRange {
        from,
        until,
        ref filter,
    } = *range;
    range.validate()?;
    let users = users_with_events(store, from, until, |d| filter.accepts(d)).await?;

    let mut report = BacktestReport {
        policy_version: policy.rules.version,
        ..BacktestReport::default()
    };
    let mut transitions: BTreeMap<(Outcome, Outcome), u64> = BTreeMap::new();
    let (mut would_be, mut live) = (Confusion::default(), Confusion::default());
    let total = users.len() as u64;
    let received = Instant::now();
    for (done, user) in users.iter().enumerate() {
        let mut state = UserState::default();
        for original in &user_history(store, user).await? {
            report.replayed += 1;
            let replayed = state.decide(Arc::clone(&original.event), policy, lateness_ms, received);
            if !(in_range(original, from, until) && filter.accepts(original)) {
                continue;
            }
            report.events += 1;
            for reason in replayed.reasons.iter().chain(&replayed.shadow_hits) {
                *report.hits.entry(reason.rule.clone()).or_default() += 1;
            }
            *transitions
                .entry((original.outcome, replayed.outcome))
                .or_default() += 1;
            if original.outcome != replayed.outcome {
                report.changed += 1;
            }
            if let Some(label) = catalog.label_of(&original.transaction_id).await? {
                report.labelled += 1;
                let fraud = label.label == LabelValue::Fraud;
                would_be.add(flagged(replayed.outcome), fraud);
                live.add(flagged(original.outcome), fraud);
            }
        }
        progress.update(done as u64 + 1, total);
    }
    report.outcomes = transitions
        .into_iter()
        .map(|((from, to), count)| OutcomeChange { from, to, count })
        .collect();
    report.would_be = would_be.quality();
    report.live = live.quality();
    Ok(report)
}

/// Users with an accepted event whose time is in `[from, until)`.
pub(crate) async fn users_with_events(
    store: &Arc<dyn Store>,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    accepts: impl Fn(&Decision) -> bool,
) -> Result<BTreeSet<String>, CatalogError> {
    // Decisions are indexed by decision day; events are decided within the allowed lateness
    // of their time, so a day on each side covers them.
    let mut users = BTreeSet::new();
    let (first, last) = scan_bounds(from, until)?;
    let first_day = first
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    crate::decision_days::for_each_decision(&**store, first_day, last, |d| {
        if in_range(d, from, until) && accepts(d) {
            users.insert(d.user_id.clone());
        }
    })
    .await?;
    Ok(users)
}

/// A user's whole stored history in processing order (`user_seq`).
pub(crate) async fn user_history(
    store: &Arc<dyn Store>,
    user: &str,
) -> Result<Vec<Decision>, CatalogError> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = store.decisions_for_user(user, after, PAGE).await?;
        let full = page.len() == PAGE;
        if let Some(last) = page.last() {
            after = last.user_seq;
        }
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

const PAGE: usize = 1_000;

pub(crate) fn in_range(d: &Decision, from: DateTime<Utc>, until: DateTime<Utc>) -> bool {
    d.event.timestamp >= from && d.event.timestamp < until
}

#[cfg(test)]
mod tests;
