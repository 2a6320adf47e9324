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
use support::{event, eventually, free_port, NodeProcess};

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

struct Member {
    name: &'static str,
    cluster_port: u16,
    dir: tempfile::TempDir,
}

impl Member {
    fn new(name: &'static str) -> Member {
        Member {
            name,
            cluster_port: free_port(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.cluster_port)
    }

    /// This member's arguments: TLS files from `ca` (none: plain), seeds, and the store host.
    fn args(
        &self,
        ca: Option<&Authority>,
        seeds: &[&Member],
        host: Option<&Member>,
    ) -> Vec<String> {
        let mut args = vec![
            "--node-name".to_owned(),
            self.name.to_owned(),
            "--cluster-listen".to_owned(),
            self.address(),
            "--cluster-cookie".to_owned(),
            COOKIE.to_owned(),
        ];
        if let Some(ca) = ca {
            let [cert, key, ca_file] = ca.issue(self.dir.path());
            for (flag, file) in [
                ("--cluster-tls-cert-file", cert),
                ("--cluster-tls-key-file", key),
                ("--cluster-tls-ca-file", ca_file),
            ] {
                args.extend([flag.to_owned(), file.display().to_string()]);
            }
        }
        if !seeds.is_empty() {
            let seeds: Vec<String> = seeds.iter().map(|m| m.address()).collect();
            args.extend(["--cluster-seeds".to_owned(), seeds.join(",")]);
        }
        if let Some(host) = host {
            args.extend(["--store-host".to_owned(), host.name.to_owned()]);
        }
        args
    }

    async fn start(&self, ca: &Authority, seeds: &[&Member], host: Option<&Member>) -> NodeProcess {
        let args = self.args(Some(ca), seeds, host);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        NodeProcess::start(self.dir.path(), &args).await
    }

    /// Runs this member expecting it to give up on reaching the store host; its stderr.
    fn refused(&self, ca: Option<&Authority>, host: &Member) -> String {
        let args = self.args(ca, &[host], Some(host));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sentinel"))
            .arg("run")
            .args(["--http-listen", &format!("127.0.0.1:{}", free_port())])
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(&args)
            .args(["--store-wait-secs", "4"])
            .env("SENTINEL_AUTH_JWT_SECRET", support::TEST_JWT_SECRET)
            .env_remove("SENTINEL_CONFIG")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{} joined", self.name);
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_over_mutual_tls_and_strangers_are_refused() {
    let ca = Authority::new("sentinel cluster CA");
    let client = support::admin_client();
    let (first, second, third) = (Member::new("t1"), Member::new("t2"), Member::new("t3"));
    let t1 = first.start(&ca, &[], None).await;

    // A connection that never sends a byte holds no one up.
    let _silent = tokio::net::TcpStream::connect(first.address())
        .await
        .unwrap();

    let t2 = second.start(&ca, &[&first], Some(&first)).await;
    let t3 = third.start(&ca, &[&first, &second], Some(&first)).await;
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
    let foreign = Member::new("foreign");
    let stderr = foreign.refused(Some(&stranger), &first);
    assert!(stderr.contains("did not join the cluster"), "{stderr}");
    let plain = Member::new("plain");
    let stderr = plain.refused(None, &first);
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
