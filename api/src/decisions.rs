//! `GET /v1/decisions` and `GET /v1/aggregates`: looking across stored decisions by time.

mod aggregate;
mod aggregate_spec;

pub use aggregate::{__path_aggregates, aggregates, AggregateCache};
pub use aggregate_spec::GroupBy;

use crate::body::Params;
use crate::read_json::read_json;
use crate::ErrorResponse;
use crate::{ApiError, ApiState};
use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use sentinel_event::{Decision, Outcome};
use sentinel_store::{day_of, DayCursor};
use serde::{Deserialize, Serialize};

/// Longest time range one query may cover (so at most 32 decision days are read).
const MAX_RANGE_DAYS: i64 = 31;
/// Most stored decisions one search request examines; a page may come back short, with a cursor.
const MAX_SCAN: usize = 100_000;

/// A set of outcomes, written comma-separated in a query (`review,decline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcomes([bool; 3]);

impl Outcomes {
    fn index(o: Outcome) -> usize {
        Outcome::ALL.iter().position(|a| *a == o).unwrap_or(0)
    }

    /// Whether `o` is one of them.
    pub fn contains(&self, o: Outcome) -> bool {
        self.0[Self::index(o)]
    }
}

impl std::str::FromStr for Outcomes {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut set = [false; 3];
        for name in text.split(',').map(str::trim) {
            let o = Outcome::ALL
                .into_iter()
                .find(|o| o.as_str() == name)
                .ok_or_else(|| format!("outcome: `{name}` is not approve, review or decline"))?;
            set[Self::index(o)] = true;
        }
        Ok(Outcomes(set))
    }
}

impl<'de> Deserialize<'de> for Outcomes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Decision search.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DecisionQuery {
    /// Decided at or after (default: 24 hours before `until`).
    pub from: Option<DateTime<Utc>>,
    /// Decided before (default: now).
    pub until: Option<DateTime<Utc>>,
    /// Only this user.
    pub user_id: Option<String>,
    /// Only this card.
    pub card_id: Option<String>,
    /// Only this device.
    pub device_id: Option<String>,
    /// Only this merchant.
    pub merchant_id: Option<String>,
    /// Only these outcomes, comma-separated (`review,decline`).
    #[param(value_type = Option<String>)]
    pub outcome: Option<Outcomes>,
    /// Only decisions where this rule fired (active or shadow).
    pub rule: Option<String>,
    /// Only scores at or above.
    pub min_score: Option<f64>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<usize>,
    /// From a previous page's `next`.
    pub cursor: Option<String>,
}

impl DecisionQuery {
    fn accepts(&self, d: &Decision) -> bool {
        let e = &d.event;
        let eq = |want: &Option<String>, have: Option<&String>| {
            want.as_ref().is_none_or(|w| have == Some(w))
        };
        eq(&self.user_id, Some(&d.user_id))
            && eq(&self.card_id, e.card_id.as_ref())
            && eq(&self.device_id, e.device_id.as_ref())
            && eq(&self.merchant_id, e.merchant_id.as_ref())
            && self.outcome.as_ref().is_none_or(|o| o.contains(d.outcome))
            && self.min_score.is_none_or(|s| d.score >= s)
            && self
                .rule
                .as_ref()
                .is_none_or(|r| d.reasons.iter().chain(&d.shadow_hits).any(|h| h.rule == *r))
    }
}

/// One page of decisions, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DecisionPage {
    /// Matching decisions.
    pub decisions: Vec<Decision>,
    /// Cursor for the next page; absent when the range is exhausted.
    pub next: Option<String>,
}

/// Where a scan resumes: a day and a position in it.
struct Cursor {
    day: NaiveDate,
    position: Option<DayCursor>,
}

impl Cursor {
    /// `yyyy-mm-dd.<micros>.<hex transaction id>`: opaque to clients, checked on the way in.
    fn encode(&self) -> String {
        match &self.position {
            Some(p) => format!(
                "{}.{}.{}",
                self.day,
                p.decided_us,
                hex::encode(&p.transaction_id)
            ),
            None => format!("{}..", self.day),
        }
    }

    fn decode(text: &str) -> Option<Cursor> {
        let mut parts = text.splitn(3, '.');
        let day = NaiveDate::parse_from_str(parts.next()?, "%Y-%m-%d").ok()?;
        let us = parts.next()?;
        let id = parts.next()?;
        let position = if us.is_empty() && id.is_empty() {
            None
        } else {
            Some(DayCursor {
                decided_us: us.parse().ok()?,
                transaction_id: unhex(id)?,
            })
        };
        Some(Cursor { day, position })
    }
}

/// The transaction id of a cursor, hex-encoded (at most 256 bytes, valid UTF-8).
fn unhex(s: &str) -> Option<String> {
    if s.len() > 512 {
        return None;
    }
    String::from_utf8(hex::decode(s).ok()?).ok()
}

fn range(
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let until = until.unwrap_or_else(Utc::now);
    let from = from.unwrap_or(until - Duration::hours(24));
    if from >= until {
        return Err(ApiError::invalid_parameter("from", "must be before until"));
    }
    if until - from > Duration::days(MAX_RANGE_DAYS) {
        return Err(ApiError::invalid_parameter(
            "until",
            &format!("a query covers at most {MAX_RANGE_DAYS} days"),
        ));
    }
    Ok((from, until))
}

/// `GET /v1/decisions`: decisions in a time range, filtered, in decision-time order, with
/// cursor pagination that stays stable as new decisions arrive.
#[utoipa::path(get, path = "/v1/decisions", tag = "decisions", params(DecisionQuery), responses((status = 200, body = DecisionPage), (status = 400, body = ErrorResponse)))]
pub async fn search(
    State(state): State<ApiState>,
    Params(query): Params<DecisionQuery>,
) -> Result<Response, ApiError> {
    let page = search_page(&state, &query).await?;
    read_json(&*state.store, page).await
}

/// The page of decisions `query` asks for, reading day by day.
async fn search_page(state: &ApiState, query: &DecisionQuery) -> Result<DecisionPage, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_parameter(
            "limit",
            "must be between 1 and 1000",
        ));
    }
    let (from, until) = range(query.from, query.until)?;
    let last_day = until.date_naive();
    let mut cursor = match &query.cursor {
        Some(text) => Cursor::decode(text).ok_or_else(|| {
            ApiError::invalid_parameter("cursor", "is not a cursor from this API")
        })?,
        None => Cursor {
            day: from.date_naive(),
            position: None,
        },
    };
    // A forged cursor (`0001-01-01..`) would make one request walk every day since then.
    if cursor.day < from.date_naive() || cursor.day > last_day {
        crate::metrics::refused("too_costly");
        return Err(ApiError::invalid_parameter(
            "cursor",
            "is outside the requested from/until range; repeat the query that returned it",
        ));
    }
    let _turn = state.heavy_queries.enter().await?;
    let mut out = Vec::new();
    let mut scanned = 0;
    while cursor.day <= last_day {
        let page = state
            .store
            .decisions_by_day(
                day_of(cursor.day.and_hms_opt(0, 0, 0).expect("midnight").and_utc()),
                cursor.position.clone(),
                500,
            )
            .await
            .map_err(|e| ApiError::internal("reading decisions failed", e))?;
        scanned += page.len();
        let exhausted = page.len() < 500;
        for d in page {
            cursor.position = Some(DayCursor {
                decided_us: d.decided_at.timestamp_micros(),
                transaction_id: d.transaction_id.clone(),
            });
            if d.decided_at >= from && d.decided_at < until && query.accepts(&d) {
                out.push(d);
                if out.len() == limit {
                    return Ok(DecisionPage {
                        decisions: out,
                        next: Some(cursor.encode()),
                    });
                }
            }
        }
        if exhausted {
            cursor = Cursor {
                day: cursor.day + Duration::days(1),
                position: None,
            };
        }
        if scanned >= MAX_SCAN {
            return Ok(DecisionPage {
                decisions: out,
                next: (cursor.day <= last_day).then(|| cursor.encode()),
            });
        }
    }
    Ok(DecisionPage {
        decisions: out,
        next: None,
    })
}

#[cfg(test)]
mod tests;
