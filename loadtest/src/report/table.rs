//! The report as a plain-text table for the terminal.

use super::Report;
use std::fmt::Write;

fn ms(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.1} ms"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

/// Renders the summary table.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let row = |out: &mut String, k: &str, v: String| {
        let _ = writeln!(out, "  {k:<26} {v}");
    };
    let _ = writeln!(out, "SentinelStream load test: {} -> {}", r.mode, r.target);
    row(
        &mut out,
        "sent",
        format!("{} in {:.1} s", r.sent, r.send_secs),
    );
    row(&mut out, "decided", r.decided.to_string());
    let failed: u64 = r.failed.values().sum();
    row(
        &mut out,
        "failed / undecided",
        format!("{failed} / {}", r.undecided),
    );
    row(
        &mut out,
        "throughput sent",
        format!("{:.0} ev/s", r.throughput.sent_per_sec),
    );
    row(
        &mut out,
        "throughput decided",
        format!("{:.0} ev/s", r.throughput.decided_per_sec),
    );
    let l = &r.latency_ms;
    row(
        &mut out,
        "latency p50 / p95",
        format!("{} / {}", ms(l.p50), ms(l.p95)),
    );
    row(
        &mut out,
        "latency p99 / max",
        format!("{} / {}", ms(l.p99), ms(l.max)),
    );
    row(&mut out, "lag max", r.lag_max.to_string());
    let _ = writeln!(out, "  detection");
    let _ = writeln!(
        out,
        "    {:<22} {:>8} {:>8} {:>8} {:>8}",
        "scenario", "sent", "decided", "flagged", "recall"
    );
    for s in &r.detection.scenarios {
        let _ = writeln!(
            out,
            "    {:<22} {:>8} {:>8} {:>8} {:>8}",
            s.scenario.as_str(),
            s.counts.sent,
            s.counts.decided,
            s.counts.flagged,
            pct(s.recall)
        );
    }
    let n = &r.detection.normal;
    let _ = writeln!(
        out,
        "    {:<22} {:>8} {:>8} {:>8}",
        "(normal traffic)", n.sent, n.decided, n.flagged
    );
    row(
        &mut out,
        "precision",
        format!(
            "{} ({} of {} flagged were labelled)",
            pct(r.detection.precision),
            r.detection.labelled_flagged,
            r.detection.flagged
        ),
    );
    if r.steps.len() > 1 {
        let _ = writeln!(
            out,
            "  steps (objective p99 <= {} ms)",
            r.config.p99_objective_ms
        );
        for s in &r.steps {
            let _ = writeln!(
                out,
                "    {:>5} s  target {:>7.0}/s  sent {:>7.0}/s  decided {:>7.0}/s  p99 {:>10}  {}",
                s.start_second,
                s.target_per_sec,
                s.sent_per_sec,
                s.decided_per_sec,
                ms(s.p99_ms),
                if s.passed { "pass" } else { "FAIL" }
            );
        }
    }
    row(
        &mut out,
        "sustained maximum",
        r.sustained_max_per_sec
            .map_or("- (first step failed)".to_owned(), |v| {
                format!("{v:.0} ev/s")
            }),
    );
    out
}
