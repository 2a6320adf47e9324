//! `sentinel train` and `sentinel evaluate`: labelled events (simulator, CSV or a stopped node's
//! store) go through the same per-user state and feature code as live scoring; a model is fitted
//! on the earlier period and measured on the later one.
//!
//! The literature's protocol (`--train-until`): train on `[train-from, train-until)` with only
//! the fraud labels given by `train-until`, skip `--gap-days` (the label delay: frauds of those
//! days are not known yet when the model goes live), test on the following `--test-days` with
//! every label, and report AUC-ROC, average precision, card precision@k per day and recall per
//! fraud pattern.

use crate::config::NodeConfig;
use anyhow::Context;
use chrono::{DateTime, Duration, TimeZone, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use sentinel_catalog::backtest::Progress;
use sentinel_catalog::training::csv::{history_limits, CsvRow};
use sentinel_catalog::training::{
    evaluation_report, replayed_samples, stored_samples, EvaluationReport, LabelledEvent,
    LabelledSample, Unlabelled,
};
use sentinel_catalog::Catalog;
use sentinel_engine::{LabelSighting, PolicyDef};
use sentinel_model::{
    train, BoostConfig, Model, ModelFamily, TrainConfig, TrainStage, FEATURE_NAMES,
};
use sentinel_simulator::{analyst_labels, Feedback, Labeller, Scenario, SimConfig, Simulator};
use sentinel_store::Store;
use std::collections::HashMap;
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
    /// Fraud patterns simulated: `classic` (the seven single-event and burst scenarios),
    /// `history` (compromised terminals, compromised cards, card testing), `every`, or
    /// comma-separated scenario names.
    #[arg(long, default_value = "classic", value_parser = parse_scenarios)]
    scenarios: ScenarioSet,
    /// Event time the simulation starts at (fixed by default so runs are reproducible).
    #[arg(long, default_value = "2026-01-05T00:00:00Z")]
    sim_start: DateTime<Utc>,
    /// Also write the labelled events read as CSV (the format `--from csv` reads).
    #[arg(long)]
    export_csv: Option<PathBuf>,
    /// Also write every sample's model features as CSV (transaction id, time, card, label,
    /// label time, pattern, then one column per feature), for inspection or other tools.
    #[arg(long)]
    export_features: Option<PathBuf>,
    /// Seconds an analyst label waits before the entity-risk features count it; use the
    /// node's `[model] label_delay_secs`.
    #[arg(long, env = "SENTINEL_LABEL_DELAY_SECS", default_value_t = 86_400)]
    label_delay_secs: u64,
}

/// The scenarios `--scenarios` names.
#[derive(Debug, Clone)]
struct ScenarioSet(Vec<Scenario>);

fn parse_scenarios(text: &str) -> Result<ScenarioSet, String> {
    Ok(ScenarioSet(match text {
        "classic" => Scenario::ALL.to_vec(),
        "history" => Scenario::PATTERNS.to_vec(),
        "every" => Scenario::EVERY.to_vec(),
        names => names
            .split(',')
            .map(|n| n.trim().parse::<Scenario>().map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?,
    }))
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
    #[command(flatten)]
    periods: PeriodArgs,
    /// The supervised model: gradient-boosted trees or a logistic regression.
    #[arg(long, value_enum, default_value = "boosted")]
    family: FamilyArg,
    /// Seed of everything random in training (the forest's and the trees' sampling).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Trees in the isolation forest.
    #[arg(long, default_value_t = 64)]
    trees: u32,
    /// Points per tree.
    #[arg(long, default_value_t = 128)]
    sample_size: u32,
    /// L2 penalty of the logistic regression (`--family logistic`).
    #[arg(long, default_value_t = 0.01)]
    alpha: f64,
    /// Boosted trees fitted one after the other (`--family boosted`).
    #[arg(long, default_value_t = 150)]
    boost_trees: u32,
    /// Depth of each boosted tree.
    #[arg(long, default_value_t = 5)]
    max_depth: u32,
    /// Shrinkage of each boosted tree.
    #[arg(long, default_value_t = 0.1)]
    learning_rate: f64,
    /// Share of the training events each boosted tree learns from.
    #[arg(long, default_value_t = 1.0)]
    subsample: f64,
    /// Threshold of the printed confusion matrix and of the recall per fraud pattern.
    #[arg(long, default_value_t = 0.5)]
    threshold: f64,
    /// Cards an analyst team checks per day, for card precision@k.
    #[arg(long, default_value_t = 100)]
    k: usize,
    /// Where to write the model artifact.
    #[arg(long)]
    out: PathBuf,
}

/// `--family`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FamilyArg {
    /// Histogram gradient-boosted trees (model/src/boosted.rs).
    Boosted,
    /// L2-regularised logistic regression (linfa) on standardized features.
    Logistic,
}

/// How `sentinel train` splits the events into a training and a test period.
#[derive(clap::Args)]
pub struct PeriodArgs {
    /// First event time trained on (default: the first event).
    #[arg(long)]
    train_from: Option<DateTime<Utc>>,
    /// End of the training period; only fraud labels given before it are used for training.
    /// With it the test period starts `--gap-days` later and lasts `--test-days`.
    #[arg(long, conflicts_with_all = ["split_at", "holdout"])]
    train_until: Option<DateTime<Utc>>,
    /// Days skipped between training and test (`--train-until`): the label delay.
    #[arg(long, default_value_t = 7, requires = "train_until")]
    gap_days: u32,
    /// Days tested (`--train-until`).
    #[arg(long, default_value_t = 7, requires = "train_until")]
    test_days: u32,
    /// Without `--train-until`: events at or after this time are held out, with no gap, and
    /// training sees every label, even those given later (hindsight; not the literature's
    /// protocol).
    #[arg(long)]
    split_at: Option<DateTime<Utc>>,
    /// Without `--train-until` or `--split-at`: the latest fraction of the events (by time)
    /// held out, as `--split-at` does.
    #[arg(long)]
    holdout: Option<f64>,
}

/// `sentinel evaluate`.
#[derive(clap::Args)]
pub struct EvaluateArgs {
    /// The model artifact.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// First event time evaluated (default: every event read).
    #[arg(long)]
    test_from: Option<DateTime<Utc>>,
    /// Events before this time are evaluated (default: every event read).
    #[arg(long)]
    test_until: Option<DateTime<Utc>>,
    /// Threshold of the printed confusion matrix and of the recall per fraud pattern.
    #[arg(long, default_value_t = 0.5)]
    threshold: f64,
    /// Cards an analyst team checks per day, for card precision@k.
    #[arg(long, default_value_t = 100)]
    k: usize,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
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

/// Labelled events in event-time order and every label as the entity-risk index reads it.
struct Events {
    examples: Vec<LabelledEvent>,
    labels: Vec<LabelSighting>,
    source: String,
}

fn simulated(data: &DataArgs) -> Events {
    let mut sim = Simulator::new(SimConfig {
        seed: data.sim_seed,
        users: data.users,
        rate_per_sec: data.rate,
        fraud_ratio: data.fraud_ratio,
        start: data.sim_start,
        daily_rhythm: true,
        scenarios: data.scenarios.0.clone(),
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
    // The classic scenarios keep the analyst feedback the shipped model was trained with; the
    // history patterns get a bank's chargeback file (late tail, no confirmations).
    let feedback = if data.scenarios.0 == Scenario::ALL {
        analyst_labels(&simulated, &Feedback::default(), data.sim_seed)
    } else {
        let mut labeller = Labeller::chargebacks(data.sim_seed);
        simulated.iter().filter_map(|e| labeller.label(e)).collect()
    };
    let times: HashMap<&str, i64> = simulated
        .iter()
        .map(|e| (e.txn.transaction_id.as_str(), e.txn.event_time_ms()))
        .collect();
    let mut known: HashMap<&str, i64> = HashMap::new();
    let mut labels = Vec::with_capacity(feedback.len());
    for l in &feedback {
        let event_ms = times[l.transaction_id.as_str()];
        labels.push(l.with_parts(|at, merchant, device, fraud| {
            LabelSighting::new(event_ms, at, merchant, device, fraud)
        }));
        if l.fraud {
            known.insert(l.transaction_id.as_str(), l.at.timestamp_millis());
        }
    }
    let known: HashMap<String, i64> = known.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let examples = simulated
        .into_iter()
        .map(|e| LabelledEvent {
            known_ms: known.get(&e.txn.transaction_id).copied(),
            fraud: e.label.is_some(),
            scenario: e.label.map(|s| s.as_str().to_owned()),
            event: e.txn,
        })
        .collect();
    let names: Vec<&str> = data.scenarios.0.iter().map(|s| s.as_str()).collect();
    let source = format!(
        "simulator seed={} events={} users={} rate={} fraud_ratio={} start={} \
         label_delay_secs={}{}",
        data.sim_seed,
        data.events,
        data.users,
        data.rate,
        data.fraud_ratio,
        data.sim_start.to_rfc3339(),
        data.label_delay_secs,
        // Recorded only when not the default, so the shipped model's source is unchanged.
        if data.scenarios.0 == Scenario::ALL {
            String::new()
        } else {
            format!(" scenarios={}", names.join(","))
        }
    );
    Events {
        examples,
        labels,
        source,
    }
}

/// Bad rows reported on stderr (the first few in full), skipped and counted.
const SHOWN_BAD_ROWS: usize = 20;

fn from_csv(path: &std::path::Path) -> anyhow::Result<Events> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
    let limits = history_limits();
    let mut examples = Vec::new();
    let mut bad = 0usize;
    for (i, row) in reader.deserialize::<CsvRow>().enumerate() {
        let line = i + 2;
        let parsed = row
            .map_err(anyhow::Error::from)
            .and_then(|row| Ok(row.into_labelled(&limits)?));
        match parsed {
            Ok(example) => examples.push(example),
            Err(e) => {
                bad += 1;
                if bad <= SHOWN_BAD_ROWS {
                    eprintln!("{} line {line}: skipped: {e:#}", path.display());
                }
            }
        }
    }
    if bad > 0 {
        eprintln!(
            "{}: {bad} bad rows skipped, {} read",
            path.display(),
            examples.len()
        );
    }
    examples.sort_by_key(|e| e.event.timestamp);
    let labels = examples
        .iter()
        .filter_map(LabelledEvent::reported_fraud)
        .collect();
    let source = if bad > 0 {
        format!("csv {} ({bad} bad rows skipped)", path.display())
    } else {
        format!("csv {}", path.display())
    };
    Ok(Events {
        examples,
        labels,
        source,
    })
}

/// Labelled samples in time order, with what evaluation needs about cards and patterns.
struct History {
    samples: Vec<LabelledSample>,
    compromised_since: HashMap<String, i64>,
    source: String,
}

/// Reads the labelled samples the arguments name, in time order, with a source description,
/// and writes their features when asked.
async fn history(data: &DataArgs) -> anyhow::Result<History> {
    let history = read_history(data).await?;
    if let Some(path) = &data.export_features {
        export_features(path, &history)?;
    }
    Ok(history)
}

fn export_features(path: &std::path::Path, history: &History) -> anyhow::Result<()> {
    let mut writer =
        csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
    let mut header = vec![
        "transaction_id",
        "time",
        "card",
        "label",
        "labelled_at",
        "scenario",
    ];
    header.extend(FEATURE_NAMES);
    writer.write_record(&header)?;
    let mut row: Vec<String> = Vec::with_capacity(header.len());
    for s in &history.samples {
        row.clear();
        row.push(s.transaction_id.clone());
        row.push(time(s.sample.time_ms));
        row.push(s.card.clone());
        row.push(if s.sample.fraud { "fraud" } else { "legit" }.to_owned());
        row.push(s.known_ms.map(time).unwrap_or_default());
        row.push(s.scenario.clone().unwrap_or_default());
        row.extend(s.sample.features.iter().map(|v| v.to_string()));
        writer.write_record(&row)?;
    }
    writer.flush()?;
    eprintln!(
        "wrote the features of {} events to {}",
        history.samples.len(),
        path.display()
    );
    Ok(())
}

async fn read_history(data: &DataArgs) -> anyhow::Result<History> {
    let lateness_ms = NodeConfig::default().actors.lateness_secs as i64 * 1000;
    let label_delay_ms = i64::try_from(data.label_delay_secs.saturating_mul(1_000))
        .context("--label-delay-secs is too large")?;
    let mut events = match data.source {
        DataSource::Store => return stored(data, lateness_ms, label_delay_ms).await,
        DataSource::Simulator => simulated(data),
        DataSource::Csv => from_csv(
            data.input
                .as_ref()
                .context("--input is required with --from csv")?,
        )?,
    };
    if let Some(path) = &data.export_csv {
        let mut writer =
            csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
        for e in &events.examples {
            writer.serialize(CsvRow::of(e))?;
        }
        writer.flush()?;
        eprintln!(
            "wrote {} labelled events to {}",
            events.examples.len(),
            path.display()
        );
    }
    // The model reads amounts in the base currency, as live scoring converts them (stored
    // events already carry theirs). A currency without a rate keeps its raw amount.
    let currencies = crate::currency::Currencies::new(&NodeConfig::default().currency)?;
    for e in &mut events.examples {
        if let Ok(converted) = currencies.convert(e.event.clone(), crate::currency::Source::Import)
        {
            e.event = converted;
        }
    }
    let progress = bar("computing features");
    progress.set_length(events.examples.len() as u64);
    let replayed = replayed_samples(
        events.examples,
        events.labels,
        lateness_ms,
        label_delay_ms,
        &Bar(progress.clone()),
    );
    progress.finish_and_clear();
    Ok(History {
        samples: replayed.samples,
        compromised_since: replayed.compromised_since,
        source: events.source,
    })
}

async fn stored(data: &DataArgs, lateness_ms: i64, label_delay_ms: i64) -> anyhow::Result<History> {
    let store: Arc<dyn Store> = sentinel_store::open_existing_embedded(&data.data_dir)
        .context("opening the store (stop the node that holds it)")?;
    let catalog = Catalog::open(Arc::clone(&store), PolicyDef::seed(), lateness_ms).await?;
    let until = data.until.unwrap_or_else(Utc::now);
    let since = data.since.unwrap_or(until - Duration::days(30));
    let unlabelled = match data.unlabelled {
        UnlabelledArg::Legit => Unlabelled::Legit,
        UnlabelledArg::Skip => Unlabelled::Skip,
    };
    let progress = bar("replaying users");
    let stored = stored_samples(
        &catalog,
        since,
        until,
        unlabelled,
        label_delay_ms,
        &Bar(progress.clone()),
    )
    .await?;
    progress.finish_and_clear();
    Ok(History {
        samples: stored.samples,
        compromised_since: stored.compromised_since,
        source: format!(
            "store {} since={} until={} label_delay_secs={}",
            data.data_dir.display(),
            since.to_rfc3339(),
            until.to_rfc3339(),
            data.label_delay_secs
        ),
    })
}

fn time(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map_or_else(|| ms.to_string(), |t| t.to_rfc3339())
}

/// The training and test periods, and which labels training may see.
struct Periods {
    train_from_ms: i64,
    train_until_ms: i64,
    test_from_ms: i64,
    test_until_ms: i64,
    /// Training sees fraud labels given before this (None: every label, in hindsight).
    labels_known_by_ms: Option<i64>,
}

impl Periods {
    fn of(args: &PeriodArgs, samples: &[LabelledSample]) -> anyhow::Result<Periods> {
        anyhow::ensure!(!samples.is_empty(), "no labelled events");
        let first = samples[0].sample.time_ms;
        let end = samples[samples.len() - 1].sample.time_ms + 1;
        let train_from_ms = args.train_from.map_or(first, |t| t.timestamp_millis());
        if let Some(until) = args.train_until {
            let until = until.timestamp_millis();
            let test_from_ms = until + i64::from(args.gap_days) * 86_400_000;
            return Ok(Periods {
                train_from_ms,
                train_until_ms: until,
                test_from_ms,
                test_until_ms: test_from_ms + i64::from(args.test_days) * 86_400_000,
                labels_known_by_ms: Some(until),
            });
        }
        let split_ms = match (args.split_at, args.holdout) {
            (Some(t), _) => t.timestamp_millis(),
            (None, holdout) => {
                let holdout = holdout.unwrap_or(0.3);
                anyhow::ensure!(
                    holdout > 0.0 && holdout < 1.0,
                    "--holdout must be between 0 and 1"
                );
                let i = ((samples.len() as f64) * (1.0 - holdout)) as usize;
                samples[i.min(samples.len() - 1)].sample.time_ms
            }
        };
        Ok(Periods {
            train_from_ms,
            train_until_ms: split_ms,
            test_from_ms: split_ms,
            test_until_ms: end,
            labels_known_by_ms: None,
        })
    }

    fn tested(&self, time_ms: i64) -> bool {
        time_ms >= self.test_from_ms && time_ms < self.test_until_ms
    }
}

fn figures(r: &EvaluationReport) -> String {
    let f = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.4}"));
    let e = &r.evaluation;
    let c = &e.confusion;
    let mut out = format!(
        "{} events, {} fraud\n\
         AUC-ROC {}   average precision {}   precision@100 {}   card precision@{} {} (daily mean)\n\
         confusion matrix at score >= {}:\n\
         \x20                 flagged   passed\n\
         \x20 fraud        {:>10} {:>8}\n\
         \x20 legit        {:>10} {:>8}\n",
        e.events,
        e.frauds,
        f(e.auc_roc),
        f(e.average_precision),
        f(e.precision_at_100),
        r.k,
        f(r.card_precision_at_k),
        e.threshold,
        c.true_positives,
        c.false_negatives,
        c.false_positives,
        c.true_negatives,
    );
    if !r.daily.is_empty() {
        out.push_str("card precision per day:   day         cards  with fraud  precision\n");
        for d in &r.daily {
            out.push_str(&format!(
                "                          {}  {:>6}  {:>10}  {:.3}\n",
                d.day, d.cards, d.compromised, d.precision
            ));
        }
    }
    if !r.recall_by_scenario.is_empty() {
        out.push_str(&format!(
            "recall per fraud pattern at score >= {}:\n",
            e.threshold
        ));
        for (scenario, (frauds, caught)) in &r.recall_by_scenario {
            out.push_str(&format!(
                "  {scenario:<24} {caught:>6} of {frauds:<6} {:.3}\n",
                *caught as f64 / (*frauds).max(1) as f64
            ));
        }
    }
    out
}

/// Trains on the training period, evaluates on the test period and writes the artifact.
pub async fn run_train(args: TrainArgs) -> anyhow::Result<()> {
    let history = history(&args.data).await?;
    let periods = Periods::of(&args.periods, &history.samples)?;
    // Training: the training period with the labels known by its end; test: every label.
    let mut samples = Vec::new();
    let mut tested = Vec::new();
    for s in &history.samples {
        let t = s.sample.time_ms;
        if t >= periods.train_from_ms && t < periods.train_until_ms {
            samples.push(s.known_by(periods.labels_known_by_ms));
        } else if periods.tested(t) {
            samples.push(s.sample.clone());
            tested.push(s);
        }
    }
    anyhow::ensure!(
        samples.len() >= 10,
        "only {} labelled events in the periods",
        samples.len()
    );
    let split_at = Utc
        .timestamp_millis_opt(periods.test_from_ms)
        .single()
        .context("test period out of range")?;
    let config = TrainConfig {
        source: history.source.clone(),
        seed: args.seed,
        trees: args.trees,
        sample_size: args.sample_size,
        alpha: args.alpha,
        family: match args.family {
            FamilyArg::Boosted => ModelFamily::Boosted,
            FamilyArg::Logistic => ModelFamily::Logistic,
        },
        boost: BoostConfig {
            trees: args.boost_trees,
            max_depth: args.max_depth,
            learning_rate: args.learning_rate,
            subsample: args.subsample,
            seed: args.seed,
            ..BoostConfig::default()
        },
        split_at,
        threshold: args.threshold,
        ..TrainConfig::default()
    };
    let spinner = ProgressBar::new_spinner();
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let (artifact, model) = train(&samples, &config, &mut |stage| {
        spinner.set_message(match stage {
            TrainStage::Forest => "growing the isolation forest".to_owned(),
            TrainStage::Supervised => "fitting the logistic regression (linfa)".to_owned(),
            TrainStage::Boosting { trees_done, trees } => {
                format!("boosting: tree {trees_done} of {trees}")
            }
            TrainStage::Calibration => "calibrating".to_owned(),
            TrainStage::Evaluation => "evaluating on the held-out period".to_owned(),
        })
    })?;
    spinner.finish_and_clear();
    let json = artifact.to_json();
    std::fs::write(&args.out, &json).with_context(|| format!("writing {}", args.out.display()))?;
    let t = &artifact.training;
    println!(
        "model {}: trained on {} events ({} fraud{}) from {} until {}",
        artifact.model_id,
        t.train_events,
        t.train_frauds,
        if periods.labels_known_by_ms.is_some() {
            ", labels known by then"
        } else {
            ""
        },
        time(periods.train_from_ms),
        time(periods.train_until_ms)
    );
    println!(
        "tested from {} until {}",
        time(periods.test_from_ms),
        time(
            periods.test_until_ms.min(
                tested
                    .last()
                    .map_or(periods.test_until_ms, |s| s.sample.time_ms + 1)
            )
        )
    );
    let report = evaluation_report(
        &model,
        &tested,
        &history.compromised_since,
        args.threshold,
        args.k,
    );
    print!("held out: {}", figures(&report));
    println!("wrote {} ({} bytes)", args.out.display(), json.len());
    Ok(())
}

/// Scores labelled events with a model file and prints the figures.
pub async fn run_evaluate(args: EvaluateArgs) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let model = Model::from_json(&bytes).with_context(|| args.model.display().to_string())?;
    let history = history(&args.data).await?;
    let from = args.test_from.map_or(i64::MIN, |t| t.timestamp_millis());
    let until = args.test_until.map_or(i64::MAX, |t| t.timestamp_millis());
    let tested: Vec<&LabelledSample> = history
        .samples
        .iter()
        .filter(|s| s.sample.time_ms >= from && s.sample.time_ms < until)
        .collect();
    let report = evaluation_report(
        &model,
        &tested,
        &history.compromised_since,
        args.threshold,
        args.k,
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("model {} on {}", model.id(), history.source);
        print!("{}", figures(&report));
    }
    Ok(())
}
