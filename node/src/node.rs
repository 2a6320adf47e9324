//! Starting, running and draining one node.

use crate::alerting::{self, Alerting};
use crate::cluster::owner_route::{self, OwnerMessage, OwnerRoute};
use crate::cluster::view::{self as cluster_view, NodeInfoMessage};
use crate::cluster::{
    self, entity_placement, entity_refresh, key_revocations, policy_sync, remote_store,
};
use crate::config::{NodeConfig, StoreBackend};
use crate::currency::Currencies;
use crate::decider::NodeDecider;
use crate::demo::{self, DemoOptions};
use crate::http::listener;
use crate::kafka::{self, DeadLetter, Publisher};
use crate::stats::{self, LiveStats};
use crate::{log_head, retention, security, telemetry};
use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use ractor::ActorRef;
use ractor_cluster::NodeServerMessage;
use sentinel_actors::Scorer;
use sentinel_api::{ApiContext, MetricsRender};
use sentinel_catalog::Catalog;
use sentinel_engine::{Policy, PolicyDef};
use sentinel_event::Limits;
use sentinel_store::{Store, Writer, WriterConfig, WriterHooks};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Where events come from besides HTTP.
pub enum Source {
    /// The built-in simulator.
    Demo(DemoOptions),
    /// Kafka when configured; otherwise HTTP only.
    External,
}

struct Prometheus(PrometheusHandle);

impl MetricsRender for Prometheus {
    fn render(&self) -> String {
        self.0.render()
    }
}

/// The policy an empty store is seeded with: `--policy` (`policy_file`) or the shipped one.
pub fn seed_policy(config: &NodeConfig) -> anyhow::Result<PolicyDef> {
    match &config.policy_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading policy {}", path.display()))?;
            serde_json::from_str::<PolicyDef>(&text)
                .with_context(|| format!("parsing policy {}", path.display()))
        }
        None => Ok(PolicyDef::seed()),
    }
}

/// Runs a node until Ctrl-C or SIGTERM (or the demo's duration), then drains: sources stop
/// taking events, in-flight decisions finish, offsets are committed, user actors snapshot.
///
/// Start-up is a sequence of steps, each using what the ones before made: process settings,
/// the cluster node, the store, the catalogue, the actors, the scoring path, the API, then the
/// event sources.
pub async fn run(mut config: NodeConfig, source: Source) -> anyhow::Result<()> {
    let process = prepare(&mut config, &source)?;
    let cluster_node = cluster::start(&config.cluster).await?;
    let store = remote_store::open(&config, &cluster_node, open_store(&config)).await?;
    let (catalogue, policy) = open_catalogue(&config, &store).await?;
    let actors = start_actors(&config, &store, &catalogue.catalog, policy).await?;
    let scoring = start_scoring(&config, &actors.scorer, Arc::clone(&process.currencies)).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let api = serve_api(
        &config,
        &process,
        &store,
        &catalogue.catalog,
        &actors,
        &scoring.decider,
        &stop_rx,
    )
    .await?;
    let sources = start_sources(&config, source, &scoring.decider, &process.limits, &stop_rx)?;
    let summary = tokio::spawn(stats::print_every(
        Arc::clone(&scoring.decider.stats),
        actors.scorer.clone(),
        Duration::from_secs(5),
        stop_rx,
    ));

    api.ready.store(true, Ordering::Relaxed);
    tracing::info!(
        http = %format!("http://{}", api.http_addr),
        data_dir = %config.data_dir.display(),
        kafka = config.kafka.as_ref().map(|k| k.brokers.as_str()).unwrap_or("off"),
        "node ready"
    );

    wait_for_stop(sources.demo_duration).await;
    drain(
        Started {
            cluster_node,
            catalogue,
            actors,
            scoring,
            api,
            sources: sources.tasks,
            summary,
        },
        stop_tx,
    )
    .await
}

/// What the whole process needs before anything opens.
struct Process {
    /// The admin token of a demo without a configured secret, announced once the API listens.
    demo_token: Option<String>,
    metrics: PrometheusHandle,
    limits: Arc<Limits>,
    currencies: Arc<Currencies>,
}

/// Starts the logs, checks that the node is protected (a demo without a secret gets one for
/// this run), warns about unsafe settings, installs the metrics recorder, and loads the event
/// limits and the rate table (watched for changes).
fn prepare(config: &mut NodeConfig, source: &Source) -> anyhow::Result<Process> {
    telemetry::init_logs(config.log_format);
    let demo_token = security::prepare(&mut config.auth, matches!(source, Source::Demo(_)))?;
    crate::unsafe_settings::warn_about(config);
    let metrics = telemetry::prometheus();
    let limits = Arc::new(config.event_limits()?);
    let currencies = Currencies::new(&config.currency)?;
    currencies.watch(&config.currency);
    Ok(Process {
        demo_token,
        metrics,
        limits,
        currencies,
    })
}

/// The analyst catalogue and the task keeping its entity-risk index current.
struct Catalogue {
    catalog: Arc<Catalog>,
    entity_refresh: entity_refresh::Refresher,
}

/// The scorer's allowed lateness in milliseconds, which replays of stored decisions use too.
fn lateness_ms(config: &NodeConfig) -> i64 {
    i64::try_from(config.actors.scorer().lateness.as_millis()).unwrap_or(i64::MAX)
}

/// Opens the catalogue (an empty store is seeded with the policy and the start-up model), then
/// serves the store to peers if this node owns it, starts the entity-risk refresh and logs the
/// policy in force, which it returns.
async fn open_catalogue(
    config: &NodeConfig,
    store: &Arc<dyn Store>,
) -> anyhow::Result<(Catalogue, Arc<Policy>)> {
    let seed = seed_policy(config)?;
    let catalog = Arc::new(
        Catalog::open(Arc::clone(store), seed, lateness_ms(config))
            .await
            .context("loading the rule catalogue")?,
    );
    crate::startup_model::install(&catalog, &config.model).await?;
    // Peers join once the catalogue and model are in place: they may read them, never seed them.
    if config.cluster.owns_store() {
        let hosted = remote_store::Hosted {
            store: Arc::clone(store),
            // Members' decisions reach this node's entity index as they are stored here.
            observer: Some(catalog.commit_observer()),
        };
        remote_store::serve_store(&config.cluster.node_name, hosted).await?;
    }
    let future_skew =
        Duration::from_secs(u64::try_from(config.limits.max_future_skew_secs).unwrap_or(0));
    let saved_index = (config.model.entity_index_save_secs > 0)
        .then(|| entity_refresh::saved_index_path(&config.data_dir));
    let entity_refresh = entity_refresh::start(
        Arc::clone(&catalog),
        &config.model,
        future_skew,
        saved_index,
    )
    .await?;
    let policy = catalog.policy();
    if config.policy_file.is_some() && policy.rules.version > 1 {
        tracing::warn!("--policy only seeds an empty store; this store already has a catalogue");
    }
    tracing::info!(
        version = policy.rules.version,
        rules = policy.rules.rules().len(),
        "policy loaded"
    );
    Ok((
        Catalogue {
            catalog,
            entity_refresh,
        },
        policy,
    ))
}

/// The user actors, the writer they store through, alert delivery, and the tasks that bring
/// them new policies.
struct Actors {
    writer: Writer,
    alerting: Alerting,
    scorer: Scorer,
    /// The policy version every local actor has.
    policy_applied: watch::Receiver<u64>,
    policy_feed: JoinHandle<()>,
    policy_sync: JoinHandle<()>,
}

/// Starts the store writer (which records the alerts each decision owes), alert delivery on
/// the node owning the store, the user actors on `policy` and their entities' placement in the
/// cluster, then the tasks that apply every new policy version of `catalog`: this node's and
/// the ones other members announce.
async fn start_actors(
    config: &NodeConfig,
    store: &Arc<dyn Store>,
    catalog: &Arc<Catalog>,
    policy: Arc<Policy>,
) -> anyhow::Result<Actors> {
    let alert_routing = alerting::routing(&config.alerts)?;
    let hooks = WriterHooks {
        alerts: alert_routing,
        // The live entity index learns this node's decisions as they commit, not from the store.
        observer: Some(catalog.commit_observer()),
    };
    let writer_config = WriterConfig {
        gather_yields: config.store.commit_gather_yields,
        ..WriterConfig::default()
    };
    let writer = Writer::start_with(Arc::clone(store), writer_config, hooks);
    // The node that owns the store delivers the alerts in its outbox (peers may not move them).
    let alerting = match config.cluster.owns_store() {
        true => Alerting::start(&config.alerts, Arc::clone(store)).await?,
        false => Alerting::idle(),
    };
    let scorer = Scorer::start(writer.clone(), policy, config.scorer())
        .await
        .context("starting the user actors")?;
    entity_placement::start(&config.cluster.node_name, scorer.entities().clone()).await?;
    let (applied_tx, policy_applied) = watch::channel(catalog.policy().rules.version);
    let policy_feed = tokio::spawn(broadcast_policies(
        Arc::clone(catalog),
        scorer.clone(),
        applied_tx,
        config.cluster.owns_store(),
    ));
    let policy_sync = policy_sync::run(Arc::clone(catalog)).await?;
    Ok(Actors {
        writer,
        alerting,
        scorer,
        policy_applied,
        policy_feed,
        policy_sync,
    })
}

/// The scoring path every source shares, and the actor deciding events other members route
/// here.
struct Scoring {
    decider: Arc<NodeDecider>,
    owner_gate: ActorRef<OwnerMessage>,
}

/// Builds the scoring path: the Kafka publisher (creating the topics when configured to), the
/// live figures, this node's partition ownership and, with Kafka, routing HTTP events to the
/// member owning their partition; then starts the gate through which members send events here.
async fn start_scoring(
    config: &NodeConfig,
    scorer: &Scorer,
    currencies: Arc<Currencies>,
) -> anyhow::Result<Scoring> {
    let publisher = match &config.kafka {
        Some(kafka) => {
            if kafka.create_topics {
                kafka::ensure_topics(kafka)
                    .await
                    .context("creating Kafka topics")?;
            }
            Some(Publisher::new(kafka)?)
        }
        None => None,
    };
    let ownership = kafka::PartitionOwnership::default();
    if config.kafka.is_some() {
        // A user of a partition another node owns must come back from the store.
        let owner = ownership.clone();
        scorer.park_only(Arc::new(move |user: &str| owner.owns(user)));
    }
    let decider = Arc::new(NodeDecider {
        scorer: scorer.clone(),
        publisher,
        stats: Arc::new(LiveStats::new()),
        live: sentinel_api::dashboard::LiveFeed::default(),
        node_name: config.cluster.node_name.clone(),
        ownership: ownership.clone(),
        owner_route: config
            .kafka
            .is_some()
            .then(|| OwnerRoute::new(ownership.clone())),
        currencies,
    });
    let owner_gate = owner_route::start(Arc::clone(&decider)).await?;
    Ok(Scoring {
        decider,
        owner_gate,
    })
}

/// The API being served, and this node's entry in the cluster view.
struct Api {
    /// What `/readyz` answers.
    ready: Arc<AtomicBool>,
    http_addr: SocketAddr,
    http: JoinHandle<()>,
    /// Upkeep of the metrics recorder.
    upkeep: JoinHandle<()>,
    node_info: ActorRef<NodeInfoMessage>,
    /// Forgets the API keys other members revoke.
    key_listener: ActorRef<key_revocations::KeyNotice>,
    /// Stored answers to `Idempotency-Key` requests; some are still being stored at a stop.
    idempotency: Arc<sentinel_api::Idempotency>,
    idempotency_expiry: Option<JoinHandle<()>>,
}

/// Builds the REST API (authentication, idempotency, CORS), binds its listener (with TLS when
/// configured), joins the cluster view with its address, announces a demo's token, and serves
/// it until `stop`; also the metrics recorder's upkeep and, on the node owning the store, the
/// expiry of idempotency keys.
async fn serve_api(
    config: &NodeConfig,
    process: &Process,
    store: &Arc<dyn Store>,
    catalog: &Arc<Catalog>,
    actors: &Actors,
    decider: &Arc<NodeDecider>,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Api> {
    let ready = Arc::new(AtomicBool::new(false));
    let retention = Duration::from_secs(config.idempotency_retention_secs);
    let request_timeout = Duration::from_secs(config.request_timeout_secs);
    // With its own embedded store, answers join the decision writer's batches (one local commit
    // for both); a member's writes travel to the store host and ScyllaDB shares no commit, so
    // there answers keep a pipeline of their own beside the writer's.
    let local_commit =
        config.cluster.owns_store() && matches!(config.store.backend, StoreBackend::Embedded);
    let idempotency = Arc::new(
        match local_commit {
            true => sentinel_api::Idempotency::with_writer(actors.writer.clone(), retention),
            false => sentinel_api::Idempotency::new(Arc::clone(store), retention),
        }
        .saving_within(request_timeout),
    );
    let idempotency_expiry = config
        .cluster
        .owns_store()
        .then(|| tokio::spawn(expire_idempotency_keys(Arc::clone(&idempotency))));
    let keys = sentinel_api::ApiKeys::new(&config.auth, Arc::clone(store))
        .map_err(anyhow::Error::msg)?
        .announcing_revocations_to(Arc::new(key_revocations::ClusterKeyNotice));
    let key_listener = key_revocations::start(keys.verified()).await?;
    let api = sentinel_api::app(ApiContext {
        decider: Arc::clone(decider) as Arc<dyn sentinel_api::Decider>,
        store: Arc::clone(store),
        catalog: Arc::clone(catalog),
        backtests: Arc::default(),
        aggregates: Arc::default(),
        policy_applied: actors.policy_applied.clone(),
        limits: Arc::clone(&process.limits),
        metrics: Arc::new(Prometheus(process.metrics.clone())),
        ready: Arc::clone(&ready),
        live: decider.live.clone(),
        idempotency: Arc::clone(&idempotency),
        heavy_queries: Arc::default(),
        scoring_slots: Arc::new(tokio::sync::Semaphore::new(
            config.http_max_scoring_in_flight.max(1),
        )),
        auth: Arc::new(
            sentinel_api::Authenticator::new(&config.auth, keys).map_err(anyhow::Error::msg)?,
        ),
    });
    let api = if config.cors_allowed_origins.is_empty() {
        api
    } else {
        api.layer(sentinel_api::cors(&config.cors_allowed_origins).map_err(anyhow::Error::msg)?)
    };
    let tls = crate::http::tls::acceptor(
        config.tls_cert_file.as_deref(),
        config.tls_key_file.as_deref(),
    )?;
    let listener = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("binding {}", config.http_listen))?;
    let http_addr = listener.local_addr()?;
    let node_info = cluster_view::start(cluster_view::LocalNode {
        node: config.cluster.node_name.clone(),
        http: http_addr.to_string(),
        store_host: config
            .cluster
            .store_host
            .clone()
            .unwrap_or_else(|| config.cluster.node_name.clone()),
        ownership: decider.ownership.clone(),
        scorer: actors.scorer.clone(),
        policy_applied: actors.policy_applied.clone(),
    })
    .await?;
    if let Some(token) = &process.demo_token {
        security::announce_demo_token(token, http_addr);
    }
    let api = listener::with_request_timeout(api, request_timeout);
    let api = sentinel_api::hosts::check_hosts(
        api,
        sentinel_api::hosts::AllowedHosts::new(&config.http_allowed_hosts, http_addr),
    );
    let http = tokio::spawn(listener::serve(
        listener,
        api,
        listener::ConnectionLimits::of(config),
        tls,
        stop.clone(),
    ));
    let upkeep = {
        let metrics = process.metrics.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = tick.tick() => metrics.run_upkeep(),
                    _ = stop.changed() => return,
                }
            }
        })
    };
    Ok(Api {
        ready,
        http_addr,
        http,
        upkeep,
        node_info,
        key_listener,
        idempotency,
        idempotency_expiry,
    })
}

/// The event sources besides HTTP.
struct Sources {
    tasks: Vec<JoinHandle<()>>,
    /// How long the demo runs; `None`: until stopped.
    demo_duration: Option<Duration>,
}

/// Starts the demo's simulator (a producer to the input topic when Kafka is configured, so
/// events take the Kafka path; otherwise straight into the scoring path) and the Kafka
/// consumer, each until `stop`.
fn start_sources(
    config: &NodeConfig,
    source: Source,
    decider: &Arc<NodeDecider>,
    limits: &Arc<Limits>,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Sources> {
    let mut tasks = Vec::new();
    let demo_duration = match source {
        Source::Demo(options) => {
            let duration = options.duration;
            let feed = match &config.kafka {
                Some(kafka) => demo::Feed::Topic {
                    producer: kafka::producer(kafka)?,
                    topic: kafka.input_topic.clone(),
                },
                None => demo::Feed::Direct(Arc::clone(decider)),
            };
            tasks.push(tokio::spawn(demo::run_simulator(
                options,
                feed,
                stop.clone(),
            )));
            duration
        }
        Source::External => None,
    };
    if let Some(kafka) = config.kafka.clone() {
        let dead_letter = DeadLetter::new(&kafka)?;
        let decider = Arc::clone(decider);
        let limits = Arc::clone(limits);
        let stop = stop.clone();
        let ownership = decider.ownership.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) =
                kafka::run_consumer(kafka, decider, dead_letter, limits, ownership, stop).await
            {
                tracing::error!(error = %e, "the Kafka source stopped");
            }
        }));
    }
    Ok(Sources {
        tasks,
        demo_duration,
    })
}

/// Everything a started node runs, for [`drain`] to stop.
struct Started {
    cluster_node: ActorRef<NodeServerMessage>,
    catalogue: Catalogue,
    actors: Actors,
    scoring: Scoring,
    api: Api,
    sources: Vec<JoinHandle<()>>,
    /// The live one-line summary.
    summary: JoinHandle<()>,
}

/// Stops a node: not ready; sources stop taking events and finish what they hold while the
/// HTTP server finishes its requests (both still decided by the scorer), and the answers sent
/// are stored for replay; then user actors passivate (snapshotting), the writer flushes, alert
/// delivery stops; then the remaining tasks and actors (the entity-risk index saved for the
/// next start), and the cluster node last.
async fn drain(node: Started, stop: watch::Sender<bool>) -> anyhow::Result<()> {
    tracing::info!("stopping: draining sources");
    node.api.ready.store(false, Ordering::Relaxed);
    let _ = stop.send(true);
    // HTTP requests in flight are decided like the sources' events: the scorer stops after both.
    let sources = async {
        for source in node.sources {
            let _ = source.await;
        }
    };
    let _ = tokio::join!(sources, node.api.http);
    // Scoring answers go out before their replay records are stored: store those last ones.
    node.api.idempotency.finish_saves().await;
    let passivated = node.actors.scorer.shutdown().await;
    let flushed = node.actors.writer.flush().await;
    node.actors.alerting.stop().await;
    let _ = node.summary.await;
    let _ = node.api.upkeep.await;
    flushed.context("flushing the store")?;
    node.actors.policy_feed.abort();
    node.actors.policy_sync.abort();
    // After the flush, so that its save holds every decision this node stored.
    node.catalogue
        .entity_refresh
        .stop(Duration::from_secs(10))
        .await;
    node.api.node_info.stop(None);
    node.api.key_listener.stop(None);
    node.scoring.owner_gate.stop(None);
    if let Some(expiry) = node.api.idempotency_expiry {
        expiry.abort();
    }
    node.cluster_node.stop(None);
    tracing::info!(passivated, "stopped cleanly");
    Ok(())
}

/// The configured store backend (and, for the embedded one, its retention task).
pub(crate) async fn open_store(config: &NodeConfig) -> anyhow::Result<Arc<dyn Store>> {
    config.store.validate()?;
    Ok(match config.store.backend {
        StoreBackend::Embedded => {
            let engine = config.store.engine_in(&config.data_dir)?;
            let path = engine.path(&config.data_dir);
            let store = sentinel_store::open_embedded(
                &config.data_dir,
                engine,
                sentinel_store::EmbeddedOptions {
                    cache_bytes: config.store.cache_mib * 1024 * 1024,
                    max_concurrent_reads: config.store.max_concurrent_reads,
                },
            )
            .with_context(|| format!("opening the store at {}", path.display()))?;
            log_head::check_watermark(&config.data_dir, store.as_ref())
                .await
                .with_context(|| format!("opening the store at {}", path.display()))?;
            tokio::spawn(log_head::keep_watermark(
                config.data_dir.clone(),
                Arc::clone(&store),
            ));
            if config.store.retention_days > 0 {
                tokio::spawn(retention::run(
                    Arc::clone(&store),
                    config.store.retention_days,
                    lateness_ms(config),
                ));
            }
            tokio::spawn(log_head::run(Arc::clone(&store)));
            store
        }
        StoreBackend::Scylla => {
            let mut scylla = config.store.scylla.clone();
            scylla.decision_retention_days = config.store.retention_days;
            let store = sentinel_store_scylla::ScyllaStore::connect(&scylla)
                .await
                .with_context(|| format!("opening the ScyllaDB store at {:?}", scylla.nodes))?;
            tracing::info!(nodes = ?scylla.nodes, keyspace = %scylla.keyspace, "ScyllaDB store ready");
            Arc::new(store)
        }
    })
}

/// Deletes idempotency keys past their retention, once a minute.
async fn expire_idempotency_keys(idempotency: Arc<sentinel_api::Idempotency>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        if let Err(e) = idempotency.expire(chrono::Utc::now()).await {
            tracing::warn!(error = %e, "expiring idempotency keys failed");
        }
    }
}

/// Resolves on Ctrl-C, SIGTERM, or after `limit`.
pub(crate) async fn wait_for_stop(limit: Option<Duration>) {
    let timer = async {
        match limit {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let terminate = async {
        #[cfg(unix)]
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
        _ = timer => {}
    }
}

/// Sends every new policy version to the user actors as an actor message (announcing each
/// version once every actor has it), and recompiles when list items expire (only on the node
/// that owns the store, so cluster members do not race to publish the same version).
async fn broadcast_policies(
    catalog: Arc<Catalog>,
    scorer: Scorer,
    applied: watch::Sender<u64>,
    expire_lists: bool,
) {
    let mut updates = catalog.subscribe();
    let mut expiry = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            changed = updates.changed() => {
                if changed.is_err() {
                    return;
                }
                let policy = updates.borrow_and_update().clone();
                tracing::info!(version = policy.rules.version, "broadcasting policy");
                let version = policy.rules.version;
                scorer.set_policy(policy).await;
                applied.send_replace(version);
            }
            _ = expiry.tick(), if expire_lists => {
                if let Err(e) = catalog.expire_list_items(chrono::Utc::now()).await {
                    tracing::warn!(error = %e, "expiring list items failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The library's surface is enough to run a node in-process: every start-up step, the
    /// scoring path and the drain, without spawning the binary.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_demo_node_starts_decides_and_drains_in_process() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = NodeConfig {
            data_dir: dir.path().to_owned(),
            http_listen: "127.0.0.1:0".parse().unwrap(),
            ..NodeConfig::default()
        };
        config.cluster.port = 0;
        let demo = DemoOptions {
            rate: 200.0,
            users: 50,
            fraud_ratio: 0.01,
            seed: 7,
            daily_rhythm: false,
            duration: Some(Duration::from_secs(2)),
        };
        run(config, Source::Demo(demo)).await.unwrap();
        assert!(dir.path().join("sentinel.lsm").exists());
        let decided: f64 = telemetry::prometheus()
            .render()
            .lines()
            .filter(|l| l.starts_with(telemetry::DECISIONS))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert!(decided > 0.0, "no decision counted");
    }
}
