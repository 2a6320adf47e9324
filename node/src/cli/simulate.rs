//! `sentinel simulate`: writes a simulated card history as a risk team would bring it — the
//! transactions as JSON lines (exactly what the node accepts on Kafka and HTTP, in event-time
//! order) and a bank's chargeback file with the time each fraud was reported.

use anyhow::{bail, Context};
use chrono::{DateTime, SecondsFormat, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use sentinel_simulator::{Labeller, Scenario, SimConfig, SimLabel, Simulator};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// `sentinel simulate`.
#[derive(clap::Args)]
pub struct SimulateArgs {
    /// Transactions to write.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Simulated card holders. Each aims to pay every `users / rate` seconds (never more often
    /// than every 45 s); with gaps of many hours the daily rhythm stretches them, so 5,000
    /// holders at 0.1 events/s pay about 1.2 times a day (1M events span 162 days, not 116).
    #[arg(long, default_value_t = 5_000)]
    users: u32,
    /// Events per second of event time (quiet nights, busy evenings around it, UTC).
    #[arg(long, default_value_t = 0.1)]
    rate: f64,
    /// Fraction of holder turns that start a fraud scenario. Scenarios emit 1 to 25 events
    /// each (a compromised terminal 25 on average), so with every scenario enabled the fraud
    /// share of the events is about 6 times this (0.8% at the default).
    #[arg(long, default_value_t = 0.0014)]
    fraud_ratio: f64,
    /// Seed: the same arguments give the same files, byte for byte.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Event time the history starts at (RFC 3339). The node refuses event times far in its
    /// future, so keep the whole history in the past (the summary warns otherwise).
    #[arg(long, default_value = "2026-01-05T00:00:00Z")]
    start: DateTime<Utc>,
    /// Fraud scenarios to inject, comma-separated (default: all ten, the history patterns
    /// compromised_terminal, compromised_card and card_testing included).
    #[arg(long, value_delimiter = ',', value_name = "SCENARIO,...")]
    scenarios: Vec<Scenario>,
    /// Share of holders living in two-person households that share a device at home (0..=1):
    /// they pay on it mostly in the evening and now and then buy on it together within
    /// minutes, as real households do. Legitimate traffic for measuring rules on
    /// `device.distinct_users`; 0 (the default) keeps every device to one holder.
    #[arg(long, default_value_t = 0.0)]
    households: f64,
    /// Also write every transaction's true label (`fraud` or `legit`, one day after the
    /// event, source `other`) in the chargeback file's columns: import it with `sentinel
    /// labels import` to measure a rule's false positives with `sentinel backtest`.
    #[arg(long, value_name = "FILE")]
    truth: Option<PathBuf>,
    /// Where to write the transactions, one JSON object a line, in event-time order.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Where to write the chargeback file: CSV with the header
    /// `transaction_id,label,labelled_at,source,scenario`, one row per reported fraud in
    /// report order (most 1 to 30 days after the event, 15% of them 30 to 120 days, 10% of
    /// the frauds never reported; report times may lie after the last transaction).
    #[arg(long, value_name = "FILE")]
    chargebacks: PathBuf,
}

/// Writes the history and prints a summary.
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let mut sim = Simulator::new(config).with_households(args.households);
    let mut truth = args.truth.as_deref().map(TruthFile::create).transpose()?;
    // Seeded like `sentinel train --from simulator`'s chargebacks, so both see the same labels.
    let mut labeller = Labeller::chargebacks(args.seed);
    let mut out = create(&args.out)?;
    let mut reported: Vec<SimLabel> = Vec::new();
    let mut frauds: BTreeMap<Scenario, u64> = BTreeMap::new();
    let progress = ProgressBar::new(args.events).with_style(
        ProgressStyle::with_template(
            "{spinner} simulating {pos}/{len} [{bar:40}] {per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let (mut first, mut last) = (None, None);
    for _ in 0..args.events {
        let event = sim.next_event();
        serde_json::to_writer(&mut out, &event.txn)?;
        out.write_all(b"\n")?;
        first.get_or_insert(event.txn.timestamp);
        last = Some(event.txn.timestamp);
        if let Some(scenario) = event.label {
            *frauds.entry(scenario).or_default() += 1;
        }
        reported.extend(labeller.label(&event));
        if let Some(truth) = &mut truth {
            truth.write(&event)?;
        }
        progress.inc(1);
    }
    out.flush()
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    progress.finish_and_clear();
    if let Some(truth) = truth {
        truth.finish()?;
    }
    // A bank's file lists chargebacks as they were reported.
    reported.sort_by(|a, b| (a.at, &a.transaction_id).cmp(&(b.at, &b.transaction_id)));
    write_chargebacks(&args.chargebacks, &reported)?;
    summarise(&args, &frauds, reported.len(), first.zip(last));
    if reported.last().is_some_and(|l| l.at > Utc::now()) {
        eprintln!("warning: some chargebacks are reported after now (up to 120 days after their event); move --start back to import them all today");
    }
    Ok(())
}

impl SimulateArgs {
    /// The simulator's config, or a message naming the bad flag.
    fn config(&self) -> anyhow::Result<SimConfig> {
        if self.users == 0 {
            bail!("--users must be at least 1");
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            bail!("--rate must be a positive number of events per second");
        }
        if !(0.0..=1.0).contains(&self.fraud_ratio) {
            bail!("--fraud-ratio must be within 0..=1");
        }
        if !(0.0..=1.0).contains(&self.households) {
            bail!("--households must be within 0..=1");
        }
        let scenarios = if self.scenarios.is_empty() {
            Scenario::EVERY.to_vec()
        } else {
            self.scenarios.clone()
        };
        Ok(SimConfig {
            seed: self.seed,
            users: self.users,
            rate_per_sec: self.rate,
            fraud_ratio: self.fraud_ratio,
            start: self.start,
            daily_rhythm: true,
            scenarios,
        })
    }
}

fn create(path: &Path) -> anyhow::Result<BufWriter<File>> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(BufWriter::with_capacity(1 << 20, file))
}

/// Every event's true label, in the chargeback file's columns.
struct TruthFile {
    csv: csv::Writer<BufWriter<File>>,
    path: PathBuf,
}

impl TruthFile {
    fn create(path: &Path) -> anyhow::Result<TruthFile> {
        let mut csv = csv::Writer::from_writer(create(path)?);
        csv.write_record(LABEL_HEADER)?;
        Ok(TruthFile {
            csv,
            path: path.to_owned(),
        })
    }

    fn write(&mut self, event: &sentinel_simulator::SimEvent) -> anyhow::Result<()> {
        // Known a day later: labels may not predate the decision they label.
        let at = (event.txn.timestamp + chrono::Duration::days(1))
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        let (label, scenario) = match event.label {
            Some(s) => ("fraud", s.as_str()),
            None => ("legit", ""),
        };
        self.csv.write_record([
            event.txn.transaction_id.as_str(),
            label,
            &at,
            "other",
            scenario,
        ])?;
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.csv
            .flush()
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// The columns of the chargeback and truth files.
const LABEL_HEADER: [&str; 5] = [
    "transaction_id",
    "label",
    "labelled_at",
    "source",
    "scenario",
];

fn write_chargebacks(path: &Path, labels: &[SimLabel]) -> anyhow::Result<()> {
    let mut csv = csv::Writer::from_writer(create(path)?);
    csv.write_record(LABEL_HEADER)?;
    for label in labels {
        let scenario = label.scenario.map_or("", Scenario::as_str);
        let at = label.at.to_rfc3339_opts(SecondsFormat::Millis, true);
        csv.write_record([
            label.transaction_id.as_str(),
            "fraud",
            &at,
            "chargeback",
            scenario,
        ])?;
    }
    csv.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn summarise(
    args: &SimulateArgs,
    frauds: &BTreeMap<Scenario, u64>,
    chargebacks: usize,
    span: Option<(DateTime<Utc>, DateTime<Utc>)>,
) {
    let total: u64 = frauds.values().sum();
    println!(
        "wrote {} transactions to {} ({} fraud, {:.2}%)",
        args.events,
        args.out.display(),
        total,
        100.0 * total as f64 / args.events.max(1) as f64
    );
    if let Some((first, last)) = span {
        println!(
            "event time {} .. {} ({:.1} days)",
            first.to_rfc3339_opts(SecondsFormat::Secs, true),
            last.to_rfc3339_opts(SecondsFormat::Secs, true),
            (last - first).num_seconds() as f64 / 86_400.0
        );
        if last > Utc::now() {
            eprintln!("warning: the history runs past now; the node refuses events far in its future (lower --events or move --start back)");
        }
    }
    for (scenario, n) in frauds {
        println!("  {:<22} {n}", scenario.as_str());
    }
    println!(
        "wrote {chargebacks} chargebacks to {} ({} frauds never reported)",
        args.chargebacks.display(),
        total.saturating_sub(chargebacks as u64)
    );
}
