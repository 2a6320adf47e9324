//! API keys for producers and scripts: bootstrap keys from configuration, and keys an admin
//! creates and revokes through `/v1/keys`. Only a SHA-256 of each key is kept; the key itself
//! is shown once, in the creation response.

use crate::auth::{AuthConfig, Caller, Principal, Role};
use crate::body::JsonBody;
use crate::key_cache::{KeyCache, RevocationNotice};
use crate::{ApiError, ApiState, ErrorResponse};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use sentinel_store::{RecordKind, RecordWrite, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// What a key created through the API starts with, followed by `<id>_<secret>`.
const KEY_PREFIX: &str = "sk_";

/// An API key as listed: everything but the secret.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKeyInfo {
    /// Identifier, recorded in the audit log as `key:<id>`.
    pub id: String,
    /// What the key is for, free text.
    pub name: String,
    /// What the key may do.
    pub role: Role,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: String,
    /// When it was revoked; a revoked key is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The stored form: the listing plus the hash of the key.
#[derive(Serialize, Deserialize)]
struct StoredKey {
    #[serde(flatten)]
    info: ApiKeyInfo,
    secret_sha256: String,
}

/// `POST /v1/keys` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    /// What the key is for.
    pub name: String,
    /// What it may do (`ingest` for producers).
    pub role: Role,
}

/// `POST /v1/keys` answer: the only time the key itself is shown.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    /// The key's listing.
    #[serde(flatten)]
    pub info: ApiKeyInfo,
    /// Send it as `X-Api-Key: <key>` or `Authorization: ApiKey <key>`; it cannot be shown again.
    pub key: String,
}

/// Verifies presented keys against configured and stored ones.
pub struct ApiKeys {
    configured: Vec<(String, Role, String)>,
    store: Arc<dyn Store>,
    /// Stored keys verified recently.
    verified: Arc<KeyCache>,
    /// Who else must forget a key revoked here.
    notice: Option<Arc<dyn RevocationNotice>>,
}

impl ApiKeys {
    /// The configured keys (`config.api_keys`, each with `secret` or `secret_sha256`) and the
    /// store of created ones, verified ones kept for `config.stored_key_recheck_secs`.
    pub fn new(config: &AuthConfig, store: Arc<dyn Store>) -> Result<ApiKeys, String> {
        let configured = config
            .api_keys
            .iter()
            .map(|k| {
                let hash = match (&k.secret, &k.secret_sha256) {
                    (Some(secret), None) if secret.len() >= 16 => sha256_hex(secret),
                    (Some(_), None) => {
                        return Err(format!("api key `{}`: secret shorter than 16 bytes", k.id))
                    }
                    (None, Some(hash)) if is_sha256_hex(hash) => hash.to_ascii_lowercase(),
                    (None, Some(_)) => {
                        return Err(format!(
                            "api key `{}`: secret_sha256 is not 64 hex digits",
                            k.id
                        ))
                    }
                    _ => {
                        return Err(format!(
                            "api key `{}`: give exactly one of secret and secret_sha256",
                            k.id
                        ))
                    }
                };
                Ok((k.id.clone(), k.role, hash))
            })
            .collect::<Result<_, _>>()?;
        Ok(ApiKeys {
            configured,
            store,
            verified: Arc::new(KeyCache::new(Duration::from_secs(
                config.stored_key_recheck_secs,
            ))),
            notice: None,
        })
    }

    /// Tells `notice` of every key revoked through this node, before the revocation answers.
    pub fn announcing_revocations_to(mut self, notice: Arc<dyn RevocationNotice>) -> ApiKeys {
        self.notice = Some(notice);
        self
    }

    /// The stored keys verified recently: what the node forgets when another member revokes one.
    pub fn verified(&self) -> Arc<KeyCache> {
        Arc::clone(&self.verified)
    }

    /// The principal a presented key stands for, if it is known and not revoked.
    pub async fn verify(&self, presented: &str) -> Option<Principal> {
        let hash = sha256_hex(presented);
        if let Some((id, role, _)) = self
            .configured
            .iter()
            .find(|(_, _, h)| constant_time_eq(h.as_bytes(), hash.as_bytes()))
        {
            return Some(key_principal(id, *role));
        }
        let (id, _) = presented.strip_prefix(KEY_PREFIX)?.split_once('_')?;
        if !is_key_id(id) {
            return None;
        }
        let key = match self.verified.fresh(id) {
            Some(key) => key,
            None => {
                let generation = self.verified.generation();
                let stored = self.load(id).await.ok()??;
                if stored.info.revoked_at.is_some() {
                    return None;
                }
                self.verified
                    .keep(id, stored.secret_sha256, stored.info.role, generation)
            }
        };
        constant_time_eq(key.secret_sha256.as_bytes(), hash.as_bytes())
            .then(|| key_principal(id, key.role))
    }

    /// Forgets a key revoked through this node, here and on every member the notice reaches.
    async fn revoked(&self, id: &str) {
        self.verified.forget(id);
        if let Some(notice) = &self.notice {
            notice.announce(id).await;
        }
    }

    async fn load(&self, id: &str) -> Result<Option<StoredKey>, ApiError> {
        let Some(bytes) = self
            .store
            .record(RecordKind::ApiKey, id)
            .await
            .map_err(|e| ApiError::internal("reading an API key", e))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ApiError::internal("decoding an API key", e))
    }
}

fn key_principal(id: &str, role: Role) -> Principal {
    Principal {
        name: format!("key:{id}"),
        role,
    }
}

/// Lower-case hex SHA-256 of `text`: how keys are stored and configured.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_key_id(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Compares without stopping at the first difference, so timing tells nothing about the hash.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Stores a key record together with its audit entry.
async fn save_audited(
    state: &ApiState,
    key: &StoredKey,
    action: &str,
    caller: &Principal,
    before: Option<serde_json::Value>,
) -> Result<(), ApiError> {
    let write = RecordWrite {
        kind: RecordKind::ApiKey,
        key: key.info.id.clone(),
        value: Some(
            serde_json::to_vec(key).map_err(|e| ApiError::internal("encoding an API key", e))?,
        ),
    };
    state
        .catalog
        .commit_audited(
            vec![write],
            action,
            format!("key/{}", key.info.id),
            &caller.name,
            before,
            serde_json::to_value(&key.info).ok(),
        )
        .await?;
    Ok(())
}

/// `GET /v1/keys`: the keys created through the API, revoked ones included (never a secret).
#[utoipa::path(get, path = "/v1/keys", tag = "keys", responses((status = 200, body = Vec<ApiKeyInfo>)))]
pub async fn list(State(state): State<ApiState>) -> Result<Json<Vec<ApiKeyInfo>>, ApiError> {
    let mut keys = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = state
            .store
            .scan_records(RecordKind::ApiKey, "", after.as_deref(), 500)
            .await
            .map_err(|e| ApiError::internal("listing API keys", e))?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (_, bytes) in page {
            let stored: StoredKey = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::internal("decoding an API key", e))?;
            keys.push(stored.info);
        }
    }
    Ok(Json(keys))
}

/// `POST /v1/keys`: creates a key; the answer holds the key, shown this once.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = NewKeyRequest, responses((status = 201, body = CreatedKey), (status = 422, description = "Invalid input; `error.field` names it", body = ErrorResponse)))]
pub async fn create(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    JsonBody(request): JsonBody<NewKeyRequest>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let name = request.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::invalid_body(
            "name",
            "must be 1 to 200 characters",
        ));
    }
    let id = hex::encode(rand::random::<[u8; 8]>());
    let key = format!(
        "{KEY_PREFIX}{id}_{}",
        hex::encode(rand::random::<[u8; 32]>())
    );
    let info = ApiKeyInfo {
        id: id.clone(),
        name: name.to_owned(),
        role: request.role,
        created_at: Utc::now(),
        created_by: caller.name.clone(),
        revoked_at: None,
    };
    let stored = StoredKey {
        info,
        secret_sha256: sha256_hex(&key),
    };
    save_audited(&state, &stored, "key.create", &caller, None).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            info: stored.info,
            key,
        }),
    ))
}

/// `DELETE /v1/keys/{id}`: revokes a key at once (every cluster member reached forgets it before
/// the answer); its record stays for the audit trail.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", params(("id" = String, Path)), responses((status = 200, body = ApiKeyInfo), (status = 404, description = "Not found", body = ErrorResponse)))]
pub async fn revoke(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyInfo>, ApiError> {
    let not_found = || ApiError::not_found(format!("no API key {id}"));
    if !is_key_id(&id) {
        return Err(not_found());
    }
    let keys = &state.auth.keys;
    let mut stored = keys.load(&id).await?.ok_or_else(not_found)?;
    if stored.info.revoked_at.is_none() {
        let before = serde_json::to_value(&stored.info).ok();
        stored.info.revoked_at = Some(Utc::now());
        save_audited(&state, &stored, "key.revoke", &caller, before).await?;
    }
    // Also when it was revoked before: a member that missed that notice hears it again.
    keys.revoked(&id).await;
    Ok(Json(stored.info))
}
