//! SentinelStream's per-user actors: the runtime around the pure engine (`sentinel-engine`).
//!
//! ```text
//! Scorer ──hash(user)──► UserShard (supervisor, one per core) ──► UserActor(user_id)
//!                                                                  │ UserState::decide
//!                                                                  │ (sentinel-engine)
//!                                                                  │ ◄──► Entities (locked tables)
//!                                                                  ▼
//!                                                         Writer (group commit) ──► caller
//! ```
//!
//! - [`Scorer`]: the entry point: `score(event)` resolves once the decision is durable; a
//!   [`Dispatch`] sends a burst of events with one message per shard.
//! - `UserShard`: supervises the user actors of its share of the key space: spawns them on
//!   first use, passivates idle ones (snapshot, stop) and keeps their states in memory for
//!   their return (`parked`), restarts failed ones from their snapshot.
//! - `UserActor`: one per live user; holds the user's `sentinel_engine::UserState` and decides
//!   that user's events in order, under the current `sentinel_engine::Policy` (replaced as a
//!   whole by an actor message).
//! - [`Entities`]: the actors holding the shared entities' tables (cards, devices, IPs,
//!   merchants), or an [`EntityRoute`] to their owners in a cluster.
//! - `screen`: what-if decisions (`sentinel_engine::Screened`) on detached copies of users'
//!   state, recording nothing.
//!
//! Windows, profiles, features, rules, models and replay are in `sentinel-engine`, which has
//! no actor runtime, so the catalogue, training and backtests use them directly.

mod dispatch;
mod entities;
pub mod metrics;
mod parked;
mod restore;
mod restorer;
mod scorer;
mod screen;
mod shard;
mod snapshot;
mod user_actor;

pub use dispatch::Dispatch;
pub use entities::{Entities, EntityRoute, ENTITY_TIMEOUT};
pub use restore::{snapshot_uncovered, Covered};
pub use scorer::{
    Scorer, ScorerConfig, DEFAULT_MAX_LIVE_USERS, DEFAULT_PARKED_STATE_BYTES,
    DEFAULT_PASSIVATION_SNAPSHOT_AFTER,
};
pub use shard::UserFilter;
pub use snapshot::{decode as decode_snapshot, encode as encode_snapshot, SnapshotError};
