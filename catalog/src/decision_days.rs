//! Reading stored decisions by their decision day, the index every store keeps: backtests find
//! the users of a range, training scans a period's activity, the live entity-risk index counts
//! the entities of the decisions stored since its last pass (re-checking its last minutes
//! through the index's keys alone).

use crate::error::CatalogError;
use chrono::{DateTime, Utc};
use sentinel_event::Decision;
use sentinel_store::{day_of, DayCursor, DayEntry, Store, StoreError};

const PAGE: usize = 1_000;

/// What a day-by-day walk reads: whole decisions, or their positions in the day index alone.
trait DayItem: Sized {
    /// Up to `limit` items of day `bucket` after `after`, in decision-time order.
    async fn page(
        store: &dyn Store,
        bucket: u32,
        after: Option<DayCursor>,
        limit: usize,
    ) -> Result<Vec<Self>, StoreError>;
    /// The item's decision time (µs).
    fn decided_us(&self) -> i64;
    /// The item's position, to go on after it.
    fn position(&self) -> DayCursor;
}

impl DayItem for Decision {
    async fn page(
        store: &dyn Store,
        bucket: u32,
        after: Option<DayCursor>,
        limit: usize,
    ) -> Result<Vec<Self>, StoreError> {
        store.decisions_by_day(bucket, after, limit).await
    }
    fn decided_us(&self) -> i64 {
        self.decided_at.timestamp_micros()
    }
    fn position(&self) -> DayCursor {
        DayCursor {
            decided_us: self.decided_us(),
            transaction_id: self.transaction_id.clone(),
        }
    }
}

impl DayItem for DayCursor {
    async fn page(
        store: &dyn Store,
        bucket: u32,
        after: Option<DayCursor>,
        limit: usize,
    ) -> Result<Vec<Self>, StoreError> {
        store.decision_keys_by_day(bucket, after, limit).await
    }
    fn decided_us(&self) -> i64 {
        self.decided_us
    }
    fn position(&self) -> DayCursor {
        self.clone()
    }
}

impl DayItem for DayEntry {
    async fn page(
        store: &dyn Store,
        bucket: u32,
        after: Option<DayCursor>,
        limit: usize,
    ) -> Result<Vec<Self>, StoreError> {
        store.day_entries(bucket, after, limit).await
    }
    fn decided_us(&self) -> i64 {
        self.position.decided_us
    }
    fn position(&self) -> DayCursor {
        self.position.clone()
    }
}

/// Visits every item after `after` (exclusive) through `through_us` (decision time, inclusive),
/// day by day in decision-time order, a page at a time. Returns the last position visited.
async fn walk<T: DayItem>(
    store: &dyn Store,
    after: DayCursor,
    through_us: i64,
    mut visit: impl FnMut(&T),
) -> Result<Option<DayCursor>, CatalogError> {
    let (Some(from), Some(through)) = (
        DateTime::<Utc>::from_timestamp_micros(after.decided_us),
        DateTime::<Utc>::from_timestamp_micros(through_us),
    ) else {
        return Err(CatalogError::invalid("from", "decision time out of range"));
    };
    let mut day = from.date_naive();
    let mut cursor = Some(after);
    let mut visited = None;
    while day <= through.date_naive() {
        let bucket = day_of(day.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
        loop {
            let page = T::page(store, bucket, cursor.take(), PAGE).await?;
            let full = page.len() == PAGE;
            let mut last = None;
            for item in &page {
                if item.decided_us() > through_us {
                    return Ok(last.map(T::position).or(visited));
                }
                visit(item);
                last = Some(item);
            }
            if let Some(last) = last {
                visited = Some(last.position());
            }
            if !full {
                break;
            }
            cursor.clone_from(&visited);
        }
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    Ok(visited)
}

/// The last microsecond of `t`'s UTC day.
fn end_of_day_us(t: DateTime<Utc>) -> i64 {
    let midnight = t
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    (midnight + chrono::Duration::days(1)).timestamp_micros() - 1
}

/// Visits every decision made from `from` (decision time) to the end of `to`'s UTC day, day by
/// day in decision-time order, a page at a time.
pub(crate) async fn for_each_decision(
    store: &dyn Store,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    visit: impl FnMut(&Decision),
) -> Result<(), CatalogError> {
    let from = DayCursor {
        decided_us: from.timestamp_micros(),
        transaction_id: String::new(),
    };
    walk(store, from, end_of_day_us(to), visit).await.map(drop)
}

/// Visits the day-index entry (position and event entities, [`Store::day_entries`]) of every
/// decision after position `after` (exclusive) to the end of `to`'s UTC day, in decision-time
/// order, a page at a time: what entity activity counts, without reading whole decisions where
/// the store keeps the entries.
pub(crate) async fn for_each_day_entry_after(
    store: &dyn Store,
    after: DayCursor,
    to: DateTime<Utc>,
    visit: impl FnMut(&DayEntry),
) -> Result<(), CatalogError> {
    walk(store, after, end_of_day_us(to), visit).await.map(drop)
}

/// Visits the position of every decision after `after` (exclusive) to the end of `to`'s UTC
/// day, in decision-time order, reading the day index alone (no decision is read or decoded).
/// Returns the last position visited.
pub(crate) async fn for_each_decision_key(
    store: &dyn Store,
    after: DayCursor,
    to: DateTime<Utc>,
    visit: impl FnMut(&DayCursor),
) -> Result<Option<DayCursor>, CatalogError> {
    walk(store, after, end_of_day_us(to), visit).await
}
