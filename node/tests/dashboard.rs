//! The live analyst dashboard, proven with real processes: a `sentinel demo` node produces
//! traffic, a headless Chromium (Debian's `chromium`) opens the page the node serves at `/`,
//! and a playwright-core script (`tests/dashboard/driver.mjs`, connected to that Chromium over
//! the DevTools protocol) reads the page the way an analyst would: the stream goes live, the
//! decision count moves, a flagged transaction appears in the feed, clicking it shows the
//! reasons stored for it, and a fraud ring shows up in the linked-users view. That test then
//! checks what the page showed against the node's own API, one named phase per view. A second
//! test, without a browser, proves the node's side: the token guards the API, the page and its
//! assets are served, the stream sends what the page reads, and an open stream does not hold
//! up a clean drain.
//!
//! Chromium, Node and the driver's `node_modules` are installed by `./scripts/test`; when any is
//! missing the browser test fails and says so.

use sentinel_testkit as support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::phase;
use support::{eventually, free_port, Process};

fn driver_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard")
}

/// The path of `tool` on PATH, or a failure telling how to install it (never a silent skip).
/// What `require_tool` says when a program this test runs is missing.
const NEEDS: &str = "the dashboard test drives a real headless Chromium with Node. Run ./scripts/test (it installs Debian's `chromium`, and the driver's npm packages), or `apt-get install -y chromium nodejs`.";

async fn http_ok(client: &reqwest::Client, url: &str) -> bool {
    client
        .get(url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Reads server-sent events from `response` until `done` is satisfied by the event names seen
/// so far; returns them in order.
async fn read_events(
    response: &mut reqwest::Response,
    buffer: &mut String,
    limit: Duration,
    done: impl Fn(&[String]) -> bool,
) -> Vec<(String, Value)> {
    let deadline = Instant::now() + limit;
    let mut events = Vec::new();
    let mut names = Vec::new();
    while !done(&names) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out reading the stream; saw {names:?}"
        );
        let chunk = tokio::time::timeout(left, response.chunk())
            .await
            .expect("the stream stalled")
            .expect("reading the stream")
            .expect("the stream ended early");
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut name = String::from("message");
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if data.is_empty() {
                continue; // a keep-alive comment
            }
            names.push(name.clone());
            events.push((name, serde_json::from_str(&data).unwrap()));
        }
    }
    events
}

/// A running `sentinel demo` node with plenty of injected fraud, and the admin token it printed.
struct Demo {
    process: Process,
    base: String,
    token: String,
    /// A client that sends the token.
    client: reqwest::Client,
}

/// Starts a demo node in `dir` and waits until it is ready; checks that, without a configured
/// secret, it printed an admin token and the dashboard's address carrying it in the fragment.
/// A phase of its own.
async fn start_demo(dir: &Path) -> Demo {
    phase(
        "the demo node starts and prints its token and the dashboard's address",
        async {
            let config = dir.join("sentinel.toml");
            std::fs::write(&config, "[actors]\npassivate_after_secs = 60\n").unwrap();
            let http = format!("127.0.0.1:{}", free_port());
            let base = format!("http://{http}");
            let mut process = Process::spawn(
                "sentinel demo",
                Command::new(env!("CARGO_BIN_EXE_sentinel"))
                    .arg("demo")
                    .arg("--config")
                    .arg(&config)
                    .arg("--data-dir")
                    .arg(dir.join("data"))
                    .args(["--http-listen", &http])
                    .args(["--fraud-ratio", "0.05", "--rate", "300", "--users", "3000"])
                    .env("RUST_LOG", "info"),
                dir.join("demo.log"),
            );
            let ready = format!("{base}/readyz");
            let anonymous = reqwest::Client::new();
            eventually(
                "the demo node to be ready",
                Duration::from_secs(60),
                async || {
                    process.assert_running();
                    http_ok(&anonymous, &ready).await.then_some(())
                },
            )
            .await;
            let printed = process.log_text();
            let token = printed
                .lines()
                .find_map(|l| l.strip_prefix("admin token for this run (valid 24 h): "))
                .unwrap_or_else(|| panic!("the demo printed no token:\n{printed}"))
                .trim()
                .to_owned();
            assert!(
                printed.contains(&format!("dashboard: {base}/#token={token}")),
                "{printed}"
            );
            let client = support::client_with(&format!("Bearer {token}"));
            Demo {
                process,
                base,
                token,
                client,
            }
        },
    )
    .await
}

/// The node side of the dashboard, without a browser: the token the demo prints guards the
/// API, the page and its assets are served by the node itself, and the live stream says hello,
/// sends stats and flagged decisions, and ends when the node drains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_the_page_and_a_live_stream_that_ends_when_the_node_drains() {
    let dir = tempfile::tempdir().unwrap();
    let anonymous = reqwest::Client::new();
    let Demo {
        process: mut demo,
        base,
        token,
        client,
    } = start_demo(dir.path()).await;

    phase("the demo's API needs the token", async {
        let status = anonymous
            .get(format!("{base}/v1/decisions"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401, "the demo's API needs the token");
    })
    .await;

    phase("the node serves the page and its assets", async {
        let page = client.get(format!("{base}/")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let html = page.text().await.unwrap();
        for asset in [
            "/assets/dashboard.css",
            "/assets/dashboard.js",
            "/favicon.svg",
        ] {
            assert!(html.contains(asset), "the page does not reference {asset}");
            assert!(http_ok(&client, &format!("{base}{asset}")).await, "{asset}");
        }
    })
    .await;

    // The stream, read directly. It stays open until the node drains at the end.
    let mut stream = phase(
        "the stream sends a hello, stats every second, and flagged decisions that are stored",
        async {
            let mut stream = anonymous
                .get(format!("{base}/v1/stream?access_token={token}"))
                .send()
                .await
                .unwrap();
            assert_eq!(stream.status(), 200);
            assert!(stream.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream"));
            let mut buffer = String::new();
            let events = read_events(
                &mut stream,
                &mut buffer,
                Duration::from_secs(120),
                |names| {
                    names.iter().filter(|n| *n == "stats").count() >= 2
                        && names.iter().any(|n| n == "decision")
                },
            )
            .await;
            assert_eq!(events[0].0, "hello", "{events:?}");
            let stats: Vec<&Value> = events
                .iter()
                .filter(|(n, _)| n == "stats")
                .map(|(_, v)| v)
                .collect();
            assert!(stats.iter().any(|s| s["events"].as_u64() > Some(0)));
            for s in &stats {
                let sum = ["approve", "review", "decline"]
                    .iter()
                    .map(|k| s[k].as_u64().unwrap())
                    .sum::<u64>();
                assert_eq!(s["events"].as_u64(), Some(sum), "{s}");
                assert_eq!(s["ready"], true);
            }
            let flagged = &events.iter().find(|(n, _)| n == "decision").unwrap().1;
            assert!(
                flagged["outcome"] == "review" || flagged["outcome"] == "decline",
                "{flagged}"
            );
            let stored = client
                .get(format!(
                    "{base}/v1/decisions/{}",
                    flagged["id"].as_str().unwrap()
                ))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap();
            assert_eq!(stored["outcome"], flagged["outcome"]);
            assert_eq!(stored["user_id"], flagged["user"]);
            stream
        },
    )
    .await;

    // SIGTERM: the stream says the node is no longer ready and ends, and the node exits
    // cleanly.
    phase("an open stream does not hold a drain up", async {
        demo.signal_group("-TERM");
        let status = demo.wait(Duration::from_secs(120)).await;
        assert_eq!(status.code(), Some(0), "{}", demo.log_text());
        let mut ended = false;
        let mut saw_not_ready = false;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await {
                Ok(Ok(Some(chunk))) => {
                    let text = String::from_utf8_lossy(&chunk);
                    saw_not_ready |= text.contains("\"ready\":false");
                }
                Ok(Ok(None)) | Ok(Err(_)) => {
                    ended = true;
                    break;
                }
                Err(_) => {}
            }
        }
        assert!(ended, "the stream did not end when the node stopped");
        println!("stream reported not-ready before ending: {saw_not_ready}");
    })
    .await;
}

/// A headless Chromium reads the page the way an analyst would (through `driver.mjs`), and
/// what it showed is checked against the node's own API, one named phase per view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_live_traffic_flagged_transactions_and_their_reasons() {
    let chromium = support::require_tool("chromium", NEEDS);
    let node = support::require_tool("node", NEEDS);
    assert!(
        driver_dir().join("node_modules/playwright-core").is_dir(),
        "{} has no node_modules/playwright-core: run ./scripts/test (it runs `npm ci` there)",
        driver_dir().display()
    );

    let dir = tempfile::tempdir().unwrap();
    let anonymous = reqwest::Client::new();
    let Demo {
        process: _demo,
        base,
        token,
        client,
    } = start_demo(dir.path()).await;
    let dashboard_url = format!("{base}/#token={token}");

    // An analyst's rule that flags first uses of a device at a new merchant: the simulator's
    // fraud rings (one new device shared by four users) are then flagged, and the linked-users
    // view has something to link.
    phase("an analyst adds a rule", async {
        let rule = client
            .post(format!("{base}/v1/rules"))
            .json(&serde_json::json!({
                "name": "new_device_new_merchant",
                "expression": "is_new_device and is_new_merchant and user.txn_count >= 1",
                "action": "review",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(rule.status(), 201, "{}", rule.text().await.unwrap());
    })
    .await;

    // Headless Chromium, ours to kill: the driver only connects to it.
    let profile = dir.path().join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let mut browser = Process::spawn(
        "chromium",
        Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank"),
        dir.path().join("chromium.log"),
    );
    let port_file = profile.join("DevToolsActivePort");
    let devtools_port = phase(
        "Chromium starts and opens its DevTools port",
        eventually(
            "Chromium's DevTools port",
            Duration::from_secs(60),
            async || {
                browser.assert_running();
                let text = std::fs::read_to_string(&port_file).ok()?;
                text.lines().next()?.trim().parse::<u16>().ok()
            },
        ),
    )
    .await;

    // Seed 004's pair, over and over while the page is open, each time on a fresh device: the
    // first user is approved (alone on the device), the second reviewed, and the page must
    // show both.
    let pairs = {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            for round in 0.. {
                for n in [1, 2] {
                    let body = format!(
                        r#"{{"user_id": "user-ring-{round}-{n}", "card_id": "card-ring-{round}-{n}", "device_id": "device-shared-{round}", "amount": 150.00}}"#
                    );
                    let _ = client
                        .post(format!("{base}/v1/transactions"))
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };

    let screenshot = dir.path().join("dashboard.png");
    let report: Value = phase("the driver reads the page in Chromium", async {
        let mut driver = Process::spawn(
            "dashboard driver",
            Command::new(&node)
                .current_dir(driver_dir())
                .arg("driver.mjs")
                .arg(format!("http://127.0.0.1:{devtools_port}"))
                .arg(&dashboard_url)
                .arg(&screenshot)
                .arg("240"),
            dir.path().join("driver.log"),
        );
        let status = driver.wait(Duration::from_secs(600)).await;
        pairs.abort();
        let output = driver.log_text();
        let report: Value = output
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| panic!("the driver printed no report:\n{output}"));
        println!("driver report: {report}");
        assert!(status.success(), "the driver failed: {report}");
        assert!(report["error"].is_null(), "{report}");
        report
    })
    .await;

    phase("the page loaded, went live, and its numbers moved", async {
        assert_eq!(report["status"], 200);
        assert_eq!(report["title"], "SentinelStream · live");
        let totals: Vec<u64> = report["totals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert!(totals[0] > 0 && totals[1] > totals[0], "{totals:?}");
        assert_eq!(
            report["page_errors"].as_array().map(Vec::len),
            Some(0),
            "{report}"
        );
    })
    .await;

    // A flagged transaction appeared in the feed; clicking it showed the reasons the node
    // stored for it.
    let txn = report["txn"].as_str().unwrap();
    let stored = phase(
        "a flagged transaction in the feed shows the reasons stored for it",
        async {
            assert_eq!(report["detail_title"], txn);
            let stored = client
                .get(format!("{base}/v1/decisions/{txn}"))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap();
            let outcome = stored["outcome"].as_str().unwrap();
            assert!(outcome == "review" || outcome == "decline", "{stored}");
            assert_eq!(report["row_outcome"], outcome);
            assert_eq!(report["detail_outcome"], outcome);
            let stored_rules: Vec<&str> = stored["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["rule"].as_str().unwrap())
                .collect();
            assert!(!stored_rules.is_empty(), "{stored}");
            let shown = |key: &str| -> Vec<String> {
                report[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect()
            };
            assert_eq!(shown("detail_rules"), stored_rules);
            assert_eq!(shown("row_rules"), stored_rules);
            // Each value a rule saw is shown with its label.
            let labels: BTreeSet<String> = report["detail_values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|row| row[0].as_str().unwrap().to_owned())
                .collect();
            for reason in stored["reasons"].as_array().unwrap() {
                for value in reason["values"].as_array().unwrap() {
                    let label = value[0].as_str().unwrap();
                    assert!(labels.contains(label), "{label} not shown: {report}");
                }
            }
            stored
        },
    )
    .await;

    // The page fetches the drawer's views with its token; a plain link would get 401.
    phase(
        "the drawer's user history, live profile and raw JSON show the API's answers",
        async {
            let views: Vec<(&str, &Value)> = report["json_views"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| (v["name"].as_str().unwrap(), v))
                .collect();
            assert_eq!(
                views.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
                ["user history", "live profile", "raw JSON"],
                "{report}"
            );
            let user = stored["user_id"].as_str().unwrap();
            for (name, view) in views {
                assert_eq!(view["state"], "ok", "{name}: {view}");
                let json = &view["json"];
                match name {
                    // The page shows what JavaScript parsed, which writes 2.0 as 2: equal as
                    // numbers.
                    "raw JSON" => {
                        assert_eq!(numbers_as_f64(json), numbers_as_f64(&stored), "{name}")
                    }
                    "user history" => assert!(
                        json.as_array()
                            .unwrap()
                            .iter()
                            .all(|d| d["user_id"] == user)
                            && json
                                .as_array()
                                .unwrap()
                                .iter()
                                .any(|d| d["transaction_id"] == txn),
                        "{name}: {json}"
                    ),
                    _ => assert!(json["txn_count"].as_u64() > Some(0), "{name}: {json}"),
                }
                // The address the page fetched answers 401 without the token: the page
                // supplied it.
                let path = view["path"].as_str().unwrap();
                let bare = anonymous.get(format!("{base}{path}")).send().await.unwrap();
                assert_eq!(bare.status(), 401, "{path}");
            }
        },
    )
    .await;

    phase(
        "the rule table lists the policy's rules, the new one included",
        async {
            let rule_names: BTreeSet<&str> = report["rule_rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r[0].as_str().unwrap())
                .collect();
            for name in [
                "large_amount",
                "impossible_travel",
                "velocity_5m",
                "new_device_new_merchant",
            ] {
                assert!(rule_names.contains(name), "{name} missing: {rule_names:?}");
            }
        },
    )
    .await;

    // The linked-users view found a device or card shared by several users, and the store
    // agrees that each of them used it.
    phase(
        "the linked-users view shows the seed pair and users the store links",
        async {
            let groups = report["link_groups"].as_array().unwrap();
            assert!(!groups.is_empty(), "no linked users shown: {report}");
            // A pair is shown with its first, approved user, which the stream links to the
            // second.
            let pair = groups
                .iter()
                .find(|g| g["key"].as_str().unwrap().starts_with("device-shared-"))
                .unwrap_or_else(|| panic!("the seed pair is not shown: {report}"));
            let outcomes: Vec<&str> = pair["outcomes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o.as_str().unwrap())
                .collect();
            assert_eq!(pair["users"].as_array().unwrap().len(), 2, "{pair}");
            assert!(
                outcomes.contains(&"approve") && outcomes.contains(&"review"),
                "{pair}"
            );
            let group = &groups[0];
            let key = group["key"].as_str().unwrap();
            let users: BTreeSet<&str> = group["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u.as_str().unwrap())
                .collect();
            assert!(users.len() >= 2, "{group}");
            let from = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
            let mut users_of_key = BTreeSet::new();
            for field in ["device_id", "card_id"] {
                let found: Value = client
                    .get(format!("{base}/v1/decisions"))
                    .query(&[(field, key), ("from", &from), ("limit", "1000")])
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let items = found["decisions"]
                    .as_array()
                    .unwrap_or_else(|| panic!("unexpected search answer: {found}"));
                for d in items {
                    users_of_key.insert(d["user_id"].as_str().unwrap().to_owned());
                }
            }
            for user in &users {
                assert!(
                    users_of_key.contains(*user),
                    "{user} never used {key}: {users_of_key:?}"
                );
            }
        },
    )
    .await;

    // The screenshot, for people (and CI artifacts).
    phase("the driver took a screenshot", async {
        let png = std::fs::read(&screenshot).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        if let Some(out) = std::env::var_os("SENTINEL_SCREENSHOT_DIR") {
            let out = PathBuf::from(out);
            std::fs::create_dir_all(&out).unwrap();
            for name in ["dashboard.png", "dashboard-detail.png"] {
                std::fs::copy(dir.path().join(name), out.join(name)).unwrap();
                println!("screenshot copied to {}", out.join(name).display());
            }
        }
    })
    .await;
}

/// `value` with every number as an `f64`, so `2` and `2.0` compare equal.
fn numbers_as_f64(value: &Value) -> Value {
    match value {
        Value::Number(n) => serde_json::json!(n.as_f64().unwrap()),
        Value::Array(items) => Value::Array(items.iter().map(numbers_as_f64).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), numbers_as_f64(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}
