//! `sentinel config check`: the configuration `sentinel run` would start with (file, then
//! environment, then flags), validated the way start-up validates it before opening the store
//! or any connection (credentials, limits, field mapping, rates, store, cluster, alerts, TLS
//! files, policy file), printed with its secrets redacted and the field mapping as a table.

use crate::config::NodeConfig;

const REDACTED: &str = "<redacted>";

/// Validates `config` as `sentinel run` would before opening anything, then prints it.
/// The error names the offending setting.
pub fn check(mut config: NodeConfig) -> anyhow::Result<()> {
    crate::security::prepare(&mut config.auth, false)?;
    config.limits.limits()?;
    let mapping = config.mapping.compile()?;
    config.currency.table()?;
    config.store.validate()?;
    config.cluster.validate()?;
    config
        .alerts
        .validate()
        .map_err(|e| anyhow::anyhow!("alerts: {e}"))?;
    crate::http::tls::acceptor(
        config.tls_cert_file.as_deref(),
        config.tls_key_file.as_deref(),
    )?;
    crate::cluster::tls::ClusterTls::load(&config.cluster)?;
    if let Some(path) = &config.policy_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("policy_file {}: {e}", path.display()))?;
        serde_json::from_str::<sentinel_engine::PolicyDef>(&text)
            .map_err(|e| anyhow::anyhow!("policy_file {}: {e}", path.display()))?
            .compile()
            .map_err(|e| anyhow::anyhow!("policy_file {}: {e}", path.display()))?;
    }
    println!("{:#?}", redacted(config));
    print!("{}", crate::field_mapping::table(mapping.as_ref()));
    println!("configuration OK");
    Ok(())
}

/// The configuration with every secret replaced (the JWT secret is redacted by its own
/// `Debug`; API keys show their id and role only).
fn redacted(mut config: NodeConfig) -> NodeConfig {
    config.cluster.cookie = REDACTED.to_owned();
    if let Some(password) = config.store.scylla.password.as_mut() {
        *password = REDACTED.to_owned();
    }
    for sink in &mut config.alerts.sinks {
        // Slack and Discord webhook addresses are credentials themselves.
        sink.url = REDACTED.to_owned();
        if let Some(secret) = sink.secret.as_mut() {
            *secret = REDACTED.to_owned();
        }
    }
    if let Some(kafka) = config.kafka.as_mut() {
        for (key, value) in &mut kafka.options {
            if ["password", "secret", "key", "token"]
                .iter()
                .any(|word| key.contains(word))
            {
                *value = REDACTED.to_owned();
            }
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(text: &str) -> String {
        let config: NodeConfig = toml::from_str(text).unwrap();
        check(config).unwrap_err().to_string()
    }

    #[test]
    fn each_refusal_names_its_setting() {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.json");
        std::fs::write(&policy, "{\"rules\": 5}").unwrap();
        let auth = "[auth]\nmode = \"disabled\"\n";
        let err = refusal(&format!("policy_file = {policy:?}\n{auth}"));
        assert!(err.starts_with("policy_file"), "{err}");
        let err = refusal(&format!("tls_cert_file = \"api.crt\"\n{auth}"));
        assert!(err.starts_with("tls_cert_file"), "{err}");
        let err = refusal(&format!("{auth}[store]\nretention_days = 7"));
        assert!(err.starts_with("store.retention_days"), "{err}");
        let err = refusal(&format!("{auth}[mapping.fields]\nx = \"y\""));
        assert!(err.starts_with("mapping.fields.x"), "{err}");
        let err = refusal("");
        assert!(err.contains("no authentication configured"), "{err}");
        let config: NodeConfig = toml::from_str(auth).unwrap();
        check(config).unwrap();
    }

    #[test]
    fn secrets_never_reach_the_output() {
        let mut config: NodeConfig = toml::from_str(
            r#"
[cluster]
cookie = "cluster-cookie-value"
[store.scylla]
password = "scylla-password-value"
[kafka.options]
"sasl.password" = "kafka-password-value"
"security.protocol" = "SASL_SSL"
[[alerts.sinks]]
name = "ops"
kind = "slack"
url = "https://hooks.slack.com/services/T/B/slack-token-value"
"#,
        )
        .unwrap();
        config.auth.jwt_secret = Some("jwt-secret-value-jwt-secret-value".into());
        let text = format!("{:#?}", redacted(config));
        for secret in [
            "cluster-cookie",
            "scylla-password",
            "kafka-password",
            "slack-token",
            "jwt-secret",
        ] {
            assert!(!text.contains(secret), "{secret} printed");
        }
        assert!(text.contains("SASL_SSL"));
    }
}
