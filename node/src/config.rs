//! Node configuration: defaults, then a TOML file, then environment variables and flags.
//!
//! The settings a flag or `SENTINEL_*` variable may set are declared once, in the
//! [`Overrides`] table below: the argument and where its value goes. clap resolves a flag over
//! its variable and refuses a bad value as a usage error naming the flag (exit 2); the table
//! then writes what was given over the file's values. Not figment: its environment provider
//! would refuse a bad variable only while loading, not as that usage error, and some flags are
//! more than one key (`--kafka-brokers` creates `[kafka]`, `--cluster-listen` sets bind and
//! port, `--mapping-file` and `--currency-rates-file` replace inline values).

use sentinel_store::EmbeddedEngine;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything a node needs to start. Every field has a default, so an empty file is valid.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Where the embedded store keeps its files.
    pub data_dir: PathBuf,
    /// Address of the REST API, `/metrics` and health endpoints.
    pub http_listen: SocketAddr,
    /// PEM certificate chain served on `http_listen`; with `tls_key_file`, the API speaks HTTPS.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// A policy JSON file (rules, lists, thresholds) used instead of the seed policy.
    pub policy_file: Option<PathBuf>,
    /// `text` or `json` log lines on stderr.
    pub log_format: LogFormat,
    /// Origins whose browser pages may call the API (`*` for any); empty: same origin only.
    pub cors_allowed_origins: Vec<String>,
    /// Kafka source and sinks; absent means HTTP (and the demo simulator) only.
    pub kafka: Option<KafkaConfig>,
    /// User-actor behaviour.
    pub actors: ActorsConfig,
    /// The ractor_cluster node this process runs.
    pub cluster: ClusterConfig,
    /// Validation limits for incoming events.
    pub limits: LimitsConfig,
    /// How producers' payloads map onto the event schema (aliases, JSON paths, unknown fields).
    pub mapping: crate::field_mapping::MappingSettings,
    /// Which store keeps decisions, history and the catalogue.
    pub store: StoreConfig,
    /// The base currency rules and models compare amounts in, and its rate table.
    pub currency: crate::currency::CurrencyConfig,
    /// Webhook, Slack and Discord alerts (off until a sink is configured).
    pub alerts: sentinel_alerts::AlertsConfig,
    /// The machine-learned model served from the first start.
    pub model: crate::startup_model::ModelConfig,
    /// Who may call the API: tokens, keys, or `mode = "disabled"`.
    pub auth: sentinel_api::AuthConfig,
    /// Seconds an `Idempotency-Key` and its first answer are kept for replay.
    pub idempotency_retention_secs: u64,
    /// Seconds a handler may take to answer before the API answers 503.
    pub request_timeout_secs: u64,
    /// Seconds a client has to send its request headers before the connection is closed.
    pub header_read_timeout_secs: u64,
    /// Names the API answers to in `Host`, besides `localhost`, the loopback addresses and the
    /// `http_listen` address (any IP address when that is `0.0.0.0`); `["*"]` turns the check
    /// off. Other names get 421, which defeats DNS rebinding.
    pub http_allowed_hosts: Vec<String>,
    /// API connections served at once; more are closed as soon as they are accepted.
    pub http_max_connections: usize,
    /// `POST /v1/transactions` requests deciding at once; more are answered 503 with
    /// `Retry-After` at once rather than queued (HTTP/2 lets one connection carry many).
    pub http_max_scoring_in_flight: usize,
    /// Seconds between HTTP/2 keep-alive pings; a client that does not answer one within as
    /// long is disconnected.
    pub http2_keep_alive_secs: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            data_dir: PathBuf::from("./data"),
            http_listen: "127.0.0.1:8080".parse().expect("valid default address"),
            tls_cert_file: None,
            tls_key_file: None,
            policy_file: None,
            log_format: LogFormat::Text,
            cors_allowed_origins: Vec::new(),
            kafka: None,
            actors: ActorsConfig::default(),
            cluster: ClusterConfig::default(),
            limits: LimitsConfig::default(),
            mapping: Default::default(),
            store: StoreConfig::default(),
            currency: Default::default(),
            alerts: sentinel_alerts::AlertsConfig::default(),
            model: Default::default(),
            auth: sentinel_api::AuthConfig::default(),
            idempotency_retention_secs: 86_400,
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            http_allowed_hosts: Vec::new(),
            http_max_connections: 10_000,
            http_max_scoring_in_flight: 4_096,
            http2_keep_alive_secs: 20,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// How much of the judged event a published decision carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishedEvent {
    /// Only its `transaction_id` (the decision's identity): the producer of the event already
    /// holds it, and an approval is most of the traffic, so most of the bytes.
    #[default]
    Reference,
    /// The whole event, as stored.
    Full,
}

/// Kafka (or Redpanda) connection and topics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port]`.
    pub brokers: String,
    /// Consumer group; every node of a cluster uses the same one.
    pub group_id: String,
    /// Topic of incoming transactions, keyed by user id.
    pub input_topic: String,
    /// Approved decisions.
    pub approved_topic: String,
    /// Declined decisions and those sent to review.
    pub fraud_topic: String,
    /// What a decision on the approved topic carries of the event it judged (the fraud topic
    /// always carries the whole event: alerting and analysts read it there).
    pub approved_event: PublishedEvent,
    /// Raw messages that could not be decided, with the reason in a header.
    pub dead_letter_topic: String,
    /// Events being decided at once per node (backpressure bound).
    pub max_in_flight: usize,
    /// librdkafka `fetch.wait.max.ms`: how long a fetch may wait for data. Apache Kafka and
    /// Redpanda answer a fetch as soon as `fetch.min.bytes` (1) are there, so with them this
    /// only sets how often an idle consumer asks (raise it to 100-500 there); tansu 0.6 holds
    /// every fetch this long, so against it this sets both the latency each consumer hop
    /// adds and how hard the broker polls (BENCHMARKS.md, "Kafka client settings").
    pub fetch_wait_max_ms: u32,
    /// Create missing topics at start-up (input with `partitions`, outputs likewise).
    pub create_topics: bool,
    /// Partitions of topics the node creates.
    pub partitions: i32,
    /// Extra librdkafka properties for every client (security, tuning), applied last so they
    /// override the node's own: producers `acks` all, `linger.ms` 10, `compression.codec` snappy,
    /// `batch.num.messages` 10000; consumers `fetch.min.bytes` 1, `queued.min.messages` 2000,
    /// `queued.max.messages.kbytes` 8192. A property of the other kind of client is ignored
    /// by that client (librdkafka logs a warning).
    pub options: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            group_id: "sentinel".into(),
            input_topic: "transactions".into(),
            approved_topic: "transactions_approved".into(),
            fraud_topic: "transactions_fraud".into(),
            approved_event: PublishedEvent::default(),
            dead_letter_topic: "transactions_dlq".into(),
            max_in_flight: 10_000,
            fetch_wait_max_ms: 5,
            create_topics: true,
            partitions: 8,
            options: BTreeMap::new(),
        }
    }
}

/// User-actor behaviour.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActorsConfig {
    /// Shard supervisors; 0 means one per core.
    pub shards: usize,
    /// Seconds of inactivity after which a user actor is passivated (stopped once its
    /// decisions are durable, with a snapshot if one is due).
    pub passivate_after_secs: u64,
    /// Live user actors this node may hold (0: no limit); past it the least recently active
    /// are passivated early. Each costs about 15–20 KiB.
    pub max_live_users: usize,
    /// Seconds an event may lag its user's latest event time and still enter the windows.
    pub lateness_secs: u64,
    /// Events between background snapshots of a user that is never idle long enough to be
    /// passivated (up to twice as many when its events come back to back): bounds what a
    /// crash replays.
    pub snapshot_every: u64,
    /// Passivation snapshots a user only when at least this many of its decisions are not in
    /// its stored snapshot; fewer are replayed when it comes back. 1: every passivation
    /// whose state moved writes one.
    pub passivation_snapshot_after: u64,
    /// MiB of memory for passivated users' states kept in memory, so that a user coming back
    /// starts without reading the store (0: none kept).
    pub parked_mib: usize,
}

impl Default for ActorsConfig {
    fn default() -> Self {
        ActorsConfig {
            shards: 0,
            passivate_after_secs: 60,
            max_live_users: sentinel_actors::DEFAULT_MAX_LIVE_USERS,
            lateness_secs: 300,
            snapshot_every: 1_000,
            passivation_snapshot_after: sentinel_actors::DEFAULT_PASSIVATION_SNAPSHOT_AFTER,
            parked_mib: sentinel_actors::DEFAULT_PARKED_STATE_BYTES >> 20,
        }
    }
}

impl ActorsConfig {
    /// The scorer configuration these settings describe, parking wherever `parked_mib` says:
    /// [`NodeConfig::scorer`] decides where it may.
    pub(crate) fn scorer(&self) -> sentinel_actors::ScorerConfig {
        let mut config = sentinel_actors::ScorerConfig::default();
        if self.shards > 0 {
            config.shards = self.shards;
        }
        config.passivate_after = Duration::from_secs(self.passivate_after_secs);
        config.max_live_users = self.max_live_users;
        config.lateness = Duration::from_secs(self.lateness_secs);
        config.snapshot_every = self.snapshot_every;
        config.passivation_snapshot_after = self.passivation_snapshot_after;
        config.parked_state_bytes = self.parked_mib.saturating_mul(1 << 20);
        config
    }
}

/// The ractor_cluster node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This node's name in the cluster.
    pub node_name: String,
    /// Port for cluster connections; 0 picks a free one.
    pub port: u16,
    /// Shared secret every node of the cluster must present.
    pub cookie: String,
    /// Address the cluster listener binds to; absent: loopback (`127.0.0.1`) only. A node that
    /// listens beyond loopback needs a strong cookie (see [`ClusterConfig::validate`]).
    pub bind: Option<std::net::IpAddr>,
    /// Cluster addresses (`host:port`) of nodes to join; connections are transitive.
    pub seeds: Vec<String>,
    /// Name of the node whose store this node uses, served over the cluster; absent: this
    /// node opens its own embedded store (and serves it to the others).
    pub store_host: Option<String>,
    /// Seconds to wait at start-up for the store host to be reachable before giving up.
    pub store_wait_secs: u64,
    /// Mutual TLS between members: this member's PEM certificate chain (signed by the CA in
    /// `tls_ca_file`; its names must include the host other members dial). Set all three
    /// `tls_*` settings, or none.
    pub tls_cert_file: Option<std::path::PathBuf>,
    /// This member's PEM private key.
    pub tls_key_file: Option<std::path::PathBuf>,
    /// The cluster's CA (PEM): members accept only peers whose certificate it signed.
    pub tls_ca_file: Option<std::path::PathBuf>,
}

/// The cookie every node has until one is configured; refused off loopback.
pub const DEFAULT_CLUSTER_COOKIE: &str = "sentinel";

/// The shortest cookie accepted on a listener reachable beyond loopback.
pub const MIN_CLUSTER_COOKIE_LEN: usize = 16;

impl ClusterConfig {
    /// Whether this node opens its store itself (and serves it to peers), rather than using
    /// another node's store over the cluster.
    pub fn owns_store(&self) -> bool {
        self.store_host
            .as_ref()
            .is_none_or(|host| *host == self.node_name)
    }

    /// The address the cluster listener binds to.
    pub fn listen_ip(&self) -> std::net::IpAddr {
        self.bind.unwrap_or(std::net::Ipv4Addr::LOCALHOST.into())
    }

    /// Refuses a listener reachable beyond loopback that anyone who knows (or guesses) the
    /// cookie could join: the cookie is all that stands between a peer and the store host.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.listen_ip().is_loopback() {
            return Ok(());
        }
        let why = if self.cookie.is_empty() {
            "the cluster cookie is empty".to_owned()
        } else if self.cookie == DEFAULT_CLUSTER_COOKIE {
            "the cluster cookie is the default `sentinel`".to_owned()
        } else if self.cookie.chars().count() < MIN_CLUSTER_COOKIE_LEN {
            format!("the cluster cookie is shorter than {MIN_CLUSTER_COOKIE_LEN} characters")
        } else {
            return Ok(());
        };
        anyhow::bail!(
            "refusing to listen for cluster peers on {}: {why}, and anyone who can reach this \
             port and present it joins the cluster. Set SENTINEL_CLUSTER_COOKIE to a long random \
             secret (e.g. `openssl rand -hex 32`), or listen on loopback only",
            self.listen_ip()
        )
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node_name: "sentinel-1".into(),
            port: 0,
            cookie: DEFAULT_CLUSTER_COOKIE.into(),
            bind: None,
            seeds: Vec::new(),
            store_host: None,
            store_wait_secs: 60,
            tls_cert_file: None,
            tls_key_file: None,
            tls_ca_file: None,
        }
    }
}

/// The `[store]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `embedded` (files under `data_dir`; one node) or `scylla` (shared by a cluster).
    pub backend: StoreBackend,
    /// The embedded store's engine: `lsm` (a fjall directory, `sentinel.lsm`) or `redb` (one
    /// file, `sentinel.redb`). Unset: the engine of the store already in `data_dir`, `lsm`
    /// for a new one. `sentinel migrate-store` moves a data directory from one to the other.
    pub engine: Option<StoreEngine>,
    /// Days decisions are kept (0: forever). The embedded store prunes hourly; ScyllaDB
    /// writes rows with this TTL. At least 31, so that no decision inside the user actors'
    /// 30-day windows is ever deleted.
    pub retention_days: u32,
    /// Largest page cache of the embedded store, in MiB: its share of the node's memory.
    pub cache_mib: usize,
    /// Reads of the embedded store that run at once (API queries, backtests; the restores of
    /// starting user actors have a lane of their own); more wait their turn, so a burst of
    /// reads cannot take the threads and cores scoring and the decision writer need. 1 to 64;
    /// by default the machine's cores.
    pub max_concurrent_reads: usize,
    /// How many times at most the writer yields to gather the decisions arriving together
    /// before a durable commit, when the first of them finds it idle (0: commit at once).
    pub commit_gather_yields: usize,
    /// ScyllaDB settings, used when `backend = "scylla"`.
    pub scylla: sentinel_store_scylla::ScyllaConfig,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: StoreBackend::default(),
            engine: None,
            retention_days: 0,
            cache_mib: sentinel_store::DEFAULT_CACHE_BYTES / (1024 * 1024),
            max_concurrent_reads: sentinel_store::default_max_concurrent_reads(),
            commit_gather_yields: sentinel_store::WriterConfig::default().gather_yields,
            scylla: sentinel_store_scylla::ScyllaConfig::default(),
        }
    }
}

impl StoreConfig {
    /// Shortest retention: the windows look back 30 days.
    pub const MIN_RETENTION_DAYS: u32 = 31;

    /// Most store reads allowed at once: with the runtime's
    /// [`crate::BLOCKING_THREADS`], it leaves threads for the writer and everything else.
    pub const MAX_CONCURRENT_READS: usize = 64;

    /// The engine a node opens in `data_dir`: the configured one, or (unset) the engine of the
    /// store already there, `lsm` for a new one. A configured engine beside the other's store
    /// is refused: starting empty next to the history would look like a fresh install to
    /// everyone downstream.
    pub fn engine_in(&self, data_dir: &Path) -> anyhow::Result<EmbeddedEngine> {
        let found = EmbeddedEngine::found_in(data_dir);
        let Some(configured) = self.engine.map(EmbeddedEngine::from) else {
            return match found.as_slice() {
                [] => Ok(EmbeddedEngine::Lsm),
                [engine] => Ok(*engine),
                _ => anyhow::bail!(
                    "{} holds both a redb and an lsm store ({}, {}): keep one (move the other \
                     away), or set store.engine",
                    data_dir.display(),
                    EmbeddedEngine::Redb.path(data_dir).display(),
                    EmbeddedEngine::Lsm.path(data_dir).display()
                ),
            };
        };
        if !configured.path(data_dir).exists() {
            if let Some(other) = found.first() {
                anyhow::bail!(
                    "store.engine is {} but {} holds a {} store ({}): run `sentinel \
                     migrate-store --data-dir {} --to {}` first, or set store.engine = \"{}\"",
                    configured.as_str(),
                    data_dir.display(),
                    other.as_str(),
                    other.path(data_dir).display(),
                    data_dir.display(),
                    configured.as_str(),
                    other.as_str()
                );
            }
        }
        Ok(configured)
    }

    /// Checks the settings, naming the field at fault.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.retention_days == 0 || self.retention_days >= Self::MIN_RETENTION_DAYS,
            "store.retention_days: {} is shorter than the {}-day windows need (0 keeps everything)",
            self.retention_days,
            Self::MIN_RETENTION_DAYS
        );
        anyhow::ensure!(
            self.cache_mib >= 1,
            "store.cache_mib: the embedded store needs at least 1 MiB of cache"
        );
        anyhow::ensure!(
            (1..=Self::MAX_CONCURRENT_READS).contains(&self.max_concurrent_reads),
            "store.max_concurrent_reads: {} is outside 1 to {}",
            self.max_concurrent_reads,
            Self::MAX_CONCURRENT_READS
        );
        if self.backend == StoreBackend::Scylla {
            self.scylla.validate().map_err(anyhow::Error::msg)?;
        }
        Ok(())
    }
}

/// Where decisions are stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum StoreBackend {
    /// Files under `data_dir` (`[store] engine`): zero setup, one node.
    #[default]
    Embedded,
    /// ScyllaDB: what the nodes of a cluster share.
    Scylla,
}

/// The embedded store's engine (see [`sentinel_store::EmbeddedEngine`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum StoreEngine {
    /// A fjall (log-structured) directory, `sentinel.lsm`.
    Lsm,
    /// One redb file, `sentinel.redb`.
    Redb,
}

impl From<StoreEngine> for EmbeddedEngine {
    fn from(engine: StoreEngine) -> Self {
        match engine {
            StoreEngine::Redb => EmbeddedEngine::Redb,
            StoreEngine::Lsm => EmbeddedEngine::Lsm,
        }
    }
}

/// Validation limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest event in bytes.
    pub max_payload_bytes: usize,
    /// Largest amount.
    pub max_amount: u64,
    /// Seconds an event time may be ahead of the node's clock.
    pub max_future_skew_secs: i64,
    /// Currency given to HTTP events that have none.
    pub default_currency: String,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let limits = sentinel_event::Limits::default();
        LimitsConfig {
            max_payload_bytes: limits.max_payload_bytes,
            max_amount: 1_000_000_000,
            max_future_skew_secs: limits.max_future_skew.num_seconds(),
            default_currency: limits.default_currency,
        }
    }
}

impl LimitsConfig {
    /// The validation limits these settings describe.
    pub fn limits(&self) -> anyhow::Result<sentinel_event::Limits> {
        anyhow::ensure!(
            sentinel_event::is_currency(&self.default_currency),
            "limits.default_currency `{}` is not an ISO 4217 code",
            self.default_currency
        );
        Ok(sentinel_event::Limits {
            max_payload_bytes: self.max_payload_bytes,
            max_amount: self.max_amount.into(),
            max_future_skew: chrono::Duration::seconds(self.max_future_skew_secs),
            default_currency: self.default_currency.clone(),
            mapping: None,
        })
    }
}

impl NodeConfig {
    /// The user actors' configuration: `[actors]`, with passivated users' states kept in
    /// memory only where this node alone decides for its users
    /// ([`NodeConfig::decides_its_users_alone`]).
    pub fn scorer(&self) -> sentinel_actors::ScorerConfig {
        let mut config = self.actors.scorer();
        if config.parked_state_bytes > 0 && !self.decides_its_users_alone() {
            tracing::info!(
                "passivated users' states are not kept in memory: without Kafka's partitions, another member may decide for the same users"
            );
            config.parked_state_bytes = 0;
        }
        config
    }

    /// Whether no other process decides for this node's users, so that a passivated user's
    /// state kept in memory stays what the store holds. With Kafka, a node decides only the
    /// users of the partitions the consumer group gave it, and forgets their parked states
    /// when a partition leaves. Without, only a node on its own embedded store that no other
    /// member is configured to reach: no cluster port, seeds or store host (a cluster fed
    /// over HTTP alone lets every node decide what it receives).
    pub fn decides_its_users_alone(&self) -> bool {
        self.kafka.is_some()
            || (self.store.backend == StoreBackend::Embedded
                && self.cluster.store_host.is_none()
                && self.cluster.seeds.is_empty()
                && self.cluster.port == 0)
    }

    /// What incoming events are checked against: the limits and the validated field mapping.
    pub fn event_limits(&self) -> anyhow::Result<sentinel_event::Limits> {
        Ok(sentinel_event::Limits {
            mapping: self.mapping.compile()?.map(std::sync::Arc::new),
            ..self.limits.limits()?
        })
    }

    /// Reads a TOML file; unknown keys are errors, missing keys take their defaults.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<NodeConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}

/// Declares [`Overrides`]: per setting its doc (the `--help` text), its clap argument, its
/// type and how a given value is written into a [`NodeConfig`]. Values apply in table order.
macro_rules! overrides {
    ($(
        $(#[doc = $doc:literal])+
        #[arg($($arg:tt)+)]
        $name:ident: $ty:ty => |$config:ident, $value:ident| $apply:expr;
    )+) => {
        /// Settings given as flags or `SENTINEL_*` environment variables (a flag wins over its
        /// variable); each overrides the config file.
        #[derive(clap::Args)]
        pub struct Overrides {
            $($(#[doc = $doc])+ #[arg($($arg)+)] $name: Option<$ty>,)+
        }

        impl Overrides {
            /// Writes every setting given over `config`.
            pub fn apply(self, config: &mut NodeConfig) {
                $(if let Some($value) = self.$name {
                    let $config = &mut *config;
                    $apply;
                })+
            }
        }
    };
}

overrides! {
    /// Directory of the embedded store.
    #[arg(long, env = "SENTINEL_DATA_DIR")]
    data_dir: PathBuf => |c, v| c.data_dir = v;
    /// Address of the REST API and /metrics.
    #[arg(long, env = "SENTINEL_HTTP_LISTEN")]
    http_listen: SocketAddr => |c, v| c.http_listen = v;
    /// PEM certificate chain for HTTPS on --http-listen (needs --tls-key-file).
    #[arg(long, env = "SENTINEL_TLS_CERT_FILE")]
    tls_cert_file: PathBuf => |c, v| c.tls_cert_file = Some(v);
    /// PEM private key of --tls-cert-file.
    #[arg(long, env = "SENTINEL_TLS_KEY_FILE")]
    tls_key_file: PathBuf => |c, v| c.tls_key_file = Some(v);
    /// Policy JSON file (rules, lists, thresholds) replacing the seed policy.
    #[arg(long, env = "SENTINEL_POLICY")]
    policy: PathBuf => |c, v| c.policy_file = Some(v);
    /// Model artifact served when the store has no champion model yet.
    #[arg(long, env = "SENTINEL_MODEL_FILE")]
    model_file: PathBuf => |c, v| c.model.file = Some(v);
    /// Seconds before an analyst label counts in the entity-risk features
    /// ([model] label_delay_secs).
    #[arg(long, env = "SENTINEL_LABEL_DELAY_SECS")]
    label_delay_secs: u64 => |c, v| c.model.label_delay_secs = v;
    /// Log format on stderr.
    #[arg(long, env = "SENTINEL_LOG_FORMAT", value_enum)]
    log_format: LogFormat => |c, v| c.log_format = v;
    /// Kafka/Redpanda bootstrap servers; enables the Kafka source and sinks.
    #[arg(long, env = "SENTINEL_KAFKA_BROKERS")]
    kafka_brokers: String => |c, v| c.kafka.get_or_insert_with(KafkaConfig::default).brokers = v;
    /// Consumer group shared by the nodes of a cluster.
    #[arg(long, env = "SENTINEL_KAFKA_GROUP")]
    kafka_group: String => |c, v| if let Some(kafka) = c.kafka.as_mut() {
        // Without brokers (flag or [kafka]) there is no Kafka to configure.
        kafka.group_id = v;
    };
    /// Topic of incoming transactions.
    #[arg(long, env = "SENTINEL_INPUT_TOPIC")]
    input_topic: String => |c, v| if let Some(kafka) = c.kafka.as_mut() {
        kafka.input_topic = v;
    };
    /// Name of this node in the cluster.
    #[arg(long, env = "SENTINEL_NODE_NAME")]
    node_name: String => |c, v| c.cluster.node_name = v;
    /// Port for ractor_cluster connections (0 picks a free one).
    #[arg(long, env = "SENTINEL_CLUSTER_PORT")]
    cluster_port: u16 => |c, v| c.cluster.port = v;
    /// Shared cluster secret.
    #[arg(long, env = "SENTINEL_CLUSTER_COOKIE", hide_env_values = true)]
    cluster_cookie: String => |c, v| c.cluster.cookie = v;
    /// ScyllaDB contact points, `host:port,host:port`; implies `--store scylla`.
    #[arg(long, env = "SENTINEL_SCYLLA_NODES", value_delimiter = ',')]
    scylla_nodes: Vec<String> => |c, v| {
        c.store.backend = StoreBackend::Scylla;
        c.store.scylla.nodes = v;
    };
    /// Store backend: `embedded` (default) or `scylla`.
    #[arg(long, env = "SENTINEL_STORE", value_enum)]
    store: StoreBackend => |c, v| c.store.backend = v;
    /// Engine of the embedded store: `lsm` or `redb` (unset: the engine of the store already
    /// in the data directory, `lsm` for a new one).
    #[arg(long, env = "SENTINEL_STORE_ENGINE", value_enum)]
    store_engine: StoreEngine => |c, v| c.store.engine = Some(v);
    /// ScyllaDB keyspace.
    #[arg(long, env = "SENTINEL_SCYLLA_KEYSPACE")]
    scylla_keyspace: String => |c, v| c.store.scylla.keyspace = v;
    /// Address of the cluster listener, HOST:PORT (overrides --cluster-port).
    #[arg(long, env = "SENTINEL_CLUSTER_LISTEN")]
    cluster_listen: SocketAddr => |c, v| {
        c.cluster.bind = Some(v.ip());
        c.cluster.port = v.port();
    };
    /// Cluster addresses of nodes to join, comma-separated `host:port`.
    #[arg(long, env = "SENTINEL_CLUSTER_SEEDS", value_delimiter = ',')]
    cluster_seeds: Vec<String> => |c, v| {
        // An empty SENTINEL_CLUSTER_SEEDS means "no seeds", not one empty address.
        c.cluster.seeds = v.into_iter().filter(|s| !s.trim().is_empty()).collect();
    };
    /// Use the store served by this cluster node instead of opening one here.
    #[arg(long, env = "SENTINEL_STORE_HOST")]
    store_host: String => |c, v| c.cluster.store_host = Some(v);
    /// Seconds to wait at start-up for the store host before giving up.
    #[arg(long, env = "SENTINEL_STORE_WAIT_SECS")]
    store_wait_secs: u64 => |c, v| c.cluster.store_wait_secs = v;
    /// Mutual TLS between members: this member's PEM certificate (with the next two).
    #[arg(long, env = "SENTINEL_CLUSTER_TLS_CERT_FILE")]
    cluster_tls_cert_file: PathBuf => |c, v| c.cluster.tls_cert_file = Some(v);
    /// Mutual TLS between members: this member's PEM private key.
    #[arg(long, env = "SENTINEL_CLUSTER_TLS_KEY_FILE")]
    cluster_tls_key_file: PathBuf => |c, v| c.cluster.tls_key_file = Some(v);
    /// Mutual TLS between members: the cluster CA's PEM certificate.
    #[arg(long, env = "SENTINEL_CLUSTER_TLS_CA_FILE")]
    cluster_tls_ca_file: PathBuf => |c, v| c.cluster.tls_ca_file = Some(v);
    /// Base currency rules and models compare amounts in ([currency] base).
    #[arg(long, env = "SENTINEL_CURRENCY_BASE")]
    currency_base: String => |c, v| c.currency.base = v;
    /// Rates file into the base currency, re-read when it changes ([currency] rates_file).
    #[arg(long, env = "SENTINEL_CURRENCY_RATES_FILE")]
    currency_rates_file: PathBuf => |c, v| {
        // A file replaces inline rates (both at once is refused in the file alone).
        c.currency.rates = None;
        c.currency.rates_file = Some(v);
    };
    /// What to do with a currency that has no rate ([currency] unknown).
    #[arg(long, env = "SENTINEL_CURRENCY_UNKNOWN", value_enum)]
    currency_unknown: crate::currency::UnknownCurrency => |c, v| c.currency.unknown = v;
    /// Field mapping file: producers' own field names onto the event schema ([mapping] file;
    /// see config/mapping-seed-*.toml).
    #[arg(long, env = "SENTINEL_MAPPING_FILE")]
    mapping_file: PathBuf => |c, v| {
        // A file replaces inline fields (both at once is refused in the file alone).
        c.mapping.fields.clear();
        c.mapping.assign_missing = false;
        c.mapping.file = Some(v);
    };
    /// Top-level payload fields nothing maps: `reject` (422 / dead letter naming the field) or
    /// `metadata` (kept as `metadata.<name>` for rules) ([mapping] unknown_fields).
    #[arg(long, env = "SENTINEL_MAPPING_UNKNOWN_FIELDS", value_parser = parse_unknown_fields)]
    mapping_unknown_fields: sentinel_event::UnknownFields => |c, v| c.mapping.unknown_fields = v;
}

fn parse_unknown_fields(s: &str) -> Result<sentinel_event::UnknownFields, String> {
    match s {
        "reject" => Ok(sentinel_event::UnknownFields::Reject),
        "metadata" => Ok(sentinel_event::UnknownFields::Metadata),
        _ => Err(format!("`{s}`: expected reject or metadata")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_means_defaults_and_unknown_keys_are_refused() {
        let config: NodeConfig = toml::from_str("").unwrap();
        assert_eq!(config.http_listen.port(), 8080);
        assert!(config.kafka.is_none());
        let config: NodeConfig =
            toml::from_str("[kafka]\nbrokers = \"k:9092\"\n[actors]\nlateness_secs = 5").unwrap();
        assert_eq!(config.kafka.unwrap().input_topic, "transactions");
        assert_eq!(config.actors.lateness_secs, 5);
        let err = toml::from_str::<NodeConfig>("[kafka]\nbrokerz = \"x\"").unwrap_err();
        assert!(err.to_string().contains("brokerz"), "{err}");
    }

    /// Parked states only where no other process decides for the node's users.
    #[test]
    fn users_states_are_parked_only_where_the_node_decides_for_them_alone() {
        let parked = |toml_text: &str| {
            let config: NodeConfig = toml::from_str(toml_text).unwrap();
            config.scorer().parked_state_bytes
        };
        let default = sentinel_actors::DEFAULT_PARKED_STATE_BYTES;
        assert_eq!(parked(""), default, "a standalone node");
        assert_eq!(parked("[actors]\nparked_mib = 3"), 3 << 20);
        assert_eq!(parked("[kafka]\nbrokers = \"k:9092\""), default);
        let kafka_member =
            "[kafka]\nbrokers = \"k:9092\"\n[cluster]\nseeds = [\"n1:7001\"]\nstore_host = \"n1\"";
        assert_eq!(
            parked(kafka_member),
            default,
            "Kafka gives each user one owner"
        );
        for shared in [
            "[cluster]\nseeds = [\"n1:7001\"]",
            "[cluster]\nstore_host = \"n1\"",
            "[cluster]\nport = 7001",
            "[store]\nbackend = \"scylla\"",
        ] {
            assert_eq!(parked(shared), 0, "without Kafka: {shared}");
        }
    }

    #[test]
    fn the_shipped_example_is_valid_and_matches_the_defaults() {
        let example: NodeConfig =
            toml::from_str(include_str!("../../config/sentinel.example.toml")).unwrap();
        let defaults = NodeConfig::default();
        assert_eq!(example.http_listen, defaults.http_listen);
        assert_eq!(example.actors.lateness_secs, defaults.actors.lateness_secs);
        assert_eq!(
            example.limits.max_payload_bytes,
            defaults.limits.max_payload_bytes
        );
        assert!(example.limits.limits().is_ok());
        assert_eq!(example.store.backend, StoreBackend::Embedded);
        assert_eq!(
            example.store.scylla.consistency,
            defaults.store.scylla.consistency
        );
        assert!(example.store.scylla.validate().is_ok());
        assert!(example.store.validate().is_ok());
        assert_eq!(example.store.cache_mib, defaults.store.cache_mib);
        assert_eq!(
            example.store.max_concurrent_reads,
            defaults.store.max_concurrent_reads
        );
        assert_eq!(example.store.engine, defaults.store.engine);
        assert_eq!(
            example.store.commit_gather_yields,
            defaults.store.commit_gather_yields
        );
        assert_eq!(example.auth.mode, defaults.auth.mode);
        assert_eq!(example.auth.audience, defaults.auth.audience);
        assert_eq!(example.auth.leeway_secs, defaults.auth.leeway_secs);
        assert_eq!(example.currency.base, defaults.currency.base);
        assert_eq!(
            example.currency.table().unwrap().as_of.to_string(),
            "2026-12-01"
        );
    }

    /// Unset, the engine is the one whose store `data_dir` holds, `lsm` for a new directory;
    /// set, it must not start empty beside the other engine's store; a directory holding
    /// both is refused rather than guessed.
    #[test]
    fn the_store_engine_follows_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let auto = StoreConfig::default();
        let pinned = |engine| StoreConfig {
            engine: Some(engine),
            ..StoreConfig::default()
        };
        assert_eq!(auto.engine_in(dir.path()).unwrap(), EmbeddedEngine::Lsm);
        assert_eq!(
            pinned(StoreEngine::Redb).engine_in(dir.path()).unwrap(),
            EmbeddedEngine::Redb
        );

        std::fs::write(dir.path().join("sentinel.redb"), b"").unwrap();
        assert_eq!(auto.engine_in(dir.path()).unwrap(), EmbeddedEngine::Redb);
        let err = pinned(StoreEngine::Lsm)
            .engine_in(dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("migrate-store") && err.contains("--to lsm"),
            "{err}"
        );

        std::fs::create_dir(dir.path().join("sentinel.lsm")).unwrap();
        let err = auto.engine_in(dir.path()).unwrap_err().to_string();
        assert!(err.contains("both a redb and an lsm store"), "{err}");
        assert_eq!(
            pinned(StoreEngine::Lsm).engine_in(dir.path()).unwrap(),
            EmbeddedEngine::Lsm
        );
    }

    #[test]
    fn the_compose_nodes_configuration_is_valid_and_uses_scylla() {
        let config: NodeConfig = toml::from_str(include_str!("../../config/compose.toml")).unwrap();
        assert_eq!(config.store.backend, StoreBackend::Scylla);
        assert_eq!(config.store.scylla.nodes, ["scylla:9042"]);
        config.store.validate().unwrap();
    }

    #[test]
    fn retention_shorter_than_the_windows_is_refused() {
        let config: NodeConfig = toml::from_str("[store]\nretention_days = 7").unwrap();
        let err = config.store.validate().unwrap_err().to_string();
        assert!(err.starts_with("store.retention_days"), "{err}");
        let config: NodeConfig = toml::from_str("[store]\nretention_days = 400").unwrap();
        assert!(config.store.validate().is_ok());
    }

    #[test]
    fn store_reads_at_once_are_bounded_both_ways() {
        for reads in [0, StoreConfig::MAX_CONCURRENT_READS + 1] {
            let config: NodeConfig =
                toml::from_str(&format!("[store]\nmax_concurrent_reads = {reads}")).unwrap();
            let err = config.store.validate().unwrap_err().to_string();
            assert!(err.starts_with("store.max_concurrent_reads"), "{err}");
        }
        let config: NodeConfig = toml::from_str("[store]\nmax_concurrent_reads = 4").unwrap();
        assert!(config.store.validate().is_ok());
    }
}
