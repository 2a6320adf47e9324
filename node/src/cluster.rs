//! The ractor_cluster node every SentinelStream process runs, even alone, so that more nodes
//! can join without changing how this one works.
//!
//! The listener binds to loopback unless an address is configured, and refuses to listen beyond
//! loopback with a weak cookie ([`ClusterConfig::validate`]). Nodes authenticate with the cookie. Each node dials its seeds (retrying until they
//! answer); connections are transitive, so a node that reaches one member meets them all.

use crate::config::ClusterConfig;
use ractor::{Actor, ActorRef};
use ractor_cluster::node::NodeConnectionMode;
use ractor_cluster::{NodeServer, NodeServerMessage};
use std::time::Duration;

/// How long to wait between attempts to reach a seed that does not answer yet.
const SEED_RETRY: Duration = Duration::from_secs(1);

/// Starts this process's cluster node server and starts dialling the configured seeds.
pub async fn start(config: &ClusterConfig) -> anyhow::Result<ActorRef<NodeServerMessage>> {
    config.validate()?;
    let mut server = NodeServer::new(
        config.port,
        config.cookie.clone(),
        config.node_name.clone(),
        advertised_host(config),
        None,
        Some(NodeConnectionMode::Transitive),
    );
    server = server.with_listen_addr(config.listen_ip());
    let (actor, _) = Actor::spawn(None, server, ())
        .await
        .map_err(|e| anyhow::anyhow!("starting the cluster node: {e}"))?;
    tracing::info!(
        node = %config.node_name,
        listen = %config.listen_ip(),
        port = config.port,
        "cluster node started"
    );
    for seed in &config.seeds {
        tokio::spawn(dial(actor.clone(), seed.clone()));
    }
    Ok(actor)
}

/// Connects to one seed, retrying until it answers or this node stops.
async fn dial(server: ActorRef<NodeServerMessage>, seed: String) {
    let mut failures = 0u32;
    loop {
        match ractor_cluster::client_connect(&server, seed.as_str()).await {
            Ok(()) => {
                tracing::info!(%seed, "connected to cluster seed");
                return;
            }
            Err(ractor_cluster::ClientConnectErr::Messaging(_)) => return,
            Err(e) => {
                failures += 1;
                // Seeds start in any order: say so once, then keep trying quietly.
                if failures == 5 {
                    tracing::warn!(%seed, error = %e, "cluster seed not reachable yet; retrying");
                }
                tokio::time::sleep(SEED_RETRY).await;
            }
        }
    }
}

/// The host other members dial to reach this node (transitive connections pass it on): the
/// listen address, or the machine's host name when it listens on every interface. ractor_cluster appends
/// `:port`, so an IPv6 address is bracketed (`[::1]:7001`) to stay a valid socket address.
fn advertised_host(config: &ClusterConfig) -> String {
    match config.listen_ip() {
        std::net::IpAddr::V6(ip) if !ip.is_unspecified() => format!("[{ip}]"),
        ip if !ip.is_unspecified() => ip.to_string(),
        _ => std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advertised(bind: &str) -> String {
        let config = ClusterConfig {
            bind: Some(bind.parse().unwrap()),
            port: 7001,
            ..ClusterConfig::default()
        };
        format!("{}:{}", advertised_host(&config), config.port)
    }

    #[test]
    fn the_listener_is_loopback_unless_configured() {
        let config = ClusterConfig::default();
        assert!(config.listen_ip().is_loopback());
        assert_eq!(advertised_host(&config), "127.0.0.1");
        config
            .validate()
            .expect("the default cookie is fine on loopback");
    }

    #[test]
    fn a_weak_cookie_is_refused_beyond_loopback() {
        for (bind, cookie, reason) in [
            ("0.0.0.0", "sentinel", "the default"),
            ("::", "", "empty"),
            ("10.0.0.7", "short-secret", "shorter than 16"),
        ] {
            let config = ClusterConfig {
                bind: Some(bind.parse().unwrap()),
                cookie: cookie.into(),
                ..ClusterConfig::default()
            };
            let err = config.validate().expect_err(bind).to_string();
            assert!(err.contains(reason) && err.contains(bind), "{err}");
        }
        let strong = ClusterConfig {
            bind: Some("0.0.0.0".parse().unwrap()),
            cookie: "0123456789abcdef0123".into(),
            ..ClusterConfig::default()
        };
        strong
            .validate()
            .expect("a long cookie may listen anywhere");
    }

    #[test]
    fn advertised_addresses_parse_as_socket_addresses() {
        assert_eq!(advertised("127.0.0.1"), "127.0.0.1:7001");
        assert_eq!(advertised("::1"), "[::1]:7001");
        assert_eq!(advertised("fd00::7"), "[fd00::7]:7001");
        for bind in ["127.0.0.1", "::1", "fd00::7"] {
            let address = advertised(bind);
            assert!(
                address.parse::<std::net::SocketAddr>().is_ok(),
                "{address} must be dialable"
            );
        }
    }
}
