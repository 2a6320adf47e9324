//! Models in the catalogue: upload, list, activate (champion or challenger), roll back.
//!
//! Artifacts are validated before anything is stored, so a corrupt, truncated or mismatched
//! file is refused and the running model stays. Activation and rollback are policy changes:
//! they produce a new policy version carrying the models, stored with an audit entry and
//! broadcast to every user actor like a rule change.

use crate::catalog::{compile, decode, policy_writes, put, read, scan_all, Catalog};
use crate::error::CatalogError;
use crate::records::AuditEntry;
use chrono::{DateTime, Utc};
use sentinel_engine::Models;
use sentinel_model::{Artifact, Evaluation, Model, TrainingInfo};
use sentinel_store::{RecordKind, Store};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const DEPLOYMENT_KEY: &str = "current";
/// Earlier champions remembered for rollback.
const MAX_PREVIOUS: usize = 20;

/// Which models serve.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deployment {
    /// The model whose score decisions record and rules see.
    pub champion: Option<String>,
    /// The model scored in shadow beside it.
    pub challenger: Option<String>,
    /// Earlier champions, most recent last; rollback returns to the last.
    pub previous: Vec<String>,
}

/// The role a model is activated in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ModelRole {
    /// Scores every decision and is visible to rules.
    #[default]
    Champion,
    /// Scored in shadow and recorded; never decides.
    Challenger,
}

/// One change of deployment, for [`Catalog::deploy`].
struct Change<'a> {
    /// Audit action, e.g. `model.activate`.
    action: &'static str,
    /// The model concerned.
    id: &'a str,
    principal: &'a str,
    /// Whether the change is a new policy version (all but the start-up seed).
    new_version: bool,
    /// Further records to store in the same write.
    writes: Vec<sentinel_store::RecordWrite>,
}

impl<'a> Change<'a> {
    /// A change that makes a new policy version.
    fn new(action: &'static str, id: &'a str, principal: &'a str) -> Self {
        Change {
            action,
            id,
            principal,
            new_version: true,
            writes: Vec::new(),
        }
    }
}

/// A stored model: the artifact and who uploaded it.
#[derive(Serialize, Deserialize)]
struct ModelRecord {
    uploaded_at: DateTime<Utc>,
    uploaded_by: String,
    artifact: Artifact,
}

/// A model as analysts see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelSummary {
    /// The artifact's id (`m-` and 12 hex digits of its checksum).
    pub model_id: String,
    /// Champion, challenger, or none.
    pub role: Option<ModelRole>,
    /// When it was uploaded.
    pub uploaded_at: DateTime<Utc>,
    /// Who uploaded it.
    pub uploaded_by: String,
    /// Training source, seed, window and sizes.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub training: TrainingInfo,
    /// Held-out figures: AUC-ROC, average precision, precision at 100, confusion matrix.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub evaluation: Evaluation,
}

impl ModelRecord {
    fn summary(&self, deployment: &Deployment) -> ModelSummary {
        let id = &self.artifact.model_id;
        let role = if deployment.champion.as_ref() == Some(id) {
            Some(ModelRole::Champion)
        } else if deployment.challenger.as_ref() == Some(id) {
            Some(ModelRole::Challenger)
        } else {
            None
        };
        ModelSummary {
            model_id: id.clone(),
            role,
            uploaded_at: self.uploaded_at,
            uploaded_by: self.uploaded_by.clone(),
            training: self.artifact.training.clone(),
            evaluation: self.artifact.evaluation.clone(),
        }
    }
}

async fn record(store: &dyn Store, id: &str) -> Result<ModelRecord, CatalogError> {
    read(store, RecordKind::Model, id)
        .await?
        .ok_or_else(|| CatalogError::NotFound(format!("no model with id {id}")))
}

async fn loaded(store: &dyn Store, id: &str) -> Result<Arc<Model>, CatalogError> {
    let record = record(store, id).await?;
    Model::from_artifact(record.artifact)
        .map(Arc::new)
        .map_err(|e| CatalogError::invalid("model", e.to_string()))
}

/// The stored deployment and its models. A stored model this build can no longer read (its
/// features changed) is left out with a warning rather than keeping the node from starting.
pub(crate) async fn load(store: &dyn Store) -> Result<(Deployment, Models), CatalogError> {
    let deployment: Deployment = read(store, RecordKind::ModelDeployment, DEPLOYMENT_KEY)
        .await?
        .unwrap_or_default();
    let mut models = Models::default();
    for (slot, id) in [
        (&mut models.champion, &deployment.champion),
        (&mut models.challenger, &deployment.challenger),
    ] {
        if let Some(id) = id {
            match loaded(store, id).await {
                Ok(model) => *slot = Some(model),
                Err(e) => tracing::warn!(model = %id, error = %e, "stored model not loaded"),
            }
        }
    }
    Ok((deployment, models))
}

impl Catalog {
    /// Validates and stores a model artifact. Uploading does not activate it.
    pub async fn upload_model(
        &self,
        bytes: &[u8],
        principal: &str,
    ) -> Result<ModelSummary, CatalogError> {
        let model =
            Model::from_json(bytes).map_err(|e| CatalogError::invalid("model", e.to_string()))?;
        let id = model.id().to_owned();
        let mut state = self.state.lock().await;
        if read::<ModelRecord>(&*self.store, RecordKind::Model, &id)
            .await?
            .is_some()
        {
            return Err(CatalogError::Conflict(format!(
                "model {id} is already uploaded"
            )));
        }
        let record = ModelRecord {
            uploaded_at: Utc::now(),
            uploaded_by: principal.to_owned(),
            artifact: model.artifact().clone(),
        };
        let summary = record.summary(&state.deployment);
        let entry = AuditEntry {
            at: record.uploaded_at,
            principal: principal.to_owned(),
            action: "model.upload".into(),
            entity: format!("model/{id}"),
            policy_version: self.policy().rules.version,
            before: None,
            after: Some(serde_json::to_value(&summary).unwrap_or_default()),
        };
        let writes = vec![
            put(RecordKind::Model, id.clone(), &record)?,
            self.audit_write(&mut state, &entry)?,
        ];
        self.store.put_records(writes).await?;
        tracing::info!(model = %id, "model uploaded");
        Ok(summary)
    }

    /// Makes `bytes` the champion when there is none, keeping the policy version: the model a
    /// node starts with. Returns the installed model's id, or `None` when a champion exists.
    pub async fn seed_model(
        &self,
        bytes: &[u8],
        principal: &str,
    ) -> Result<Option<String>, CatalogError> {
        let model =
            Model::from_json(bytes).map_err(|e| CatalogError::invalid("model", e.to_string()))?;
        let id = model.id().to_owned();
        let mut state = self.state.lock().await;
        if state.deployment.champion.is_some() {
            return Ok(None);
        }
        let mut next = state.deployment.clone();
        next.champion = Some(id.clone());
        let mut models = state.models.clone();
        models.champion = Some(Arc::new(model.clone()));
        let mut writes = Vec::new();
        if read::<ModelRecord>(&*self.store, RecordKind::Model, &id)
            .await?
            .is_none()
        {
            let record = ModelRecord {
                uploaded_at: Utc::now(),
                uploaded_by: principal.to_owned(),
                artifact: model.artifact().clone(),
            };
            writes.push(put(RecordKind::Model, id.clone(), &record)?);
        }
        let change = Change {
            action: "model.seed",
            id: &id,
            principal,
            new_version: false,
            writes,
        };
        self.deploy(&mut state, next, models, change).await?;
        Ok(Some(id))
    }

    /// Every uploaded model with its role.
    pub async fn models(&self) -> Result<Vec<ModelSummary>, CatalogError> {
        let deployment = self.state.lock().await.deployment.clone();
        let mut out = Vec::new();
        for (_, bytes) in scan_all(&*self.store, RecordKind::Model).await? {
            let record: ModelRecord = decode(&bytes)?;
            out.push(record.summary(&deployment));
        }
        out.sort_by_key(|m| std::cmp::Reverse(m.uploaded_at));
        Ok(out)
    }

    /// One uploaded model's full artifact.
    pub async fn model_artifact(&self, id: &str) -> Result<Artifact, CatalogError> {
        Ok(record(&*self.store, id).await?.artifact)
    }

    /// Which models serve.
    pub async fn deployment(&self) -> Deployment {
        self.state.lock().await.deployment.clone()
    }

    /// Makes an uploaded model the champion (the previous one is remembered for rollback) or
    /// the challenger. Returns the new policy version.
    pub async fn activate_model(
        &self,
        id: &str,
        role: ModelRole,
        principal: &str,
    ) -> Result<u64, CatalogError> {
        let model = loaded(&*self.store, id).await?;
        let mut state = self.state.lock().await;
        let mut next = state.deployment.clone();
        let mut models = state.models.clone();
        match role {
            ModelRole::Champion => {
                if let Some(old) = next.champion.replace(id.to_owned()) {
                    if old != id {
                        next.previous.push(old);
                    }
                }
                if next.challenger.as_deref() == Some(id) {
                    next.challenger = None;
                    models.challenger = None;
                }
                models.champion = Some(model);
            }
            ModelRole::Challenger => {
                if next.champion.as_deref() == Some(id) {
                    return Err(CatalogError::Conflict(format!(
                        "model {id} is the champion; it cannot also be the challenger"
                    )));
                }
                next.challenger = Some(id.to_owned());
                models.challenger = Some(model);
            }
        }
        let excess = next.previous.len().saturating_sub(MAX_PREVIOUS);
        next.previous.drain(..excess);
        self.deploy(
            &mut state,
            next,
            models,
            Change::new("model.activate", id, principal),
        )
        .await
    }

    /// Stops the challenger.
    pub async fn clear_challenger(&self, principal: &str) -> Result<u64, CatalogError> {
        let mut state = self.state.lock().await;
        let Some(id) = state.deployment.challenger.clone() else {
            return Err(CatalogError::NotFound(
                "no challenger model is running".into(),
            ));
        };
        let mut next = state.deployment.clone();
        next.challenger = None;
        let mut models = state.models.clone();
        models.challenger = None;
        self.deploy(
            &mut state,
            next,
            models,
            Change::new("model.clear_challenger", &id, principal),
        )
        .await
    }

    /// Returns to the previous champion. Returns the model id and the new policy version.
    pub async fn rollback_model(&self, principal: &str) -> Result<(String, u64), CatalogError> {
        let mut state = self.state.lock().await;
        let mut next = state.deployment.clone();
        let Some(previous) = next.previous.pop() else {
            return Err(CatalogError::Conflict(
                "there is no earlier champion to roll back to".into(),
            ));
        };
        let model = loaded(&*self.store, &previous).await?;
        next.champion = Some(previous.clone());
        if next.challenger.as_deref() == Some(previous.as_str()) {
            next.challenger = None;
        }
        let mut models = state.models.clone();
        models.champion = Some(model);
        if next.challenger.is_none() {
            models.challenger = None;
        }
        let version = self
            .deploy(
                &mut state,
                next,
                models,
                Change::new("model.rollback", &previous, principal),
            )
            .await?;
        Ok((previous, version))
    }

    /// Stores and publishes a new deployment, as a new policy version unless it is the
    /// start-up seed.
    async fn deploy(
        &self,
        state: &mut crate::catalog::State,
        next: Deployment,
        models: Models,
        change: Change<'_>,
    ) -> Result<u64, CatalogError> {
        let now = Utc::now();
        let version = state.policy_version + u64::from(change.new_version);
        let before = std::mem::replace(&mut state.models, models);
        let policy = match compile(state, version, now) {
            Ok(p) => p,
            Err(e) => {
                state.models = before;
                return Err(e);
            }
        };
        let entry = AuditEntry {
            at: now,
            principal: change.principal.to_owned(),
            action: change.action.to_owned(),
            entity: format!("model/{}", change.id),
            policy_version: version,
            before: Some(serde_json::to_value(&state.deployment).unwrap_or_default()),
            after: Some(serde_json::to_value(&next).unwrap_or_default()),
        };
        let mut writes = change.writes;
        writes.push(put(
            RecordKind::ModelDeployment,
            DEPLOYMENT_KEY.into(),
            &next,
        )?);
        if change.new_version {
            writes.extend(policy_writes(&policy)?);
        }
        writes.push(self.audit_write(state, &entry)?);
        let stored = if change.new_version {
            self.publish(state, writes).await
        } else {
            self.store
                .put_records(writes)
                .await
                .map(|()| true)
                .map_err(CatalogError::from)
        };
        match stored {
            Ok(true) => {}
            Ok(false) => {
                // Another node published a policy version first: catch up and let the
                // analyst decide again on top of it.
                state.models = before;
                self.reload_into(state).await?;
                return Err(CatalogError::Conflict(format!(
                    "another node published policy version {} meanwhile; the model change was \
                     not applied, retry it",
                    state.policy_version
                )));
            }
            Err(e) => {
                state.models = before;
                return Err(e);
            }
        }
        state.policy_version = version;
        state.deployment = next;
        self.published.send_replace(Arc::new(policy));
        tracing::info!(
            model = change.id,
            action = change.action,
            version,
            "models changed"
        );
        Ok(version)
    }
}

#[cfg(test)]
mod tests;
