//! The arithmetic of a report: percentiles, rates, recall and precision.

use hdrhistogram::Histogram;

/// The `q` quantile (0..=1) of a latency histogram in µs, as milliseconds; `None` when empty.
pub fn quantile_ms(h: &Histogram<u64>, q: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1_000.0)
}

/// Largest recorded latency in milliseconds; `None` when empty.
pub fn max_ms(h: &Histogram<u64>) -> Option<f64> {
    (!h.is_empty()).then(|| h.max() as f64 / 1_000.0)
}

/// Events per second; 0 over an empty interval.
pub fn per_sec(count: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

/// Recall of one scenario: the fraction of its decided, labelled events that were flagged
/// (review or decline). `None` when none of its events was decided.
pub fn recall(flagged: u64, decided: u64) -> Option<f64> {
    (decided > 0).then(|| flagged as f64 / decided as f64)
}

/// Precision: the fraction of flagged events that carried a fraud label. `None` when nothing
/// was flagged.
pub fn precision(labelled_flagged: u64, flagged: u64) -> Option<f64> {
    (flagged > 0).then(|| labelled_flagged as f64 / flagged as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = Histogram::new(3).unwrap();
        for v in values {
            h.record(v).unwrap();
        }
        h
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= b.abs() * rel
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        // 1..=10,000 µs: p50 = 5 ms, p99 = 9.9 ms, max = 10 ms (within 0.1% resolution).
        let h = hist(1..=10_000);
        assert!(close(quantile_ms(&h, 0.5).unwrap(), 5.0, 0.002));
        assert!(close(quantile_ms(&h, 0.95).unwrap(), 9.5, 0.002));
        assert!(close(quantile_ms(&h, 0.99).unwrap(), 9.9, 0.002));
        assert!(close(max_ms(&h).unwrap(), 10.0, 0.002));
    }

    #[test]
    fn percentiles_see_the_tail() {
        // 98 fast and 2 slow: p50 stays fast, p99 and max are the slow ones.
        let h = hist((0..98).map(|_| 1_000).chain([250_000, 400_000]));
        assert!(close(quantile_ms(&h, 0.5).unwrap(), 1.0, 0.002));
        assert!(close(quantile_ms(&h, 0.99).unwrap(), 250.0, 0.002));
        assert!(close(max_ms(&h).unwrap(), 400.0, 0.002));
        assert_eq!(quantile_ms(&Histogram::new(3).unwrap(), 0.5), None);
    }

    #[test]
    fn recall_and_precision() {
        assert_eq!(recall(3, 12), Some(0.25));
        assert_eq!(recall(0, 0), None);
        assert_eq!(precision(9, 10), Some(0.9));
        assert_eq!(precision(0, 0), None);
        assert_eq!(per_sec(500, 2.0), 250.0);
        assert_eq!(per_sec(5, 0.0), 0.0);
    }
}
