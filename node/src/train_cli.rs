//! `sentinel train` and `sentinel evaluate`: labelled events (simulator, CSV or a stopped node's
//! store) go through the same per-user state and feature code as live scoring; a model is fitted
//! on the earlier period and measured on the later one.

use crate::config::NodeConfig;
use anyhow::{bail, Context};
use chrono::{DateTime, Duration, TimeZone, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use sentinel_actors::{FeatureReplay, LabelRisk, LabelSighting, PolicyDef};
use sentinel_catalog::backtest::Progress;
use sentinel_catalog::training::{stored_samples, Unlabelled};
use sentinel_catalog::Catalog;
use sentinel_event::{parse_transaction, Limits, ParseMode, Transaction};
use sentinel_loadtest::simulator::{analyst_labels, Feedback, Scenario, SimConfig, Simulator};
use sentinel_model::{evaluate, train, Evaluation, Model, Sample, TrainConfig, TrainStage};
use sentinel_store::{EmbeddedStore, Store};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// Where labelled events come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DataSource {
    /// Generate traffic with the built-in simulator; injected fraud scenarios are the labels.
    Simulator,
    /// A CSV file with a `label` column (`fraud` or `legit`), as `--export-csv` writes it.
    Csv,
    /// A stopped node's store; analyst labels mark fraud.
    Store,
}

/// Which labelled events to read.
#[derive(clap::Args)]
pub struct DataArgs {
    /// Source of labelled events.
    #[arg(long = "from", value_enum)]
    source: DataSource,
    /// CSV file to read (`--from csv`).
    #[arg(long, required_if_eq("source", "csv"))]
    input: Option<PathBuf>,
    /// Directory of the stopped node's embedded store (`--from store`).
    #[arg(long, env = "SENTINEL_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// First event time read (RFC 3339; `--from store`, default 30 days before --until).
    #[arg(long)]
    since: Option<DateTime<Utc>>,
    /// Events before this time are read (RFC 3339; `--from store`, default now).
    #[arg(long)]
    until: Option<DateTime<Utc>>,
    /// Stored events without an analyst label count as legit, or are skipped.
    #[arg(long, value_enum, default_value = "legit")]
    unlabelled: UnlabelledArg,
    /// Simulated events (`--from simulator`).
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    /// Simulated card holders.
    #[arg(long, default_value_t = 2_000)]
    users: u32,
    /// Simulated events per second of event time.
    #[arg(long, default_value_t = 5.0)]
    rate: f64,
    /// Fraction of simulated user turns that inject a fraud scenario.
    #[arg(long, default_value_t = 0.01)]
    fraud_ratio: f64,
    /// Seed of the simulated traffic.
    #[arg(long, default_value_t = 7)]
    sim_seed: u64,
    /// Event time the simulation starts at (fixed by default so runs are reproducible).
    #[arg(long, default_value = "2026-01-05T00:00:00Z")]
    sim_start: DateTime<Utc>,
    /// Also write the labelled events read as CSV (the format `--from csv` reads).
    #[arg(long)]
    export_csv: Option<PathBuf>,
    /// Seconds an analyst label waits before the entity-risk features count it; use the
    /// node's `[model] label_delay_secs`.
    #[arg(long, env = "SENTINEL_LABEL_DELAY_SECS", default_value_t = 86_400)]
    label_delay_secs: u64,
}

/// `--unlabelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UnlabelledArg {
    /// Count as legitimate.
    Legit,
    /// Leave out.
    Skip,
}

/// `sentinel train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Events at or after this time are held out for evaluation (default: by --holdout).
    #[arg(long)]
    split_at: Option<DateTime<Utc>>,
    /// Latest fraction of the events (by time) held out for evaluation.
    #[arg(long, default_value_t = 0.3)]
    holdout: f64,
    /// Seed of the isolation forest.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Trees in the isolation forest.
    #[arg(long, default_value_t = 64)]
    trees: u32,
    /// Points per tree.
    #[arg(long, default_value_t = 128)]
    sample_size: u32,
    /// L2 penalty of the logistic regression.
    #[arg(long, default_value_t = 0.01)]
    alpha: f64,
    /// Threshold of the printed confusion matrix.
    #[arg(long, default_value_t = 0.5)]
    threshold: f64,
    /// Where to write the model artifact.
    #[arg(long)]
    out: PathBuf,
}

/// `sentinel evaluate`.
#[derive(clap::Args)]
pub struct EvaluateArgs {
    /// The model artifact.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Threshold of the printed confusion matrix.
    #[arg(long, default_value_t = 0.5)]
    threshold: f64,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

/// One CSV row: a flat transaction and its label.
#[derive(Debug, Serialize, Deserialize)]
struct CsvRow {
    label: String,
    transaction_id: String,
    user_id: String,
    card_id: Option<String>,
    device_id: Option<String>,
    ip: Option<String>,
    amount: String,
    currency: String,
    merchant_id: Option<String>,
    merchant_category: Option<String>,
    channel: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    country: Option<String>,
    city: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    timestamp: DateTime<Utc>,
}

impl CsvRow {
    fn of(t: &Transaction, fraud: bool) -> CsvRow {
        let l = t.location.as_ref();
        CsvRow {
            label: if fraud { "fraud" } else { "legit" }.into(),
            transaction_id: t.transaction_id.clone(),
            user_id: t.user_id.clone(),
            card_id: t.card_id.clone(),
            device_id: t.device_id.clone(),
            ip: t.ip.clone(),
            amount: t.amount.to_string(),
            currency: t.currency.clone(),
            merchant_id: t.merchant_id.clone(),
            merchant_category: t.merchant_category.clone(),
            channel: t.channel.map(|c| c.as_str().to_owned()),
            kind: t.kind.map(|k| k.as_str().to_owned()),
            country: l.map(|l| l.country.clone()),
            city: l.and_then(|l| l.city.clone()),
            lat: l.and_then(|l| l.lat),
            lon: l.and_then(|l| l.lon),
            timestamp: t.timestamp,
        }
    }

    /// The transaction, validated as the node validates Kafka events, and its label.
    fn into_event(self, limits: &Limits) -> anyhow::Result<(Transaction, bool)> {
        let fraud = match self.label.to_ascii_lowercase().as_str() {
            "fraud" | "1" | "true" => true,
            "legit" | "0" | "false" => false,
            other => bail!("label: `{other}` is not fraud, legit, 1 or 0"),
        };
        let mut event = serde_json::json!({
            "transaction_id": self.transaction_id,
            "user_id": self.user_id,
            "card_id": self.card_id,
            "device_id": self.device_id,
            "ip": self.ip,
            "amount": self.amount,
            "currency": self.currency,
            "merchant_id": self.merchant_id,
            "merchant_category": self.merchant_category,
            "channel": self.channel,
            "type": self.kind,
            "timestamp": self.timestamp,
        });
        if let Some(country) = self.country {
            event["location"] = serde_json::json!({
                "country": country, "city": self.city, "lat": self.lat, "lon": self.lon,
            });
        }
        // Absent columns are empty, not null, in the event.
        if let Some(map) = event.as_object_mut() {
            map.retain(|_, v| !v.is_null());
            if let Some(location) = map.get_mut("location").and_then(|l| l.as_object_mut()) {
                location.retain(|_, v| !v.is_null());
            }
        }
        let bytes = serde_json::to_vec(&event)?;
        let (txn, _) = parse_transaction(&bytes, ParseMode::Strict, limits, Utc::now())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok((txn, fraud))
    }
}

fn bar(what: &str) -> ProgressBar {
    ProgressBar::new(0).with_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} {{pos}}/{{len}} [{{bar:40}}] {{per_sec}} eta {{eta}}"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    )
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn update(&self, done: u64, total: u64) {
        self.0.set_length(total);
        self.0.set_position(done);
    }
}

/// Labelled events in time order, from the simulator or a CSV file, and the analyst labels
/// given on them: the simulator's late feedback (chargebacks, confirmations); none from a CSV,
/// which carries no label times (its entity-risk features stay at the prior).
type LabelledEvents = (Vec<(Transaction, bool)>, Vec<LabelSighting>, String);

fn labelled_events(data: &DataArgs) -> anyhow::Result<LabelledEvents> {
    match data.source {
        DataSource::Simulator => {
            let mut sim = Simulator::new(SimConfig {
                seed: data.sim_seed,
                users: data.users,
                rate_per_sec: data.rate,
                fraud_ratio: data.fraud_ratio,
                start: data.sim_start,
                daily_rhythm: true,
                scenarios: Scenario::ALL.to_vec(),
            });
            let progress = bar("simulating events");
            progress.set_length(data.events);
            let simulated: Vec<_> = (0..data.events)
                .map(|_| {
                    progress.inc(1);
                    sim.next_event()
                })
                .collect();
            progress.finish_and_clear();
            let labels = analyst_labels(&simulated, &Feedback::default(), data.sim_seed)
                .iter()
                .map(|l| l.with_parts(LabelSighting::new))
                .collect();
            let events = simulated
                .into_iter()
                .map(|e| (e.txn, e.label.is_some()))
                .collect();
            let source = format!(
                "simulator seed={} events={} users={} rate={} fraud_ratio={} start={} \
                 label_delay_secs={}",
                data.sim_seed,
                data.events,
                data.users,
                data.rate,
                data.fraud_ratio,
                data.sim_start.to_rfc3339(),
                data.label_delay_secs
            );
            Ok((events, labels, source))
        }
        DataSource::Csv => {
            let path = data
                .input
                .as_ref()
                .context("--input is required with --from csv")?;
            let mut reader = csv::Reader::from_path(path)
                .with_context(|| format!("opening {}", path.display()))?;
            let limits = Limits {
                // History is old by definition; only the node's own clock checks skew.
                max_future_skew: Duration::days(365 * 100),
                ..Limits::default()
            };
            let mut events = Vec::new();
            for (i, row) in reader.deserialize::<CsvRow>().enumerate() {
                let line = i + 2;
                let row = row.with_context(|| format!("{} line {line}", path.display()))?;
                events.push(
                    row.into_event(&limits)
                        .with_context(|| format!("{} line {line}", path.display()))?,
                );
            }
            events.sort_by_key(|(t, _)| t.timestamp);
            Ok((events, Vec::new(), format!("csv {}", path.display())))
        }
        DataSource::Store => bail!("the store is read by stored_samples"),
    }
}

/// Reads the labelled samples the arguments name, in time order, with a source description.
async fn samples(data: &DataArgs) -> anyhow::Result<(Vec<Sample>, String)> {
    let lateness_ms = NodeConfig::default().actors.lateness_secs as i64 * 1000;
    let label_delay_ms = i64::try_from(data.label_delay_secs.saturating_mul(1_000))
        .context("--label-delay-secs is too large")?;
    if data.source == DataSource::Store {
        let path = data.data_dir.join("sentinel.redb");
        anyhow::ensure!(path.exists(), "no store at {}", path.display());
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&path).with_context(|| {
            format!("opening {} (stop the node that holds it)", path.display())
        })?);
        let catalog = Catalog::open(Arc::clone(&store), PolicyDef::seed(), lateness_ms).await?;
        let until = data.until.unwrap_or_else(Utc::now);
        let since = data.since.unwrap_or(until - Duration::days(30));
        let unlabelled = match data.unlabelled {
            UnlabelledArg::Legit => Unlabelled::Legit,
            UnlabelledArg::Skip => Unlabelled::Skip,
        };
        let progress = bar("replaying users");
        let samples = stored_samples(
            &catalog,
            since,
            until,
            unlabelled,
            label_delay_ms,
            &Bar(progress.clone()),
        )
        .await?;
        progress.finish_and_clear();
        let source = format!(
            "store {} since={} until={} label_delay_secs={}",
            data.data_dir.display(),
            since.to_rfc3339(),
            until.to_rfc3339(),
            data.label_delay_secs
        );
        return Ok((samples, source));
    }
    let (events, labels, source) = labelled_events(data)?;
    if let Some(path) = &data.export_csv {
        let mut writer =
            csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
        for (t, fraud) in &events {
            writer.serialize(CsvRow::of(t, *fraud))?;
        }
        writer.flush()?;
        eprintln!(
            "wrote {} labelled events to {}",
            events.len(),
            path.display()
        );
    }
    let progress = bar("computing features");
    progress.set_length(events.len() as u64);
    let labels = Arc::new(LabelRisk::build(label_delay_ms, labels));
    let mut replay = FeatureReplay::new(lateness_ms, labels);
    let samples = events
        .iter()
        .map(|(t, fraud)| {
            progress.inc(1);
            Sample {
                time_ms: t.event_time_ms(),
                features: replay.features(t),
                fraud: *fraud,
            }
        })
        .collect();
    progress.finish_and_clear();
    Ok((samples, source))
}

fn time(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map_or_else(|| ms.to_string(), |t| t.to_rfc3339())
}

fn figures(e: &Evaluation) -> String {
    let f = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.4}"));
    let c = &e.confusion;
    format!(
        "{} events, {} fraud\n\
         AUC-ROC {}   average precision {}   precision@100 {}\n\
         confusion matrix at score >= {}:\n\
         \x20                 flagged   passed\n\
         \x20 fraud        {:>10} {:>8}\n\
         \x20 legit        {:>10} {:>8}\n",
        e.events,
        e.frauds,
        f(e.auc_roc),
        f(e.average_precision),
        f(e.precision_at_100),
        e.threshold,
        c.true_positives,
        c.false_negatives,
        c.false_positives,
        c.true_negatives,
    )
}

/// Trains, evaluates on the held-out period and writes the artifact.
pub async fn run_train(args: TrainArgs) -> anyhow::Result<()> {
    let (samples, source) = samples(&args.data).await?;
    anyhow::ensure!(
        samples.len() >= 10,
        "only {} labelled events",
        samples.len()
    );
    let split_at = match args.split_at {
        Some(t) => t,
        None => {
            anyhow::ensure!(
                args.holdout > 0.0 && args.holdout < 1.0,
                "--holdout must be between 0 and 1"
            );
            let i = ((samples.len() as f64) * (1.0 - args.holdout)) as usize;
            Utc.timestamp_millis_opt(samples[i.min(samples.len() - 1)].time_ms)
                .single()
                .context("event time out of range")?
        }
    };
    let config = TrainConfig {
        source,
        seed: args.seed,
        trees: args.trees,
        sample_size: args.sample_size,
        alpha: args.alpha,
        split_at,
        threshold: args.threshold,
        ..TrainConfig::default()
    };
    let spinner = ProgressBar::new_spinner();
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let (artifact, _) = train(&samples, &config, &mut |stage| {
        spinner.set_message(match stage {
            TrainStage::Forest => "growing the isolation forest",
            TrainStage::Supervised => "fitting the logistic regression (linfa)",
            TrainStage::Calibration => "calibrating",
            TrainStage::Evaluation => "evaluating on the held-out period",
        })
    })?;
    spinner.finish_and_clear();
    let json = artifact.to_json();
    std::fs::write(&args.out, &json).with_context(|| format!("writing {}", args.out.display()))?;
    let t = &artifact.training;
    println!(
        "model {}: trained on {} events ({} fraud) from {} until {}",
        artifact.model_id,
        t.train_events,
        t.train_frauds,
        samples
            .first()
            .map_or_else(String::new, |s| time(s.time_ms)),
        t.split_at.to_rfc3339()
    );
    print!("held out: {}", figures(&artifact.evaluation));
    println!("wrote {} ({} bytes)", args.out.display(), json.len());
    Ok(())
}

/// Scores labelled events with a model file and prints the figures.
pub async fn run_evaluate(args: EvaluateArgs) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let model = Model::from_json(&bytes).with_context(|| args.model.display().to_string())?;
    let (samples, source) = samples(&args.data).await?;
    let evaluation = evaluate(&model, &samples, args.threshold);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&evaluation)?);
    } else {
        println!("model {} on {source}", model.id());
        print!("{}", figures(&evaluation));
    }
    Ok(())
}
