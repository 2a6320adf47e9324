//! The shared event model of SentinelStream.
//!
//! - [`Transaction`]: one card-transaction event, as producers send it (Kafka or HTTP) and as it is
//!   stored beside its decision.
//! - [`parse_transaction`]: bytes to a validated [`Transaction`], with an [`InvalidEvent`] that names
//!   the offending field when the input is bad.
//! - [`MappingConfig`]: how producers' own payloads (other names, nested fields, extra fields)
//!   map onto the schema; validated into a [`FieldMapping`] that [`parse_transaction`] applies.
//! - [`Decision`]: what the node decided about one transaction, and why.
//! - [`distance_km`]: great-circle distance between two event locations (the rules' and the
//!   simulator's one haversine).

mod base_amount;
mod decision;
mod error;
mod geo;
mod iso;
mod mapping;
mod rfc3339;
mod transaction;
mod validate;

pub use base_amount::BaseAmount;
pub use decision::{Decision, DecisionSummary, MlScore, Outcome, Reason, Thresholds};
pub use error::DecisionError;
pub use geo::distance_km;
pub use iso::{is_country, is_currency};
pub use mapping::{FieldMapping, MappingConfig, MappingError, UnknownFields};
pub use transaction::{Channel, Location, Transaction, TxnType};
pub use validate::{parse_transaction, Assigned, InvalidEvent, Limits, MessageOrigin, ParseMode};
