//! Names of the metrics the API records (the node describes and exports them).

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
/// scan, day or group bounds, or with a cursor outside its range).
pub const REFUSAL_REASONS: [&str; 4] = ["content_type", "host", "busy", "too_costly"];

/// Counts one refusal; `reason` is one of [`REFUSAL_REASONS`].
pub(crate) fn refused(reason: &'static str) {
    debug_assert!(REFUSAL_REASONS.contains(&reason), "{reason}");
    metrics::counter!(REFUSED, "reason" => reason).increment(1);
}
