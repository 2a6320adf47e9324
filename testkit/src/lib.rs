//! The workspace's test kit: real components for integration tests that run processes. A tansu
//! Kafka-API broker per test, `sentinel` node processes and other children guarded so they
//! never outlive a test, free loopback ports, readiness waits, cluster members, tokens, Kafka
//! clients and `eventually`.
//!
//! Node processes run the `sentinel` binary Cargo built for the running test (see
//! [`sentinel_bin`]), so only `sentinel-node`'s integration tests start nodes; the load
//! generator's tests that need one live there too (`node/tests/load_generator.rs`).
//! Test files import the kit as `use sentinel_testkit as support;`.
#![warn(missing_docs)]

mod phase;
pub use phase::phase;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::collections::HashMap;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `sentinel` executable of the running test: `CARGO_BIN_EXE_sentinel`.
///
/// Cargo (1.94 and later) sets that variable when it runs an integration test of the package
/// that owns the binary, after building it with the test build's features (`failpoints` under
/// `--all-features`). A test of another package therefore cannot start a node; rather than
/// fall back to whatever `target/debug/sentinel` holds (stale, or built without those
/// features), this panics.
pub fn sentinel_bin() -> PathBuf {
    std::env::var_os("CARGO_BIN_EXE_sentinel")
        .map(PathBuf::from)
        .expect(
            "CARGO_BIN_EXE_sentinel is unset: nodes start only in sentinel-node's integration \
             tests run by `cargo test` (Cargo 1.94 or later sets it)",
        )
}

/// A `sentinel` command (a one-shot subcommand such as `import`), before its arguments.
pub fn sentinel() -> Command {
    Command::new(sentinel_bin())
}

/// Runs a one-shot command to completion, asserts it succeeded (else fails with its stderr)
/// and returns what it printed.
pub fn run_ok(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A free loopback port for a process the test starts later.
///
/// Picked below Linux's ephemeral range (32768–60999): a port the kernel hands out for
/// `bind(0)` or an outgoing connection could be taken again by some other socket between this
/// call and the process binding it (seen with cluster ports chosen before a node starts).
/// Ports here are only ever taken on purpose; a per-process offset and counter keep the tests of
/// one binary, and binaries run side by side, apart.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let offset = (std::process::id() % 60) * 200;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (offset + n) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `limit`.
pub async fn eventually<T>(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The HS256 secret every test node verifies tokens with.
pub const TEST_JWT_SECRET: &str = "integration-test-secret-0123456789abcdef";
/// A bootstrap API key with the `ingest` role every test node accepts.
pub const TEST_INGEST_KEY: &str = "test-ingest-key-0123456789";

/// A token for `role` minted by `sentinel token` with the test secret.
pub fn token(role: &str) -> String {
    let out = sentinel()
        .args([
            "token",
            "--role",
            role,
            "--ttl",
            "2h",
            "--subject",
            &format!("test-{role}"),
        ])
        .env("SENTINEL_AUTH_JWT_SECRET", TEST_JWT_SECRET)
        .env_remove("SENTINEL_CONFIG")
        .output()
        .expect("running sentinel token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// An HTTP client that sends `authorization` with every request.
pub fn client_with(authorization: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(authorization).unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// An HTTP client that acts as an admin on test nodes.
pub fn admin_client() -> reqwest::Client {
    client_with(&format!("Bearer {}", token("admin")))
}

/// The topics a node uses by default: its input, the approved and fraud outputs, and the
/// dead letters.
pub const NODE_TOPICS: [&str; 4] = [
    "transactions",
    "transactions_approved",
    "transactions_fraud",
    "transactions_dlq",
];

/// A tansu broker process, killed on drop.
pub struct Broker {
    child: Child,
    /// `host:port` of its listener, for `bootstrap.servers` and `--kafka-brokers`.
    pub address: String,
    _dir: tempfile::TempDir,
}

/// The command line of an in-memory tansu broker listening on `url`. Without the caller's
/// `RUST_LOG`: tansu reads it too, and at `debug` it logs every fetch and slows to a crawl,
/// so a developer debugging a test would be measuring a broker busy writing logs.
fn tansu_command(url: &str) -> Command {
    let mut command = Command::new("tansu");
    command
        .args([
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .env_remove("RUST_LOG");
    command
}

impl Broker {
    /// Starts a fresh in-memory broker and waits until it accepts connections.
    pub async fn start() -> Broker {
        Broker::start_at(free_port()).await
    }

    /// Starts a fresh in-memory broker on loopback port `port` (a client may have been
    /// pointed at it before it existed) and waits until it accepts connections.
    pub async fn start_at(port: u16) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let address = format!("127.0.0.1:{port}");
        let url = format!("tcp://{address}");
        let log = std::fs::File::create(dir.path().join("broker.log")).unwrap();
        let child = tansu_command(&url)
            .current_dir(dir.path())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("tansu is on the PATH (scripts/install-test-tools installs it)");
        let broker = Broker {
            child,
            address,
            _dir: dir,
        };
        let addr = broker.address.clone();
        eventually(
            "the broker to listen",
            Duration::from_secs(30),
            async || std::net::TcpStream::connect(&addr).ok().map(|_| ()),
        )
        .await;
        broker
    }

    /// Creates each of `names` with `partitions` partitions.
    pub async fn create_topics(&self, names: &[&str], partitions: i32) {
        for name in names {
            self.create_topic(name, partitions).await;
        }
    }

    /// Creates a topic with `partitions` partitions.
    pub async fn create_topic(&self, name: &str, partitions: i32) {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        let admin: AdminClient<_> = ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .create()
            .unwrap();
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let results = admin
            .create_topics([&topic], &AdminOptions::new())
            .await
            .unwrap();
        for r in results {
            match r {
                Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, e)) => panic!("creating {t}: {e}"),
            }
        }
    }

    /// A producer with the settings the environment notes recommend against tansu.
    pub fn producer(&self) -> FutureProducer {
        ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .set("linger.ms", "5")
            // Kafka's default key partitioner: nodes locate a user's owner with it.
            .set("partitioner", "murmur2_random")
            .set("message.max.bytes", "4000000")
            .create()
            .unwrap()
    }

    /// Produces one message and waits for the acknowledgement.
    pub async fn produce(&self, producer: &FutureProducer, topic: &str, key: &str, payload: &[u8]) {
        producer
            .send(
                FutureRecord::to(topic).key(key).payload(payload),
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("producing to {topic}: {e}"));
    }

    /// A consumer of `topics` in a fresh group, from the beginning.
    pub fn consumer(&self, topics: &[&str]) -> StreamConsumer {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .set("group.id", format!("test-reader-{}", free_port()))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "5")
            .create()
            .unwrap();
        consumer.subscribe(topics).unwrap();
        consumer
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One message read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    /// The topic it was read from.
    pub topic: String,
    /// The key, as text.
    pub key: Option<String>,
    /// The value's bytes.
    pub payload: Vec<u8>,
    /// The headers, values as text.
    pub headers: HashMap<String, String>,
}

impl Record {
    /// The payload parsed as JSON (panics when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap()
    }
}

/// Reads from `consumer` until `done` says the collection is complete.
pub async fn collect(
    consumer: &StreamConsumer,
    limit: Duration,
    mut done: impl FnMut(&[Record]) -> bool,
) -> Vec<Record> {
    let deadline = Instant::now() + limit;
    let mut records = Vec::new();
    while !done(&records) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out after reading {} records",
            records.len()
        );
        let Ok(Ok(m)) =
            tokio::time::timeout(left.min(Duration::from_secs(1)), consumer.recv()).await
        else {
            continue;
        };
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        (
                            h.key.to_owned(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        records.push(Record {
            topic: m.topic().to_owned(),
            key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            payload: m.payload().unwrap_or_default().to_vec(),
            headers,
        });
    }
    records
}

/// How long a dropped node gets to drain after SIGTERM before it is SIGKILLed.
pub const DRAIN_WAIT: Duration = Duration::from_secs(10);

/// A `sentinel` node process; stopped with SIGTERM on drop (SIGKILL if it has not exited
/// within [`DRAIN_WAIT`]), so it exits through its drain and writes its coverage profile.
pub struct NodeProcess {
    child: Child,
    /// `host:port` of its HTTP listener.
    pub http: String,
    /// Its `--data-dir`.
    pub data_dir: PathBuf,
    /// The file its stdout and stderr go to.
    pub log: PathBuf,
}

impl NodeProcess {
    /// Starts `sentinel run` with the given extra arguments and waits until it is ready.
    pub async fn start(data_dir: &Path, extra: &[&str]) -> NodeProcess {
        Self::start_with_env(data_dir, extra, &[]).await
    }

    /// Like [`NodeProcess::start`], with extra environment variables (`RUST_LOG` is `info`
    /// unless given).
    pub async fn start_with_env(
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> NodeProcess {
        let port = free_port();
        let http = format!("127.0.0.1:{port}");
        let log = data_dir.join(format!("node-{port}.log"));
        std::fs::create_dir_all(data_dir).unwrap();
        let out = std::fs::File::create(&log).unwrap();
        let child = sentinel()
            .arg("run")
            .args(["--http-listen", &http])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "info")
            .env("SENTINEL_AUTH_JWT_SECRET", TEST_JWT_SECRET)
            .env(
                "SENTINEL_AUTH_API_KEYS",
                format!("test-ingest:ingest:{TEST_INGEST_KEY}"),
            )
            .envs(env.iter().copied())
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap();
        let mut node = NodeProcess {
            child,
            http,
            data_dir: data_dir.to_owned(),
            log,
        };
        let url = format!("http://{}/readyz", node.http);
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.get(&url).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if let Ok(Some(status)) = node.child.try_wait() {
                panic!(
                    "node exited with {status}: {}",
                    std::fs::read_to_string(&node.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "node never became ready: {}",
                node.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        node
    }

    /// The URL of `path` (which starts with `/`) on its HTTP listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// Its output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id, for signals such as SIGSTOP.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no drain, no flush, no commit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().ok().and_then(|s| s.code())
    }

    /// The decision stored for a transaction, if any.
    pub async fn decision(&self, client: &reqwest::Client, txn: &str) -> Option<serde_json::Value> {
        let r = client
            .get(self.url(&format!("/v1/decisions/{txn}")))
            .send()
            .await
            .ok()?;
        if r.status().is_success() {
            r.json().await.ok()
        } else {
            None
        }
    }

    /// Every stored decision of a user, in processing order.
    pub async fn user_decisions(
        &self,
        client: &reqwest::Client,
        user: &str,
    ) -> Vec<serde_json::Value> {
        let mut all = Vec::new();
        let mut after = 0u64;
        loop {
            let page: Vec<serde_json::Value> = client
                .get(self.url(&format!(
                    "/v1/users/{user}/decisions?after_seq={after}&limit=1000"
                )))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let Some(last) = page.last() else { return all };
            after = last["user_seq"].as_u64().unwrap();
            all.extend(page);
        }
    }

    /// The Prometheus exposition text.
    pub async fn metrics(&self, client: &reqwest::Client) -> String {
        client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// POSTs `body` to `/v1/transactions`, asserts a 200 and returns the decision.
    pub async fn decide(
        &self,
        client: &reqwest::Client,
        body: &serde_json::Value,
    ) -> serde_json::Value {
        let (status, decision) =
            post_text(client, self.url("/v1/transactions"), body.to_string()).await;
        assert_eq!(status, 200, "{decision}");
        decision
    }

    /// Waits (up to a minute) until the node exports `series` with `value`, e.g. the number of
    /// entity owners once a cluster has formed.
    pub async fn wait_for_metric(&self, client: &reqwest::Client, series: &str, value: f64) {
        eventually(
            &format!("{series} to be {value}"),
            Duration::from_secs(60),
            async || (metric_value(&self.metrics(client).await, series) == value).then_some(()),
        )
        .await;
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- last lines of {} ---", self.log.display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        if let Ok(Some(_)) = self.child.try_wait() {
            return; // already killed or terminated and reaped: its pid may belong to another
        }
        let pid = self.child.id().to_string();
        // SIGCONT too: a node a test froze with SIGSTOP only acts on SIGTERM once resumed.
        for signal in ["-TERM", "-CONT"] {
            let _ = Command::new("kill").args([signal, &pid]).status();
        }
        let deadline = Instant::now() + DRAIN_WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "node {} did not exit within {DRAIN_WAIT:?} of SIGTERM; killing it (log: {})",
            self.http,
            self.log.display()
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A member of a test cluster before it starts: its name, a cluster port chosen up front (the
/// others name it as their seed) and a data directory of its own.
pub struct ClusterMember {
    /// Its `--node-name`.
    pub name: &'static str,
    /// The port of its cluster listener.
    pub cluster_port: u16,
    /// Its `--data-dir`, with room for the files a test gives it (certificates, config).
    pub dir: tempfile::TempDir,
}

impl ClusterMember {
    /// A member named `name` on a free cluster port.
    pub fn new(name: &'static str) -> ClusterMember {
        ClusterMember {
            name,
            cluster_port: free_port(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `host:port` of its cluster listener.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.cluster_port)
    }

    /// Its cluster arguments for `sentinel run`: name, listener and `cookie`, then `seeds` and
    /// the store `host` when given (none: it hosts the store).
    pub fn cluster_args(
        &self,
        cookie: &str,
        seeds: &[&ClusterMember],
        host: Option<&ClusterMember>,
    ) -> Vec<String> {
        let mut args = vec![
            "--node-name".to_owned(),
            self.name.to_owned(),
            "--cluster-listen".to_owned(),
            self.address(),
            "--cluster-cookie".to_owned(),
            cookie.to_owned(),
        ];
        if !seeds.is_empty() {
            let seeds: Vec<String> = seeds.iter().map(|m| m.address()).collect();
            args.extend(["--cluster-seeds".to_owned(), seeds.join(",")]);
        }
        if let Some(host) = host {
            args.extend(["--store-host".to_owned(), host.name.to_owned()]);
        }
        args
    }

    /// Starts it with `args` and waits until it is ready.
    pub async fn start(&self, args: &[String]) -> NodeProcess {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        NodeProcess::start(self.dir.path(), &args).await
    }

    /// Runs it with `args`, expecting it to give up on reaching the store host within
    /// `store_wait_secs`; returns its stderr.
    pub fn refused(&self, args: &[String], store_wait_secs: u32) -> String {
        let out = sentinel()
            .arg("run")
            .args(["--http-listen", &format!("127.0.0.1:{}", free_port())])
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(args)
            .args(["--store-wait-secs", &store_wait_secs.to_string()])
            .env("SENTINEL_AUTH_JWT_SECRET", TEST_JWT_SECRET)
            .env_remove("SENTINEL_CONFIG")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{} joined", self.name);
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// The value of an unlabelled or labelled sample in Prometheus text, 0 when absent.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// The names of the rules that fired for a decision (its `reasons`), in order.
pub fn fired_rules(decision: &serde_json::Value) -> Vec<&str> {
    decision["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect()
}

/// A transaction event as producers send it.
pub fn event(
    txn: &str,
    user: &str,
    amount: &str,
    minutes_ago: i64,
    country: &str,
) -> serde_json::Value {
    let at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    serde_json::json!({
        "transaction_id": txn,
        "user_id": user,
        "card_id": format!("card-{user}"),
        "device_id": format!("dev-{user}"),
        "ip": "203.0.113.5",
        "amount": amount,
        "currency": "EUR",
        "merchant_id": "m-42",
        "merchant_category": "grocery",
        "channel": "web",
        "type": "debit",
        "location": {"country": country, "city": "Somewhere"},
        "timestamp": at.to_rfc3339(),
    })
}

/// A child process in its own process group, its output in a log file; on drop the group gets
/// SIGTERM (a `sentinel` process drains and writes its coverage profile), then, once the child
/// has exited or after [`DRAIN_WAIT`], SIGKILL (helpers such as Chromium's too); the log tail is
/// printed when the test is failing.
pub struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `command` as `name` (the name its failures are reported under), its stdout and
    /// stderr going to `log`.
    pub fn spawn(name: &'static str, command: &mut Command, log: PathBuf) -> Process {
        let out = std::fs::File::create(&log).unwrap();
        let child = command
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Process { name, child, log }
    }

    /// Its output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the log when the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited with {status}:\n{}", self.name, self.log_text());
        }
    }

    /// Waits for the process to exit, polling until `limit`.
    pub async fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {limit:?}:\n{}",
                self.name,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends `signal` (as `kill` takes it, e.g. `-STOP`) to its whole process group.
    pub fn signal_group(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log_text();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "--- last lines of {} ({}) ---",
                self.name,
                self.log.display()
            );
            for line in &lines[lines.len().saturating_sub(40)..] {
                eprintln!("{line}");
            }
        }
        if let Ok(None) = self.child.try_wait() {
            // SIGCONT too: a process a test froze with SIGSTOP only acts on SIGTERM once resumed.
            self.signal_group("-TERM");
            self.signal_group("-CONT");
            let deadline = Instant::now() + DRAIN_WAIT;
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Ok(None) = self.child.try_wait() {
                eprintln!(
                    "{} did not exit within {DRAIN_WAIT:?} of SIGTERM; killing it",
                    self.name
                );
            }
        }
        self.signal_group("-KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GETs a JSON document.
pub async fn get_json(client: &reqwest::Client, url: String) -> serde_json::Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// POSTs `body` (raw text, sent as JSON); returns the status and the JSON answer.
pub async fn post_text(
    client: &reqwest::Client,
    url: String,
    body: String,
) -> (u16, serde_json::Value) {
    let r = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The path of `tool` on `PATH`; panics naming it and `why` the test needs it (with how to
/// install it) when it is missing, so a machine without it fails loudly instead of skipping.
pub fn require_tool(tool: &str, why: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{tool}` is not on PATH: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broker_does_not_inherit_rust_log() {
        let command = tansu_command("tcp://127.0.0.1:9092");
        let rust_log = command
            .get_envs()
            .find(|(name, _)| *name == "RUST_LOG")
            .map(|(_, value)| value);
        assert_eq!(rust_log, Some(None), "RUST_LOG must be removed");
    }
}
