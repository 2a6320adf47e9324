//! A table of exchange rates into the base currency, from the config or a rates file.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;

/// A rate as written in a file: a string (`"0.00661"`, exact) or a number.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum RateText {
    /// Exact decimal text.
    Text(String),
    /// A number; its shortest round-trip text is taken as the rate.
    Number(f64),
}

impl RateText {
    fn decimal(&self) -> Option<Decimal> {
        match self {
            RateText::Text(t) => Decimal::from_str_exact(t.trim()).ok(),
            RateText::Number(n) if n.is_finite() => Decimal::from_str(&n.to_string())
                .or_else(|_| Decimal::from_scientific(&format!("{n:e}")))
                .ok(),
            RateText::Number(_) => None,
        }
    }
}

/// A rates file: its date, optionally the base it is quoted in, and the rates.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RatesFile {
    as_of: NaiveDate,
    #[serde(default)]
    base: Option<String>,
    rates: BTreeMap<String, RateText>,
}

/// Rates into one base currency, as of one date. The base itself always converts at 1.
#[derive(Debug, Clone, PartialEq)]
pub struct RateTable {
    /// The base currency (ISO 4217).
    pub base: String,
    /// The date the rates are valid for.
    pub as_of: NaiveDate,
    rates: HashMap<String, Decimal>,
}

impl RateTable {
    /// Builds a table, checking every code and rate; errors name the entry at fault.
    pub fn new(
        base: &str,
        as_of: NaiveDate,
        rates: &BTreeMap<String, RateText>,
    ) -> anyhow::Result<RateTable> {
        anyhow::ensure!(
            sentinel_event::is_currency(base),
            "base `{base}` is not an ISO 4217 currency code"
        );
        let mut table = HashMap::with_capacity(rates.len() + 1);
        for (code, text) in rates {
            anyhow::ensure!(
                sentinel_event::is_currency(code),
                "rates.{code}: not an ISO 4217 currency code"
            );
            let rate = text
                .decimal()
                .filter(|r| *r > Decimal::ZERO)
                .ok_or_else(|| anyhow::anyhow!("rates.{code}: not a positive decimal number"))?;
            anyhow::ensure!(
                code != base || rate == Decimal::ONE,
                "rates.{code}: the base currency's rate must be 1"
            );
            table.insert(code.clone(), rate);
        }
        table.insert(base.to_owned(), Decimal::ONE);
        Ok(RateTable {
            base: base.to_owned(),
            as_of,
            rates: table,
        })
    }

    /// Reads a rates file (`.json` as JSON, anything else as TOML) quoted in `base`.
    pub fn from_file(path: &Path, base: &str) -> anyhow::Result<RateTable> {
        let text = std::fs::read_to_string(path)?;
        Self::parse(&text, path, base)
    }

    /// Parses a rates file's text; `path` decides the format.
    pub fn parse(text: &str, path: &Path, base: &str) -> anyhow::Result<RateTable> {
        let file: RatesFile = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(text)?
        } else {
            toml::from_str(text)?
        };
        if let Some(quoted) = &file.base {
            anyhow::ensure!(
                quoted == base,
                "base: the file quotes rates in {quoted}, the node's base currency is {base}"
            );
        }
        Self::new(base, file.as_of, &file.rates)
    }

    /// Units of the base currency per unit of `currency`, if the table has it.
    pub fn rate(&self, currency: &str) -> Option<Decimal> {
        self.rates.get(currency).copied()
    }

    /// Currencies with a rate, the base included.
    pub fn len(&self) -> usize {
        self.rates.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_table_parses_and_covers_the_simulator() {
        let path = Path::new("rates.example.toml");
        let table = RateTable::parse(
            include_str!("../../../config/rates.example.toml"),
            path,
            "USD",
        )
        .unwrap();
        assert_eq!(table.rate("USD"), Some(Decimal::ONE));
        // The demo's traffic must never be refused for want of a rate.
        let mut sim = sentinel_simulator::Simulator::new(Default::default());
        for _ in 0..20_000 {
            let currency = sim.next_event().txn.currency;
            assert!(
                table.rate(&currency).is_some(),
                "{currency} has no example rate"
            );
        }
    }

    #[test]
    fn bad_entries_are_named() {
        let json = Path::new("r.json");
        let err = |text: &str| RateTable::parse(text, json, "USD").unwrap_err().to_string();
        assert!(err(r#"{"as_of":"2026-12-01","rates":{"XYZ":1}}"#).contains("rates.XYZ"));
        assert!(err(r#"{"as_of":"2026-12-01","rates":{"EUR":-1}}"#).contains("rates.EUR"));
        assert!(err(r#"{"as_of":"2026-12-01","rates":{"EUR":"x"}}"#).contains("rates.EUR"));
        assert!(err(r#"{"as_of":"2026-12-01","rates":{"USD":2}}"#).contains("rates.USD"));
        assert!(err(r#"{"as_of":"2026-12-01","base":"EUR","rates":{}}"#).contains("base"));
        assert!(err(r#"{"rates":{}}"#).contains("as_of"));
        let table = RateTable::parse(
            r#"{"as_of":"2026-12-01","rates":{"JPY":0.00661}}"#,
            json,
            "USD",
        )
        .unwrap();
        assert_eq!(
            table.rate("JPY"),
            Some(Decimal::from_str("0.00661").unwrap())
        );
    }
}
