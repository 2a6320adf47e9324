//! The compose stack, run for real without a container engine: `docker-compose config`
//! resolves docker-compose.yml (with the secrets `scripts/compose-secrets` writes), and every
//! service built from this repository (`build: .`) starts as a local process with the
//! service's own command, environment and mounted config file. Only what cannot be the same
//! outside the containers is swapped, each swap named with its reason in [`SWAPS`]; every
//! other argument and variable passes through untouched. The three nodes must become ready,
//! form one cluster, and decide the load generator's traffic.

use sentinel_testkit as support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::{eventually, free_port, Broker, Process};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// Where a swapped value sits: an environment variable, the argument after a flag, or the
/// URL a healthcheck probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    Env(&'static str),
    Arg(&'static str),
    Probe,
}

/// Stands for the service's own name in a container value of [`SWAPS`].
const SERVICE: &str = "$service";

/// Everything that differs from the containers, and why. The container's value is checked
/// against the resolved file, so a change to the compose file that this list does not follow
/// fails here instead of going unnoticed.
const SWAPS: &[(At, &str, &str)] = &[
    (
        At::Env("SENTINEL_KAFKA_BROKERS"),
        "redpanda:9092",
        "broker: Redpanda cannot run here; a local tansu broker on a free port",
    ),
    (
        At::Arg("--brokers"),
        "redpanda:9092",
        "broker: the load generator produces to the same local tansu broker",
    ),
    (
        At::Env("SENTINEL_CONFIG"),
        "/etc/sentinel/compose.toml",
        "container path and store: the mounted config/compose.toml becomes a copy whose \
         [store] is sentinel-1's embedded store served to the others over the cluster \
         ([cluster] store_host), because ScyllaDB cannot run here; the rest of the file is kept",
    ),
    (
        At::Env("SENTINEL_DATA_DIR"),
        "/data",
        "container path: each node's data volume becomes its own temporary directory",
    ),
    (
        At::Env("SENTINEL_HTTP_LISTEN"),
        "0.0.0.0:8080",
        "container port: the three nodes share one host here, so each API gets a free port \
         (still on every interface, as in the container)",
    ),
    (
        At::Env("SENTINEL_CLUSTER_LISTEN"),
        "0.0.0.0:7000",
        "container port: each cluster listener gets a free port (still on every interface)",
    ),
    (
        At::Env("HOSTNAME"),
        SERVICE,
        "container hostname: a node listening on every interface advertises HOSTNAME to its \
         peers; here every node is 127.0.0.1",
    ),
    (
        At::Env("SENTINEL_CLUSTER_SEEDS"),
        "sentinel-1:7000",
        "container hostname: sentinel-1 is 127.0.0.1 at its cluster listener's port",
    ),
    (
        At::Probe,
        "http://localhost:8080/readyz",
        "container port: the healthcheck probes each node's own API port",
    ),
    (
        At::Arg("--report-dir"),
        "/reports",
        "container path: the report volume becomes a temporary directory",
    ),
    (
        At::Arg("--rate"),
        "500",
        "load: a light rate on a shared test machine",
    ),
    (
        At::Arg("--duration-secs"),
        "600",
        "load: seconds of traffic are enough to see it decided, not ten minutes",
    ),
];

/// The swap of the argument after `flag`, if any.
fn swap_of_arg(flag: &str) -> Option<At> {
    SWAPS
        .iter()
        .find_map(|(at, _, _)| matches!(at, At::Arg(f) if *f == flag).then_some(*at))
}

/// The swap of environment variable `name`, if any.
fn swap_of_env(name: &str) -> Option<At> {
    SWAPS
        .iter()
        .find_map(|(at, _, _)| matches!(at, At::Env(n) if *n == name).then_some(*at))
}

/// The image's programs (Dockerfile: `cargo build --release`, copied to /usr/local/bin) are
/// the same crates' binaries built by Cargo here.
fn program(name: &str) -> PathBuf {
    match name {
        "sentinel" => PathBuf::from(env!("CARGO_BIN_EXE_sentinel")),
        "sentinel-loadtest" => cargo_binary("sentinel-loadtest", "sentinel-loadtest"),
        other => panic!("the image has no program {other}"),
    }
}

/// Builds `bin` of `package` with Cargo (another package's binaries have no
/// `CARGO_BIN_EXE_*`) and returns the executable Cargo reports.
fn cargo_binary(package: &str, bin: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--message-format=json",
            "-p",
            package,
            "--bin",
            bin,
        ])
        .current_dir(repo())
        .output()
        .expect("running cargo build");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == bin)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported the executable")
}

/// The resolved compose file as JSON: `docker-compose config` resolves interpolation, the
/// anchors and relative paths; its YAML is read with the YAML library docker-compose itself
/// runs on.
fn resolved_compose(env_file: &Path) -> Value {
    let mut config = Command::new("docker-compose")
        .arg("--env-file")
        .arg(env_file)
        .arg("-f")
        .arg(repo().join("docker-compose.yml"))
        .arg("config")
        .env_remove("SENTINEL_AUTH_JWT_SECRET")
        .env_remove("SENTINEL_CLUSTER_COOKIE")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("docker-compose is installed (scripts/test installs it)");
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ])
        .stdin(config.stdout.take().unwrap())
        .output()
        .expect("python3 with yaml (a dependency of docker-compose)");
    assert!(config.wait().unwrap().success(), "docker-compose config");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `scripts/compose-secrets` run as a user runs it, in a copy of the layout it expects;
/// returns the `.env` it wrote.
fn compose_secrets(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("scripts")).unwrap();
    let script = dir.join("scripts/compose-secrets");
    std::fs::copy(repo().join("scripts/compose-secrets"), &script).unwrap();
    assert!(Command::new(&script).status().unwrap().success());
    dir.join(".env")
}

/// The image's ENTRYPOINT (Dockerfile, last stage), which a service without its own uses.
fn image_entrypoint() -> Vec<String> {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let line = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("ENTRYPOINT "))
        .expect("the Dockerfile has an ENTRYPOINT");
    serde_json::from_str(line).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Null => Vec::new(),
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        Value::Array(a) => a.iter().map(|s| s.as_str().unwrap().to_owned()).collect(),
        other => panic!("not a command: {other}"),
    }
}

/// A service's command line and environment as the container runs them.
struct Service {
    name: String,
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    /// Read-only file mounts: container path to host path.
    mounts: HashMap<String, PathBuf>,
    /// The healthcheck's command (`CMD` form), if any.
    health: Vec<String>,
    /// Services this one waits for, with the condition (`service_started`, `service_healthy`).
    depends_on: BTreeMap<String, String>,
}

impl Service {
    fn from_compose(name: &str, s: &Value) -> Service {
        let mut argv = match &s["entrypoint"] {
            Value::Null => image_entrypoint(),
            e => strings(e),
        };
        argv.extend(strings(&s["command"]));
        let mut env: BTreeMap<String, String> = s["environment"]
            .as_object()
            .map(|e| {
                e.iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (k.clone(), v)
                    })
                    .collect()
            })
            .unwrap_or_default();
        // The engine gives a container its `hostname` as HOSTNAME (a node listening on every
        // interface advertises it to its peers).
        if let Some(host) = s["hostname"].as_str() {
            env.insert("HOSTNAME".into(), host.into());
        }
        // Bind mounts, in the short syntax (`source:target:ro`, docker-compose 1.x) or the long
        // one (docker compose 2.x).
        let mounts = s["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| {
                let (source, target) = match v {
                    Value::String(short) => {
                        let mut parts = short.split(':');
                        (parts.next()?, parts.next()?)
                    }
                    long => (long["source"].as_str()?, long["target"].as_str()?),
                };
                source
                    .starts_with('/')
                    .then(|| (target.to_owned(), PathBuf::from(source)))
            })
            .collect();
        let health = match strings(&s["healthcheck"]["test"]).split_first() {
            Some((form, command)) if form == "CMD" => command.to_vec(),
            Some((form, _)) => panic!("{name}: a {form} healthcheck; the test runs CMD ones"),
            None => Vec::new(),
        };
        let depends_on = match &s["depends_on"] {
            Value::Array(short) => short
                .iter()
                .map(|d| (d.as_str().unwrap().to_owned(), "service_started".to_owned()))
                .collect(),
            Value::Object(long) => long
                .iter()
                .map(|(d, c)| (d.clone(), c["condition"].as_str().unwrap().to_owned()))
                .collect(),
            _ => BTreeMap::new(),
        };
        Service {
            name: name.to_owned(),
            argv,
            env,
            mounts,
            health,
            depends_on,
        }
    }

    /// The command line and environment with every swap of [`SWAPS`] applied (`local` gives
    /// the local value); returns which swaps applied.
    fn swapped(
        &self,
        local: impl Fn(At) -> String,
    ) -> (Vec<String>, BTreeMap<String, String>, Vec<At>) {
        let mut applied = Vec::new();
        let mut swap = |at: At, value: &str| self.swap(at, value, &local, &mut applied);
        let mut argv = Vec::new();
        let mut previous: Option<String> = None;
        for arg in &self.argv {
            let value = match previous.as_deref().and_then(swap_of_arg) {
                Some(at) => swap(at, arg),
                None => arg.clone(),
            };
            argv.push(value);
            previous = Some(arg.clone());
        }
        let env = self
            .env
            .iter()
            .map(|(k, v)| {
                let value = match swap_of_env(k) {
                    Some(at) => swap(at, v),
                    None => v.clone(),
                };
                (k.clone(), value)
            })
            .collect();
        (argv, env, applied)
    }

    /// The healthcheck's command with its probed URL swapped; returns which swaps applied.
    fn probe(&self, local: impl Fn(At) -> String) -> (Vec<String>, Vec<At>) {
        let mut applied = Vec::new();
        let command = self
            .health
            .iter()
            .map(|arg| match arg.starts_with("http://") {
                true => self.swap(At::Probe, arg, &local, &mut applied),
                false => arg.clone(),
            })
            .collect();
        (command, applied)
    }

    /// `value` at `at`: the local value when [`SWAPS`] names `at` (after checking the
    /// container's value is what the table says), else unchanged.
    fn swap(
        &self,
        at: At,
        value: &str,
        local: &impl Fn(At) -> String,
        applied: &mut Vec<At>,
    ) -> String {
        match SWAPS.iter().find(|(a, _, _)| *a == at) {
            Some((_, container, _)) => {
                let container = container.replace(SERVICE, &self.name);
                assert_eq!(value, container, "{}: {at:?} changed in compose", self.name);
                applied.push(at);
                local(at)
            }
            None => value.to_owned(),
        }
    }
}

/// The mounted config file with its ScyllaDB store replaced by sentinel-1's embedded store,
/// served to the other nodes (the [`SWAPS`] entry of `SENTINEL_CONFIG`); nothing else changes.
fn derived_config(mounted: &Path, store_host: &str, into: &Path) -> PathBuf {
    let text = std::fs::read_to_string(mounted).unwrap();
    let mut config: toml::Table = text.parse().unwrap();
    let store = config
        .get_mut("store")
        .and_then(|s| s.as_table_mut())
        .expect("compose.toml has a [store] section");
    assert_eq!(
        store.get("backend").and_then(|b| b.as_str()),
        Some("scylla")
    );
    store.insert("backend".into(), "embedded".into());
    store.remove("scylla");
    config
        .entry("cluster")
        .or_insert_with(|| toml::Table::new().into())
        .as_table_mut()
        .unwrap()
        .insert("store_host".into(), store_host.into());
    let path = into.join("compose.toml");
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    path
}

/// A free port on every interface (the nodes listen on `0.0.0.0`, as in their containers):
/// [`free_port`] checks loopback only.
fn free_port_everywhere() -> u16 {
    loop {
        let port = free_port();
        if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
}

/// Ports a node listens on here.
#[derive(Clone, Copy)]
struct Ports {
    http: u16,
    cluster: u16,
}

/// A token minted the way `scripts/compose-secrets` tells users to: `sentinel token` with the
/// stack's signing secret.
fn token(jwt_secret: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sentinel"))
        .args(["token", "--role", "admin", "--ttl", "1h"])
        .env_clear()
        .env("SENTINEL_AUTH_JWT_SECRET", jwt_secret)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Starts `argv` (its program found in `programs`) with exactly `env` (a container's
/// environment has nothing else but PATH).
fn spawn(
    programs: &HashMap<String, PathBuf>,
    name: &str,
    argv: &[String],
    env: &BTreeMap<String, String>,
    dir: &Path,
) -> Process {
    let mut command = Command::new(&programs[&argv[0]]);
    command
        .args(&argv[1..])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .current_dir(dir);
    let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
    Process::spawn(name, &mut command, dir.join(format!("{name}.log")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_built_here_runs_as_composed_and_decides_the_load() {
    let work = tempfile::tempdir().unwrap();
    let env_file = compose_secrets(&work.path().join("checkout"));
    let compose = resolved_compose(&env_file);
    let here = repo().canonicalize().unwrap();
    let ours: BTreeMap<&str, Service> = compose["services"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, s)| {
            s["build"]["context"]
                .as_str()
                .and_then(|c| Path::new(c).canonicalize().ok())
                == Some(here.clone())
        })
        .map(|(name, s)| (name.as_str(), Service::from_compose(name, s)))
        .collect();
    assert_eq!(
        ours.keys().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from(["loadgen", "sentinel-1", "sentinel-2", "sentinel-3"])
    );
    let (nodes, others): (Vec<&Service>, Vec<&Service>) =
        ours.values().partition(|s| s.argv[0] == "sentinel");
    let ports: HashMap<String, Ports> = nodes
        .iter()
        .map(|s| {
            let ports = Ports {
                http: free_port_everywhere(),
                cluster: free_port_everywhere(),
            };
            (s.name.clone(), ports)
        })
        .collect();

    // Every program built before anything starts, so that the services start as close
    // together as the engine starts them.
    let programs: HashMap<String, PathBuf> = ours
        .values()
        .map(|s| (s.argv[0].clone(), program(&s.argv[0])))
        .collect();
    let broker = Broker::start().await;
    // The one node the others seed from hosts the store.
    let store_host = "sentinel-1";
    let mut running = Vec::new();
    let mut applied = BTreeSet::new();
    for node in &nodes {
        let dir = work.path().join(&node.name);
        std::fs::create_dir_all(&dir).unwrap();
        let mounted = &node.mounts[&node.env["SENTINEL_CONFIG"]];
        assert_eq!(mounted, &repo().join("config/compose.toml"));
        let config = derived_config(mounted, store_host, &dir);
        let mine = ports[&node.name];
        let (argv, env, swaps) = node.swapped(|at| match at {
            At::Env("SENTINEL_KAFKA_BROKERS") => broker.address.clone(),
            At::Env("SENTINEL_CONFIG") => config.display().to_string(),
            At::Env("SENTINEL_DATA_DIR") => dir.join("data").display().to_string(),
            At::Env("SENTINEL_HTTP_LISTEN") => format!("0.0.0.0:{}", mine.http),
            At::Env("SENTINEL_CLUSTER_LISTEN") => format!("0.0.0.0:{}", mine.cluster),
            At::Env("HOSTNAME") => "127.0.0.1".into(),
            At::Env("SENTINEL_CLUSTER_SEEDS") => {
                let host = node.env["SENTINEL_CLUSTER_SEEDS"]
                    .split(':')
                    .next()
                    .unwrap();
                format!("127.0.0.1:{}", ports[host].cluster)
            }
            other => panic!("{}: no local value for {other:?}", node.name),
        });
        applied.extend(swaps.iter().map(|a| format!("{a:?}")));
        running.push((
            node.name.clone(),
            spawn(&programs, &node.name, &argv, &env, &dir),
        ));
    }

    let [loadgen] = others[..] else {
        panic!("one load generator")
    };
    let reports = work.path().join("reports");
    let (argv, env, swaps) = loadgen.swapped(|at| match at {
        At::Arg("--brokers") => broker.address.clone(),
        At::Arg("--report-dir") => reports.display().to_string(),
        At::Arg("--rate") => "40".into(),
        At::Arg("--duration-secs") => "5".into(),
        other => panic!("loadgen: no local value for {other:?}"),
    });
    applied.extend(swaps.iter().map(|a| format!("{a:?}")));
    // A load generator started before the nodes have created their topics subscribes to
    // topics that do not exist, and librdkafka looks again only at its next metadata refresh
    // (up to 5 minutes later): it must wait for every node to be healthy (ready).
    assert!(
        nodes
            .iter()
            .all(|n| loadgen.depends_on.get(&n.name).map(String::as_str) == Some("service_healthy")),
        "loadgen must wait for every node to be healthy: {:?}",
        loadgen.depends_on
    );
    // The engine starts the load generator once each dependency is as `depends_on` asks:
    // running, or healthy by its own healthcheck (run here, as the engine runs it).
    for (dependency, condition) in &loadgen.depends_on {
        let (_, process) = running
            .iter_mut()
            .find(|(name, _)| name == dependency)
            .unwrap_or_else(|| panic!("loadgen depends on {dependency}, not started here"));
        match condition.as_str() {
            "service_started" => process.assert_running(),
            "service_healthy" => {
                let port = ports[dependency].http;
                let (probe, swaps) = ours[dependency.as_str()].probe(|at| match at {
                    At::Probe => format!("http://localhost:{port}/readyz"),
                    other => panic!("{dependency}'s healthcheck: no local value for {other:?}"),
                });
                assert!(!probe.is_empty(), "{dependency} has no healthcheck");
                applied.extend(swaps.iter().map(|a| format!("{a:?}")));
                eventually(
                    &format!("{dependency}'s healthcheck to pass"),
                    Duration::from_secs(120),
                    async || {
                        process.assert_running();
                        let status = Command::new(&probe[0])
                            .args(&probe[1..])
                            .stderr(std::process::Stdio::null())
                            .status()
                            .unwrap_or_else(|e| panic!("running {probe:?}: {e}"));
                        status.success().then_some(())
                    },
                )
                .await;
            }
            other => panic!("loadgen: depends_on condition {other}"),
        }
    }
    // Every swap the table names was needed (none is stale).
    assert_eq!(
        applied,
        SWAPS.iter().map(|(a, _, _)| format!("{a:?}")).collect(),
        "every swap in SWAPS applies"
    );
    let mut generator = spawn(&programs, "loadgen", &argv, &env, work.path());

    let client = reqwest::Client::new();
    for (name, process) in &mut running {
        let url = format!("http://127.0.0.1:{}/readyz", ports[name.as_str()].http);
        eventually(
            &format!("{name} ready"),
            Duration::from_secs(120),
            async || {
                process.assert_running();
                let r = client.get(&url).send().await.ok()?;
                r.status().is_success().then_some(())
            },
        )
        .await;
    }

    let admin = support::client_with(&format!(
        "Bearer {}",
        token(&nodes[0].env["SENTINEL_AUTH_JWT_SECRET"])
    ));
    let names: BTreeSet<String> = ports.keys().cloned().collect();
    for (name, _) in &running {
        let url = format!("http://127.0.0.1:{}/v1/cluster", ports[name.as_str()].http);
        eventually(
            &format!("{name} to see one cluster of three sharing the input topic"),
            Duration::from_secs(60),
            async || {
                let view: Value = admin.get(&url).send().await.ok()?.json().await.ok()?;
                let members = view["members"].as_array()?;
                let seen: BTreeSet<String> = members
                    .iter()
                    .filter_map(|m| m["node"].as_str().map(str::to_owned))
                    .collect();
                let hosts: BTreeSet<&str> = members
                    .iter()
                    .filter_map(|m| m["store_host"].as_str())
                    .collect();
                // One consumer group: every member owns input partitions, none twice, and
                // together all of them (the nodes create the topic with 8).
                let owned: Vec<Vec<u64>> = members
                    .iter()
                    .map(|m| {
                        let partitions = m["partitions"].as_array();
                        partitions
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_u64)
                            .collect()
                    })
                    .collect();
                let all: BTreeSet<u64> = owned.iter().flatten().copied().collect();
                let split = owned.iter().all(|p| !p.is_empty())
                    && all == (0..8).collect()
                    && owned.iter().map(Vec::len).sum::<usize>() == 8;
                (seen == names && hosts == BTreeSet::from([store_host]) && split).then_some(())
            },
        )
        .await;
    }

    let status = generator.wait(Duration::from_secs(180)).await;
    assert!(status.success(), "{}", generator.log_text());
    let report: Value =
        serde_json::from_slice(&std::fs::read(reports.join("report.json")).unwrap()).unwrap();
    let decided = report["decided"].as_u64().unwrap();
    assert!(decided > 0, "{report}");
    assert_eq!(report["sent"], decided, "every event sent was decided");

    // The decisions are in the shared store, readable through any node.
    for (name, _) in &running {
        eventually(
            &format!("{name} to count the decisions"),
            Duration::from_secs(60),
            async || {
                // A new `until` each time: answers are cached per query.
                let until = chrono::Utc::now() + chrono::Duration::minutes(1);
                let url = format!(
                    "http://127.0.0.1:{}/v1/aggregates?agg=count&window=1h&until={}",
                    ports[name.as_str()].http,
                    until.format("%Y-%m-%dT%H:%M:%SZ")
                );
                let answer: Value = admin.get(&url).send().await.ok()?.json().await.ok()?;
                (answer["groups"]["all"].as_f64()? >= decided as f64).then_some(())
            },
        )
        .await;
    }
    for (_, process) in &mut running {
        process.assert_running();
    }
}
