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

use crate::config::{KafkaConfig, LogFormat, NodeConfig};
use crate::demo::DemoOptions;
use crate::node::{self, Source};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
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
    /// Directory of the embedded store.
    #[arg(long, env = "SENTINEL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the REST API and /metrics.
    #[arg(long, env = "SENTINEL_HTTP_LISTEN")]
    http_listen: Option<SocketAddr>,
    /// PEM certificate chain for HTTPS on --http-listen (needs --tls-key-file).
    #[arg(long, env = "SENTINEL_TLS_CERT_FILE")]
    tls_cert_file: Option<PathBuf>,
    /// PEM private key of --tls-cert-file.
    #[arg(long, env = "SENTINEL_TLS_KEY_FILE")]
    tls_key_file: Option<PathBuf>,
    /// Policy JSON file (rules, lists, thresholds) replacing the seed policy.
    #[arg(long, env = "SENTINEL_POLICY")]
    policy: Option<PathBuf>,
    /// Model artifact served when the store has no champion model yet.
    #[arg(long, env = "SENTINEL_MODEL_FILE")]
    model_file: Option<PathBuf>,
    /// Seconds before an analyst label counts in the entity-risk features ([model] label_delay_secs).
    #[arg(long, env = "SENTINEL_LABEL_DELAY_SECS")]
    label_delay_secs: Option<u64>,
    /// Log format on stderr.
    #[arg(long, env = "SENTINEL_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Kafka/Redpanda bootstrap servers; enables the Kafka source and sinks.
    #[arg(long, env = "SENTINEL_KAFKA_BROKERS")]
    kafka_brokers: Option<String>,
    /// Consumer group shared by the nodes of a cluster.
    #[arg(long, env = "SENTINEL_KAFKA_GROUP")]
    kafka_group: Option<String>,
    /// Topic of incoming transactions.
    #[arg(long, env = "SENTINEL_INPUT_TOPIC")]
    input_topic: Option<String>,
    /// Name of this node in the cluster.
    #[arg(long, env = "SENTINEL_NODE_NAME")]
    node_name: Option<String>,
    /// Port for ractor_cluster connections (0 picks a free one).
    #[arg(long, env = "SENTINEL_CLUSTER_PORT")]
    cluster_port: Option<u16>,
    /// Shared cluster secret.
    #[arg(long, env = "SENTINEL_CLUSTER_COOKIE", hide_env_values = true)]
    cluster_cookie: Option<String>,
    /// Store backend: `embedded` (default) or `scylla`.
    #[arg(long, env = "SENTINEL_STORE", value_enum)]
    store: Option<crate::config::StoreBackend>,
    /// ScyllaDB contact points, `host:port,host:port`; implies `--store scylla`.
    #[arg(long, env = "SENTINEL_SCYLLA_NODES", value_delimiter = ',')]
    scylla_nodes: Option<Vec<String>>,
    /// ScyllaDB keyspace.
    #[arg(long, env = "SENTINEL_SCYLLA_KEYSPACE")]
    scylla_keyspace: Option<String>,
    /// Address of the cluster listener, HOST:PORT (overrides --cluster-port).
    #[arg(long, env = "SENTINEL_CLUSTER_LISTEN")]
    cluster_listen: Option<SocketAddr>,
    /// Cluster addresses of nodes to join, comma-separated `host:port`.
    #[arg(long, env = "SENTINEL_CLUSTER_SEEDS", value_delimiter = ',')]
    cluster_seeds: Option<Vec<String>>,
    /// Use the store served by this cluster node instead of opening one here.
    #[arg(long, env = "SENTINEL_STORE_HOST")]
    store_host: Option<String>,
    /// Seconds to wait at start-up for the store host before giving up.
    #[arg(long, env = "SENTINEL_STORE_WAIT_SECS")]
    store_wait_secs: Option<u64>,
    /// Mutual TLS between members: this member's PEM certificate (with the next two).
    #[arg(long, env = "SENTINEL_CLUSTER_TLS_CERT_FILE")]
    cluster_tls_cert_file: Option<PathBuf>,
    /// Mutual TLS between members: this member's PEM private key.
    #[arg(long, env = "SENTINEL_CLUSTER_TLS_KEY_FILE")]
    cluster_tls_key_file: Option<PathBuf>,
    /// Mutual TLS between members: the cluster CA's PEM certificate.
    #[arg(long, env = "SENTINEL_CLUSTER_TLS_CA_FILE")]
    cluster_tls_ca_file: Option<PathBuf>,
    /// Base currency rules and models compare amounts in ([currency] base).
    #[arg(long, env = "SENTINEL_CURRENCY_BASE")]
    currency_base: Option<String>,
    /// Rates file into the base currency, re-read when it changes ([currency] rates_file).
    #[arg(long, env = "SENTINEL_CURRENCY_RATES_FILE")]
    currency_rates_file: Option<PathBuf>,
    /// What to do with a currency that has no rate ([currency] unknown).
    #[arg(long, env = "SENTINEL_CURRENCY_UNKNOWN", value_enum)]
    currency_unknown: Option<crate::currency::UnknownCurrency>,
    /// Field mapping file: producers' own field names onto the event schema ([mapping] file;
    /// see config/mapping-seed-*.toml).
    #[arg(long, env = "SENTINEL_MAPPING_FILE")]
    mapping_file: Option<PathBuf>,
    /// Top-level payload fields nothing maps: `reject` (422 / dead letter naming the field) or
    /// `metadata` (kept as metadata.<name> for rules) ([mapping] unknown_fields).
    #[arg(long, env = "SENTINEL_MAPPING_UNKNOWN_FIELDS", value_parser = parse_unknown_fields)]
    mapping_unknown_fields: Option<sentinel_event::UnknownFields>,
    #[command(flatten)]
    auth: crate::security::AuthArgs,
}

fn parse_unknown_fields(s: &str) -> Result<sentinel_event::UnknownFields, String> {
    match s {
        "reject" => Ok(sentinel_event::UnknownFields::Reject),
        "metadata" => Ok(sentinel_event::UnknownFields::Metadata),
        _ => Err(format!("`{s}`: expected reject or metadata")),
    }
}

impl NodeArgs {
    fn into_config(self) -> anyhow::Result<NodeConfig> {
        let mut config = match &self.config {
            Some(path) => NodeConfig::from_file(path)?,
            None => NodeConfig::default(),
        };
        if let Some(v) = self.data_dir {
            config.data_dir = v;
        }
        if let Some(v) = self.http_listen {
            config.http_listen = v;
        }
        if let Some(v) = self.tls_cert_file {
            config.tls_cert_file = Some(v);
        }
        if let Some(v) = self.tls_key_file {
            config.tls_key_file = Some(v);
        }
        if let Some(v) = self.policy {
            config.policy_file = Some(v);
        }
        if let Some(v) = self.model_file {
            config.model.file = Some(v);
        }
        if let Some(v) = self.label_delay_secs {
            config.model.label_delay_secs = v;
        }
        if let Some(v) = self.log_format {
            config.log_format = v;
        }
        if let Some(brokers) = self.kafka_brokers {
            config
                .kafka
                .get_or_insert_with(KafkaConfig::default)
                .brokers = brokers;
        }
        if let Some(kafka) = config.kafka.as_mut() {
            if let Some(v) = self.kafka_group {
                kafka.group_id = v;
            }
            if let Some(v) = self.input_topic {
                kafka.input_topic = v;
            }
        }
        if let Some(v) = self.node_name {
            config.cluster.node_name = v;
        }
        if let Some(v) = self.cluster_port {
            config.cluster.port = v;
        }
        if let Some(v) = self.cluster_cookie {
            config.cluster.cookie = v;
        }
        self.auth.apply(&mut config.auth)?;
        if let Some(nodes) = self.scylla_nodes {
            config.store.backend = crate::config::StoreBackend::Scylla;
            config.store.scylla.nodes = nodes;
        }
        if let Some(v) = self.store {
            config.store.backend = v;
        }
        if let Some(v) = self.scylla_keyspace {
            config.store.scylla.keyspace = v;
        }
        if let Some(v) = self.cluster_listen {
            config.cluster.bind = Some(v.ip());
            config.cluster.port = v.port();
        }
        if let Some(v) = self.cluster_seeds {
            // An empty SENTINEL_CLUSTER_SEEDS means "no seeds", not one empty address.
            config.cluster.seeds = v.into_iter().filter(|s| !s.trim().is_empty()).collect();
        }
        if let Some(v) = self.store_host {
            config.cluster.store_host = Some(v);
        }
        if let Some(v) = self.store_wait_secs {
            config.cluster.store_wait_secs = v;
        }
        if let Some(v) = self.cluster_tls_cert_file {
            config.cluster.tls_cert_file = Some(v);
        }
        if let Some(v) = self.cluster_tls_key_file {
            config.cluster.tls_key_file = Some(v);
        }
        if let Some(v) = self.cluster_tls_ca_file {
            config.cluster.tls_ca_file = Some(v);
        }
        if let Some(v) = self.currency_base {
            config.currency.base = v;
        }
        if let Some(v) = self.currency_rates_file {
            // A file replaces inline rates (both at once is refused in the file alone).
            config.currency.rates = None;
            config.currency.rates_file = Some(v);
        }
        if let Some(v) = self.currency_unknown {
            config.currency.unknown = v;
        }
        if let Some(v) = self.mapping_file {
            // A file replaces inline fields (both at once is refused in the file alone).
            config.mapping.fields.clear();
            config.mapping.assign_missing = false;
            config.mapping.file = Some(v);
        }
        if let Some(v) = self.mapping_unknown_fields {
            config.mapping.unknown_fields = v;
        }
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
        Command::Labels { command } => {
            labels::run(crate::config::NodeConfig::default(), command).await
        }
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
        Command::Config {
            command: ConfigCommand::Check { node },
        } => config_check::check(node.into_config()?),
    }
}

fn compact(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let path = data_dir.join("sentinel.redb");
    anyhow::ensure!(path.exists(), "no store at {}", path.display());
    let (before, after) = sentinel_store::EmbeddedStore::compact(&path)
        .map_err(|e| anyhow::anyhow!("compacting {} (stop the node first): {e}", path.display()))?;
    eprintln!("compacted {}: {before} -> {after} bytes", path.display());
    Ok(())
}

fn parse_head(text: &str) -> Result<[u8; 32], String> {
    sentinel_store::chain::parse_hash(text).ok_or_else(|| "expected 64 hex digits".to_owned())
}

async fn verify_log(
    data_dir: &std::path::Path,
    expect_head: Option<[u8; 32]>,
) -> anyhow::Result<()> {
    let path = data_dir.join("sentinel.redb");
    anyhow::ensure!(path.exists(), "no store at {}", path.display());
    let store = sentinel_store::EmbeddedStore::open(&path)
        .map_err(|e| anyhow::anyhow!("opening {} (stop the node first): {e}", path.display()))?;
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
