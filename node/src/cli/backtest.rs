//! `sentinel backtest`: the API's backtest from the command line, with a progress bar.

use crate::config::NodeConfig;
use anyhow::Context;
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use sentinel_catalog::backtest::{self, BacktestFilter, BacktestRange, BacktestReport, Progress};
use sentinel_catalog::{Candidate, Catalog, RuleChange};
use sentinel_engine::PolicyDef;
use sentinel_rules::Action;
use sentinel_store::Store;
use std::path::PathBuf;
use std::sync::Arc;

/// What to replay and under which policy.
#[derive(clap::Args)]
pub struct BacktestArgs {
    /// Directory of the (stopped) node's embedded store.
    #[arg(long, env = "SENTINEL_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Events at or after this RFC 3339 time count.
    #[arg(long)]
    from: DateTime<Utc>,
    /// Events before this RFC 3339 time count (default: now).
    #[arg(long)]
    until: Option<DateTime<Utc>>,
    /// Try this rule text on top of the current policy.
    #[arg(long, conflicts_with_all = ["rule_file", "policy_version"])]
    expression: Option<String>,
    /// Action of `--expression`: flag, review or decline.
    #[arg(long, default_value = "decline", requires = "expression")]
    action: String,
    /// Try this rule (JSON as for POST /v1/rules) on top of the current policy.
    #[arg(long, conflicts_with = "policy_version")]
    rule_file: Option<PathBuf>,
    /// Replay under a stored policy version.
    #[arg(long)]
    policy_version: Option<u64>,
    /// Only this user's events count.
    #[arg(long)]
    user_id: Option<String>,
    /// Only this channel's events count.
    #[arg(long)]
    channel: Option<String>,
    /// Only this merchant category's events count.
    #[arg(long)]
    merchant_category: Option<String>,
    /// Only this country's events count.
    #[arg(long)]
    country: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn update(&self, done: u64, total: u64) {
        self.0.set_length(total);
        self.0.set_position(done);
    }
}

/// Runs a backtest against a stopped node's store.
pub async fn run(args: BacktestArgs) -> anyhow::Result<()> {
    let store: Arc<dyn Store> = sentinel_store::open_existing_embedded(&args.data_dir).context(
        "opening the store (a running node holds it: use POST /v1/backtests on that node)",
    )?;
    let lateness_ms = NodeConfig::default().actors.lateness_secs as i64 * 1000;
    let catalog = Catalog::open(Arc::clone(&store), PolicyDef::seed(), lateness_ms).await?;
    let candidate = if let Some(expression) = args.expression {
        let action: Action = serde_json::from_value(serde_json::Value::String(args.action))
            .context("--action must be flag, review or decline")?;
        Candidate::Rule(RuleChange {
            name: "candidate".into(),
            expression,
            action,
            priority: 0,
            mode: Default::default(),
            description: String::new(),
        })
    } else if let Some(file) = args.rule_file {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading --rule-file {}", file.display()))?;
        Candidate::Rule(serde_json::from_str(&text).with_context(|| file.display().to_string())?)
    } else if let Some(version) = args.policy_version {
        Candidate::PolicyVersion(version)
    } else {
        Candidate::Current
    };
    let policy = catalog.candidate(candidate).await?;
    let range = BacktestRange {
        from: args.from,
        until: args.until.unwrap_or_else(Utc::now),
        filter: BacktestFilter {
            user_id: args.user_id,
            channel: args.channel,
            merchant_category: args.merchant_category,
            country: args.country,
        },
    };
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{spinner} users {pos}/{len} [{bar:40}] {per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let report = backtest::run(
        &store,
        &catalog,
        &policy,
        &range,
        lateness_ms,
        &Bar(bar.clone()),
    )
    .await?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&report));
    }
    Ok(())
}

fn table(r: &BacktestReport) -> String {
    let mut out = format!(
        "policy version {}: {} events counted ({} replayed), {} would change outcome\n",
        r.policy_version, r.events, r.replayed, r.changed
    );
    out.push_str("hits by rule:\n");
    for (rule, hits) in &r.hits {
        out.push_str(&format!("  {rule:<32} {hits:>10}\n"));
    }
    out.push_str("outcomes (live -> would be):\n");
    for o in &r.outcomes {
        out.push_str(&format!(
            "  {:<8} -> {:<8} {:>10}\n",
            o.from.as_str(),
            o.to.as_str(),
            o.count
        ));
    }
    for (name, q) in [("would be", &r.would_be), ("live", &r.live)] {
        if let Some(q) = q {
            out.push_str(&format!(
                "{name:>8}: precision {:.3} recall {:.3} F1 {:.3} ({} labelled)\n",
                q.precision, q.recall, q.f1, r.labelled
            ));
        }
    }
    out
}
