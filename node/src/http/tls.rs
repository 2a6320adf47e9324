//! Optional TLS on the API listener: loads the PEM certificate chain and private key named by
//! `tls_cert_file` and `tls_key_file` into a rustls acceptor (aws-lc-rs provider).

use anyhow::{bail, Context};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// Builds the acceptor for the configured files: `None` when neither is set, an error naming the
/// setting when only one is set or a file is unreadable or invalid.
pub fn acceptor(
    cert_file: Option<&Path>,
    key_file: Option<&Path>,
) -> anyhow::Result<Option<TlsAcceptor>> {
    let (cert_file, key_file) = match (cert_file, key_file) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => {
            bail!("tls_cert_file is set but tls_key_file is not; set both or neither")
        }
        (None, Some(_)) => {
            bail!("tls_key_file is set but tls_cert_file is not; set both or neither")
        }
    };
    let chain = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| {
            format!(
                "tls_cert_file {}: not a readable PEM certificate",
                cert_file.display()
            )
        })?;
    if chain.is_empty() {
        bail!(
            "tls_cert_file {}: no certificate in the file",
            cert_file.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(key_file).with_context(|| {
        format!(
            "tls_key_file {}: not a readable PEM private key",
            key_file.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("tls_cert_file and tls_key_file: the key does not fit the certificate")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full error chain of a refused configuration.
    fn refusal(cert: Option<&Path>, key: Option<&Path>) -> String {
        match acceptor(cert, key) {
            Ok(_) => panic!("the configuration was accepted"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn one_file_without_the_other_names_the_missing_setting() {
        let err = refusal(Some(Path::new("cert.pem")), None);
        assert!(err.contains("tls_key_file"), "{err}");
        let err = refusal(None, Some(Path::new("key.pem")));
        assert!(err.contains("tls_cert_file"), "{err}");
        assert!(acceptor(None, None).unwrap().is_none());
    }

    #[test]
    fn a_file_that_is_not_pem_names_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        std::fs::write(&key, "not a key").unwrap();
        let err = refusal(Some(&cert), Some(&key));
        assert!(err.contains("tls_cert_file"), "{err}");
    }
}
