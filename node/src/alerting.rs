//! Wires the alerting path into a node: the router that the store writer consults for every
//! new decision, and the delivery actor that drains the outbox.

use anyhow::Context;
use ractor::{Actor, ActorRef};
use sentinel_alerts::{AlertDelivery, AlertRouter, AlertsConfig, DeliveryArgs, DeliveryMessage};
use sentinel_store::outbox::AlertRouting;
use sentinel_store::Store;
use std::sync::Arc;

/// The running delivery actor, if alerting is configured.
pub struct Alerting {
    delivery: Option<(ActorRef<DeliveryMessage>, tokio::task::JoinHandle<()>)>,
}

/// The router for the store writer, or `None` when no sink is configured. Registers the
/// alert metrics (at zero for every sink).
pub fn routing(config: &AlertsConfig) -> anyhow::Result<Option<Arc<dyn AlertRouting>>> {
    config.validate().map_err(anyhow::Error::msg)?;
    sentinel_alerts::metrics::register_sinks(config.sinks.iter().map(|s| s.name.as_str()));
    Ok(config
        .enabled()
        .then(|| Arc::new(AlertRouter::new(config)) as Arc<dyn AlertRouting>))
}

impl Alerting {
    /// Starts the delivery actor when sinks are configured; pending alerts left by an earlier
    /// run are resumed on its first pass.
    pub async fn start(config: &AlertsConfig, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        if !config.enabled() {
            return Ok(Alerting { delivery: None });
        }
        let args = DeliveryArgs {
            store,
            config: config.clone(),
        };
        let (actor, handle) = Actor::spawn(None, AlertDelivery, args)
            .await
            .context("starting the alert delivery actor")?;
        tracing::info!(sinks = config.sinks.len(), "alert delivery started");
        Ok(Alerting {
            delivery: Some((actor, handle)),
        })
    }

    /// No delivery on this node: a cluster peer whose store host delivers the alerts.
    pub fn idle() -> Self {
        Alerting { delivery: None }
    }

    /// Stops the delivery actor after its current pass; undelivered alerts stay pending.
    pub async fn stop(self) {
        if let Some((actor, handle)) = self.delivery {
            actor.stop(None);
            let _ = handle.await;
        }
    }
}
