//! The Prometheus rules and Grafana dashboards, proven against real processes: `promtool`
//! checks the configuration and the rules (and runs their unit tests), and the dashboards are
//! checked against the metrics the node exports, each in a test of its own. Then a
//! `sentinel demo` node runs its simulator through a real Kafka-API broker (so the Kafka series
//! are real too), and a real Prometheus scrapes it and evaluates the rules. Every dashboard
//! query and every rule expression is then run through Prometheus' HTTP API, each panel's query
//! without its `or vector(…)` display fallback, so a panel only passes on data the node really
//! exported; that test shares one node and one Prometheus across named phases.
//!
//! Prometheus and promtool come from Debian's `prometheus` package; `./scripts/test` installs it.

use sentinel_testkit as support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use support::phase;
use support::{eventually, free_port, Broker, Process};

/// Every metric the node can export, from the constants that name them.
const METRIC_SOURCES: [&str; 7] = [
    include_str!("../src/telemetry.rs"),
    include_str!("../src/currency.rs"),
    include_str!("../../api/src/metrics.rs"),
    include_str!("../../alerts/src/metrics.rs"),
    include_str!("../../engine/src/metrics.rs"),
    include_str!("../../actors/src/metrics.rs"),
    include_str!("../../store/src/metrics.rs"),
];

/// Metrics a demo node must export within the deadline (the test shortens passivation so that
/// actors are passivated and restored while it runs, and sends a few malformed messages).
const LIVE_ON_DEMO: &[&str] = &[
    "sentinel_kafka_consumer_lag_messages",
    "sentinel_kafka_rebalances_total",
    "sentinel_end_to_end_latency_seconds_bucket",
    "sentinel_decisions_published_total",
    "sentinel_dead_lettered_events_total",
    "sentinel_events_received_total",
    "sentinel_decisions_total",
    "sentinel_rule_hits_total",
    "sentinel_decision_latency_seconds_bucket",
    "sentinel_scoring_duration_seconds_bucket",
    "sentinel_user_actors_live",
    "sentinel_user_actor_passivations_total",
    "sentinel_user_actor_restores_total",
    "sentinel_store_batch_write_seconds_bucket",
    "sentinel_store_batch_size_bucket",
    "sentinel_store_decisions_stored_total",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The path of `tool` on PATH, or a failure telling how to install it (never a silent skip).
/// What `require_tool` says when a program this test runs is missing.
const NEEDS: &str = "this test needs a real Prometheus and promtool. Run ./scripts/test (it installs Debian's `prometheus` package when missing), or `apt-get install -y prometheus`.";

fn run(program: &Path, args: &[&str], dir: &Path) -> Output {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed ({}):\n{}\n{}",
        program.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

async fn http_status(client: &reqwest::Client, url: &str) -> Option<u16> {
    client
        .get(url)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// `GET url` as JSON; `None` while the server cannot answer (for `eventually`).
async fn try_get_json(client: &reqwest::Client, url: &str) -> Option<Value> {
    client.get(url).send().await.ok()?.json().await.ok()
}

/// `GET /api/v1/query`: the response's `data.result` when the status is `success`, the
/// error otherwise.
async fn query(client: &reqwest::Client, prom: &str, expr: &str) -> Result<Vec<Value>, String> {
    let r = client
        .get(format!("{prom}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let body: Value = r.json().await.map_err(|e| format!("not JSON: {e}"))?;
    if body["status"] != "success" {
        return Err(format!("{}: {}", body["errorType"], body["error"]));
    }
    match &body["data"]["result"] {
        Value::Array(samples) => Ok(samples.clone()),
        // A scalar or string result: one value.
        other => Ok(vec![other.clone()]),
    }
}

/// One PromQL expression to prove, and whether it must return data.
struct Check {
    origin: String,
    expr: String,
    needs_data: bool,
}

/// A panel query without its trailing `or vector(…)`, which only decides what Grafana draws
/// before a series exists.
fn without_fallback(expr: &str) -> &str {
    match expr.rfind(" or vector(") {
        Some(at) if expr.ends_with(')') => &expr[..at],
        _ => expr,
    }
}

/// The identifiers of an expression that name metrics (`sentinel_…`) or recording rules
/// (`sentinel:…`).
fn sentinel_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut in_string = false;
    let mut token = String::new();
    for c in expr.chars().chain([' ']) {
        if c == '"' {
            in_string = !in_string;
        }
        if !in_string && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            token.push(c);
        } else {
            if token.starts_with("sentinel_") || token.starts_with("sentinel:") {
                names.insert(std::mem::take(&mut token));
            }
            token.clear();
        }
    }
    names
}

fn exported_metrics() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for source in METRIC_SOURCES {
        for piece in source.split('"').skip(1).step_by(2) {
            if piece.starts_with("sentinel_") {
                names.insert(piece.to_owned());
            }
        }
    }
    names
}

/// The base metric of a series name (`x_bucket`, `x_sum`, `x_count` of histogram `x`).
fn base_metric<'a>(name: &'a str, exported: &BTreeSet<String>) -> Option<&'a str> {
    if exported.contains(name) {
        return Some(name);
    }
    ["_bucket", "_sum", "_count"]
        .iter()
        .filter_map(|s| name.strip_suffix(s))
        .find(|base| exported.contains(*base))
}

/// What the dashboards ask Prometheus.
struct DashboardQueries {
    /// (origin, expr) per panel target, with the variables replaced by what "All" selects.
    targets: Vec<(String, String)>,
    /// (origin, selector) of each `label_values(selector, label)` variable.
    variables: Vec<(String, String)>,
}

/// Reads, validates and flattens every dashboard.
fn dashboard_queries(dir: &Path) -> DashboardQueries {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboards under {}", dir.display());
    let mut uids = BTreeSet::new();
    let mut targets = Vec::new();
    let mut variables = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let board: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        let uid = board["uid"].as_str().unwrap_or_default();
        assert!(!uid.is_empty(), "{name}: no uid");
        assert!(
            uids.insert(uid.to_owned()),
            "{name}: uid {uid} is used twice"
        );
        assert!(
            board["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{name}: no title"
        );
        let mut all_values = BTreeMap::new();
        for var in board["templating"]["list"].as_array().into_iter().flatten() {
            let var_name = var["name"].as_str().unwrap();
            assert_eq!(
                var["datasource"]["uid"], "prometheus",
                "{name}: variable {var_name}"
            );
            let definition = var["query"]["query"]
                .as_str()
                .or(var["query"].as_str())
                .unwrap();
            let inner = definition
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .unwrap_or_else(|| panic!("{name}: variable {var_name}: {definition}"));
            let (selector, _label) = inner.rsplit_once(',').unwrap();
            variables.push((
                format!("{name} variable ${var_name}"),
                selector.trim().to_owned(),
            ));
            assert_eq!(var["includeAll"], true, "{name}: variable {var_name}");
            all_values.insert(
                format!("${var_name}"),
                var["allValue"].as_str().unwrap_or(".*").to_owned(),
            );
        }
        let panels = board["panels"].as_array().unwrap();
        let mut ids = BTreeSet::new();
        let mut flat = Vec::new();
        for panel in panels {
            flat.push(panel);
            flat.extend(panel["panels"].as_array().into_iter().flatten());
        }
        for panel in flat {
            let title = panel["title"].as_str().unwrap_or_default();
            assert!(!title.is_empty(), "{name}: a panel without a title");
            assert!(
                ids.insert(panel["id"].as_u64().unwrap()),
                "{name}: panel id reused"
            );
            for key in ["x", "y", "w", "h"] {
                assert!(panel["gridPos"][key].is_u64(), "{name}/{title}: gridPos");
            }
            if panel["type"] == "row" {
                continue;
            }
            assert_eq!(
                panel["datasource"]["uid"], "prometheus",
                "{name}/{title}: datasource"
            );
            let panel_targets = panel["targets"].as_array().unwrap();
            assert!(!panel_targets.is_empty(), "{name}/{title}: no targets");
            for target in panel_targets {
                let ref_id = target["refId"].as_str().unwrap();
                assert_eq!(
                    target["datasource"]["uid"], "prometheus",
                    "{name}/{title}/{ref_id}: datasource"
                );
                let mut expr = target["expr"].as_str().unwrap().to_owned();
                for (var, value) in &all_values {
                    expr = expr.replace(var, value);
                }
                assert!(
                    !expr.contains('$'),
                    "{name}/{title}/{ref_id}: unknown variable in {expr}"
                );
                targets.push((format!("{name} / {title} / {ref_id}"), expr));
            }
        }
    }
    DashboardQueries { targets, variables }
}

fn prom_dir() -> PathBuf {
    repo_root().join("prometheus")
}

/// `promtool check rules rules.yml`: the rules are valid; returns how many there are.
fn checked_rule_count(promtool: &Path) -> usize {
    let out = run(promtool, &["check", "rules", "rules.yml"], &prom_dir());
    let checked = String::from_utf8_lossy(&out.stdout).into_owned();
    checked
        .split("SUCCESS: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected promtool output: {checked}"))
}

/// Writes prometheus.yml and rules.yml as shipped into `work`, scraping `node_addr` every
/// second, and checks the result with `promtool check config`.
fn write_prometheus_config(promtool: &Path, node_addr: &str, work: &Path) {
    let prom_dir = prom_dir();
    let mut prom_config = std::fs::read_to_string(prom_dir.join("prometheus.yml")).unwrap();
    for (from, to) in [
        ("\"sentinel:8080\"", format!("\"{node_addr}\"")),
        ("scrape_interval: 5s", "scrape_interval: 1s".to_owned()),
        (
            "evaluation_interval: 5s",
            "evaluation_interval: 1s".to_owned(),
        ),
    ] {
        assert!(prom_config.contains(from), "prometheus.yml has no {from}");
        prom_config = prom_config.replace(from, &to);
    }
    assert!(prom_config.contains("job_name: sentinel"));
    assert!(
        prom_config.contains("- rules.yml"),
        "rules.yml is not loaded"
    );
    std::fs::create_dir_all(work).unwrap();
    std::fs::write(work.join("prometheus.yml"), prom_config).unwrap();
    std::fs::copy(prom_dir.join("rules.yml"), work.join("rules.yml")).unwrap();
    let out = run(promtool, &["check", "config", "prometheus.yml"], work);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 rule files found"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The dashboards' queries, after checking that the dashboards name only metrics the node
/// exports (or recording rules) and that together they show every one of them.
fn checked_dashboard_queries(exported: &BTreeSet<String>) -> DashboardQueries {
    let queries = dashboard_queries(&repo_root().join("grafana/dashboards"));
    let mut shown = BTreeSet::new();
    for (origin, expr) in &queries.targets {
        for name in sentinel_names(expr) {
            let base = base_metric(&name, exported)
                .unwrap_or_else(|| panic!("{origin}: `{name}` is not a metric the node exports"));
            shown.insert(base.to_owned());
        }
    }
    let unshown: Vec<_> = exported.difference(&shown).collect();
    assert!(unshown.is_empty(), "no dashboard shows {unshown:?}");
    queries
}

/// Every metric the node exports, checked to be found at all.
fn checked_exported_metrics() -> BTreeSet<String> {
    let exported = exported_metrics();
    assert!(exported.len() >= 20, "metric constants not found");
    exported
}

#[test]
fn promtool_accepts_the_rules_and_their_unit_tests_pass() {
    let promtool = support::require_tool("promtool", NEEDS);
    checked_rule_count(&promtool);
    run(&promtool, &["test", "rules", "rules_test.yml"], &prom_dir());
}

#[test]
fn dashboards_are_well_formed_and_show_every_exported_metric_and_only_those() {
    checked_dashboard_queries(&checked_exported_metrics());
}

#[test]
fn the_shipped_prometheus_config_is_valid_and_loads_the_rules() {
    let promtool = support::require_tool("promtool", NEEDS);
    let dir = tempfile::tempdir().unwrap();
    write_prometheus_config(&promtool, "127.0.0.1:8080", dir.path());
}

/// A real demo node, through a real broker, scraped by a real Prometheus: one fixture, proven
/// in named phases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_and_dashboard_query_returns_data_scraped_from_a_demo_node() {
    let started = Instant::now();
    let prometheus = support::require_tool("prometheus", NEEDS);
    let promtool = support::require_tool("promtool", NEEDS);
    let rule_count = checked_rule_count(&promtool);
    let exported = checked_exported_metrics();
    let DashboardQueries {
        targets: panel_targets,
        variables,
    } = checked_dashboard_queries(&exported);
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // A real demo node. Actors passivate after 2 s idle so passivations and restores happen
    // while the test runs; 1 MiB parks a few thousand of its 20,000 users' states, so users
    // come back both from parked states and from the store.
    let node_port = free_port();
    let node_addr = format!("127.0.0.1:{node_port}");
    let config = dir.path().join("sentinel.toml");
    // One alert sink that refuses connections, so every alert series (failures included)
    // exists; a short attempt budget dead-letters alerts while the test runs.
    std::fs::write(
        &config,
        "[actors]\npassivate_after_secs = 2\nparked_mib = 1\n\
         [alerts]\nmax_attempts = 2\ninitial_backoff_ms = 100\nbreaker_failures = 1000\n\
         [[alerts.routes]]\nsinks = [\"unreachable\"]\n\
         [[alerts.sinks]]\nname = \"unreachable\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\n",
    )
    .unwrap();
    let (broker, mut node) = phase(
        "the demo node starts through a broker and becomes ready",
        async {
            let broker = Broker::start().await;
            let mut node = Process::spawn(
                "sentinel demo",
                Command::new(env!("CARGO_BIN_EXE_sentinel"))
                    .arg("demo")
                    .arg("--config")
                    .arg(&config)
                    .args(["--http-listen", &node_addr])
                    .args(["--kafka-brokers", &broker.address])
                    .arg("--simulate-into-input-topic")
                    .arg("--data-dir")
                    .arg(dir.path().join("data"))
                    .args(["--rate", "500", "--users", "20000", "--fraud-ratio", "0.02"]),
                dir.path().join("node.log"),
            );
            let readyz = format!("http://{node_addr}/readyz");
            eventually(
                "the demo node to be ready",
                Duration::from_secs(60),
                async || {
                    node.assert_running();
                    (http_status(&client, &readyz).await == Some(200)).then_some(())
                },
            )
            .await;
            (broker, node)
        },
    )
    .await;

    phase("malformed messages reach the input topic", async {
        // So the dead-letter series are real.
        let producer = broker.producer();
        for payload in [&b"{not json"[..], br#"{"user_id": "u-1"}"#] {
            broker
                .produce(&producer, "transactions", "u-1", payload)
                .await;
        }
    })
    .await;

    let prom_work = dir.path().join("prometheus");
    phase(
        "the shipped Prometheus configuration, pointed at the node",
        async {
            write_prometheus_config(&promtool, &node_addr, &prom_work);
        },
    )
    .await;
    let prom_addr = format!("127.0.0.1:{}", free_port());
    let prom_url = format!("http://{prom_addr}");
    let mut server = Process::spawn(
        "prometheus",
        Command::new(&prometheus)
            .arg(format!(
                "--config.file={}",
                prom_work.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                prom_work.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}")),
        dir.path().join("prometheus.log"),
    );
    phase("Prometheus becomes ready and scrapes the node", async {
        let ready = format!("{prom_url}/-/ready");
        eventually(
            "Prometheus to be ready",
            Duration::from_secs(60),
            async || {
                server.assert_running();
                (http_status(&client, &ready).await == Some(200)).then_some(())
            },
        )
        .await;
        let targets_url = format!("{prom_url}/api/v1/targets");
        eventually(
            "Prometheus to scrape the node",
            Duration::from_secs(60),
            async || {
                let body = try_get_json(&client, &targets_url).await?;
                let targets = body["data"]["activeTargets"].as_array()?;
                targets
                    .iter()
                    .any(|t| t["labels"]["job"] == "sentinel" && t["health"] == "up")
                    .then_some(())
            },
        )
        .await;
    })
    .await;

    // The rules Prometheus loaded: all of rules.yml, each evaluating without error.
    let rules: Vec<Value> = phase("Prometheus loads and evaluates every rule", async {
        let rules_url = format!("{prom_url}/api/v1/rules");
        eventually(
            "every rule to be evaluated",
            Duration::from_secs(60),
            async || {
                let body = try_get_json(&client, &rules_url).await?;
                let rules: Vec<Value> = body["data"]["groups"]
                    .as_array()?
                    .iter()
                    .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                    .collect();
                for rule in &rules {
                    assert_ne!(rule["health"], "err", "rule failed: {rule}");
                }
                (rules.len() == rule_count && rules.iter().all(|r| r["health"] == "ok"))
                    .then_some(rules)
            },
        )
        .await
    })
    .await;
    let recorded: BTreeSet<&str> = rules
        .iter()
        .filter(|r| r["type"] == "recording")
        .map(|r| r["name"].as_str().unwrap())
        .collect();

    phase(
        "rules name only exported metrics or recording rules; alerts are annotated",
        async {
            let mut alerts = 0;
            for rule in &rules {
                let name = rule["name"].as_str().unwrap();
                let query = rule["query"].as_str().unwrap();
                for metric in sentinel_names(query) {
                    assert!(
                        base_metric(&metric, &exported).is_some()
                            || recorded.contains(metric.as_str()),
                        "rule {name}: `{metric}` is neither an exported metric nor a recording rule"
                    );
                }
                if rule["type"] == "alerting" {
                    alerts += 1;
                    assert!(
                        ["critical", "warning", "info"]
                            .contains(&rule["labels"]["severity"].as_str().unwrap_or("")),
                        "alert {name}: severity label"
                    );
                    for key in ["summary", "description"] {
                        assert!(
                            rule["annotations"][key]
                                .as_str()
                                .is_some_and(|s| !s.is_empty()),
                            "alert {name}: no {key} annotation"
                        );
                    }
                }
            }
            assert!(alerts > 0 && !recorded.is_empty());
        },
    )
    .await;

    phase("the recording rules dashboards use exist", async {
        for (origin, expr) in &panel_targets {
            for name in sentinel_names(expr).iter().filter(|n| n.contains(':')) {
                assert!(
                    recorded.contains(name.as_str()),
                    "{origin}: no rule records {name}"
                );
            }
        }
    })
    .await;

    // Every query: valid, and with data where data must be.
    let mut pending: Vec<Check> = Vec::new();
    for (origin, expr) in &panel_targets {
        pending.push(Check {
            origin: origin.clone(),
            expr: without_fallback(expr).to_owned(),
            needs_data: true,
        });
    }
    for (origin, selector) in &variables {
        pending.push(Check {
            origin: origin.clone(),
            expr: selector.clone(),
            needs_data: true,
        });
    }
    for rule in &rules {
        let recording = rule["type"] == "recording";
        pending.push(Check {
            origin: format!("rules.yml {} {}", rule["type"], rule["name"]),
            expr: rule["query"].as_str().unwrap().to_owned(),
            needs_data: recording,
        });
        if recording {
            // The recorded series itself.
            pending.push(Check {
                origin: format!("rules.yml recorded series {}", rule["name"]),
                expr: rule["name"].as_str().unwrap().to_owned(),
                needs_data: true,
            });
        }
    }
    for metric in LIVE_ON_DEMO {
        pending.push(Check {
            origin: format!("scraped from the demo node: {metric}"),
            expr: format!("{metric}{{job=\"sentinel\"}}"),
            needs_data: true,
        });
    }
    let total = pending.len();
    phase(
        "every panel, variable, rule and demo-node query returns data",
        async {
            let deadline = Instant::now() + Duration::from_secs(90);
            loop {
                node.assert_running();
                server.assert_running();
                let mut still = Vec::new();
                for check in pending {
                    match query(&client, &prom_url, &check.expr).await {
                        Err(e) => panic!("{}: query failed: {e}\n  {}", check.origin, check.expr),
                        Ok(result) if check.needs_data && result.is_empty() => still.push(check),
                        Ok(_) => {}
                    }
                }
                pending = still;
                if pending.is_empty() {
                    break;
                }
                if Instant::now() >= deadline {
                    let list: Vec<String> = pending
                        .iter()
                        .map(|c| format!("  {}\n    {}", c.origin, c.expr))
                        .collect();
                    panic!(
                        "{} of {total} queries still return no data:\n{}",
                        pending.len(),
                        list.join("\n")
                    );
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        },
    )
    .await;

    // This node ran every path (simulator, Kafka source and sinks, dead letters, passivation),
    // so it exported every metric there is.
    phase("the demo node exported every metric there is", async {
        let present: BTreeSet<String> = query(
            &client,
            &prom_url,
            "group by (__name__) ({job=\"sentinel\", __name__=~\"sentinel_.*\"})",
        )
        .await
        .unwrap()
        .iter()
        .filter_map(|s| s["metric"]["__name__"].as_str().map(|base| base.to_owned()))
        .filter_map(|n| base_metric(&n, &exported).map(str::to_owned))
        .collect();
        let absent: Vec<_> = exported.difference(&present).collect();
        assert!(absent.is_empty(), "the demo node never exported {absent:?}");
    })
    .await;
    println!(
        "{total} queries proven ({} panel targets, {} rules) in {:.1?}",
        panel_targets.len(),
        rules.len(),
        started.elapsed()
    );
}
