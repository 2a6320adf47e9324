//! Amounts in one base currency: the `[currency]` section, the rate table in force (reloaded
//! when its file changes), and the conversion every ingestion path applies to an event before
//! it is decided.

mod reload;
mod table;

pub use table::{RateTable, RateText};

use chrono::NaiveDate;
use sentinel_event::{BaseAmount, InvalidEvent, Transaction};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// Counter: events whose currency had no rate, by source and by what was done (`rejected`,
/// `raw`).
pub const UNKNOWN: &str = "sentinel_currency_unknown_total";
/// Counter: re-reads of the rates file after it changed, by result (`ok`, `error`).
pub const RELOADS: &str = "sentinel_currency_rates_reloads_total";
/// Gauge: the date of the rate table in force, as Unix seconds (midnight UTC).
pub const AS_OF: &str = "sentinel_currency_rates_as_of_seconds";

/// Where an event came in; the `source` label of [`UNKNOWN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `POST /v1/transactions`.
    Http,
    /// The Kafka input topic.
    Kafka,
    /// `sentinel import`.
    Import,
    /// The demo's built-in simulator.
    Simulator,
}

impl Source {
    const ALL: [Source; 4] = [
        Source::Http,
        Source::Kafka,
        Source::Import,
        Source::Simulator,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Source::Http => "http",
            Source::Kafka => "kafka",
            Source::Import => "import",
            Source::Simulator => "simulator",
        }
    }
}

/// What to do with an event whose currency has no rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum UnknownCurrency {
    /// Refuse it (HTTP 422, dead letter, import reject), naming `currency`.
    #[default]
    Reject,
    /// Decide on the raw amount as if it were in the base currency, recording that no rate
    /// applied (`base.rate` absent).
    Raw,
}

/// The `[currency]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CurrencyConfig {
    /// The currency rules and models compare amounts in (ISO 4217).
    pub base: String,
    /// Inline rates: units of `base` per unit of each currency. With neither `rates` nor
    /// `rates_file`, the shipped example table (`config/rates.example.toml`) is used.
    pub rates: Option<BTreeMap<String, RateText>>,
    /// The date the inline `rates` are valid for (required with them).
    pub as_of: Option<NaiveDate>,
    /// A rates file (TOML, or JSON when it ends in `.json`): `as_of`, optional `base`, and
    /// `rates`. Re-read every `reload_secs`; a changed file applies to the next events.
    pub rates_file: Option<PathBuf>,
    /// Seconds between checks of `rates_file` for changes.
    pub reload_secs: u64,
    /// `reject` (default) or `raw`: what happens to an event whose currency has no rate.
    pub unknown: UnknownCurrency,
}

impl Default for CurrencyConfig {
    fn default() -> Self {
        CurrencyConfig {
            base: "USD".into(),
            rates: None,
            as_of: None,
            rates_file: None,
            reload_secs: 5,
            unknown: UnknownCurrency::Reject,
        }
    }
}

/// The shipped example table, used when no rates are configured.
const EXAMPLE_RATES: &str = include_str!("../../config/rates.example.toml");

impl CurrencyConfig {
    /// The table these settings describe: the file's, the inline one, or the example.
    pub fn table(&self) -> anyhow::Result<RateTable> {
        let in_section = |e: anyhow::Error| anyhow::anyhow!("currency.{e:#}");
        match (&self.rates_file, &self.rates) {
            (Some(_), Some(_)) => anyhow::bail!(
                "currency: give either `rates` or `rates_file`, not both (the file is the one \
                 that reloads)"
            ),
            (Some(path), None) => RateTable::from_file(path, &self.base)
                .map_err(|e| anyhow::anyhow!("currency.rates_file {}: {e:#}", path.display())),
            (None, Some(rates)) => {
                let as_of = self.as_of.ok_or_else(|| {
                    anyhow::anyhow!("currency.as_of: required with inline `rates` (the rate date)")
                })?;
                RateTable::new(&self.base, as_of, rates).map_err(in_section)
            }
            (None, None) => {
                let table =
                    RateTable::parse(EXAMPLE_RATES, std::path::Path::new("example.toml"), "USD")
                        .expect("the shipped example table is valid");
                anyhow::ensure!(
                    self.base == table.base,
                    "currency.base: the shipped example rates are in USD; give `rates` or \
                     `rates_file` for base {}",
                    self.base
                );
                Ok(table)
            }
        }
    }
}

/// The rate table in force and the policy for currencies without a rate. Cheap to share.
pub struct Currencies {
    table: RwLock<Arc<RateTable>>,
    unknown: UnknownCurrency,
}

impl Currencies {
    /// Builds the table from the settings (an error names the setting at fault), registers
    /// the metrics at zero, and logs which table is in force.
    pub fn new(config: &CurrencyConfig) -> anyhow::Result<Arc<Currencies>> {
        let table = config.table()?;
        describe();
        tracing::info!(
            base = %table.base,
            as_of = %table.as_of,
            currencies = table.len(),
            source = %config.rates_file.as_ref().map_or_else(
                || if config.rates.is_some() { "config".to_owned() } else {
                    "the shipped EXAMPLE table (not live rates)".to_owned()
                },
                |p| p.display().to_string()
            ),
            "currency rates in force"
        );
        let currencies = Arc::new(Currencies {
            table: RwLock::new(Arc::new(table)),
            unknown: config.unknown,
        });
        currencies.publish_as_of();
        Ok(currencies)
    }

    /// Starts re-reading `rates_file` when it changes (a no-op without one).
    pub fn watch(self: &Arc<Self>, config: &CurrencyConfig) {
        if let Some(path) = &config.rates_file {
            reload::spawn(
                Arc::clone(self),
                path.clone(),
                config.base.clone(),
                std::time::Duration::from_secs(config.reload_secs.max(1)),
            );
        }
    }

    /// The table in force.
    pub fn table(&self) -> Arc<RateTable> {
        Arc::clone(&self.table.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn replace(&self, table: RateTable) {
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
        self.publish_as_of();
    }

    fn publish_as_of(&self) {
        let as_of = self.table().as_of;
        let secs = as_of
            .and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp());
        metrics::gauge!(AS_OF).set(secs as f64);
    }

    /// Records the event's amount in the base currency (`event.base`), or refuses the event
    /// naming `currency` when its currency has no rate and `unknown = "reject"`; either way a
    /// currency without a rate is counted under `source`.
    pub fn convert(&self, event: Transaction, source: Source) -> Result<Transaction, InvalidEvent> {
        self.convert_with(event, |action| {
            metrics::counter!(UNKNOWN, "source" => source.as_str(), "action" => action)
                .increment(1);
        })
    }

    /// [`Currencies::convert`] for an event that is only looked at (rule tests): not counted.
    pub fn preview(&self, event: Transaction) -> Result<Transaction, InvalidEvent> {
        self.convert_with(event, |_| {})
    }

    fn convert_with(
        &self,
        mut event: Transaction,
        unknown: impl FnOnce(&'static str),
    ) -> Result<Transaction, InvalidEvent> {
        let table = self.table();
        let base = match table.rate(&event.currency) {
            Some(rate) => BaseAmount::convert(event.amount, rate, &table.base, table.as_of)
                .ok_or_else(|| InvalidEvent {
                    field: "amount".into(),
                    reason: format!("is too large to convert into {}", table.base),
                })?,
            None if self.unknown == UnknownCurrency::Raw => {
                unknown("raw");
                BaseAmount::unconverted(event.amount, &table.base)
            }
            None => {
                unknown("rejected");
                return Err(InvalidEvent {
                    field: "currency".into(),
                    reason: format!(
                        "no exchange rate from {} to the base currency {} in the node's rate \
                         table of {}",
                        event.currency, table.base, table.as_of
                    ),
                });
            }
        };
        event.base = Some(base);
        Ok(event)
    }
}

fn describe() {
    metrics::describe_counter!(
        UNKNOWN,
        "Events whose currency had no rate, by source and action (rejected or raw)."
    );
    metrics::describe_counter!(RELOADS, "Re-reads of the changed rates file, by result.");
    metrics::describe_gauge!(AS_OF, "Date of the rate table in force (Unix seconds).");
    for source in Source::ALL {
        for action in ["rejected", "raw"] {
            metrics::counter!(UNKNOWN, "source" => source.as_str(), "action" => action)
                .increment(0);
        }
    }
    for result in ["ok", "error"] {
        metrics::counter!(RELOADS, "result" => result).increment(0);
    }
}

#[cfg(test)]
mod tests;
