//! Store metric names.

/// Histogram: seconds to write and commit one batch.
pub const BATCH_SECONDS: &str = "sentinel_store_batch_write_seconds";
/// Histogram: requests per committed batch.
pub const BATCH_SIZE: &str = "sentinel_store_batch_size";
/// Counter: decisions newly stored.
pub const DECISIONS_STORED: &str = "sentinel_store_decisions_stored_total";
/// Counter: decision writes that found one already stored (redelivery).
pub const DECISIONS_DUPLICATE: &str = "sentinel_store_decisions_duplicate_total";
/// Counter: failed batch writes.
pub const WRITE_ERRORS: &str = "sentinel_store_write_errors_total";
/// Counter: decisions deleted by retention.
pub const DECISIONS_PRUNED: &str = "sentinel_store_decisions_pruned_total";
