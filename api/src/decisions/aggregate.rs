//! `GET /v1/aggregates`: count, sum, avg, min or max of a numeric field over the stored
//! decisions of a time range, filtered and grouped, bounded and cached.

use super::aggregate_spec::{AggregateQuery, Field, GroupBy, Spec};
use crate::body::Params;
use crate::ErrorResponse;
use crate::{ApiError, ApiState};
use axum::extract::State;
use axum::Json;
use chrono::Duration;
use sentinel_event::Decision;
use sentinel_rules::Agg;
use sentinel_store::{day_of, DayCursor};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

/// Most stored decisions one aggregate examines; a larger range is refused, not cut short.
const MAX_AGGREGATE_SCAN: u64 = 1_000_000;
/// Most groups one aggregate answers with.
const MAX_GROUPS: usize = 10_000;
/// The one group of an aggregate without `group_by`.
const ALL: &str = "all";

/// Aggregation result.
#[derive(Serialize, Clone, utoipa::ToSchema)]
pub struct Aggregates {
    /// Value per group key (`-` for events without the key; `all` without `group_by`).
    pub groups: BTreeMap<String, f64>,
    /// Decisions examined (every decision of the range).
    pub decisions: u64,
    /// Decisions that passed the filters and carry the field: what the values are made of.
    pub matched: u64,
    /// Decisions that passed the filters but lack the field (no model score, no such
    /// metadata key, a value that is not a number).
    pub without_field: u64,
    /// Milliseconds the computation took (0 when served from the cache).
    pub computation_ms: f64,
    /// Served from the cache.
    pub cached: bool,
}

/// Recent aggregate answers, reused for a short time.
#[derive(Default)]
pub struct AggregateCache {
    entries: Mutex<Vec<(String, Instant, Aggregates)>>,
}

const CACHE_SECONDS: u64 = 30;
const CACHE_ENTRIES: usize = 64;

/// `GET /v1/aggregates?agg=&field=&group_by=&window=|from=&until=&<filters>`: cached for 30 s
/// per query.
#[utoipa::path(get, path = "/v1/aggregates", tag = "decisions", params(AggregateQuery), responses((status = 200, body = Aggregates), (status = 400, body = ErrorResponse)))]
pub async fn aggregates(
    State(state): State<ApiState>,
    Params(query): Params<AggregateQuery>,
) -> Result<Json<Aggregates>, ApiError> {
    let spec = Spec::check(query).inspect_err(|_| crate::metrics::refused("invalid_parameter"))?;
    let key = spec.cache_key();
    if let Some(hit) = state.aggregates.get(&key) {
        return Ok(Json(hit));
    }
    let _turn = state.heavy_queries.enter().await?;
    let started = Instant::now();
    let mut acc = Accumulator::new(
        spec.field.clone(),
        spec.group_by,
        MAX_AGGREGATE_SCAN,
        MAX_GROUPS,
    );
    let mut day = spec.from.date_naive();
    while day <= spec.until.date_naive() {
        let mut position = None;
        loop {
            let page = state
                .store
                .decisions_by_day(
                    day_of(day.and_hms_opt(0, 0, 0).expect("midnight").and_utc()),
                    position,
                    1_000,
                )
                .await
                .map_err(|e| ApiError::internal("reading decisions failed", e))?;
            for d in &page {
                if d.decided_at >= spec.from && d.decided_at < spec.until {
                    acc.add(d, spec.filters.accepts(d))?;
                }
            }
            position = page.last().map(|d| DayCursor {
                decided_us: d.decided_at.timestamp_micros(),
                transaction_id: d.transaction_id.clone(),
            });
            if page.len() < 1_000 {
                break;
            }
        }
        day += Duration::days(1);
    }
    let answer = acc.finish(spec.agg, started);
    state.aggregates.put(key, answer.clone());
    Ok(Json(answer))
}

/// Count, sum, min and max of one group.
type Totals = (u64, f64, f64, f64);

/// The running totals of an aggregate, refusing (400) once it has examined more decisions or
/// holds more groups than it may.
pub(super) struct Accumulator {
    field: Field,
    group_by: Option<GroupBy>,
    max_scan: u64,
    max_groups: usize,
    decisions: u64,
    matched: u64,
    without_field: u64,
    groups: BTreeMap<String, Totals>,
}

impl Accumulator {
    pub(super) fn new(
        field: Field,
        group_by: Option<GroupBy>,
        max_scan: u64,
        max_groups: usize,
    ) -> Accumulator {
        Accumulator {
            field,
            group_by,
            max_scan,
            max_groups,
            decisions: 0,
            matched: 0,
            without_field: 0,
            groups: BTreeMap::new(),
        }
    }

    /// Counts `d` as examined and, when it passed the filters, adds its value.
    pub(super) fn add(&mut self, d: &Decision, passes: bool) -> Result<(), ApiError> {
        self.decisions += 1;
        if self.decisions > self.max_scan {
            crate::metrics::refused("too_costly");
            return Err(ApiError::invalid_parameter(
                "from",
                &format!(
                    "the range holds more than {} decisions; narrow from and until",
                    self.max_scan
                ),
            ));
        }
        if !passes {
            return Ok(());
        }
        let Some(value) = self.field.value(d) else {
            self.without_field += 1;
            return Ok(());
        };
        self.matched += 1;
        let group = self.group_by.map_or_else(|| ALL.to_owned(), |g| g.of(d));
        if self.groups.len() >= self.max_groups && !self.groups.contains_key(&group) {
            crate::metrics::refused("too_costly");
            return Err(ApiError::invalid_parameter(
                "group_by",
                &format!(
                    "more than {} groups; group by a coarser key or narrow from and until",
                    self.max_groups
                ),
            ));
        }
        let e = self
            .groups
            .entry(group)
            .or_insert((0, 0.0, f64::INFINITY, f64::NEG_INFINITY));
        e.0 += 1;
        e.1 += value;
        e.2 = e.2.min(value);
        e.3 = e.3.max(value);
        Ok(())
    }

    /// The answer: `agg` of every group.
    pub(super) fn finish(self, agg: Agg, started: Instant) -> Aggregates {
        let groups = self
            .groups
            .into_iter()
            .map(|(k, (n, sum, min, max))| {
                let v = match agg {
                    Agg::Count => n as f64,
                    Agg::Sum => sum,
                    Agg::Avg => sum / n as f64,
                    Agg::Min => min,
                    Agg::Max => max,
                };
                (k, v)
            })
            .collect();
        Aggregates {
            groups,
            decisions: self.decisions,
            matched: self.matched,
            without_field: self.without_field,
            computation_ms: started.elapsed().as_secs_f64() * 1000.0,
            cached: false,
        }
    }
}

impl AggregateCache {
    fn get(&self, key: &str) -> Option<Aggregates> {
        let entries = self.entries.lock().ok()?;
        entries
            .iter()
            .find(|(k, at, _)| k == key && at.elapsed().as_secs() < CACHE_SECONDS)
            .map(|(_, _, v)| Aggregates {
                computation_ms: 0.0,
                cached: true,
                ..v.clone()
            })
    }

    fn put(&self, key: String, value: Aggregates) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|(k, at, _)| *k != key && at.elapsed().as_secs() < CACHE_SECONDS);
            if entries.len() >= CACHE_ENTRIES {
                entries.remove(0);
            }
            entries.push((key, Instant::now(), value));
        }
    }
}

#[cfg(test)]
mod tests;
