//! The ractor_cluster node every SentinelStream process runs, even alone, so that more nodes
//! can join without changing how this one works.
//!
//! The listener binds to loopback unless an address is configured, and refuses to listen beyond
//! loopback with a weak cookie ([`ClusterConfig::validate`]). Nodes authenticate with the cookie. Each node dials its seeds (retrying until they
//! answer); connections are transitive, so a node that reaches one member meets them all.
//!
//! The submodules are what runs over the cluster: the member view, mutual TLS, the store one
//! member serves the others, policy notices, key revocations, owner routing of HTTP scoring, entity placement, and
//! the entity-risk refresh through which every member picks up labels.

pub mod entity_placement;
pub mod entity_refresh;
pub mod key_revocations;
pub mod owner_route;
pub mod policy_sync;
pub mod remote_store;
pub mod tls;
pub mod view;

use crate::config::ClusterConfig;
use anyhow::Context;
use ractor::{Actor, ActorRef};
use ractor_cluster::node::NodeConnectionMode;
use ractor_cluster::{IncomingEncryptionMode, NodeServer, NodeServerMessage};
use std::time::Duration;
use tls::ClusterTls;

/// How long to wait between attempts to reach a seed that does not answer yet.
const SEED_RETRY: Duration = Duration::from_secs(1);

/// How often a connected seed's session is checked, to re-dial it once lost.
const SESSION_CHECK: Duration = Duration::from_secs(2);

/// Starts this process's cluster node server and starts dialling the configured seeds.
///
/// With mutual TLS, members accept on the configured address through
/// [`tls::accept`] (ractor_cluster's own listener moves to an ephemeral loopback port
/// that requires the same certificates), and connections are not transitive: ractor_cluster
/// dials transitive members without TLS, so each member lists every other as a seed.
pub async fn start(config: &ClusterConfig) -> anyhow::Result<ActorRef<NodeServerMessage>> {
    config.validate()?;
    let tls = ClusterTls::load(config)?;
    let (port, listen_ip, encryption, mode) = match &tls {
        None => (
            config.port,
            config.listen_ip(),
            None,
            NodeConnectionMode::Transitive,
        ),
        Some(tls) => (
            0,
            std::net::Ipv4Addr::LOCALHOST.into(),
            Some(IncomingEncryptionMode::Tls(tls.acceptor.clone())),
            NodeConnectionMode::Isolated,
        ),
    };
    let server = NodeServer::new(
        port,
        config.cookie.clone(),
        config.node_name.clone(),
        advertised_host(config),
        encryption,
        Some(mode),
    )
    .with_listen_addr(listen_ip);
    let (actor, _) = Actor::spawn(None, server, ())
        .await
        .map_err(|e| anyhow::anyhow!("starting the cluster node: {e}"))?;
    if let Some(tls) = &tls {
        let address = std::net::SocketAddr::new(config.listen_ip(), config.port);
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("binding the cluster listener on {address}"))?;
        tokio::spawn(tls::accept(listener, tls.acceptor.clone(), actor.clone()));
    }
    tracing::info!(
        node = %config.node_name,
        listen = %config.listen_ip(),
        port = config.port,
        tls = tls.is_some(),
        "cluster node started"
    );
    for seed in &config.seeds {
        let server_name = match &tls {
            Some(_) => Some(tls::server_name(seed)?),
            None => None,
        };
        let connector = tls.as_ref().map(|t| t.connector.clone());
        tokio::spawn(dial(
            actor.clone(),
            seed.clone(),
            connector.zip(server_name),
        ));
    }
    Ok(actor)
}

/// Keeps a session to one seed: connects (retrying until it answers), then checks every
/// [`SESSION_CHECK`] that a session to that member still exists and re-dials when it is lost
/// (a restarted member, a dropped connection), until this node stops.
async fn dial(
    server: ActorRef<NodeServerMessage>,
    seed: String,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
) {
    let mut failures = 0u32;
    let mut member: Option<String> = None;
    loop {
        if let Some(name) = &member {
            match session_names(&server).await {
                None => return,
                Some(names) if names.contains(name) => {
                    tokio::time::sleep(SESSION_CHECK).await;
                    continue;
                }
                Some(_) => {
                    tracing::warn!(%seed, member = %name, "lost the cluster session; re-dialling")
                }
            }
        }
        let connected = match &tls {
            Some((connector, name)) => {
                ractor_cluster::client_connect_enc(
                    &server,
                    seed.as_str(),
                    connector.clone(),
                    name.clone(),
                )
                .await
            }
            None => ractor_cluster::client_connect(&server, seed.as_str()).await,
        };
        match connected {
            Ok(()) => {
                tracing::info!(%seed, "connected to cluster seed");
                failures = 0;
                member = learn_member(&server, &seed).await.or(member);
                if member.is_none() {
                    // The handshake did not complete (a refused cookie or certificate): retry
                    // slowly, the other side logs every refusal.
                    tokio::time::sleep(SEED_RETRY * 5).await;
                }
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

/// The names of the members this node has sessions with; `None` once the node server stopped.
async fn session_names(server: &ActorRef<NodeServerMessage>) -> Option<Vec<String>> {
    let sessions = match server
        .call(NodeServerMessage::GetSessions, Some(Duration::from_secs(5)))
        .await
    {
        Ok(ractor::rpc::CallResult::Success(sessions)) => sessions,
        Ok(_) => return Some(Vec::new()),
        Err(_) => return None,
    };
    Some(
        sessions
            .values()
            .filter_map(|s| s.peer_name.as_ref().map(|n| n.name.clone()))
            .collect(),
    )
}

/// The name of the member reached through `seed`: the session whose advertised connection
/// string is the seed, once its handshake names it (waits a few seconds).
async fn learn_member(server: &ActorRef<NodeServerMessage>, seed: &str) -> Option<String> {
    let seed_addr = tokio::net::lookup_host(seed)
        .await
        .ok()?
        .collect::<Vec<_>>();
    for _ in 0..50 {
        let Ok(ractor::rpc::CallResult::Success(sessions)) = server
            .call(NodeServerMessage::GetSessions, Some(Duration::from_secs(5)))
            .await
        else {
            return None;
        };
        let found = sessions.values().find_map(|s| {
            let name = s.peer_name.as_ref()?;
            let dialled = !s.is_server
                && s.peer_addr
                    .parse::<std::net::SocketAddr>()
                    .is_ok_and(|a| seed_addr.contains(&a));
            (dialled || name.connection_string == seed).then(|| name.name.clone())
        });
        if found.is_some() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
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
