//! What `GET /v1/aggregates` is asked: the query parameters as written, and their checked
//! form, each mistake answered with a 400 naming the parameter.

use super::{range, Outcomes};
use crate::ApiError;
use chrono::{DateTime, Duration, Utc};
use sentinel_event::{Channel, Decision};
use sentinel_rules::Agg;
use serde::{Deserialize, Serialize};

/// Longest `metadata.<key>` name a field may give.
const MAX_METADATA_KEY: usize = 64;

/// Aggregate query, as written in the URL.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AggregateQuery {
    /// `count`, `sum`, `avg`, `min` or `max` (the rule language's aggregations).
    #[param(value_type = Agg)]
    pub agg: String,
    /// The numeric field (default `amount`): `amount`, `amount_base`, `score`, `ml_score`,
    /// `ml_anomaly` or `metadata.<key>`. Decisions without it (no model, no such metadata
    /// key, a value that is not a number) are left out and counted in `without_field`.
    pub field: Option<String>,
    /// Grouping key; absent: one group, `all`.
    #[param(value_type = Option<GroupBy>)]
    pub group_by: Option<String>,
    /// Only this user.
    pub user_id: Option<String>,
    /// Only these outcomes, comma-separated (`review,decline`).
    pub outcome: Option<String>,
    /// Only this merchant category.
    pub merchant_category: Option<String>,
    /// Only this channel.
    #[param(value_type = Option<Channel>)]
    pub channel: Option<String>,
    /// Only this country (the event's `location.country`).
    pub country: Option<String>,
    /// The last `<n>m`, `<n>h` or `<n>d` before `until` (`24h`, `7d`); instead of `from`.
    #[param(pattern = "^[0-9]+[mhd]$", example = "24h")]
    pub window: Option<String>,
    /// Decided at or after (default: 24 hours before `until`).
    pub from: Option<DateTime<Utc>>,
    /// Decided before (default: now).
    pub until: Option<DateTime<Utc>>,
}

/// Numeric fields an aggregate reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Field {
    /// The transaction amount (mixed currencies are summed as numbers).
    Amount,
    /// The amount in the node's base currency: comparable across currencies.
    AmountBase,
    /// The rules' risk score.
    Score,
    /// The model's fraud probability.
    MlScore,
    /// The model's anomaly score.
    MlAnomaly,
    /// A numeric value in the event's `metadata`.
    Metadata(String),
}

impl Field {
    fn parse(text: &str) -> Result<Field, ApiError> {
        Ok(match text {
            "amount" => Field::Amount,
            "amount_base" => Field::AmountBase,
            "score" => Field::Score,
            "ml_score" | "ml.score" => Field::MlScore,
            "ml_anomaly" | "ml.anomaly" => Field::MlAnomaly,
            _ => match text.strip_prefix("metadata.") {
                Some(key) if !key.is_empty() && key.len() <= MAX_METADATA_KEY => {
                    Field::Metadata(key.to_owned())
                }
                _ => {
                    return Err(ApiError::invalid_parameter(
                        "field",
                        &format!(
                            "`{text}` is not amount, amount_base, score, ml_score, ml_anomaly \
                             or metadata.<key> (a key of 1 to {MAX_METADATA_KEY} characters)"
                        ),
                    ))
                }
            },
        })
    }

    /// The field's value in `d`, if it has one.
    pub(super) fn value(&self, d: &Decision) -> Option<f64> {
        match self {
            Field::Amount => d.event.amount.try_into().ok(),
            Field::AmountBase => d.event.amount_base().try_into().ok(),
            Field::Score => Some(d.score),
            Field::MlScore => d.ml.as_ref().map(|m| m.score),
            Field::MlAnomaly => d.ml.as_ref().map(|m| m.anomaly),
            Field::Metadata(key) => d.event.metadata.as_ref()?.get(key)?.as_f64(),
        }
    }
}

/// Grouping keys (bounded to what a risk team groups by).
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[derive(utoipa::ToSchema)]
pub enum GroupBy {
    /// Per user.
    UserId,
    /// Per card.
    CardId,
    /// Per merchant.
    MerchantId,
    /// Per merchant category.
    MerchantCategory,
    /// Per channel.
    Channel,
    /// Per country.
    Country,
    /// Per outcome.
    Outcome,
    /// Per currency.
    Currency,
}

impl GroupBy {
    /// The group `d` falls in (`-` for an event without the key).
    pub(super) fn of(self, d: &Decision) -> String {
        let e = &d.event;
        let text = match self {
            GroupBy::UserId => Some(d.user_id.as_str()),
            GroupBy::CardId => e.card_id.as_deref(),
            GroupBy::MerchantId => e.merchant_id.as_deref(),
            GroupBy::MerchantCategory => e.merchant_category.as_deref(),
            GroupBy::Channel => e.channel.map(|c| c.as_str()),
            GroupBy::Country => e.location.as_ref().map(|l| l.country.as_str()),
            GroupBy::Outcome => Some(d.outcome.as_str()),
            GroupBy::Currency => Some(e.currency.as_str()),
        };
        text.unwrap_or("-").to_owned()
    }
}

/// Which decisions count: every filter given must match.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Filters {
    user_id: Option<String>,
    outcome: Option<Outcomes>,
    merchant_category: Option<String>,
    channel: Option<Channel>,
    country: Option<String>,
}

impl Filters {
    /// Whether `d` passes every filter.
    pub(super) fn accepts(&self, d: &Decision) -> bool {
        let e = &d.event;
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        eq(&self.user_id, Some(&d.user_id))
            && self.outcome.is_none_or(|o| o.contains(d.outcome))
            && eq(&self.merchant_category, e.merchant_category.as_deref())
            && self.channel.is_none_or(|c| e.channel == Some(c))
            && eq(
                &self.country,
                e.location.as_ref().map(|l| l.country.as_str()),
            )
    }
}

/// A checked aggregate query.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Spec {
    pub agg: Agg,
    pub field: Field,
    pub group_by: Option<GroupBy>,
    pub filters: Filters,
    /// The range computed on.
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// The range as asked, in whole seconds: an absent bound stays absent, so "the last 24
    /// hours" asked twice within the cache's life is one cache entry.
    asked: (Option<i64>, Option<i64>, Option<i64>),
}

impl Spec {
    /// Checks `q`, naming the first parameter that is wrong.
    pub(super) fn check(q: AggregateQuery) -> Result<Spec, ApiError> {
        let agg = Agg::from_name(&q.agg).ok_or_else(|| {
            ApiError::invalid_parameter(
                "agg",
                &format!("`{}` is not count, sum, avg, min or max", q.agg),
            )
        })?;
        let field = Field::parse(q.field.as_deref().unwrap_or("amount"))?;
        let group_by = q
            .group_by
            .map(|g| {
                serde_json::from_value::<GroupBy>(serde_json::Value::String(g.clone())).map_err(
                    |_| {
                        ApiError::invalid_parameter(
                            "group_by",
                            &format!(
                                "`{g}` is not user_id, card_id, merchant_id, merchant_category, \
                                 channel, country, outcome or currency"
                            ),
                        )
                    },
                )
            })
            .transpose()?;
        let channel = q
            .channel
            .map(|c| {
                serde_json::from_value::<Channel>(serde_json::Value::String(c.clone()))
                    .map_err(|e| ApiError::invalid_parameter("channel", &format!("`{c}`: {e}")))
            })
            .transpose()?;
        let outcome = q
            .outcome
            .map(|o| {
                o.parse::<Outcomes>().map_err(|e| {
                    ApiError::invalid_parameter("outcome", e.trim_start_matches("outcome: "))
                })
            })
            .transpose()?;
        let window = q.window.as_deref().map(parse_window).transpose()?;
        // Times count in whole seconds, so that the cache key is the range computed on: one
        // range written in two ways (`+01:00`, fractions of a second) is one entry.
        let from_asked = q.from.map(whole_second);
        let until_asked = q.until.map(whole_second);
        let (from, until) = match window {
            Some(_) if from_asked.is_some() => {
                return Err(ApiError::invalid_parameter(
                    "window",
                    "give either window or from, not both",
                ))
            }
            Some(w) => {
                let until = until_asked.unwrap_or_else(Utc::now);
                range(Some(until - w), Some(until))
                    .map_err(|_| ApiError::invalid_parameter("window", "is longer than 31 days"))?
            }
            None => range(from_asked, until_asked)?,
        };
        Ok(Spec {
            agg,
            field,
            group_by,
            filters: Filters {
                user_id: q.user_id,
                outcome,
                merchant_category: q.merchant_category,
                channel,
                country: q.country,
            },
            from,
            until,
            asked: (
                from_asked.map(|t| t.timestamp()),
                until_asked.map(|t| t.timestamp()),
                window.map(|w| w.num_seconds()),
            ),
        })
    }

    /// What the cache files the answer under: everything asked, times as asked.
    pub(super) fn cache_key(&self) -> String {
        format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}",
            self.agg, self.field, self.group_by, self.filters, self.asked
        )
    }
}

/// `24h`, `7d`, `30m`: a positive whole number of minutes, hours or days.
fn parse_window(text: &str) -> Result<Duration, ApiError> {
    let bad = || {
        ApiError::invalid_parameter(
            "window",
            &format!("`{text}` is not a duration such as 30m, 24h or 7d"),
        )
    };
    let unit = text.chars().last().ok_or_else(bad)?;
    let n: i64 = text[..text.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| bad())?;
    if n <= 0 || n > 100_000 {
        return Err(bad());
    }
    match unit {
        'm' => Ok(Duration::minutes(n)),
        'h' => Ok(Duration::hours(n)),
        'd' => Ok(Duration::days(n)),
        _ => Err(bad()),
    }
}

/// `t` without its fraction of a second.
fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}
