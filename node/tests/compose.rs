//! The shipped docker-compose.yml is valid and runs the whole stack: three cluster nodes
//! (one serving the store), Redpanda, ScyllaDB, Prometheus scraping every node, Grafana and
//! the load generator. No container runs here; `docker-compose config` validates the file.

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn compose(args: &[&str]) -> String {
    let out = Command::new("docker-compose")
        .arg("-f")
        .arg(repo().join("docker-compose.yml"))
        .args(args)
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
    assert_eq!(resolved.matches("SENTINEL_CLUSTER_COOKIE:").count(), 3);
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
