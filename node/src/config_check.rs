//! `sentinel config check`: the configuration `sentinel run` would start with (file, then
//! environment, then flags), validated the way start-up validates it, printed with its secrets
//! redacted and the field mapping as a table.

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
    anyhow::ensure!(
        config.tls_cert_file.is_some() == config.tls_key_file.is_some(),
        "tls_cert_file and tls_key_file: set both to serve HTTPS, or neither"
    );
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
