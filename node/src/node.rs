//! Starting, running and draining one node.

use crate::alerting::{self, Alerting};
use crate::cluster::{self, policy_sync, remote_store, view as cluster_view};
use crate::config::{NodeConfig, StoreBackend};
use crate::decider::NodeDecider;
use crate::demo::{self, DemoOptions};
use crate::http::listener;
use crate::kafka::{self, DeadLetter, Publisher};
use crate::stats::{self, LiveStats};
use crate::{log_head, retention, security, telemetry};
use anyhow::Context;
use sentinel_actors::Scorer;
use sentinel_api::{ApiContext, MetricsRender};
use sentinel_catalog::Catalog;
use sentinel_engine::PolicyDef;
use sentinel_store::{EmbeddedStore, Store, Writer, WriterConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Where events come from besides HTTP.
pub enum Source {
    /// The built-in simulator.
    Demo(DemoOptions),
    /// Kafka when configured; otherwise HTTP only.
    External,
}

struct Prometheus(metrics_exporter_prometheus::PrometheusHandle);

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
pub async fn run(mut config: NodeConfig, source: Source) -> anyhow::Result<()> {
    telemetry::init_logs(config.log_format);
    let demo_token = security::prepare(&mut config.auth, matches!(source, Source::Demo(_)))?;
    crate::unsafe_settings::warn_about(&config);
    let metrics = telemetry::prometheus();
    let limits = Arc::new(config.event_limits()?);
    let currencies = crate::currency::Currencies::new(&config.currency)?;
    currencies.watch(&config.currency);

    let cluster_node = cluster::start(&config.cluster).await?;
    let store = remote_store::open(&config, &cluster_node, open_store(&config)).await?;
    let seed = seed_policy(&config)?;
    let scorer_config = config.actors.scorer();
    let lateness_ms = i64::try_from(scorer_config.lateness.as_millis()).unwrap_or(i64::MAX);
    let catalog = Arc::new(
        Catalog::open(Arc::clone(&store), seed, lateness_ms)
            .await
            .context("loading the rule catalogue")?,
    );
    crate::startup_model::install(&catalog, &config.model).await?;
    // Peers join once the catalogue and model are in place: they may read them, never seed them.
    if config.cluster.owns_store() {
        remote_store::serve_store(&config.cluster.node_name, Arc::clone(&store)).await?;
    }
    let entity_refresh =
        crate::cluster::entity_refresh::start(Arc::clone(&catalog), &config.model).await?;
    let policy = catalog.policy();
    if config.policy_file.is_some() && policy.rules.version > 1 {
        tracing::warn!("--policy only seeds an empty store; this store already has a catalogue");
    }
    tracing::info!(
        version = policy.rules.version,
        rules = policy.rules.rules().len(),
        "policy loaded"
    );
    let alert_routing = alerting::routing(&config.alerts)?;
    let writer =
        Writer::start_with_alerts(Arc::clone(&store), WriterConfig::default(), alert_routing);
    // The node that owns the store delivers the alerts in its outbox (peers may not move them).
    let alerting = match config.cluster.owns_store() {
        true => Alerting::start(&config.alerts, Arc::clone(&store)).await?,
        false => Alerting::idle(),
    };
    let scorer = Scorer::start(writer.clone(), policy, scorer_config)
        .await
        .context("starting the user actors")?;
    crate::cluster::entity_placement::start(&config.cluster.node_name, scorer.entities().clone())
        .await?;
    let (applied_tx, applied_rx) = watch::channel(catalog.policy().rules.version);
    let policy_feed = tokio::spawn(broadcast_policies(
        Arc::clone(&catalog),
        scorer.clone(),
        applied_tx,
        config.cluster.owns_store(),
    ));
    let policy_sync = policy_sync::run(Arc::clone(&catalog)).await?;

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
    let stats = Arc::new(LiveStats::new());
    let live = sentinel_api::dashboard::LiveFeed::default();
    let ownership = kafka::PartitionOwnership::default();
    let decider = Arc::new(NodeDecider {
        scorer: scorer.clone(),
        publisher,
        stats: Arc::clone(&stats),
        live: live.clone(),
        node_name: config.cluster.node_name.clone(),
        ownership: ownership.clone(),
        owner_route: config
            .kafka
            .is_some()
            .then(|| crate::cluster::owner_route::OwnerRoute::new(ownership.clone())),
        currencies,
    });
    let owner_gate = crate::cluster::owner_route::start(Arc::clone(&decider)).await?;

    let ready = Arc::new(AtomicBool::new(false));
    let idempotency = Arc::new(sentinel_api::Idempotency::new(
        Arc::clone(&store),
        Duration::from_secs(config.idempotency_retention_secs),
    ));
    let idempotency_expiry = config
        .cluster
        .owns_store()
        .then(|| tokio::spawn(expire_idempotency_keys(Arc::clone(&idempotency))));
    let api = sentinel_api::app(ApiContext {
        decider: Arc::clone(&decider) as Arc<dyn sentinel_api::Decider>,
        store: Arc::clone(&store),
        catalog: Arc::clone(&catalog),
        backtests: Arc::default(),
        aggregates: Arc::default(),
        policy_applied: applied_rx.clone(),
        limits: Arc::clone(&limits),
        metrics: Arc::new(Prometheus(metrics.clone())),
        ready: Arc::clone(&ready),
        live,
        idempotency,
        heavy_queries: Arc::default(),
        auth: Arc::new(
            sentinel_api::Authenticator::new(
                &config.auth,
                sentinel_api::ApiKeys::new(&config.auth.api_keys, Arc::clone(&store))
                    .map_err(anyhow::Error::msg)?,
            )
            .map_err(anyhow::Error::msg)?,
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
        ownership: ownership.clone(),
        scorer: scorer.clone(),
        policy_applied: applied_rx,
    })
    .await?;
    if let Some(token) = &demo_token {
        security::announce_demo_token(token, http_addr);
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let api = listener::with_request_timeout(api, Duration::from_secs(config.request_timeout_secs));
    let api = sentinel_api::hosts::check_hosts(
        api,
        sentinel_api::hosts::AllowedHosts::new(&config.http_allowed_hosts, http_addr),
    );
    let http = tokio::spawn(listener::serve(
        listener,
        api,
        listener::ConnectionLimits::of(&config),
        tls,
        stop_rx.clone(),
    ));
    let upkeep = {
        let metrics = metrics.clone();
        let mut stop = stop_rx.clone();
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

    let mut sources = Vec::new();
    let demo_duration = match source {
        Source::Demo(options) => {
            let duration = options.duration;
            // With Kafka configured the simulator is a producer, and events take the Kafka path.
            let feed = match &config.kafka {
                Some(kafka) => demo::Feed::Topic {
                    producer: kafka::producer(kafka)?,
                    topic: kafka.input_topic.clone(),
                },
                None => demo::Feed::Direct(Arc::clone(&decider)),
            };
            sources.push(tokio::spawn(demo::run_simulator(
                options,
                feed,
                stop_rx.clone(),
            )));
            duration
        }
        Source::External => None,
    };
    if let Some(kafka) = config.kafka.clone() {
        let dead_letter = DeadLetter::new(&kafka)?;
        let decider = Arc::clone(&decider);
        let limits = Arc::clone(&limits);
        let stop = stop_rx.clone();
        let ownership = ownership.clone();
        sources.push(tokio::spawn(async move {
            if let Err(e) =
                kafka::run_consumer(kafka, decider, dead_letter, limits, ownership, stop).await
            {
                tracing::error!(error = %e, "the Kafka source stopped");
            }
        }));
    }
    let summary = tokio::spawn(stats::print_every(
        Arc::clone(&stats),
        scorer.clone(),
        Duration::from_secs(5),
        stop_rx.clone(),
    ));

    ready.store(true, Ordering::Relaxed);
    tracing::info!(
        http = %format!("http://{http_addr}"),
        data_dir = %config.data_dir.display(),
        kafka = config.kafka.as_ref().map(|k| k.brokers.as_str()).unwrap_or("off"),
        "node ready"
    );

    wait_for_stop(demo_duration).await;
    tracing::info!("stopping: draining sources");
    ready.store(false, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    for source in sources {
        let _ = source.await;
    }
    let passivated = scorer.shutdown().await;
    writer.flush().await.context("flushing the store")?;
    alerting.stop().await;
    let _ = summary.await;
    let _ = upkeep.await;
    let _ = http.await;
    policy_feed.abort();
    policy_sync.abort();
    entity_refresh.abort();
    node_info.stop(None);
    owner_gate.stop(None);
    if let Some(expiry) = idempotency_expiry {
        expiry.abort();
    }
    cluster_node.stop(None);
    tracing::info!(passivated, "stopped cleanly");
    Ok(())
}

/// The configured store backend (and, for the embedded one, its retention task).
pub(crate) async fn open_store(config: &NodeConfig) -> anyhow::Result<Arc<dyn Store>> {
    config.store.validate()?;
    Ok(match config.store.backend {
        StoreBackend::Embedded => {
            let path = config.data_dir.join("sentinel.redb");
            let store = EmbeddedStore::open_with_cache(&path, config.store.cache_mib * 1024 * 1024)
                .with_context(|| format!("opening the store at {}", path.display()))?;
            if config.store.retention_days > 0 {
                tokio::spawn(retention::run(store.clone(), config.store.retention_days));
            }
            tokio::spawn(log_head::run(store.clone()));
            Arc::new(store)
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
