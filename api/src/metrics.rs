//! The metrics the API records: names, bounded label values and help texts ([`describe`]);
//! the node exports them.

/// Counter: decisions a live dashboard stream skipped because its client read too slowly
/// (the stream's figures still count them; scoring never waits for a page).
pub const STREAM_LAGGED: &str = "sentinel_stream_lagged_total";

/// Counter: requests refused for missing or invalid credentials, by `reason`
/// ([`AUTH_FAILURE_REASONS`]).
pub const AUTH_FAILURES: &str = "sentinel_api_auth_failures_total";

/// Every `reason` label of [`AUTH_FAILURES`].
pub const AUTH_FAILURE_REASONS: [&str; 5] = [
    "missing",
    "invalid_token",
    "invalid_key",
    "forbidden",
    "unlisted",
];

/// Counter: requests refused because their client address had too many failed
/// authentications in its window (`[auth.failed_auth]`).
pub const AUTH_THROTTLED: &str = "sentinel_api_auth_throttled_total";

/// Counter: requests refused by the rate limit, by `role`.
pub const RATE_LIMITED: &str = "sentinel_api_rate_limited_total";

/// Counter: requests refused by the API's guards, by `reason` ([`REFUSAL_REASONS`]).
pub const REFUSED: &str = "sentinel_api_requests_refused_total";

/// Every `reason` label of [`REFUSED`]: `content_type` (a `POST`/`PUT` that is not
/// `application/json`), `host` (a `Host` the node does not answer to), `busy` (a decision
/// search or aggregate that found no free turn), `too_costly` (a search or aggregate over its
/// scan, day or group bounds, or with a cursor outside its range), `invalid_parameter` (an
/// aggregate with a parameter it cannot use: `agg`, `field`, `group_by`, `outcome`, `channel`,
/// `window` or the range), `overloaded` (a scoring request that found every one of
/// `http_max_scoring_in_flight` slots taken).
pub const REFUSAL_REASONS: [&str; 6] = [
    "content_type",
    "host",
    "busy",
    "too_costly",
    "invalid_parameter",
    "overloaded",
];

/// Counts one refusal; `reason` is one of [`REFUSAL_REASONS`].
pub(crate) fn refused(reason: &'static str) {
    debug_assert!(REFUSAL_REASONS.contains(&reason), "{reason}");
    metrics::counter!(REFUSED, "reason" => reason).increment(1);
}

/// Counter: labels stored (one by one or in batches).
pub const LABELS_STORED: &str = "sentinel_labels_stored_total";

/// Counter: labels of a batch refused, by the `field` at fault ([`LABEL_REJECT_FIELDS`]).
pub const LABELS_REJECTED: &str = "sentinel_labels_rejected_total";

/// Every `field` label of [`LABELS_REJECTED`]: `transaction_id` (no such decision, or
/// missing), `labelled_at` (not a time, before the transaction or in the future), `label`,
/// `source`, `scenario`, `note`, and `other` (an unknown field, an item that is not an object).
pub const LABEL_REJECT_FIELDS: [&str; 7] = [
    "transaction_id",
    "labelled_at",
    "label",
    "source",
    "scenario",
    "note",
    "other",
];

/// Counter: events refused as invalid, by `source` (`http`, `kafka`) and the `field` at fault
/// ([`sentinel_event::InvalidEvent::FIELD_LABELS`]); the field's own name is in the 422 body
/// or the dead letter's `sentinel-error-field` header.
pub const EVENTS_INVALID: &str = "sentinel_events_invalid_total";

/// Every `source` label of [`EVENTS_INVALID`].
pub const EVENT_SOURCES: [&str; 2] = ["http", "kafka"];

/// Counts one invalid event; `source` is one of [`EVENT_SOURCES`].
pub fn event_invalid(source: &'static str, invalid: &sentinel_event::InvalidEvent) {
    metrics::counter!(EVENTS_INVALID, "source" => source, "field" => invalid.field_label())
        .increment(1);
}

/// Counts a refused label, under its field when it is a known one (else `other`).
pub(crate) fn label_rejected(field: &str) {
    let field = LABEL_REJECT_FIELDS
        .into_iter()
        .find(|f| *f == field)
        .unwrap_or("other");
    metrics::counter!(LABELS_REJECTED, "field" => field).increment(1);
}

/// Counter: screened transactions, by `result` ([`SCREEN_RESULTS`]).
pub const SCREENED: &str = "sentinel_screened_total";

/// Every `result` label of [`SCREENED`]: `decided` (answered with a decision), `rejected`
/// (the item is not a valid event), `failed` (the node could not decide it now).
pub const SCREEN_RESULTS: [&str; 3] = ["decided", "rejected", "failed"];

/// Help texts, and every bounded label combination at zero so dashboards and alerts see a zero
/// from the start. The node calls this once its recorder is installed.
pub fn describe() {
    labelled_counter_at_zero(
        AUTH_FAILURES,
        "API requests refused for missing or invalid credentials, by reason.",
        "reason",
        AUTH_FAILURE_REASONS,
    );
    counter_at_zero(
        AUTH_THROTTLED,
        "API requests refused because their address failed authentication too often.",
    );
    labelled_counter_at_zero(
        RATE_LIMITED,
        "API requests refused by the rate limit, by role.",
        "role",
        crate::Role::ALL.map(|role| role.as_str()),
    );
    labelled_counter_at_zero(
        REFUSED,
        "API requests refused before any handler ran, by reason.",
        "reason",
        REFUSAL_REASONS,
    );
    counter_at_zero(LABELS_STORED, "Labels stored, one by one or in batches.");
    labelled_counter_at_zero(
        LABELS_REJECTED,
        "Labels of a batch refused, by the field at fault.",
        "field",
        LABEL_REJECT_FIELDS,
    );
    metrics::describe_counter!(
        EVENTS_INVALID,
        "Events refused as invalid, by source and the field at fault."
    );
    for source in EVENT_SOURCES {
        for field in sentinel_event::InvalidEvent::FIELD_LABELS {
            metrics::counter!(EVENTS_INVALID, "source" => source, "field" => field).increment(0);
        }
    }
    labelled_counter_at_zero(
        SCREENED,
        "Transactions screened without storing, by result.",
        "result",
        SCREEN_RESULTS,
    );
    counter_at_zero(
        STREAM_LAGGED,
        "Decisions live dashboard streams skipped for slow clients.",
    );
}

/// Describes a counter and starts it at zero.
fn counter_at_zero(name: &'static str, help: &'static str) {
    metrics::describe_counter!(name, help);
    metrics::counter!(name).increment(0);
}

/// Describes a counter and starts it at zero for each of its `label` values.
fn labelled_counter_at_zero<const N: usize>(
    name: &'static str,
    help: &'static str,
    label: &'static str,
    values: [&'static str; N],
) {
    metrics::describe_counter!(name, help);
    for value in values {
        metrics::counter!(name, label => value).increment(0);
    }
}
