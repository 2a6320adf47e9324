//! Mutual TLS between cluster members (`[cluster] tls_cert_file`, `tls_key_file`,
//! `tls_ca_file`): every member presents a certificate signed by the cluster's CA and accepts
//! only peers that do, so the port is closed to anyone without such a certificate even if the
//! cookie leaks, and peer traffic (decisions, store calls) is encrypted.
//!
//! Incoming connections are accepted here rather than by ractor_cluster's listener, which
//! performs the TLS handshake inside its accept loop: one client that connects and sends
//! nothing would stop it accepting anyone. Here each handshake runs on its own task, with a
//! deadline and a bound on how many may be pending.

use crate::config::ClusterConfig;
use anyhow::{bail, Context};
use ractor::ActorRef;
use ractor_cluster::{NetworkStream, NodeServerMessage};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// How long an incoming connection may take to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at once; connections beyond are closed at once.
const MAX_PENDING_HANDSHAKES: usize = 64;

/// The member's TLS identity and trust, for both directions.
#[derive(Clone)]
pub struct ClusterTls {
    /// Accepts members' connections (client certificate required).
    pub acceptor: TlsAcceptor,
    /// Dials members (presenting this member's certificate).
    pub connector: TlsConnector,
}

impl ClusterTls {
    /// The configured TLS identity: `None` when no TLS file is set, an error naming the
    /// setting when only some are set or one is unreadable or invalid.
    pub fn load(config: &ClusterConfig) -> anyhow::Result<Option<ClusterTls>> {
        let files = (
            config.tls_cert_file.as_deref(),
            config.tls_key_file.as_deref(),
            config.tls_ca_file.as_deref(),
        );
        let (cert_file, key_file, ca_file) = match files {
            (None, None, None) => return Ok(None),
            (Some(cert), Some(key), Some(ca)) => (cert, key, ca),
            _ => bail!(
                "[cluster] tls_cert_file, tls_key_file and tls_ca_file must be set together \
                 (mutual TLS needs this member's certificate, its key and the cluster's CA)"
            ),
        };
        let chain = certificates(cert_file, "tls_cert_file")?;
        let key = PrivateKeyDer::from_pem_file(key_file).with_context(|| {
            format!(
                "[cluster] tls_key_file {}: not a readable PEM private key",
                key_file.display()
            )
        })?;
        let mut roots = rustls::RootCertStore::empty();
        for ca in certificates(ca_file, "tls_ca_file")? {
            roots
                .add(ca)
                .context("[cluster] tls_ca_file: not a usable CA certificate")?;
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::clone(&roots),
            Arc::clone(&provider),
        )
        .build()
        .context("[cluster] tls_ca_file: cannot verify peers with it")?;
        let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .context("[cluster] tls_cert_file and tls_key_file: the key does not fit")?;
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .context("[cluster] tls_cert_file and tls_key_file: the key does not fit")?;
        Ok(Some(ClusterTls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        }))
    }
}

fn certificates(path: &Path, setting: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| {
            format!(
                "[cluster] {setting} {}: not a readable PEM certificate",
                path.display()
            )
        })?;
    if certs.is_empty() {
        bail!(
            "[cluster] {setting} {}: no certificate in the file",
            path.display()
        );
    }
    Ok(certs)
}

/// The name a seed's certificate must carry: the host part of `host:port`.
pub fn server_name(seed: &str) -> anyhow::Result<ServerName<'static>> {
    let host = seed
        .rsplit_once(':')
        .map_or(seed, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    ServerName::try_from(host.to_owned())
        .with_context(|| format!("cluster seed `{seed}`: `{host}` is not a host name or address"))
}

/// Accepts members on `listener` until the node server stops, handing each connection that
/// completes the mutual-TLS handshake to the node server (which then checks the cookie).
pub async fn accept(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    server: ActorRef<NodeServerMessage>,
) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let (stream, peer_addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a cluster connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&pending).try_acquire_owned() else {
            tracing::warn!(%peer_addr, "too many cluster handshakes in progress; closing");
            continue;
        };
        let acceptor = acceptor.clone();
        let server = server.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let Ok(local_addr) = stream.local_addr() else {
                return;
            };
            let _ = stream.set_nodelay(true);
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let opened = NodeServerMessage::ConnectionOpened {
                        stream: Box::new(NetworkStream::TlsServer {
                            peer_addr,
                            local_addr,
                            stream,
                        }),
                        is_server: true,
                    };
                    if server.cast(opened).is_err() {
                        tracing::debug!("the cluster node stopped");
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(%peer_addr, error = %e, "refused a cluster peer: TLS handshake failed")
                }
                Err(_) => {
                    tracing::warn!(%peer_addr, "refused a cluster peer: no TLS handshake within 10 s")
                }
            }
        });
    }
}
