//! The analyst labels as an entity-risk index: every stored label with the merchant and device
//! of the transaction it labels. Training builds it once for the period it replays; a node
//! publishes a fresh one to its user actors periodically and whenever a label is posted to it
//! ([`Catalog::label_posted`]).
//! The labels live in the store, so every node of a cluster sharing it converges.

use crate::catalog::{decode, scan_all, Catalog};
use crate::error::CatalogError;
use crate::records::{Label, LabelValue};
use sentinel_actors::{LabelRisk, LabelSighting};
use sentinel_store::RecordKind;
use std::collections::HashMap;
use std::sync::Arc;

/// Merchant and device ids by labelled transaction id (they never change once decided).
pub(crate) type LabelledEntities = HashMap<String, (Option<String>, Option<String>)>;

impl Catalog {
    /// Every stored label indexed for events that see labels `delay_ms` after they are given.
    pub async fn label_index(&self, delay_ms: i64) -> Result<LabelRisk, CatalogError> {
        let store = self.store();
        let mut known = self.labelled_entities.lock().await;
        let mut seen = LabelledEntities::with_capacity(known.len());
        let mut sightings = Vec::new();
        for (transaction_id, bytes) in scan_all(&**store, RecordKind::Label).await? {
            let label: Label = decode(&bytes)?;
            let entities = match known.remove(&transaction_id) {
                Some(entities) => entities,
                None => store.decision(&transaction_id).await?.map_or_else(
                    || (None, None),
                    |d| (d.event.merchant_id.clone(), d.event.device_id.clone()),
                ),
            };
            sightings.push(LabelSighting::new(
                label.at.timestamp_millis(),
                entities.0.as_deref(),
                entities.1.as_deref(),
                label.label == LabelValue::Fraud,
            ));
            seen.insert(transaction_id, entities);
        }
        // Only transactions still labelled stay remembered.
        *known = seen;
        Ok(LabelRisk::build(delay_ms, sightings))
    }

    /// Rebuilds the live label index from the store and hands it to every user actor.
    /// Returns the number of labels indexed.
    pub async fn refresh_label_risk(&self, delay_ms: i64) -> Result<usize, CatalogError> {
        let index = self.label_index(delay_ms).await?;
        let labels = index.labels();
        self.label_risk.publish(Arc::new(index));
        Ok(labels)
    }

    /// Resolves once a label has been posted here since the last call (at once if one was).
    pub async fn label_posted(&self) {
        self.label_posted.notified().await;
    }
}

#[cfg(test)]
mod tests;
