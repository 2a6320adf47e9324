//! Command-line interface: the commands, the flags shared by every node command, and the
//! operator commands (in the submodules) besides `run` and `demo`.

mod alerts;
mod backtest;
mod config_check;
mod import;
mod labels;
mod rejects;
mod simulate;
mod token;
mod train;

use crate::config::NodeConfig;
use crate::demo::DemoOptions;
use crate::node::{self, Source};
use clap::{Args, Parser, Subcommand};
use sentinel_store::EmbeddedEngine;
use std::path::PathBuf;

/// SentinelStream: real-time card-fraud scoring.
#[derive(Parser)]
#[command(name = "sentinel", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node on embedded defaults with a built-in traffic simulator (no services needed).
    ///
    /// With --kafka-brokers the simulator produces to the input topic instead, and the node
    /// consumes it: the whole Kafka path runs.
    Demo {
        #[command(flatten)]
        node: NodeArgs,
        #[command(flatten)]
        demo: DemoArgs,
    },
    /// Run a node: HTTP always, Kafka when --kafka-brokers (or [kafka] in the config) is given.
    Run {
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Send webhook/Slack/Discord alerts for the decisions on the fraud topic, apart from the
    /// scoring nodes (needs --kafka-brokers and [[alerts.sinks]] in --config).
    Alerts {
        #[command(flatten)]
        node: NodeArgs,
        /// Consumer group of the alerting processes (not the scoring nodes' group).
        #[arg(long, env = "SENTINEL_ALERTS_GROUP", default_value = "sentinel-alerts")]
        alerts_group: String,
    },
    /// Decide historical events (JSON lines or CSV, in event-time order) through the user
    /// actors and rules, storing their decisions as live traffic would (on a stopped node's
    /// store; nothing is published or alerted). Bad rows go to a reject file.
    Import {
        #[command(flatten)]
        node: NodeArgs,
        #[command(flatten)]
        import: import::ImportArgs,
    },
    /// Labels with the time each became known: import a chargeback file.
    Labels {
        #[command(subcommand)]
        command: labels::LabelsCommand,
    },
    /// Replay stored history under a candidate rule or policy (on a stopped node's data).
    Backtest(backtest::BacktestArgs),
    /// Train a model on labelled events (simulator, CSV or a stopped node's store): fits on
    /// the earlier period, prints held-out AUC-ROC, average precision, precision@100 and the
    /// confusion matrix, and writes the artifact.
    Train(train::TrainArgs),
    /// Score labelled events with a model artifact and print the same figures.
    Evaluate(train::EvaluateArgs),
    /// Write a simulated history to bring into a node: months of transactions as JSON lines
    /// (what the node accepts on Kafka and HTTP, in event-time order) and a bank's chargeback
    /// file (CSV: transaction_id,label,labelled_at,source,scenario) with late report times.
    ///
    /// Every fraud scenario is on by default, including the history patterns: terminals
    /// compromised for weeks, compromised cards whose spending changes for two weeks, and card
    /// testing with tiny amounts. Same arguments, same files.
    Simulate(simulate::SimulateArgs),
    /// Mint an HS256 API token from the configured secret (SENTINEL_AUTH_JWT_SECRET or [auth]).
    Token(token::TokenArgs),
    /// Check the tamper-evident decision log of a stopped node's store; exits 1 at the first
    /// edited, reordered or removed record, a head that is not the chain's end, a deletion at
    /// the start no retention declaration covers, or a chain that misses `--expect-head`.
    VerifyLog {
        /// Directory of the (stopped) node's embedded store.
        #[arg(long, env = "SENTINEL_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// A head hash kept outside the store (printed by an earlier `verify-log`, or the
        /// node's periodic `decision log head` log line): the chain must pass through it.
        #[arg(long, value_name = "HASH", value_parser = parse_head)]
        expect_head: Option<[u8; 32]>,
    },
    /// Inspect the node's configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Rewrite a stopped node's embedded store without the space deleted decisions left
    /// (after retention has pruned a lot).
    Compact {
        /// Directory of the (stopped) node's embedded store.
        #[arg(long, env = "SENTINEL_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
    /// Move a stopped node's embedded store to the other engine (redb <-> lsm): every table
    /// copied as stored, checked (decision count, log head, the whole log verified), and the
    /// old store renamed with a `.migrated` suffix, kept until you delete it. Then start the
    /// node: with `store.engine` unset it opens the store it finds; if the engine is set
    /// (`store.engine`, `--store-engine`, SENTINEL_STORE_ENGINE), set it to the new one.
    MigrateStore {
        /// Directory of the (stopped) node's embedded store.
        #[arg(long, env = "SENTINEL_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// The engine to move to.
        #[arg(long, value_enum)]
        to: crate::config::StoreEngine,
    },
}

/// `sentinel config …`
#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration `sentinel run` would start with, and print it (secrets
    /// redacted, the field mapping as a source -> target table).
    ///
    /// The configuration is loaded exactly as `sentinel run` loads it: the --config file, then
    /// SENTINEL_* environment variables, then these flags. Checked: credentials, limits, the
    /// field mapping, currency rates, store, cluster, alerts, TLS files and the policy file.
    ///
    /// Exits 0 when `sentinel run` would accept it; otherwise 1, with the offending setting
    /// named (`mapping.fields.account_id: ...`). Nothing is opened or started.
    Check {
        #[command(flatten)]
        node: NodeArgs,
    },
}

/// Settings shared by every node command. Flags override environment variables, which
/// override the config file, which overrides the defaults.
#[derive(Args)]
struct NodeArgs {
    /// TOML config file (see config/sentinel.example.toml).
    #[arg(long, env = "SENTINEL_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: crate::config::Overrides,
    #[command(flatten)]
    auth: crate::security::AuthArgs,
}

impl NodeArgs {
    fn into_config(self) -> anyhow::Result<NodeConfig> {
        let mut config = match &self.config {
            Some(path) => NodeConfig::from_file(path)?,
            None => NodeConfig::default(),
        };
        self.settings.apply(&mut config);
        self.auth.apply(&mut config.auth)?;
        Ok(config)
    }
}

/// The demo's traffic.
#[derive(Args)]
struct DemoArgs {
    /// Events per second the simulator produces.
    #[arg(long, default_value_t = 1_000.0)]
    rate: f64,
    /// Distinct simulated card holders.
    #[arg(long, default_value_t = 100_000)]
    users: u32,
    /// Fraction of user turns that inject a fraud scenario.
    #[arg(long, default_value_t = 0.002)]
    fraud_ratio: f64,
    /// Random seed: the same seed gives the same traffic.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Quiet nights and busy evenings (UTC) around the target rate, instead of a steady rate.
    #[arg(long)]
    daily_rhythm: bool,
    /// Stop after this many seconds (runs until Ctrl-C when absent).
    #[arg(long)]
    duration_secs: Option<u64>,
    /// With Kafka configured, write the simulated events into the input topic (the demo
    /// refuses otherwise: on a real cluster they would be fake payments among real ones).
    #[arg(long)]
    simulate_into_input_topic: bool,
}

/// Runs the chosen command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo { node, demo } => {
            let config = node.into_config()?;
            if let Some(kafka) = &config.kafka {
                anyhow::ensure!(
                    demo.simulate_into_input_topic,
                    "refusing to write simulated transactions into the input topic `{}` on {}: \
                     on a real cluster they would be decided, stored and published among real \
                     payments. Add --simulate-into-input-topic if this broker is a test broker",
                    kafka.input_topic,
                    kafka.brokers
                );
            }
            let options = DemoOptions {
                rate: demo.rate,
                users: demo.users,
                fraud_ratio: demo.fraud_ratio,
                seed: demo.seed,
                daily_rhythm: demo.daily_rhythm,
                duration: demo.duration_secs.map(std::time::Duration::from_secs),
            };
            node::run(config, Source::Demo(options)).await
        }
        Command::Run { node } => node::run(node.into_config()?, Source::External).await,
        Command::Alerts { node, alerts_group } => {
            alerts::run(node.into_config()?, alerts_group).await
        }
        Command::Import { node, import } => import::run(node.into_config()?, import).await,
        Command::Labels { command } => labels::run(command).await,
        Command::Token(args) => token::mint(args),
        Command::Backtest(args) => backtest::run(args).await,
        Command::Train(args) => train::run_train(args).await,
        Command::Evaluate(args) => train::run_evaluate(args).await,
        Command::Simulate(args) => simulate::run(args),
        Command::VerifyLog {
            data_dir,
            expect_head,
        } => verify_log(&data_dir, expect_head).await,
        Command::Compact { data_dir } => compact(&data_dir),
        Command::MigrateStore { data_dir, to } => migrate_store(&data_dir, to.into()).await,
        Command::Config {
            command: ConfigCommand::Check { node },
        } => config_check::check(node.into_config()?),
    }
}

fn compact(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let found = EmbeddedEngine::found_in(data_dir);
    let [engine] = found.as_slice() else {
        anyhow::bail!(
            "{} must hold exactly one store (sentinel.redb or sentinel.lsm)",
            data_dir.display()
        );
    };
    let path = engine.path(data_dir);
    let compacted = match engine {
        EmbeddedEngine::Redb => sentinel_store::EmbeddedStore::compact(&path),
        EmbeddedEngine::Lsm => sentinel_store::LsmStore::compact(&path),
    };
    let (before, after) = compacted
        .map_err(|e| anyhow::anyhow!("compacting {} (stop the node first): {e}", path.display()))?;
    eprintln!("compacted {}: {before} -> {after} bytes", path.display());
    Ok(())
}

async fn migrate_store(data_dir: &std::path::Path, to: EmbeddedEngine) -> anyhow::Result<()> {
    let progress = indicatif::ProgressBar::new_spinner().with_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} rows copied ({per_sec})")
            .expect("valid template"),
    );
    let done = sentinel_store::migrate(data_dir, to, |rows| progress.set_position(rows))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "migrating {} (stop the node first): {e}",
                data_dir.display()
            )
        })?;
    progress.finish_and_clear();
    eprintln!(
        "moved {} decisions ({} rows) to {}; the decision log verifies through head {} at \
         position {}; the old store is at {} (delete it once the node runs on the {} store: \
         with store.engine unset it opens the one it finds)",
        done.decisions,
        done.rows,
        to.path(data_dir).display(),
        sentinel_store::chain::hex(&done.head.hash),
        done.head.next_seq - 1,
        done.set_aside.display(),
        to.as_str()
    );
    Ok(())
}

fn parse_head(text: &str) -> Result<[u8; 32], String> {
    sentinel_store::chain::parse_hash(text).ok_or_else(|| "expected 64 hex digits".to_owned())
}

async fn verify_log(
    data_dir: &std::path::Path,
    expect_head: Option<[u8; 32]>,
) -> anyhow::Result<()> {
    let store = sentinel_store::open_existing_embedded(data_dir)
        .map_err(|e| anyhow::anyhow!("opening the store (stop the node first): {e}"))?;
    let options = sentinel_store::chain::VerifyOptions {
        expect_head,
        now: chrono::Utc::now(),
    };
    let report = store.verify_log(options).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    match report.problem {
        None => {
            eprintln!(
                "decision log intact: {} records from position {}{}, head {} at position {}{}",
                report.verified,
                report.first_seq,
                if report.first_seq > 1 {
                    " (earlier ones deleted by retention)"
                } else {
                    ""
                },
                report.head,
                report.head_seq,
                if expect_head.is_some() {
                    "; passes through the expected head"
                } else {
                    "; keep the head outside this machine and pass it as --expect-head next time"
                }
            );
            Ok(())
        }
        Some(p) => {
            eprintln!(
                "decision log broken at record {}: {:?} (transaction {})",
                p.seq,
                p.kind,
                p.transaction_id.as_deref().unwrap_or("unknown")
            );
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_config(args: &[&str]) -> NodeConfig {
        let cli = Cli::try_parse_from([&["sentinel", "run"], args].concat()).unwrap();
        match cli.command {
            Command::Run { node } => node.into_config().unwrap(),
            _ => unreachable!("parsed `run`"),
        }
    }

    #[tokio::test]
    async fn the_demo_refuses_a_kafka_input_topic_unless_told() {
        let cli = Cli::try_parse_from([
            "sentinel",
            "demo",
            "--kafka-brokers",
            "127.0.0.1:1",
            "--duration-secs",
            "1",
        ])
        .unwrap();
        let err = run(cli).await.expect_err("a real topic").to_string();
        assert!(
            err.contains("refusing to write simulated transactions into the input topic")
                && err.contains("--simulate-into-input-topic"),
            "{err}"
        );
    }

    #[test]
    fn cluster_flags_fill_the_cluster_settings() {
        let config = run_config(&[
            "--node-name",
            "n2",
            "--cluster-listen",
            "127.0.0.1:7002",
            "--cluster-seeds",
            "10.0.0.1:7001,10.0.0.3:7003",
            "--store-host",
            "n1",
        ]);
        let cluster = config.cluster;
        assert_eq!(cluster.node_name, "n2");
        assert_eq!(cluster.bind, Some([127, 0, 0, 1].into()));
        assert_eq!(cluster.port, 7002);
        assert_eq!(cluster.seeds, ["10.0.0.1:7001", "10.0.0.3:7003"]);
        assert_eq!(cluster.store_host.as_deref(), Some("n1"));
    }

    #[test]
    fn flags_that_touch_more_than_their_own_setting() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sentinel.toml");
        std::fs::write(
            &file,
            "[currency]\nas_of = \"2026-12-01\"\nrates = { EUR = \"1.16\" }\n\
             [mapping]\nassign_missing = true\n[mapping.fields]\naccount_id = \"user_id\"\n",
        )
        .unwrap();
        let file = file.to_str().unwrap();
        // Kafka settings without brokers configure nothing; brokers turn Kafka on.
        assert!(run_config(&["--kafka-group", "g"]).kafka.is_none());
        let kafka = run_config(&["--kafka-brokers", "k:1", "--input-topic", "in"])
            .kafka
            .unwrap();
        assert_eq!(
            (kafka.brokers.as_str(), kafka.input_topic.as_str()),
            ("k:1", "in")
        );
        // Contact points imply ScyllaDB unless --store says otherwise.
        let store = run_config(&["--scylla-nodes", "a:1,b:2"]).store;
        assert_eq!(store.backend, crate::config::StoreBackend::Scylla);
        assert_eq!(store.scylla.nodes, ["a:1", "b:2"]);
        let store = run_config(&["--scylla-nodes", "a:1", "--store", "embedded"]).store;
        assert_eq!(store.backend, crate::config::StoreBackend::Embedded);
        // The listen address wins over the port.
        let cluster =
            run_config(&["--cluster-port", "9", "--cluster-listen", "127.0.0.1:7002"]).cluster;
        assert_eq!(cluster.port, 7002);
        // Files given as flags replace the file's inline rates and fields.
        let config = run_config(&["--config", file]);
        assert!(config.currency.rates.is_some() && config.mapping.assign_missing);
        let config = run_config(&[
            "--config",
            file,
            "--currency-rates-file",
            "rates.toml",
            "--mapping-file",
            "mapping.toml",
        ]);
        assert!(config.currency.rates.is_none());
        assert!(config.mapping.fields.is_empty() && !config.mapping.assign_missing);
        assert_eq!(
            config.mapping.file.as_deref(),
            Some("mapping.toml".as_ref())
        );
    }

    #[test]
    fn an_empty_seed_list_means_no_seeds() {
        let config = run_config(&["--cluster-seeds", ""]);
        assert!(
            config.cluster.seeds.is_empty(),
            "{:?}",
            config.cluster.seeds
        );
        assert!(Cli::try_parse_from(["sentinel", "run", "--cluster-listen", "nowhere"]).is_err());
    }
}
