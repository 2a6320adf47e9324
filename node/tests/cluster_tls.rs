//! Mutual TLS between cluster members, with real processes: three members whose certificates
//! the cluster's CA signed form a cluster and decide through the store host; a member with a
//! certificate from another CA, or without TLS, is refused even with the right cookie; and a
//! connection that never starts its handshake does not stop the port accepting members.

use sentinel_testkit as support;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair,
};
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{event, eventually, ClusterMember};

const COOKIE: &str = "cluster-tls-test-cookie";

/// A certificate authority made for the test.
struct Authority {
    cert: Certificate,
    key: KeyPair,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Authority { cert, key }
    }

    /// Writes `ca.pem`, and a member certificate for 127.0.0.1 with its key, under `dir`.
    fn issue(&self, dir: &Path) -> [PathBuf; 3] {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let files = [
            dir.join("member.pem"),
            dir.join("member.key"),
            dir.join("ca.pem"),
        ];
        std::fs::write(&files[0], cert.pem()).unwrap();
        std::fs::write(&files[1], key.serialize_pem()).unwrap();
        std::fs::write(&files[2], self.cert.pem()).unwrap();
        files
    }
}

/// `member`'s arguments: TLS files from `ca` (none: plain), seeds, and the store host.
fn member_args(
    member: &ClusterMember,
    ca: Option<&Authority>,
    seeds: &[&ClusterMember],
    host: Option<&ClusterMember>,
) -> Vec<String> {
    let mut args = member.cluster_args(COOKIE, seeds, host);
    if let Some(ca) = ca {
        let [cert, key, ca_file] = ca.issue(member.dir.path());
        for (flag, file) in [
            ("--cluster-tls-cert-file", cert),
            ("--cluster-tls-key-file", key),
            ("--cluster-tls-ca-file", ca_file),
        ] {
            args.extend([flag.to_owned(), file.display().to_string()]);
        }
    }
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_over_mutual_tls_and_strangers_are_refused() {
    let ca = Authority::new("sentinel cluster CA");
    let client = support::admin_client();
    let [first, second, third] = ["t1", "t2", "t3"].map(ClusterMember::new);
    let t1 = first
        .start(&member_args(&first, Some(&ca), &[], None))
        .await;

    // A connection that never sends a byte holds no one up.
    let _silent = tokio::net::TcpStream::connect(first.address())
        .await
        .unwrap();

    let t2 = second
        .start(&member_args(&second, Some(&ca), &[&first], Some(&first)))
        .await;
    let t3 = third
        .start(&member_args(
            &third,
            Some(&ca),
            &[&first, &second],
            Some(&first),
        ))
        .await;
    eventually(
        "three members everywhere",
        Duration::from_secs(30),
        async || {
            for node in [&t1, &t2, &t3] {
                let view: serde_json::Value = client
                    .get(node.url("/v1/cluster"))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                (view["members"].as_array()?.len() == 3).then_some(())?;
            }
            Some(())
        },
    )
    .await;
    // Decided on t3, stored by t1 over the encrypted session.
    let r = client
        .post(t3.url("/v1/transactions"))
        .json(&event("tls-1", "tls-user", "42.00", 1, "FR"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(t1.decision(&client, "tls-1").await.is_some());

    // The right cookie is not enough: a certificate from another CA, or no TLS at all.
    let stranger = Authority::new("someone else's CA");
    let foreign = ClusterMember::new("foreign");
    let stderr = foreign.refused(
        &member_args(&foreign, Some(&stranger), &[&first], Some(&first)),
        4,
    );
    assert!(stderr.contains("did not join the cluster"), "{stderr}");
    let plain = ClusterMember::new("plain");
    let stderr = plain.refused(&member_args(&plain, None, &[&first], Some(&first)), 4);
    assert!(stderr.contains("did not join the cluster"), "{stderr}");
    let log = t1.log_text();
    assert!(
        log.contains("refused a cluster peer: TLS handshake failed"),
        "{log}"
    );
    let view: serde_json::Value = client
        .get(t1.url("/v1/cluster"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["members"].as_array().unwrap().len(), 3, "{view}");
}
