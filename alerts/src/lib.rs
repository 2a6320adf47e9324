//! Alerting for SentinelStream: decisions routed to webhook, Slack and Discord sinks through a
//! durable outbox.
//!
//! - [`AlertsConfig`]: routes and sinks (`[alerts]` in the node's TOML file).
//! - [`AlertRouter`]: which alerts a decision owes; the store writer stores them in the
//!   decision's own write transaction (see `sentinel_store::outbox`).
//! - [`AlertDelivery`]: the ractor actor that drains the outbox with retries, backoff with
//!   jitter, per-sink circuit breakers and dead-lettering.
//! - [`payload`] and [`signature`]: what receivers get and how they verify it.

mod config;
mod delivery;
pub mod metrics;
pub mod payload;
mod router;
pub mod signature;

pub use config::{AlertsConfig, RouteConfig, SinkConfig, SinkKind};
pub use delivery::{AlertDelivery, DeliveryArgs, DeliveryMessage};
pub use router::AlertRouter;
