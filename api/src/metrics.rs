//! Names of the metrics the API records (the node describes and exports them).

/// Counter: decisions a live dashboard stream skipped because its client read too slowly
/// (the stream's figures still count them; scoring never waits for a page).
pub const STREAM_LAGGED: &str = "sentinel_stream_lagged_total";
