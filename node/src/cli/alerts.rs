//! `sentinel alerts`: the node's alerting as a separate process that consumes the fraud topic,
//! for teams that run scoring and alerting apart. It keeps its own store (decisions it has seen
//! and the alert outbox) in `<data_dir>/alerts.redb` and serves `/metrics`, `/healthz` and the alert API (`GET /v1/alerts`,
//! `POST /v1/alerts/{id}/retry`).

use crate::alerting::{self, Alerting};
use crate::config::NodeConfig;
use crate::{kafka, telemetry};
use anyhow::Context;
use axum::routing::get;
use sentinel_store::{EmbeddedStore, Store, Writer, WriterConfig, WriterHooks};
use std::sync::Arc;
use tokio::sync::watch;

/// Runs until Ctrl-C or SIGTERM, then drains: the consumer stops, stored decisions' offsets
/// are committed, the delivery actor finishes its pass (undelivered alerts stay pending).
pub async fn run(mut config: NodeConfig, group: String) -> anyhow::Result<()> {
    telemetry::init_logs(config.log_format);
    // The alert API needs credentials like the node's: no configuration, no start.
    crate::security::prepare(&mut config.auth, false)?;
    let metrics = telemetry::prometheus();
    let kafka = config
        .kafka
        .clone()
        .context("`sentinel alerts` needs --kafka-brokers (or [kafka] in the config)")?;
    anyhow::ensure!(
        config.alerts.enabled(),
        "no [[alerts.sinks]] configured: nothing to send alerts to"
    );
    let store_path = config.data_dir.join("alerts.redb");
    let store: Arc<dyn Store> = Arc::new(
        EmbeddedStore::open(&store_path)
            .with_context(|| format!("opening the alert store at {}", store_path.display()))?,
    );
    let routing = alerting::routing(&config.alerts)?;
    let hooks = WriterHooks {
        alerts: routing,
        observer: None,
    };
    let writer = Writer::start_with(Arc::clone(&store), WriterConfig::default(), hooks);
    let alerts = Alerting::start(&config.alerts, Arc::clone(&store)).await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let auth = Arc::new(
        sentinel_api::Authenticator::new(
            &config.auth,
            sentinel_api::ApiKeys::new(&config.auth, Arc::clone(&store))
                .map_err(anyhow::Error::msg)?,
        )
        .map_err(anyhow::Error::msg)?,
    );
    // The same access table and guard as the node's API: the alert routes need an analyst,
    // health is open, metrics open unless `[auth] metrics_require_token`.
    let app = sentinel_api::alerts::routes()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(move || async move { metrics.render() }))
        .route_layer(axum::middleware::from_fn_with_state(
            auth,
            sentinel_api::auth::guard,
        ))
        .route_layer(axum::middleware::from_fn(
            sentinel_api::content_type::require_json,
        ))
        .with_state(sentinel_api::alerts::AlertStore(Arc::clone(&store)));
    let listener = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("binding {}", config.http_listen))?;
    let http_addr = listener.local_addr()?;
    // The node's listener and guards: request, header and handshake timeouts, the connection
    // cap, JSON-only writes and the Host check.
    let app = crate::http::listener::with_request_timeout(
        app,
        std::time::Duration::from_secs(config.request_timeout_secs),
    );
    let app = sentinel_api::hosts::check_hosts(
        app,
        sentinel_api::hosts::AllowedHosts::new(&config.http_allowed_hosts, http_addr),
    );
    let http = tokio::spawn(crate::http::listener::serve(
        listener,
        app,
        crate::http::listener::ConnectionLimits::of(&config),
        None,
        stop_rx.clone(),
    ));
    let consumer = tokio::spawn(kafka::run_alerts_consumer(
        kafka,
        group,
        writer.clone(),
        stop_rx,
    ));
    tracing::info!(
        http = %format!("http://{}", config.http_listen),
        sinks = config.alerts.sinks.len(),
        "alerts consumer ready"
    );
    crate::node::wait_for_stop(None).await;
    tracing::info!("stopping the alerts consumer");
    let _ = stop_tx.send(true);
    match consumer.await {
        Ok(result) => result.context("the alerts consumer failed")?,
        Err(e) => anyhow::bail!("the alerts consumer panicked: {e}"),
    }
    writer.flush().await.context("flushing the alert store")?;
    alerts.stop().await;
    let _ = http.await;
    tracing::info!("stopped cleanly");
    Ok(())
}
