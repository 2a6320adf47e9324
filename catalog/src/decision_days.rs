//! Reading stored decisions by their decision day, the index every store keeps: backtests find
//! the users of a range, training scans a period's activity, the live entity-risk index tails
//! what was stored since its last pass.

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
    mut visit: impl FnMut(&Decision),
) -> Result<(), CatalogError> {
    let mut day = from.date_naive();
    while day <= to.date_naive() {
        let bucket = day_of(day.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
        let mut cursor = (day == from.date_naive()).then(|| DayCursor {
            decided_us: from.timestamp_micros(),
            transaction_id: String::new(),
        });
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
