//! Store metrics: names and help texts ([`describe`]).

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
/// Counter: users whose snapshot did not cover decisions retention was about to delete, by
/// `outcome`: `written` (rebuilt and snapshotted first), or `failed` (a stored record does not
/// decode; the decisions go without a snapshot). Counted once per deleting transaction.
pub const RETENTION_SNAPSHOTS: &str = "sentinel_store_retention_snapshots_total";
/// Gauge: embedded-store reads, the reads a decision waits for (user restores, key checks) and
/// catalogue writes waiting for a permit of their lane.
pub const CALLS_WAITING: &str = "sentinel_store_calls_waiting";

/// Help texts, and the rare counters at zero so rates and alerts see a zero, not nothing.
/// The node calls this once its recorder is installed.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_histogram!(
        BATCH_SECONDS,
        Unit::Seconds,
        "Time to write and commit one store batch."
    );
    describe_histogram!(BATCH_SIZE, "Writes per committed store batch.");
    describe_counter!(DECISIONS_STORED, "Decisions newly stored.");
    describe_counter!(
        DECISIONS_DUPLICATE,
        "Decision writes that found one already stored."
    );
    describe_counter!(DECISIONS_PRUNED, "Decisions deleted by retention.");
    describe_counter!(
        RETENTION_SNAPSHOTS,
        "Users whose snapshot did not cover decisions retention was about to delete: rebuilt and snapshotted first (written), or not rebuildable (failed)."
    );
    describe_counter!(WRITE_ERRORS, "Failed store batch writes.");
    describe_gauge!(
        CALLS_WAITING,
        "Embedded-store reads, scoring reads (user restores, key checks) and catalogue writes waiting for a permit of their lane."
    );
    metrics::gauge!(CALLS_WAITING).set(0.0);
    for name in [WRITE_ERRORS, DECISIONS_DUPLICATE, DECISIONS_PRUNED] {
        metrics::counter!(name).increment(0);
    }
    for outcome in ["written", "failed"] {
        metrics::counter!(RETENTION_SNAPSHOTS, "outcome" => outcome).increment(0);
    }
}
