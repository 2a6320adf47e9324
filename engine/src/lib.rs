//! SentinelStream's decision engine: everything that decides an event, as plain data and
//! functions, with no actor runtime, async runtime or store. The actors crate runs it per user;
//! the catalogue, training, backtests and benches call it directly.
//!
//! ```text
//! Transaction ──► UserState::decide_with(event, &Policy, &EntityCounts)
//!                  │ entry_of ─► Window (event-time buckets), Profile, Ledger
//!                  │ EventFacts (the rule fields) ─► the Policy's rules
//!                  │ Models: ML features (with EntityRisk) ─► sentinel-model
//!                  ▼
//!               Decision
//! ```
//!
//! Map of the modules:
//! - `policy`: [`PolicyDef`] (rules, lists, thresholds; the seed in `default_policy.json`)
//!   compiled into a [`Policy`] with its [`Models`] (`models`).
//! - `state`: [`UserState`], one user's window, profile and ledger; `decide`, `replay`,
//!   `observe`, and the read-only [`UserView`].
//! - `window`: the event-time [`Window`] of [`Entry`]s and its [`Stats`]; `profile`: the
//!   user's habits (average spend, home, devices); `ledger`: the running [`Ledger`].
//! - `features`: the rule fields of one event ([`EventFacts`], [`catalogue`], [`schema`]);
//!   `ml_features`: the model's feature vector ([`extract_features`]).
//! - `entities`: shared entities (cards, devices, IPs, merchants): [`EntityTable`] counts the
//!   other users of each, [`EntityCounts`] is what one event learnt.
//! - `entity_risk`: per merchant and device activity and known fraud, read point-in-time
//!   ([`EntityRisk`], live through [`EntityRiskFeed`]).
//! - `replay`: [`FeatureReplay`], the training path's features, equal to live scoring's.
//! - `screened`: [`Screened`], what live scoring would answer for an event (what-if).
//! - `hash` ([`id_hash`], stable across releases), [`metrics`].

mod entities;
mod entity_risk;
mod features;
mod hash;
mod ledger;
pub mod metrics;
mod ml_features;
mod models;
mod policy;
mod profile;
mod replay;
mod screened;
mod state;
mod window;

pub use entities::{
    EntityCounts, EntityKey, EntityKind, EntityTable, KindSet, LookupMode, OtherUsers, Sighting,
    ENTITY_RETENTION_MS, MAX_ENTITIES_PER_TABLE, MAX_USERS_PER_ENTITY,
};
pub use entity_risk::{
    hour_visible, ActivityError, EntityActivity, EntityRisk, EntityRiskFeed, LabelSighting,
    DEFAULT_LABEL_DELAY_MS, N_RISK_VALUES, RISK_WINDOWS_MS,
};
pub use features::{catalogue, schema, EventFacts, RETENTION_MS};
pub use hash::{id_hash, opt_hash};
pub use ledger::Ledger;
pub use ml_features::extract as extract_features;
pub use models::{Models, Scored};
pub use policy::{Lists, Policy, PolicyDef, PolicyError};
pub use replay::FeatureReplay;
pub use screened::Screened;
pub use state::{entities_of, entry_of, UserState, UserView, WindowView};
pub use window::{Entry, Key, Placement, Stats, Window};
