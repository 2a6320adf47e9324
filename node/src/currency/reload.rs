//! Re-reads the rates file when its content changes: the new table applies to the next
//! events; a bad file leaves the table in force and is logged and counted once per change.

use super::{Currencies, RateTable, RELOADS};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Polls `path` every `every`. Content is compared rather than the modification time, so a
/// rewrite within the file system's timestamp granularity is not missed (rate files are small).
pub(super) fn spawn(currencies: Arc<Currencies>, path: PathBuf, base: String, every: Duration) {
    let mut last = std::fs::read(&path).ok();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let bytes = match tokio::fs::read(&path).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    // Reported once until the file is back (a rewrite may briefly remove it).
                    if last.take().is_some() {
                        metrics::counter!(RELOADS, "result" => "error").increment(1);
                        tracing::error!(file = %path.display(), error = %e,
                            "rates file unreadable; the rate table in force stays");
                    }
                    continue;
                }
            };
            if last.as_deref() == Some(&bytes[..]) {
                continue;
            }
            let parsed = std::str::from_utf8(&bytes)
                .map_err(anyhow::Error::from)
                .and_then(|text| RateTable::parse(text, &path, &base));
            last = Some(bytes);
            match parsed {
                Ok(table) => {
                    tracing::info!(file = %path.display(), as_of = %table.as_of,
                        currencies = table.len(), "currency rates reloaded");
                    currencies.replace(table);
                    metrics::counter!(RELOADS, "result" => "ok").increment(1);
                }
                Err(e) => {
                    metrics::counter!(RELOADS, "result" => "error").increment(1);
                    tracing::error!(file = %path.display(), error = %format!("{e:#}"),
                        "bad rates file; the rate table in force stays");
                }
            }
        }
    });
}
