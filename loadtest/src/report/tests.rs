//! Reports built from synthetic measurements (no node, no clock).

use super::*;
use crate::loadgen::{Population, RateSchedule, Recorder};
use sentinel_event::Outcome;

const S: i64 = 1_000_000;

fn config(schedule: RateSchedule, duration_secs: u64) -> RunConfig {
    RunConfig {
        seed: 42,
        users: 1_000,
        population: Population::Dense,
        fraud_ratio: 0.05,
        transaction_ids: TransactionIds::Sequential,
        schedule,
        duration_secs,
        drain_secs: 30,
        p99_objective_ms: 200.0,
    }
}

fn info(config: RunConfig) -> RunInfo {
    RunInfo {
        mode: "http".into(),
        target: "http://127.0.0.1:1 <&>".into(),
        started_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        send_secs: config.duration_secs as f64,
        config,
        notes: vec!["synthetic".into()],
    }
}

/// `rate` events per second for `secs` seconds; each second's events take `latency(second)` µs.
/// Every 10th event is a velocity burst flagged when its index is a multiple of 20; every 50th
/// normal event is a false positive.
fn steady(rec: &mut Recorder, secs: i64, rate: i64, latency: impl Fn(i64) -> i64) {
    let mut n = 0;
    for sec in 0..secs {
        for i in 0..rate {
            let at = sec * S + i * (S / rate);
            let id = format!("t{n}");
            let label = (n % 10 == 0).then_some(Scenario::VelocityBurst);
            rec.sent(id.clone(), label, at);
            let outcome = match label {
                Some(_) if n % 20 == 0 => Outcome::Decline,
                None if n % 50 == 1 => Outcome::Review,
                _ => Outcome::Approve,
            };
            assert!(rec.decided(&id, outcome, at + latency(sec)));
            n += 1;
        }
        rec.sample_lag(sec * S + S / 2);
    }
}

#[test]
fn steady_run_report_json_and_svg() {
    let mut rec = Recorder::new(0);
    steady(&mut rec, 5, 100, |_| 2_000);
    rec.sent("lost".into(), Some(Scenario::MassiveAmount), 4 * S);
    let report = build(info(config(RateSchedule::Steady { rate: 100.0 }, 5)), &rec);

    assert_eq!(report.sent, 501);
    assert_eq!(report.decided, 500);
    assert_eq!(report.undecided, 1);
    assert_eq!(report.seconds.len(), 5);
    assert!((report.throughput.sent_per_sec - 100.2).abs() < 1e-9);
    assert!((report.latency_ms.p99.unwrap() - 2.0).abs() < 0.01);
    let burst = &report.detection.scenarios[1];
    assert_eq!(burst.scenario, Scenario::VelocityBurst);
    assert_eq!((burst.counts.decided, burst.counts.flagged), (50, 25));
    assert_eq!(burst.recall, Some(0.5));
    let massive = &report.detection.scenarios[0];
    assert_eq!((massive.counts.sent, massive.recall), (1, None));
    // 25 labelled flagged, and 10 false positives (n = 1, 51, ..., 451).
    assert_eq!(report.detection.normal.flagged, 10);
    assert_eq!(report.detection.precision, Some(25.0 / 35.0));
    // One undecided event fails the (single) step.
    assert_eq!(report.steps.len(), 1);
    assert!(!report.steps[0].passed);
    assert_eq!(report.sustained_max_per_sec, None);
    assert!(report.notes.iter().any(|n| n.contains("velocity_burst")));
    assert!(report.notes.iter().any(|n| n == "synthetic"));

    let dir = tempfile::tempdir().unwrap();
    let written = write(&report, dir.path()).unwrap();
    let back: Report = serde_json::from_slice(&std::fs::read(&written.json).unwrap()).unwrap();
    assert_eq!(back, report);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&written.json).unwrap()).unwrap();
    assert_eq!(
        json["detection"]["scenarios"][1]["scenario"],
        "velocity_burst"
    );
    assert_eq!(json["config"]["schedule"]["kind"], "steady");
    assert_eq!(json["config"]["transaction_ids"], "sequential");
    // A report written before the population and the transaction ids were recorded reads as
    // dense and sequential.
    let mut older = json.clone();
    let config = older["config"].as_object_mut().unwrap();
    config.remove("population");
    config.remove("transaction_ids");
    let older: Report = serde_json::from_value(older).unwrap();
    assert_eq!(older, report);

    let svg = std::fs::read_to_string(&written.svg).unwrap();
    assert!(svg.starts_with("<svg "));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 3, "sent, decided, p99");
    assert!(svg.contains("&lt;&amp;&gt;"), "text is escaped");
    assert!(!svg.contains("NaN"));

    let table = render_table(&report);
    assert!(table.contains("velocity_burst"));
    assert!(table.contains("50.0%"));
}

#[test]
fn ramp_finds_the_sustained_maximum() {
    // Steps of 2 s at 100, 200, 300, 400 events/s; latency explodes in the third step.
    let schedule = RateSchedule::ramp(100.0, 400.0, 2, 8);
    let mut rec = Recorder::new(0);
    let mut n = 0;
    for sec in 0..8i64 {
        let rate = schedule.step_rate(sec as u64 / 2) as i64;
        let latency = if sec >= 4 { 500_000 } else { 3_000 };
        for i in 0..rate {
            let at = sec * S + i * (S / rate);
            let id = format!("r{n}");
            rec.sent(id.clone(), None, at);
            rec.decided(&id, Outcome::Approve, at + latency);
            n += 1;
        }
    }
    let report = build(info(config(schedule, 8)), &rec);
    let passed: Vec<bool> = report.steps.iter().map(|s| s.passed).collect();
    assert_eq!(passed, vec![true, true, false, false]);
    assert_eq!(report.steps[1].target_per_sec, 200.0);
    assert_eq!(report.sustained_max_per_sec, Some(200.0));
    assert!(report.notes.iter().any(|n| n.contains("Sustained maximum")));
    let svg = render_svg(&report);
    assert!(svg.contains("p99 objective"));
}

#[test]
fn a_run_without_decisions_still_renders() {
    let mut rec = Recorder::new(0);
    rec.sent("x".into(), None, 10);
    let report = build(info(config(RateSchedule::Steady { rate: 1.0 }, 1)), &rec);
    assert_eq!(report.latency_ms.p50, None);
    assert_eq!(report.detection.precision, None);
    let svg = render_svg(&report);
    assert!(!svg.contains("NaN"));
    assert!(render_table(&report).contains("sustained maximum"));
}

#[test]
fn nice_axis_maxima() {
    assert_eq!(svg::nice_max(0.0), 1.0);
    assert_eq!(svg::nice_max(3.2), 5.0);
    assert_eq!(svg::nice_max(1_000.0), 1_000.0);
    assert_eq!(svg::nice_max(1_001.0), 2_000.0);
}
