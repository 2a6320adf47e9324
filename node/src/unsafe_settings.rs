//! The production checklist, checked at start-up: every setting left at a default (or set to
//! a value) that is unsafe for a deployment others can reach gets one warning line naming the
//! setting and what to change. Refusals that can never be right (a weak cluster cookie beyond
//! loopback, no credentials at all) stop the node elsewhere; these are the judgement calls a
//! local experiment may make on purpose. (`[auth] mode = "disabled"` has its own louder
//! warning, in `security`.)

use crate::config::NodeConfig;
use sentinel_alerts::SinkKind;

/// One unsafe setting: which, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafeSetting {
    /// The setting, as the config file names it.
    pub setting: &'static str,
    /// Why it is unsafe here and what to set instead.
    pub advice: String,
}

/// Every unsafe setting in `config`, in checklist order.
pub fn find(config: &NodeConfig) -> Vec<UnsafeSetting> {
    let mut found = Vec::new();
    let mut warn =
        |setting: &'static str, advice: String| found.push(UnsafeSetting { setting, advice });
    let api_exposed = !config.http_listen.ip().is_loopback();
    if api_exposed && config.tls_cert_file.is_none() {
        warn(
            "tls_cert_file",
            format!(
                "the API listens on {} in plain HTTP: tokens and API keys cross the network \
                 readable; set tls_cert_file and tls_key_file (or terminate TLS in front and \
                 listen on loopback)",
                config.http_listen
            ),
        );
    }
    if api_exposed && !config.auth.metrics_require_token {
        warn(
            "[auth] metrics_require_token",
            format!(
                "/metrics is open to anyone who reaches {}; set metrics_require_token = true \
                 and give Prometheus a viewer token",
                config.http_listen
            ),
        );
    }
    if config.auth.metrics_rule_names && !config.auth.metrics_require_token {
        warn(
            "[auth] metrics_rule_names",
            "rule names (shadow rules too) are in the open /metrics; set \
             metrics_require_token = true or metrics_rule_names = false"
                .into(),
        );
    }
    if api_exposed && config.auth.failed_auth.max_failures == 0 {
        warn(
            "[auth.failed_auth] max_failures",
            "0 lets any address guess tokens and keys at the API's request rate; keep the \
             default (20 per minute) or set a limit"
                .into(),
        );
    }
    if config.http_allowed_hosts.iter().any(|h| h == "*") {
        warn(
            "http_allowed_hosts",
            "\"*\" turns the Host check off (DNS rebinding); list the names clients use".into(),
        );
    }
    if config.cors_allowed_origins.iter().any(|o| o == "*") {
        warn(
            "cors_allowed_origins",
            "\"*\" lets any web page call the API from a visitor's browser; list your \
             dashboards' origins"
                .into(),
        );
    }
    let cluster = &config.cluster;
    if !cluster.listen_ip().is_loopback() && cluster.tls_cert_file.is_none() {
        warn(
            "[cluster] tls_cert_file",
            format!(
                "cluster peers connect to {} in plain TCP with only the cookie: set \
                 tls_cert_file, tls_key_file and tls_ca_file (mutual TLS)",
                cluster.listen_ip()
            ),
        );
    }
    for sink in &config.alerts.sinks {
        if sink.url.starts_with("http://") {
            warn(
                "[[alerts.sinks]] url",
                format!(
                    "sink `{}` posts alerts (and their signature) in plain HTTP; use https://",
                    sink.name
                ),
            );
        }
        if sink.kind == SinkKind::Webhook && sink.secret.is_none() {
            warn(
                "[[alerts.sinks]] secret",
                format!(
                    "webhook sink `{}` is unsigned: its receiver cannot tell our alerts from \
                     forged ones; set secret",
                    sink.name
                ),
            );
        }
    }
    if let Some(kafka) = config.kafka.as_ref().filter(|k| !local_brokers(&k.brokers)) {
        let protocol = kafka.options.get("security.protocol").map(String::as_str);
        if !matches!(protocol, Some("ssl" | "SSL" | "sasl_ssl" | "SASL_SSL")) {
            warn(
                "[kafka.options] security.protocol",
                "the Kafka connection is not encrypted; set security.protocol = \"SASL_SSL\" \
                 (with the sasl.* options)"
                    .into(),
            );
        }
    }
    found
}

/// Whether every bootstrap broker is on this machine (traffic that never leaves it).
fn local_brokers(brokers: &str) -> bool {
    brokers.split(',').all(|broker| {
        let host = broker.trim().rsplit_once(':').map_or(broker, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    })
}

/// Logs one warning per unsafe setting.
pub fn warn_about(config: &NodeConfig) {
    for unsafe_setting in find(config) {
        tracing::warn!(
            setting = unsafe_setting.setting,
            "UNSAFE SETTING: {}",
            unsafe_setting.advice
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(config: &NodeConfig) -> Vec<&'static str> {
        find(config).into_iter().map(|u| u.setting).collect()
    }

    #[test]
    fn the_loopback_defaults_are_quiet() {
        assert_eq!(settings(&NodeConfig::default()), Vec::<&str>::new());
        let local_kafka: NodeConfig =
            toml::from_str("[kafka]\nbrokers = \"127.0.0.1:9092,localhost:9093\"\n").unwrap();
        assert_eq!(settings(&local_kafka), Vec::<&str>::new());
    }

    #[test]
    fn each_unsafe_setting_is_named() {
        let config: NodeConfig = toml::from_str(
            r#"
            http_listen = "0.0.0.0:8080"
            http_allowed_hosts = ["*"]
            cors_allowed_origins = ["*"]
            [auth]
            metrics_rule_names = true
            [auth.failed_auth]
            max_failures = 0
            [cluster]
            bind = "0.0.0.0"
            cookie = "a-long-enough-cluster-cookie"
            [kafka]
            brokers = "kafka:9092"
            [[alerts.sinks]]
            name = "ops"
            kind = "webhook"
            url = "http://hooks.example/ops"
            "#,
        )
        .unwrap();
        assert_eq!(
            settings(&config),
            [
                "tls_cert_file",
                "[auth] metrics_require_token",
                "[auth] metrics_rule_names",
                "[auth.failed_auth] max_failures",
                "http_allowed_hosts",
                "cors_allowed_origins",
                "[cluster] tls_cert_file",
                "[[alerts.sinks]] url",
                "[[alerts.sinks]] secret",
                "[kafka.options] security.protocol",
            ]
        );
    }
}
