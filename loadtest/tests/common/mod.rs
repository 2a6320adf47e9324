//! Real components for the load generator's integration tests: a `sentinel` node process and,
//! for Kafka mode, a tansu broker, each on a free loopback port and killed on drop.
#![allow(dead_code)] // each test binary uses a part

use sentinel_loadtest::loadgen::{sim_config, Population, RateSchedule, TrafficOptions};
use sentinel_simulator::{Scenario, Simulator};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `sentinel` binary: `$SENTINEL_BIN`, or the workspace's debug build.
pub fn sentinel_bin() -> PathBuf {
    let path = std::env::var_os("SENTINEL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/sentinel"));
    assert!(
        path.is_file(),
        "the sentinel node binary is missing at {}: run `cargo build -p sentinel-node` first, \
         or point SENTINEL_BIN at it",
        path.display()
    );
    path
}

/// A child process killed on drop; its output goes to a log file shown when a test fails.
pub struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(mut command: Command, log: PathBuf) -> Process {
        let out = std::fs::File::create(&log).unwrap();
        let child = command
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        Process { child, log }
    }

    /// The process's output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- last lines of {} ---", self.log.display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long a dropped node gets to drain after SIGTERM before it is SIGKILLed.
const DRAIN_WAIT: Duration = Duration::from_secs(10);

/// A `sentinel run` node; stopped with SIGTERM on drop (SIGKILL after [`DRAIN_WAIT`]), so it
/// exits through its drain and writes its coverage profile.
pub struct Node {
    pub process: Process,
    pub base: String,
}

/// The HS256 secret test nodes verify tokens with.
const JWT_SECRET: &str = "loadtest-test-secret-0123456789abcdef";
/// A bootstrap API key with the `ingest` role that test nodes accept.
pub const INGEST_KEY: &str = "loadtest-ingest-key-0123456789";

/// A client that reads as an admin, with a token minted by `sentinel token`.
pub fn admin_client() -> reqwest::Client {
    let out = Command::new(sentinel_bin())
        .args(["token", "--role", "admin", "--ttl", "1h"])
        .env("SENTINEL_AUTH_JWT_SECRET", JWT_SECRET)
        .env_remove("SENTINEL_CONFIG")
        .output()
        .expect("running sentinel token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {}", token.trim()).parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

impl Drop for Node {
    fn drop(&mut self) {
        let child = &mut self.process.child;
        if let Ok(Some(_)) = child.try_wait() {
            return; // already exited and reaped: its pid may belong to another process
        }
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + DRAIN_WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("the node did not exit within {DRAIN_WAIT:?} of SIGTERM; killing it");
        // `Process`'s drop, which runs next, kills it.
    }
}

impl Node {
    /// Starts a node with its store in `dir` and waits for `/readyz`.
    pub async fn start(dir: &Path, extra: &[&str]) -> Node {
        let http = format!("127.0.0.1:{}", free_port());
        let mut command = Command::new(sentinel_bin());
        command
            .arg("run")
            .args(["--http-listen", &http])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(extra)
            .env("RUST_LOG", "info")
            .env("SENTINEL_AUTH_JWT_SECRET", JWT_SECRET)
            .env(
                "SENTINEL_AUTH_API_KEYS",
                format!("loadtest:ingest:{INGEST_KEY}"),
            );
        let mut process = Process::spawn(command, dir.join("node.log"));
        let base = format!("http://{http}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("the node exited with {status}: {}", process.log_text());
            }
            assert!(Instant::now() < deadline, "the node never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Node { process, base }
    }

    /// The stored decision of a transaction.
    pub async fn decision(&self, client: &reqwest::Client, id: &str) -> serde_json::Value {
        let r = client
            .get(format!("{}/v1/decisions/{id}", self.base))
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "no decision for {id}: {}",
            r.status()
        );
        r.json().await.unwrap()
    }
}

/// A fresh in-memory tansu broker.
pub struct Broker {
    pub process: Process,
    pub address: String,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// Starts it and waits until it accepts connections.
    pub async fn start() -> Broker {
        assert!(
            Command::new("tansu").arg("--version").output().is_ok(),
            "tansu is not on the PATH: scripts/test installs it \
             (cargo install tansu --features dynostore,libsql)"
        );
        let dir = tempfile::tempdir().unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let url = format!("tcp://{address}");
        let mut command = Command::new("tansu");
        command
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .current_dir(dir.path());
        let process = Process::spawn(command, dir.path().join("broker.log"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(Instant::now() < deadline, "the broker never listened");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Broker {
            process,
            address,
            _dir: dir,
        }
    }

    /// Creates the node's topics with `partitions` partitions each.
    pub async fn create_topics(&self, names: &[&str], partitions: i32) {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        use rdkafka::client::DefaultClientContext;
        let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .create()
            .unwrap();
        let topics: Vec<NewTopic> = names
            .iter()
            .map(|n| NewTopic::new(n, partitions, TopicReplication::Fixed(1)))
            .collect();
        for r in admin
            .create_topics(&topics, &AdminOptions::new())
            .await
            .unwrap()
        {
            if let Err((t, e)) = r {
                assert_eq!(
                    e,
                    rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists,
                    "creating {t}"
                );
            }
        }
    }
}

/// Traffic options for a short test run.
pub fn options(dir: &Path, rate: f64, secs: u64, fraud_ratio: f64) -> TrafficOptions {
    TrafficOptions {
        schedule: RateSchedule::Steady { rate },
        duration_secs: secs,
        drain_secs: 60,
        seed: 7,
        users: 10_000,
        population: Population::Dense,
        fraud_ratio,
        p99_objective_ms: 200.0,
        report_dir: dir.join("report"),
        progress: true,
    }
}

/// The first `n` events the run sent, replayed from the same simulator configuration: the
/// ids of the labelled ones, with their scenarios.
pub fn labelled_ids(opts: &TrafficOptions, n: u64) -> Vec<(String, Scenario)> {
    let config = sim_config(
        &opts.schedule,
        opts.duration_secs,
        opts.seed,
        opts.users,
        opts.fraud_ratio,
        opts.population,
        chrono::Utc::now(),
    );
    let mut sim = Simulator::new(config);
    (0..n)
        .filter_map(|_| {
            let e = sim.next_event();
            e.label.map(|s| (e.txn.transaction_id, s))
        })
        .collect()
}
