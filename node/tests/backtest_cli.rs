//! `sentinel backtest` through the real binary, on a store filled by `sentinel import` with a
//! small hand-made history: a candidate rule's hits, the outcome changes, the range's lower
//! bound (earlier events replayed, not counted) and the user filter, as exact numbers; bad
//! arguments are refused with a message naming the argument.

use sentinel_testkit as support;

use chrono::{Duration, Utc};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

/// `(user, days ago, amount)`: amounts stay within five times each user's average (no
/// `amount_spike`), a day apart (no velocity or travel rule), so every live decision approves.
const HISTORY: [(&str, i64, &str); 12] = [
    ("u1", 9, "2100.00"), // before `--from`: replayed, not counted
    ("u1", 8, "1800.00"),
    ("u1", 7, "1900.00"),
    ("u1", 6, "2500.00"), // hit
    ("u2", 9, "2200.00"), // before `--from`
    ("u2", 5, "1000.00"),
    ("u2", 4, "1200.00"),
    ("u3", 7, "500.00"),
    ("u3", 6, "700.00"),
    ("u3", 5, "900.00"),
    ("u3", 4, "2300.00"), // hit
    ("u3", 3, "600.00"),
];

fn sentinel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sentinel"))
        .args(args)
        .env_remove("SENTINEL_CONFIG")
        .env_remove("SENTINEL_DATA_DIR")
        .output()
        .unwrap()
}

fn stdout_of(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Imports [`HISTORY`] into a store in `data`.
fn import_history(dir: &Path, data: &Path) {
    let file = dir.join("history.jsonl");
    let mut out = std::fs::File::create(&file).unwrap();
    for (i, (user, days, amount)) in HISTORY.iter().enumerate() {
        let mut e = support::event(&format!("t{i}"), user, amount, days * 24 * 60, "FR");
        e["merchant_category"] = "grocery".into();
        writeln!(out, "{e}").unwrap();
    }
    drop(out);
    let printed = stdout_of(sentinel(&[
        "import",
        "--data-dir",
        data.to_str().unwrap(),
        file.to_str().unwrap(),
    ]));
    assert!(printed.contains("12 decided"), "{printed}");
}

#[test]
fn backtest_counts_a_candidate_rules_hits_on_known_history() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    import_history(dir.path(), &data);
    let from = (Utc::now() - Duration::hours(8 * 24 + 12)).to_rfc3339();
    let backtest = |extra: &[&str]| {
        let mut args = vec!["backtest", "--data-dir", data.to_str().unwrap()];
        args.extend(["--from", &from]);
        args.extend(["--expression", "amount > 2000", "--action", "review"]);
        args.extend(extra);
        stdout_of(sentinel(&args))
    };

    let report: Value = serde_json::from_str(&backtest(&["--json"])).unwrap();
    assert_eq!(report["events"], 10, "{report}");
    assert_eq!(report["replayed"], 12, "{report}");
    assert_eq!(
        report["hits"],
        serde_json::json!({"candidate": 2}),
        "{report}"
    );
    assert_eq!(report["changed"], 2, "{report}");
    assert_eq!(
        report["outcomes"],
        serde_json::json!([
            {"from": "approve", "to": "approve", "count": 8},
            {"from": "approve", "to": "review", "count": 2},
        ]),
        "{report}"
    );
    assert_eq!(report["labelled"], 0, "{report}");
    assert_eq!(report["would_be"], Value::Null, "{report}");

    // The table, for one user: only u3's five events are replayed and counted.
    let table = backtest(&["--user-id", "u3"]);
    let version = report["policy_version"].as_u64().unwrap();
    assert_eq!(
        table,
        format!(
            "policy version {version}: 5 events counted (5 replayed), 1 would change outcome\n\
             hits by rule:\n  {:<32} {:>10}\n\
             outcomes (live -> would be):\n  {:<8} -> {:<8} {:>10}\n  {:<8} -> {:<8} {:>10}\n",
            "candidate", 1, "approve", "approve", 4, "approve", "review", 1
        )
    );

    // A shadow rule from a file: reported on the same two events, no outcome changes.
    let rule_file = dir.path().join("rule.json");
    let rule =
        r#"{"name": "big", "expression": "amount > 2000", "action": "decline", "mode": "shadow"}"#;
    std::fs::write(&rule_file, rule).unwrap();
    let args = ["backtest", "--data-dir", data.to_str().unwrap(), "--json"];
    let rule_file = rule_file.to_str().unwrap();
    let shadow: Value = stdout_of(sentinel(
        &[&args[..], &["--from", &from, "--rule-file", rule_file]].concat(),
    ))
    .parse()
    .unwrap();
    assert_eq!(shadow["hits"], serde_json::json!({"big": 2}), "{shadow}");
    assert_eq!(shadow["changed"], 0, "{shadow}");

    // The current policy reproduces every live decision.
    let current: Value = stdout_of(sentinel(&[&args[..], &["--from", &from]].concat()))
        .parse()
        .unwrap();
    assert_eq!(current["events"], 10, "{current}");
    assert_eq!(current["changed"], 0, "{current}");
    assert_eq!(current["hits"], serde_json::json!({}), "{current}");
}

#[test]
fn bad_backtest_arguments_are_refused_naming_the_argument() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    import_history(dir.path(), &data);
    let data = data.to_str().unwrap();
    let refused = |args: &[&str], code: i32, names: &str| {
        let out = sentinel(&[&["backtest", "--data-dir", data], args].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(names), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    };
    refused(&["--from", "last tuesday"], 2, "--from <FROM>");
    refused(
        &[
            "--from",
            "2026-11-20T00:00:00Z",
            "--until",
            "2026-11-10T00:00:00Z",
        ],
        1,
        "until: must be after from",
    );
    refused(
        &[
            "--from",
            "2026-11-20T00:00:00Z",
            "--expression",
            "amount > 1",
            "--action",
            "maybe",
        ],
        1,
        "--action must be flag, review or decline",
    );
    refused(
        &["--from", "2026-11-20T00:00:00Z", "--expression", "amount >"],
        1,
        "expression: rule `candidate`: the rule ends too early",
    );
    refused(
        &["--from", "2026-11-20T00:00:00Z", "--policy-version", "7"],
        1,
        "no policy version 7",
    );
    let no_file = dir.path().join("no-rule.json");
    let no_file = no_file.to_str().unwrap();
    refused(
        &["--from", "2026-11-20T00:00:00Z", "--rule-file", no_file],
        1,
        &format!("reading --rule-file {no_file}"),
    );
    let bad_rule = dir.path().join("bad-rule.json");
    std::fs::write(&bad_rule, r#"{"name": "x"}"#).unwrap();
    let bad_rule = bad_rule.to_str().unwrap();
    refused(
        &["--from", "2026-11-20T00:00:00Z", "--rule-file", bad_rule],
        1,
        &format!("{bad_rule}: missing field `expression`"),
    );
    let missing = dir.path().join("nothing");
    let out = sentinel(&[
        "backtest",
        "--data-dir",
        missing.to_str().unwrap(),
        "--from",
        "2026-11-20T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains(&format!("no store in {}", missing.display())));
}
