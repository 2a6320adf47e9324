//! SentinelStream's per-user actors.
//!
//! ```text
//! Scorer ──hash(user)──► UserShard (supervisor, one per core) ──► UserActor(user_id)
//!                                                                  │ window + profile
//!                                                                  │ rules (Policy)
//!                                                                  ▼
//!                                                         Writer (group commit) ──► caller
//! ```
//!
//! - [`Scorer`]: the entry point: `score(event)` resolves once the decision is durable.
//! - `UserShard`: supervises the user actors of its share of the key space: spawns them on
//!   first use, passivates idle ones (snapshot, stop), restarts failed ones from their snapshot.
//! - `UserActor`: one per live user; holds [`UserState`] and decides that user's events in
//!   order.
//! - [`Policy`]: rules, lists, thresholds and the machine-learned [`Models`], replaced as a
//!   whole by an actor message.
//! - [`EntityRisk`]: activity and known fraud per merchant and device, read point-in-time by
//!   the model features; live through a lock-free [`EntityRiskFeed`].

mod entities;
mod entity_risk;
mod features;
mod geo;
mod hash;
mod ledger;
pub mod metrics;
mod ml_features;
mod models;
mod policy;
mod profile;
mod replay;
mod restore;
mod restorer;
mod scorer;
mod screen;
mod shard;
mod snapshot;
mod state;
mod user_actor;
mod window;

pub use entities::{
    Entities, EntityCounts, EntityKey, EntityKind, EntityRoute, EntityTable, KindSet, LookupMode,
    OtherUsers, Sighting, ENTITY_RETENTION_MS, ENTITY_TIMEOUT,
};
pub use entity_risk::{
    EntityActivity, EntityRisk, EntityRiskFeed, LabelSighting, DEFAULT_LABEL_DELAY_MS,
    N_RISK_VALUES, RISK_WINDOWS_MS,
};
pub use features::{catalogue, schema, EventFacts, RETENTION_MS};
pub use ledger::Ledger;
pub use ml_features::extract as extract_features;
pub use models::{Models, Scored};
pub use policy::{Lists, Policy, PolicyDef, PolicyError};
pub use replay::FeatureReplay;
pub use scorer::{Scorer, ScorerConfig};
pub use screen::Screened;
pub use shard::UserFilter;
pub use snapshot::{decode as decode_snapshot, encode as encode_snapshot, SnapshotError};
pub use state::{entry_of, UserState, UserView, WindowView};
pub use window::{Entry, Key, Placement, Stats, Window};
