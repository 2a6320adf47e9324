//! The analyst catalogue.
//!
//! Rules change while money moves. Every change to a rule or a list is validated by compiling
//! the whole resulting policy (so nothing invalid is ever stored or broadcast), stored as a new
//! immutable version together with its audit entry in one atomic write, and published as a new
//! policy version that the node broadcasts to every user actor. Decisions record the policy
//! version that made them. Machine-learned models are uploaded, activated and rolled back here
//! too; an activation is a policy change like any other.

pub mod backtest;
mod catalog;
mod decision_days;
mod entity_index;
mod error;
mod labels;
mod models;
mod records;
pub mod training;

pub use catalog::{Candidate, Catalog, ItemChange, RuleChange, RuleFilter};
pub use entity_index::{
    DecisionsCounted, EntityIndexSize, Refusal, RestoreOutcome, SavedIndex, SavedIndexError,
};
pub use error::CatalogError;
pub use labels::{LabelInput, LabelOutcome, LabelRow, MAX_LABEL_BATCH};
pub use models::{Deployment, ModelRole, ModelSummary};
pub use records::{
    AuditEntry, Label, LabelSource, LabelValue, ListItem, ListRecord, RuleTest, RuleVersion,
};
