//! The shipped docker-compose.yml is valid and runs the whole stack: three cluster nodes
//! sharing ScyllaDB, Redpanda, Prometheus scraping every node, Grafana and
//! the load generator. No container runs here; `docker-compose config` validates the file,
//! and `compose_stack.rs` runs the services built from this repository as local processes.

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// Test values for the secrets `scripts/compose-secrets` writes into `.env`.
const JWT_SECRET: &str = "compose-test-jwt-secret-0123456789abcdef";
const COOKIE: &str = "compose-test-cluster-cookie-0123456789";

fn compose_command(args: &[&str]) -> Command {
    // An empty env file, so a developer's own .env never decides the outcome.
    let empty = std::env::temp_dir().join("sentinel-compose-test.env");
    std::fs::write(&empty, "").unwrap();
    let mut command = Command::new("docker-compose");
    command
        .arg("--env-file")
        .arg(&empty)
        .arg("-f")
        .arg(repo().join("docker-compose.yml"))
        .args(args)
        .env_remove("SENTINEL_AUTH_JWT_SECRET")
        .env_remove("SENTINEL_CLUSTER_COOKIE");
    command
}

fn compose(args: &[&str]) -> String {
    let out = compose_command(args)
        .env("SENTINEL_AUTH_JWT_SECRET", JWT_SECRET)
        .env("SENTINEL_CLUSTER_COOKIE", COOKIE)
        .output()
        .expect("docker-compose is installed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "docker-compose {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_compose_file_validates_and_runs_the_whole_cluster() {
    compose(&["config", "-q"]);
    let services: Vec<String> = compose(&["config", "--services"])
        .lines()
        .map(str::to_owned)
        .collect();
    for service in [
        "redpanda",
        "scylla",
        "sentinel-1",
        "sentinel-2",
        "sentinel-3",
        "loadgen",
        "prometheus",
        "grafana",
    ] {
        assert!(
            services.iter().any(|s| s == service),
            "{service} in {services:?}"
        );
    }
    // The resolved file: three nodes, each reading the shared-store configuration, two of
    // them joining the first.
    let resolved = compose(&["config"]);
    assert_eq!(
        resolved
            .matches("SENTINEL_CONFIG: /etc/sentinel/compose.toml")
            .count(),
        3,
        "{resolved}"
    );
    assert_eq!(
        resolved
            .matches("SENTINEL_CLUSTER_SEEDS: sentinel-1:7000")
            .count(),
        2
    );
    // Every node gets the secrets from the environment (.env), and listens for its peers on
    // the container's network with a cookie strong enough to be allowed to.
    assert_eq!(
        resolved
            .matches(&format!("SENTINEL_CLUSTER_COOKIE: {COOKIE}"))
            .count(),
        3
    );
    assert_eq!(
        resolved
            .matches(&format!("SENTINEL_AUTH_JWT_SECRET: {JWT_SECRET}"))
            .count(),
        3
    );
    assert_eq!(
        resolved
            .matches("SENTINEL_CLUSTER_LISTEN: 0.0.0.0:7000")
            .count(),
        3
    );
    // A clean stop may take over twice the request timeout: no node is SIGKILLed midway.
    // (Compose v1 prints the duration as written, v2 in Go's form.)
    let grace = ["stop_grace_period: 90s", "stop_grace_period: 1m30s"]
        .map(|line| resolved.matches(line).count());
    assert_eq!(grace.iter().sum::<usize>(), 3, "{resolved}");
}

/// Without the secrets the stack does not start half-configured: compose refuses and names
/// the script that writes them, which makes fresh random ones.
#[test]
fn the_stack_refuses_to_start_without_its_secrets_and_the_script_makes_them() {
    let out = compose_command(&["config", "-q"])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("scripts/compose-secrets"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("scripts")).unwrap();
    let script = dir.path().join("scripts/compose-secrets");
    std::fs::copy(repo().join("scripts/compose-secrets"), &script).unwrap();
    for _ in 0..2 {
        let out = Command::new(&script).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let env = std::fs::read_to_string(dir.path().join(".env")).unwrap();
    let values: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(values.len(), 2, "{env}");
    assert!(values.iter().all(|v| v.len() == 64), "{env}");
    assert_ne!(values[0], values[1]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join(".env"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "only the owner reads .env");
}

#[test]
fn the_cluster_prometheus_config_scrapes_every_node() {
    let dir = repo().join("prometheus");
    let out = Command::new("promtool")
        .args(["check", "config", "prometheus-cluster.yml"])
        .current_dir(&dir)
        .output()
        .expect("promtool is installed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let config = std::fs::read_to_string(dir.join("prometheus-cluster.yml")).unwrap();
    for node in ["sentinel-1:8080", "sentinel-2:8080", "sentinel-3:8080"] {
        assert!(config.contains(node), "{node}");
    }
}
