//! Starting, running and draining one node.

use crate::config::NodeConfig;
use crate::decider::NodeDecider;
use crate::demo::{self, DemoOptions};
use crate::kafka::{self, DeadLetter, Publisher};
use crate::stats::{self, LiveStats};
use crate::{cluster, telemetry};
use anyhow::Context;
use sentinel_actors::{PolicyDef, Scorer};
use sentinel_api::{ApiState, MetricsRender};
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

/// Runs a node until Ctrl-C or SIGTERM (or the demo's duration), then drains: sources stop
/// taking events, in-flight decisions finish, offsets are committed, user actors snapshot.
pub async fn run(config: NodeConfig, source: Source) -> anyhow::Result<()> {
    telemetry::init_logs(config.log_format);
    let metrics = telemetry::prometheus();
    let limits = Arc::new(config.limits.limits()?);

    let policy_def = match &config.policy_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading policy {}", path.display()))?;
            serde_json::from_str::<PolicyDef>(&text)
                .with_context(|| format!("parsing policy {}", path.display()))?
        }
        None => PolicyDef::seed(),
    };
    let policy = Arc::new(policy_def.compile().context("compiling the policy")?);
    tracing::info!(
        version = policy.rules.version,
        rules = policy.rules.rules().len(),
        "policy loaded"
    );

    let store_path = config.data_dir.join("sentinel.redb");
    let store: Arc<dyn Store> = Arc::new(
        EmbeddedStore::open(&store_path)
            .with_context(|| format!("opening the store at {}", store_path.display()))?,
    );
    let writer = Writer::start(Arc::clone(&store), WriterConfig::default());
    let scorer = Scorer::start(writer.clone(), policy, config.actors.scorer())
        .await
        .context("starting the user actors")?;
    let cluster_node = cluster::start(&config.cluster).await?;

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
    let decider = Arc::new(NodeDecider {
        scorer: scorer.clone(),
        publisher,
        stats: Arc::clone(&stats),
    });

    let ready = Arc::new(AtomicBool::new(false));
    let api = sentinel_api::app(ApiState {
        decider: Arc::clone(&decider) as Arc<dyn sentinel_api::Decider>,
        store: Arc::clone(&store),
        limits: Arc::clone(&limits),
        metrics: Arc::new(Prometheus(metrics.clone())),
        ready: Arc::clone(&ready),
    });
    let listener = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("binding {}", config.http_listen))?;
    let http_addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut http_stop = stop_rx.clone();
    let http = tokio::spawn(async move {
        axum::serve(listener, api)
            .with_graceful_shutdown(async move {
                let _ = http_stop.changed().await;
            })
            .await
    });
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
            sources.push(tokio::spawn(demo::run_simulator(
                options,
                Arc::clone(&decider),
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
        sources.push(tokio::spawn(async move {
            if let Err(e) = kafka::run_consumer(kafka, decider, dead_letter, limits, stop).await {
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
    let _ = summary.await;
    let _ = upkeep.await;
    let _ = http.await;
    cluster_node.stop(None);
    tracing::info!(passivated, "stopped cleanly");
    Ok(())
}

/// Resolves on Ctrl-C, SIGTERM, or after `limit`.
async fn wait_for_stop(limit: Option<Duration>) {
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
