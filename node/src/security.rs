//! The node's side of authentication: reading `[auth]` from the environment, refusing to run
//! unprotected by accident, and the demo's per-run secret.

use clap::Args;
use sentinel_api::{AuthConfig, AuthMode, Role};
use std::time::Duration;

/// `[auth]` settings that may come from the environment instead of the file (secrets belong
/// there). Flags exist for completeness but put secrets in `ps` output: prefer the variables.
#[derive(Args, Debug, Default)]
pub struct AuthArgs {
    /// `enforced` or `disabled` (local experiments only).
    #[arg(long, env = "SENTINEL_AUTH_MODE", value_parser = parse_mode)]
    auth_mode: Option<AuthMode>,
    /// HS256 secret tokens are signed with (at least 32 bytes).
    #[arg(long, env = "SENTINEL_AUTH_JWT_SECRET", hide_env_values = true)]
    auth_jwt_secret: Option<String>,
    /// Bootstrap API keys: `id:role:secret[,id:role:secret…]`.
    #[arg(long, env = "SENTINEL_AUTH_API_KEYS", hide_env_values = true)]
    auth_api_keys: Option<String>,
}

fn parse_mode(s: &str) -> Result<AuthMode, String> {
    match s {
        "enforced" => Ok(AuthMode::Enforced),
        "disabled" => Ok(AuthMode::Disabled),
        _ => Err(format!("`{s}`: expected enforced or disabled")),
    }
}

impl AuthArgs {
    /// Applies what was given over the file's `[auth]`.
    pub fn apply(self, auth: &mut AuthConfig) -> anyhow::Result<()> {
        if let Some(mode) = self.auth_mode {
            auth.mode = mode;
        }
        if let Some(secret) = self.auth_jwt_secret.filter(|s| !s.is_empty()) {
            auth.jwt_secret = Some(secret);
        }
        if let Some(keys) = self.auth_api_keys {
            for (i, entry) in keys.split(',').filter(|e| !e.trim().is_empty()).enumerate() {
                let mut parts = entry.trim().splitn(3, ':');
                let (Some(id), Some(role), Some(secret)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    anyhow::bail!(
                        "SENTINEL_AUTH_API_KEYS entry {}: expected id:role:secret",
                        i + 1
                    );
                };
                let role: Role = role
                    .parse()
                    .map_err(|e| anyhow::anyhow!("SENTINEL_AUTH_API_KEYS entry {}: {e}", i + 1))?;
                auth.api_keys.push(sentinel_api::auth::ConfiguredKey {
                    id: id.to_owned(),
                    role,
                    secret: Some(secret.to_owned()),
                    secret_sha256: None,
                });
            }
        }
        Ok(())
    }
}

/// Checks that the node is protected, or says loudly that it is not. For the demo without a
/// secret, generates one for this run and returns an admin token to print.
pub fn prepare(auth: &mut AuthConfig, demo: bool) -> anyhow::Result<Option<String>> {
    if auth.mode == AuthMode::Disabled {
        tracing::warn!(
            "AUTHENTICATION IS DISABLED ([auth] mode = \"disabled\"): anyone who can reach this \
             port can read every decision and change every rule"
        );
        return Ok(None);
    }
    if auth.has_credentials() {
        return Ok(None);
    }
    anyhow::ensure!(
        demo,
        "no authentication configured: set SENTINEL_AUTH_JWT_SECRET (or [auth] jwt_secret, \
         jwt_public_key_file, api_keys), or set [auth] mode = \"disabled\" to run unprotected"
    );
    auth.jwt_algorithm = sentinel_api::auth::JwtAlgorithm::HS256;
    auth.jwt_secret = Some(sentinel_api::sha256_hex(&format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    )));
    let token = auth
        .mint("demo", Role::Admin, Duration::from_secs(24 * 3600))
        .map_err(anyhow::Error::msg)?;
    Ok(Some(token))
}

/// Prints the demo's credentials on stdout (never through the log).
pub fn announce_demo_token(token: &str, http: std::net::SocketAddr) {
    println!("admin token for this run (valid 24 h): {token}");
    println!("dashboard: http://{http}/#token={token}");
    println!("try: curl -H 'Authorization: Bearer {token}' http://{http}/v1/decisions");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_refuses_to_start_unprotected_and_the_demo_makes_a_secret() {
        let mut auth = AuthConfig::default();
        let err = prepare(&mut auth, false).unwrap_err().to_string();
        assert!(err.contains("SENTINEL_AUTH_JWT_SECRET"), "{err}");
        let token = prepare(&mut auth, true).unwrap().unwrap();
        assert!(auth.jwt_secret.as_ref().unwrap().len() >= sentinel_api::auth::MIN_SECRET_BYTES);
        assert_eq!(token.split('.').count(), 3);
        let mut disabled = AuthConfig {
            mode: AuthMode::Disabled,
            ..AuthConfig::default()
        };
        assert!(prepare(&mut disabled, false).unwrap().is_none());
    }

    #[test]
    fn api_keys_come_from_the_environment_format() {
        let mut auth = AuthConfig::default();
        AuthArgs {
            auth_api_keys: Some(
                "producer:ingest:s3cret-s3cret-s3cret,ops:admin:another-secret-here".into(),
            ),
            ..AuthArgs::default()
        }
        .apply(&mut auth)
        .unwrap();
        assert_eq!(auth.api_keys.len(), 2);
        assert_eq!(auth.api_keys[1].role, Role::Admin);
        let bad = AuthArgs {
            auth_api_keys: Some("producer:root:x".into()),
            ..AuthArgs::default()
        }
        .apply(&mut AuthConfig::default());
        assert!(bad.unwrap_err().to_string().contains("unknown role"));
    }
}
