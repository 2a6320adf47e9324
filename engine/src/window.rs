//! Event-time sliding windows over one user's recent transactions.
//!
//! Entries stay sorted by event time, so an out-of-order event within the allowed lateness is
//! placed where it belongs and every aggregate is exact. A window `(t - d, t]` is found by
//! binary search; aggregates scan only the entries inside it. Entries older than the longest
//! window plus the lateness are evicted as the watermark (the latest event time seen) moves.

use serde::{Deserialize, Serialize};

/// What a window remembers of one transaction. Identifiers are stable hashes (0 = absent).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Event time, ms since the epoch.
    pub time_ms: i64,
    /// Amount in the node's base currency (the raw amount for events stored before
    /// conversion existed).
    pub amount: f64,
    /// Transaction id hash: recognises redelivered events.
    pub txn: u64,
    /// Card id hash.
    pub card: u64,
    /// Device id hash.
    pub device: u64,
    /// Merchant id hash.
    pub merchant: u64,
    /// IP address hash.
    pub ip: u64,
    /// ISO country code bytes, or zeros when unknown.
    pub country: [u8; 2],
    /// Latitude and longitude, when the event had them.
    pub coords: Option<(f32, f32)>,
}

impl Entry {
    /// The country code as text, if the event had one.
    pub fn country(&self) -> Option<&str> {
        if self.country == [0, 0] {
            None
        } else {
            std::str::from_utf8(&self.country).ok()
        }
    }
}

/// Which entries an aggregate looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// All of the user's transactions.
    User,
    /// Those with this card hash.
    Card(u64),
    /// Those with this device hash.
    Device(u64),
    /// Those at this merchant hash.
    Merchant(u64),
    /// Those from this IP hash.
    Ip(u64),
}

impl Key {
    fn matches(self, e: &Entry) -> bool {
        match self {
            Key::User => true,
            Key::Card(h) => e.card == h,
            Key::Device(h) => e.device == h,
            Key::Merchant(h) => e.merchant == h,
            Key::Ip(h) => e.ip == h,
        }
    }
}

/// Count, sum, min and max of the amounts in a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Number of transactions.
    pub count: u64,
    /// Sum of amounts.
    pub sum: f64,
    /// Smallest amount, if any.
    pub min: Option<f64>,
    /// Largest amount, if any.
    pub max: Option<f64>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::EMPTY
    }
}

impl Stats {
    const EMPTY: Stats = Stats {
        count: 0,
        sum: 0.0,
        min: None,
        max: None,
    };

    fn add(&mut self, amount: f64) {
        self.count += 1;
        self.sum += amount;
        self.min = Some(self.min.map_or(amount, |m| m.min(amount)));
        self.max = Some(self.max.map_or(amount, |m| m.max(amount)));
    }

    /// Mean amount, if any transaction is in the window.
    pub fn avg(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// One user's recent transactions, sorted by event time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    entries: Vec<Entry>,
    /// Latest event time seen (ms); `i64::MIN` before the first event.
    watermark_ms: i64,
}

/// Where an event landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Inserted in event-time order.
    InWindow,
    /// Older than the watermark minus the allowed lateness: decided, but kept out of the
    /// windows so that closed windows never change.
    Late,
}

impl Window {
    /// An empty window.
    pub fn new() -> Self {
        Window {
            entries: Vec::new(),
            watermark_ms: i64::MIN,
        }
    }

    /// Places an event, then evicts what no window of `retention_ms` can reach any more.
    pub fn insert(&mut self, entry: Entry, lateness_ms: i64, retention_ms: i64) -> Placement {
        if self.watermark_ms != i64::MIN && entry.time_ms < self.watermark_ms - lateness_ms {
            return Placement::Late;
        }
        // After every entry with the same time, so equal times keep arrival order.
        let at = self.entries.partition_point(|e| e.time_ms <= entry.time_ms);
        self.entries.insert(at, entry);
        self.watermark_ms = self.watermark_ms.max(entry.time_ms);
        let horizon = self.watermark_ms - retention_ms - lateness_ms;
        let expired = self.entries.partition_point(|e| e.time_ms < horizon);
        if expired > 0 {
            self.entries.drain(..expired);
        }
        Placement::InWindow
    }

    /// Whether a transaction with this id hash is in the window.
    pub fn contains_txn(&self, txn: u64) -> bool {
        self.entries.iter().any(|e| e.txn == txn)
    }

    /// Latest event time seen, if any.
    pub fn watermark_ms(&self) -> Option<i64> {
        (self.watermark_ms != i64::MIN).then_some(self.watermark_ms)
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the window holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// [`Window::stats`] over several look-backs at once, in one pass over the longest: the
    /// same figures, for features that read 1 hour, 1 day and 30 days of the same history.
    pub fn stats_over<const N: usize>(
        &self,
        key: Key,
        at_ms: i64,
        spans_ms: [i64; N],
        exclude: u64,
    ) -> [Stats; N] {
        let longest = spans_ms.iter().copied().max().unwrap_or(0);
        let start = self
            .entries
            .partition_point(|e| e.time_ms <= at_ms.saturating_sub(longest));
        let end = self.entries.partition_point(|e| e.time_ms <= at_ms);
        let mut out = [Stats::EMPTY; N];
        for e in &self.entries[start..end.max(start)] {
            if e.txn == exclude || !key.matches(e) {
                continue;
            }
            for (stats, span) in out.iter_mut().zip(spans_ms) {
                if e.time_ms > at_ms.saturating_sub(span) {
                    stats.add(e.amount);
                }
            }
        }
        out
    }

    /// Aggregates entries matching `key` with event time in `(at - span_ms, at]`, leaving out
    /// the transaction `exclude` (0 excludes nothing) and adding `extra` (an event decided
    /// without entering the window).
    pub fn stats(
        &self,
        key: Key,
        at_ms: i64,
        span_ms: i64,
        exclude: u64,
        extra: Option<&Entry>,
    ) -> Stats {
        let start = self
            .entries
            .partition_point(|e| e.time_ms <= at_ms.saturating_sub(span_ms));
        let end = self.entries.partition_point(|e| e.time_ms <= at_ms);
        let mut stats = Stats::EMPTY;
        for e in &self.entries[start..end.max(start)] {
            if e.txn != exclude && key.matches(e) {
                stats.add(e.amount);
            }
        }
        if let Some(e) = extra {
            if key.matches(e) {
                stats.add(e.amount);
            }
        }
        stats
    }

    /// The latest entry at or before `at_ms` other than transaction `exclude`: the user's
    /// previous transaction in event time.
    pub fn previous(&self, at_ms: i64, exclude: u64) -> Option<&Entry> {
        let end = self.entries.partition_point(|e| e.time_ms <= at_ms);
        self.entries[..end].iter().rev().find(|e| e.txn != exclude)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;

    fn entry(time_ms: i64, amount: f64, txn: u64) -> Entry {
        Entry {
            time_ms,
            amount,
            txn,
            card: 7,
            device: 0,
            merchant: 0,
            ip: 0,
            country: *b"US",
            coords: None,
        }
    }

    #[test]
    fn aggregates_over_event_time() {
        let mut w = Window::new();
        for (i, t) in [0, 2, 4, 6, 8].iter().enumerate() {
            w.insert(
                entry(t * MIN, 10.0 * (i + 1) as f64, i as u64 + 1),
                5 * MIN,
                30 * 24 * HOUR,
            );
        }
        let s = w.stats(Key::User, 8 * MIN, 5 * MIN, 0, None);
        // (3m, 8m] holds the events at 4, 6 and 8 minutes.
        assert_eq!(s.count, 3);
        assert_eq!(s.sum, 30.0 + 40.0 + 50.0);
        assert_eq!((s.min, s.max), (Some(30.0), Some(50.0)));
        assert_eq!(s.avg(), Some(40.0));
        // Excluding the current event and filtering by card.
        assert_eq!(w.stats(Key::User, 8 * MIN, 5 * MIN, 5, None).count, 2);
        assert_eq!(w.stats(Key::Card(7), 8 * MIN, HOUR, 0, None).count, 5);
        assert_eq!(w.stats(Key::Card(8), 8 * MIN, HOUR, 0, None).count, 0);
        assert_eq!(w.stats(Key::User, 8 * MIN, HOUR, 0, None).avg(), Some(30.0));
    }

    #[test]
    fn several_look_backs_in_one_pass_equal_one_at_a_time() {
        let mut w = Window::new();
        for i in 0..40 {
            w.insert(
                entry(i * 7 * MIN, i as f64, i as u64 + 1),
                5 * MIN,
                30 * 24 * HOUR,
            );
        }
        let spans = [5 * MIN, HOUR, 3 * HOUR, 24 * HOUR];
        let at = 39 * 7 * MIN;
        let together = w.stats_over(Key::User, at, spans, 40);
        for (stats, span) in together.iter().zip(spans) {
            assert_eq!(*stats, w.stats(Key::User, at, span, 40, None), "{span}");
        }
        assert_eq!(together[3].count, 39);
    }

    #[test]
    fn out_of_order_events_within_lateness_are_placed_correctly() {
        let mut in_order = Window::new();
        let mut shuffled = Window::new();
        let times = [0, 1, 2, 3, 4, 5];
        for &t in &times {
            in_order.insert(entry(t * MIN, 1.0, t as u64 + 1), 10 * MIN, HOUR);
        }
        for &t in &[0, 3, 1, 5, 2, 4] {
            let placed = shuffled.insert(entry(t * MIN, 1.0, t as u64 + 1), 10 * MIN, HOUR);
            assert_eq!(placed, Placement::InWindow);
        }
        assert_eq!(in_order, shuffled);
        assert_eq!(
            shuffled.stats(Key::User, 2 * MIN, 2 * MIN, 0, None).count,
            2
        );
        assert_eq!(shuffled.previous(3 * MIN, 4).unwrap().time_ms, 2 * MIN);
    }

    #[test]
    fn events_beyond_lateness_stay_out_but_can_be_counted_in() {
        let mut w = Window::new();
        w.insert(entry(HOUR, 5.0, 1), 5 * MIN, 24 * HOUR);
        let late = entry(HOUR - 6 * MIN, 7.0, 2);
        assert_eq!(w.insert(late, 5 * MIN, 24 * HOUR), Placement::Late);
        assert_eq!(w.len(), 1);
        assert!(!w.contains_txn(2));
        let s = w.stats(Key::User, late.time_ms, HOUR, 0, Some(&late));
        assert_eq!((s.count, s.sum), (1, 7.0));
    }

    #[test]
    fn old_entries_are_evicted_as_the_watermark_moves() {
        let mut w = Window::new();
        w.insert(entry(0, 1.0, 1), MIN, HOUR);
        w.insert(entry(30 * MIN, 1.0, 2), MIN, HOUR);
        assert_eq!(w.len(), 2);
        w.insert(entry(2 * HOUR, 1.0, 3), MIN, HOUR);
        assert_eq!(w.len(), 1);
        assert_eq!(w.watermark_ms(), Some(2 * HOUR));
    }
}
