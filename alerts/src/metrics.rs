//! Metric names of the alerting path; every series is labelled by the configured sink name.

/// Alerts written to the outbox.
pub const QUEUED: &str = "sentinel_alerts_queued_total";
/// Alerts a sink accepted.
pub const DELIVERED: &str = "sentinel_alerts_delivered_total";
/// Alerts dead-lettered after the configured number of attempts.
pub const FAILED: &str = "sentinel_alerts_failed_total";
/// Delivery attempts after an alert's first (automatic retries and retries through the API).
pub const RETRIED: &str = "sentinel_alerts_retried_total";
/// Alerts not queued because an alert for the same user, rule and sink was sent recently.
pub const THROTTLED: &str = "sentinel_alerts_throttled_total";
/// Seconds one delivery attempt took (successful or not).
pub const DELIVERY_SECONDS: &str = "sentinel_alert_delivery_seconds";

/// Help texts. Call after the recorder is installed.
pub fn describe() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(QUEUED, "Alerts written to the outbox, by sink.");
    describe_counter!(DELIVERED, "Alerts a sink accepted, by sink.");
    describe_counter!(
        FAILED,
        "Alerts dead-lettered after the last attempt, by sink."
    );
    describe_counter!(RETRIED, "Alert delivery attempts after the first, by sink.");
    describe_counter!(THROTTLED, "Alerts suppressed by throttling, by sink.");
    describe_histogram!(
        DELIVERY_SECONDS,
        Unit::Seconds,
        "Duration of one alert delivery attempt, by sink."
    );
}

/// Every counter at zero for each configured sink, so rates and alerting rules see a zero
/// before the first alert.
pub fn register_sinks<'a>(sinks: impl IntoIterator<Item = &'a str>) {
    for sink in sinks {
        for name in [QUEUED, DELIVERED, FAILED, RETRIED, THROTTLED] {
            metrics::counter!(name, "sink" => sink.to_owned()).increment(0);
        }
    }
}
