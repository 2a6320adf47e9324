//! Reading stored decisions by their decision day, the index every store keeps: backtests find
//! the users of a range, training scans a period's activity, the live entity-risk index tails
//! what was stored since its last pass (re-checking its last minutes through the index alone).

use crate::error::CatalogError;
use chrono::{DateTime, Utc};
use sentinel_event::Decision;
use sentinel_store::{day_of, DayCursor, Store};

const PAGE: usize = 1_000;

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
    for_each_decision_after(store, from, to, visit).await
}

/// Visits every decision after position `after` (exclusive) to the end of `to`'s UTC day, in
/// decision-time order, a page at a time.
pub(crate) async fn for_each_decision_after(
    store: &dyn Store,
    after: DayCursor,
    to: DateTime<Utc>,
    mut visit: impl FnMut(&Decision),
) -> Result<(), CatalogError> {
    let Some(from) = DateTime::<Utc>::from_timestamp_micros(after.decided_us) else {
        return Err(CatalogError::invalid("from", "decision time out of range"));
    };
    let mut day = from.date_naive();
    let mut first = Some(after);
    while day <= to.date_naive() {
        let bucket = day_of(day.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
        let mut cursor = first.take();
        loop {
            let page = store.decisions_by_day(bucket, cursor.take(), PAGE).await?;
            page.iter().for_each(&mut visit);
            match page.last() {
                Some(last) if page.len() == PAGE => {
                    cursor = Some(DayCursor {
                        decided_us: last.decided_at.timestamp_micros(),
                        transaction_id: last.transaction_id.clone(),
                    })
                }
                _ => break,
            }
        }
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    Ok(())
}

/// Visits the position of every decision after `after` (exclusive) through `through_us`
/// (decision time, µs, inclusive), in decision-time order, reading the day index alone (no
/// decision is read or decoded). Returns the last position visited.
pub(crate) async fn for_each_decision_key(
    store: &dyn Store,
    after: DayCursor,
    through_us: i64,
    mut visit: impl FnMut(&DayCursor),
) -> Result<Option<DayCursor>, CatalogError> {
    let (Some(from), Some(through)) = (
        DateTime::<Utc>::from_timestamp_micros(after.decided_us),
        DateTime::<Utc>::from_timestamp_micros(through_us),
    ) else {
        return Err(CatalogError::invalid("from", "decision time out of range"));
    };
    let mut day = from.date_naive();
    let mut first = Some(after);
    let mut visited = None;
    while day <= through.date_naive() {
        let bucket = day_of(day.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
        let mut cursor = first.take();
        loop {
            let page = store
                .decision_keys_by_day(bucket, cursor.take(), PAGE)
                .await?;
            let full = page.len() == PAGE;
            for key in page {
                if key.decided_us > through_us {
                    return Ok(visited);
                }
                visit(&key);
                visited = Some(key);
            }
            match &visited {
                Some(last) if full => cursor = Some(last.clone()),
                _ => break,
            }
        }
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    Ok(visited)
}
