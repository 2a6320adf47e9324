//! Who is calling: JWT bearer tokens (HS256 or RS256) and API keys, checked once per request
//! by [`guard`] against the route's access rule ([`crate::access::required`]).

use crate::access::{self, Access};
use crate::api_keys::ApiKeys;
use crate::auth_throttle::{FailedAuthLimit, FailureLimiter};
use crate::rate_limit::{RateLimiter, RateLimits};
use crate::ApiError;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// What a caller may do. Roles are not a ladder: `ingest` may only submit transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything: rules, lists, models, keys, and all the others can do.
    Admin,
    /// Reads everything, labels decisions, runs backtests and rule tests.
    Analyst,
    /// Reads decisions, aggregates, users and the dashboard stream.
    Viewer,
    /// Submits transactions, nothing else.
    Ingest,
}

impl Role {
    /// Every role, for tables and tests.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Analyst, Role::Viewer, Role::Ingest];

    /// The role's name as tokens and configuration spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Viewer => "viewer",
            Role::Ingest => "ingest",
        }
    }

    /// Whether this role may use a route that needs `access`.
    pub fn allows(self, access: Access) -> bool {
        match access {
            Access::Public | Access::Metrics => true,
            Access::Ingest => matches!(self, Role::Admin | Role::Ingest),
            Access::Read => matches!(self, Role::Admin | Role::Analyst | Role::Viewer),
            Access::Analyst => matches!(self, Role::Admin | Role::Analyst),
            Access::Admin => self == Role::Admin,
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role `{s}` (admin, analyst, viewer or ingest)"))
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated caller, available to handlers as `Extension<Principal>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// What the audit log records: the token's subject, or `key:<id>` for an API key.
    pub name: String,
    /// What the caller may do.
    pub role: Role,
}

/// Whether requests are authenticated at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Every non-public route needs a token or key (the default).
    #[default]
    Enforced,
    /// Nobody is checked and every change is recorded as `unauthenticated`. Local use only.
    Disabled,
}

/// Token signature algorithm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared secret (`jwt_secret`); `sentinel token` mints these.
    #[default]
    HS256,
    /// RSA-SHA256, verified with a public key (`jwt_public_key_file`) from your identity provider.
    RS256,
}

/// One API key given in configuration (bootstrap keys; more are created through `/v1/keys`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfiguredKey {
    /// Name recorded in the audit log as `key:<id>`.
    pub id: String,
    /// What the key may do.
    pub role: Role,
    /// The key itself; prefer `secret_sha256` in files.
    #[serde(default)]
    pub secret: Option<String>,
    /// Hex SHA-256 of the key, so the file holds no secret.
    #[serde(default)]
    pub secret_sha256: Option<String>,
}

impl std::fmt::Debug for ConfiguredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfiguredKey")
            .field("id", &self.id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The `[auth]` section of the node's configuration.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `enforced` (default) or `disabled`.
    pub mode: AuthMode,
    /// `HS256` (default) or `RS256`.
    pub jwt_algorithm: JwtAlgorithm,
    /// HS256 shared secret (at least 32 bytes); set it through `SENTINEL_AUTH_JWT_SECRET`.
    pub jwt_secret: Option<String>,
    /// RS256: PEM file with the public key tokens are verified with.
    pub jwt_public_key_file: Option<PathBuf>,
    /// Required `iss` claim.
    pub issuer: String,
    /// Required `aud` claim.
    pub audience: String,
    /// Seconds of clock skew tolerated on `exp`.
    pub leeway_secs: u64,
    /// Require a token (any role) for `/metrics`; open by default for Prometheus scraping.
    pub metrics_require_token: bool,
    /// Bootstrap API keys.
    pub api_keys: Vec<ConfiguredKey>,
    /// Requests per second and burst per caller, by role.
    pub rate_limits: RateLimits,
    /// Failed authentications tolerated per client address (`[auth.failed_auth]`).
    pub failed_auth: FailedAuthLimit,
    /// Label rule hits in `/metrics` with rule names; by default the rule's catalogue id, since
    /// `/metrics` is open unless `metrics_require_token`.
    pub metrics_rule_names: bool,
    /// Seconds a key created through `/v1/keys` is trusted after its stored record was read;
    /// then the next request presenting it reads the store again (0: every request does).
    /// Bounds how long a cluster member that missed a revocation notice still accepts the key.
    pub stored_key_recheck_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Enforced,
            jwt_algorithm: JwtAlgorithm::HS256,
            jwt_secret: None,
            jwt_public_key_file: None,
            issuer: "sentinel".into(),
            audience: "sentinel-api".into(),
            leeway_secs: 30,
            metrics_require_token: false,
            api_keys: Vec::new(),
            rate_limits: RateLimits::default(),
            failed_auth: FailedAuthLimit::default(),
            metrics_rule_names: false,
            stored_key_recheck_secs: 5,
        }
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("mode", &self.mode)
            .field("jwt_algorithm", &self.jwt_algorithm)
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("jwt_public_key_file", &self.jwt_public_key_file)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("metrics_require_token", &self.metrics_require_token)
            .field("api_keys", &self.api_keys)
            .field("rate_limits", &self.rate_limits)
            .field("failed_auth", &self.failed_auth)
            .field("metrics_rule_names", &self.metrics_rule_names)
            .field("stored_key_recheck_secs", &self.stored_key_recheck_secs)
            .finish()
    }
}

/// Shortest HS256 secret accepted: RFC 7518 asks for a key at least as long as the hash.
pub const MIN_SECRET_BYTES: usize = 32;

impl AuthConfig {
    /// Whether any way of authenticating is configured.
    pub fn has_credentials(&self) -> bool {
        self.jwt_secret.is_some() || self.jwt_public_key_file.is_some() || !self.api_keys.is_empty()
    }

    /// A token for `subject` with `role`, valid for `ttl`, signed with the HS256 secret.
    pub fn mint(
        &self,
        subject: &str,
        role: Role,
        ttl: std::time::Duration,
    ) -> Result<String, String> {
        let secret = self
            .jwt_secret
            .as_deref()
            .ok_or("no HS256 secret configured ([auth] jwt_secret or SENTINEL_AUTH_JWT_SECRET)")?;
        if self.jwt_algorithm != JwtAlgorithm::HS256 {
            return Err("tokens can only be minted for [auth] jwt_algorithm = \"HS256\"".into());
        }
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: subject.to_owned(),
            role,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .map_err(|e| format!("signing the token: {e}"))
    }
}

/// The claims SentinelStream tokens carry.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Who: recorded in the audit log.
    pub sub: String,
    /// What they may do.
    pub role: Role,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Issued at, seconds since the epoch.
    #[serde(default)]
    pub iat: i64,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

/// Checks credentials. Built once at start-up from [`AuthConfig`].
pub struct Authenticator {
    enforced: bool,
    metrics_require_token: bool,
    metrics_rule_names: bool,
    jwt: Option<(DecodingKey, Validation)>,
    limiter: RateLimiter,
    failures: FailureLimiter,
    /// Configured and stored API keys.
    pub keys: ApiKeys,
}

/// Why a request was not authenticated; the message never contains the credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No credentials at all.
    Missing,
    /// A token that failed a check, with the check.
    InvalidToken(&'static str),
    /// An unknown or revoked API key.
    InvalidKey,
    /// Authenticated, but the role may not use this route.
    Forbidden,
    /// The route is not in the route table (a programming error; denied).
    Unlisted,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let (error, challenge) = match self {
            Rejection::Missing => (
                ApiError::unauthorized(
                    "authentication required: send `Authorization: Bearer <token>` or `X-Api-Key`",
                ),
                "Bearer realm=\"sentinel\"",
            ),
            Rejection::InvalidToken(why) => (
                ApiError::unauthorized(&format!("invalid token: {why}")),
                "Bearer realm=\"sentinel\", error=\"invalid_token\"",
            ),
            Rejection::InvalidKey => (
                ApiError::unauthorized("invalid API key"),
                "ApiKey realm=\"sentinel\"",
            ),
            Rejection::Forbidden => {
                return ApiError::forbidden("your role may not use this endpoint").into_response()
            }
            Rejection::Unlisted => {
                return ApiError::forbidden("this endpoint has no access policy").into_response()
            }
        };
        let mut response = error.into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
        response
    }
}

impl Authenticator {
    /// Builds the verifier; fails on a missing or unreadable key, or a short secret.
    pub fn new(config: &AuthConfig, keys: ApiKeys) -> Result<Authenticator, String> {
        let key = match (
            config.jwt_algorithm,
            &config.jwt_secret,
            &config.jwt_public_key_file,
        ) {
            (JwtAlgorithm::HS256, Some(secret), _) => {
                if secret.len() < MIN_SECRET_BYTES {
                    return Err(format!(
                        "[auth] jwt_secret must be at least {MIN_SECRET_BYTES} bytes"
                    ));
                }
                Some((
                    DecodingKey::from_secret(secret.as_bytes()),
                    Algorithm::HS256,
                ))
            }
            (JwtAlgorithm::RS256, _, Some(path)) => {
                let pem =
                    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
                let key = DecodingKey::from_rsa_pem(&pem).map_err(|e| {
                    format!("{} is not an RSA public key in PEM: {e}", path.display())
                })?;
                Some((key, Algorithm::RS256))
            }
            (JwtAlgorithm::RS256, _, None) if config.jwt_secret.is_some() => {
                return Err(
                    "[auth] jwt_algorithm = \"RS256\" needs jwt_public_key_file, not a secret"
                        .into(),
                )
            }
            _ => None,
        };
        let jwt = key.map(|(key, algorithm)| {
            // Exactly one algorithm: a token claiming another one (`none`, or HS256 signed
            // with the RS256 public key) fails before its signature is looked at.
            let mut validation = Validation::new(algorithm);
            validation.set_issuer(&[&config.issuer]);
            validation.set_audience(&[&config.audience]);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            validation.leeway = config.leeway_secs;
            (key, validation)
        });
        Ok(Authenticator {
            enforced: config.mode == AuthMode::Enforced,
            metrics_require_token: config.metrics_require_token,
            metrics_rule_names: config.metrics_rule_names,
            jwt,
            limiter: RateLimiter::new(&config.rate_limits)?,
            failures: FailureLimiter::new(config.failed_auth),
            keys,
        })
    }

    /// Whether `/metrics` may show rule names rather than rule ids.
    pub fn metrics_rule_names(&self) -> bool {
        self.metrics_rule_names
    }

    /// Who sent these headers (and, for the event stream only, the `access_token` query).
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
    ) -> Result<Principal, Rejection> {
        if let Some(key) = headers.get("x-api-key") {
            let key = key.to_str().map_err(|_| Rejection::InvalidKey)?;
            return self.keys.verify(key).await.ok_or(Rejection::InvalidKey);
        }
        let token = match headers.get(header::AUTHORIZATION) {
            Some(value) => {
                let value = value
                    .to_str()
                    .map_err(|_| Rejection::InvalidToken("malformed"))?;
                let (scheme, credential) = value.split_once(' ').unwrap_or((value, ""));
                let credential = credential.trim();
                if scheme.eq_ignore_ascii_case("apikey") {
                    return self
                        .keys
                        .verify(credential)
                        .await
                        .ok_or(Rejection::InvalidKey);
                }
                if !scheme.eq_ignore_ascii_case("bearer") {
                    return Err(Rejection::InvalidToken("use the Bearer or ApiKey scheme"));
                }
                credential
            }
            None => query_token.ok_or(Rejection::Missing)?,
        };
        self.verify_token(token)
    }

    /// Checks a JWT's algorithm, signature, issuer, audience and expiry.
    pub fn verify_token(&self, token: &str) -> Result<Principal, Rejection> {
        let Some((key, validation)) = &self.jwt else {
            return Err(Rejection::InvalidToken("this node accepts API keys only"));
        };
        let data = jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|e| {
            Rejection::InvalidToken(match e.kind() {
                ErrorKind::ExpiredSignature => "expired",
                ErrorKind::ImmatureSignature => "not valid yet",
                ErrorKind::InvalidSignature => "bad signature",
                ErrorKind::InvalidIssuer => "wrong issuer",
                ErrorKind::InvalidAudience => "wrong audience",
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    "algorithm not accepted"
                }
                ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
                _ => "malformed",
            })
        })?;
        if data.claims.sub.is_empty() {
            return Err(Rejection::InvalidToken("empty subject"));
        }
        Ok(Principal {
            name: data.claims.sub,
            role: data.claims.role,
        })
    }
}

/// What it takes to check a caller's credentials again: a long-lived answer (the event stream)
/// ends once its token expires or its key is revoked. Absent when authentication is disabled.
#[derive(Clone)]
pub struct Credentials {
    auth: Arc<Authenticator>,
    headers: HeaderMap,
    query_token: Option<String>,
}

impl Credentials {
    /// Keeps only the headers that carry credentials.
    fn of(auth: &Arc<Authenticator>, headers: &HeaderMap, query_token: Option<&str>) -> Self {
        let mut kept = HeaderMap::new();
        for name in [header::AUTHORIZATION.as_str(), "x-api-key"] {
            if let Some(value) = headers.get(name) {
                kept.insert(name, value.clone());
            }
        }
        Credentials {
            auth: Arc::clone(auth),
            headers: kept,
            query_token: query_token.map(str::to_owned),
        }
    }

    /// Whether they would still be accepted now: not expired, not revoked, same role.
    pub async fn still_valid(&self, role: Role) -> bool {
        self.auth
            .authenticate(&self.headers, self.query_token.as_deref())
            .await
            .is_ok_and(|p| p.role == role)
    }
}

/// The principal of every request when authentication is disabled.
fn unauthenticated() -> Principal {
    Principal {
        name: "unauthenticated".into(),
        role: Role::Admin,
    }
}

/// Middleware on every route: looks up the route's access rule, authenticates the
/// caller and checks the role, then hands the [`Principal`] to the handler.
pub async fn guard(
    State(auth): State<Arc<Authenticator>>,
    matched: Option<MatchedPath>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = matched.as_ref().map_or("", |m| m.as_str());
    let Some(access) = access::required(request.method(), path) else {
        return Rejection::Unlisted.into_response();
    };
    let open =
        access == Access::Public || (access == Access::Metrics && !auth.metrics_require_token);
    if open {
        return next.run(request).await;
    }
    let principal = if auth.enforced {
        // The listener records the peer; a request without one (tests) is not throttled.
        let peer = request
            .extensions()
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        if let Some(wait) = peer.and_then(|ip| auth.failures.check(ip, Instant::now()).err()) {
            metrics::counter!(crate::metrics::AUTH_THROTTLED).increment(1);
            return too_many(wait, "too many failed authentications from this address");
        }
        // EventSource cannot send headers, so the stream alone takes the token in its query.
        let query_token = (path == "/v1/stream")
            .then(|| access_token(request.uri().query()))
            .flatten();
        match auth.authenticate(request.headers(), query_token).await {
            Ok(p) if p.role.allows(access) => {
                if let Err(wait) = auth.limiter.check(&p) {
                    return too_many(wait, "rate limit for this caller reached");
                }
                if path == "/v1/stream" {
                    let credentials = Credentials::of(&auth, request.headers(), query_token);
                    request.extensions_mut().insert(credentials);
                }
                p
            }
            Ok(_) => return Rejection::Forbidden.into_response(),
            Err(rejection) => {
                metrics::counter!(crate::metrics::AUTH_FAILURES, "reason" => rejection.label())
                    .increment(1);
                // A forged token or an unknown key is a guess; no credentials at all is not.
                if rejection != Rejection::Missing {
                    if let Some(ip) = peer {
                        auth.failures.failed(ip, Instant::now());
                    }
                }
                return rejection.into_response();
            }
        }
    } else {
        unauthenticated()
    };
    request.extensions_mut().insert(Arc::new(principal));
    next.run(request).await
}

/// 429 with `Retry-After` in whole seconds (at least 1).
fn too_many(wait: std::time::Duration, why: &str) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    let mut response = ApiError::too_many(&format!("{why}; retry after {secs} s")).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

impl Rejection {
    fn label(self) -> &'static str {
        match self {
            Rejection::Missing => "missing",
            Rejection::InvalidToken(_) => "invalid_token",
            Rejection::InvalidKey => "invalid_key",
            Rejection::Forbidden => "forbidden",
            Rejection::Unlisted => "unlisted",
        }
    }
}

fn access_token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("access_token="))
}

/// The authenticated caller, for handlers that record who made a change.
pub struct Caller(pub Arc<Principal>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Arc<Principal>>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| ApiError::internal("a route ran without its guard", "no principal"))
    }
}

#[cfg(test)]
mod labels {
    use super::Rejection;

    #[test]
    fn every_rejection_is_a_registered_metric_label() {
        for rejection in [
            Rejection::Missing,
            Rejection::InvalidToken("expired"),
            Rejection::InvalidKey,
            Rejection::Forbidden,
            Rejection::Unlisted,
        ] {
            assert!(
                crate::metrics::AUTH_FAILURE_REASONS.contains(&rejection.label()),
                "{}",
                rejection.label()
            );
        }
    }
}
