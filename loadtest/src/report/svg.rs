//! A self-contained SVG plot of a run: throughput (sent and decided per second) above, p99
//! latency per second below, on a shared time axis.

use super::Report;
use std::fmt::Write;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 560.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
/// Top and height of the two panels.
const PANELS: [(f64, f64); 2] = [(60.0, 190.0), (320.0, 190.0)];

/// A round axis maximum at or above `v` (1, 2 or 5 times a power of ten).
pub fn nice_max(v: f64) -> f64 {
    if v.is_nan() || v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&m| m >= v)
        .unwrap_or(10.0 * p)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

struct Panel {
    top: f64,
    height: f64,
    y_max: f64,
    x_max: f64,
}

impl Panel {
    fn x(&self, second: f64) -> f64 {
        LEFT + second / self.x_max * PLOT_W
    }

    fn y(&self, v: f64) -> f64 {
        self.top + self.height - (v / self.y_max).clamp(0.0, 1.0) * self.height
    }

    fn frame(&self, out: &mut String, title: &str, unit: &str) {
        let _ = writeln!(
            out,
            r##"<text x="{LEFT}" y="{}" font-size="14" font-weight="bold">{}</text>"##,
            self.top - 10.0,
            escape(title)
        );
        for i in 0..=4 {
            let v = self.y_max * f64::from(i) / 4.0;
            let y = self.y(v);
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{} {unit}</text>"##,
                LEFT + PLOT_W,
                LEFT - 6.0,
                y + 4.0,
                trim(v)
            );
        }
        let bottom = self.top + self.height;
        for i in 0..=6 {
            let s = self.x_max * f64::from(i) / 6.0;
            let x = self.x(s);
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{bottom}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle">{} s</text>"##,
                self.top,
                bottom + 15.0,
                trim(s)
            );
        }
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{}" width="{PLOT_W}" height="{}" fill="none" stroke="#444"/>"##,
            self.top, self.height
        );
    }

    fn line(&self, out: &mut String, points: &[(f64, f64)], color: &str) {
        if points.is_empty() {
            return;
        }
        let pts: Vec<String> = points
            .iter()
            .map(|&(s, v)| format!("{:.1},{:.1}", self.x(s), self.y(v)))
            .collect();
        let _ = writeln!(
            out,
            r##"<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{}"/>"##,
            pts.join(" ")
        );
    }
}

fn trim(v: f64) -> String {
    if v >= 100.0 || v == v.round() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn legend(out: &mut String, x: f64, y: f64, items: &[(&str, &str)]) {
    let mut x = x;
    for (label, color) in items {
        let _ = writeln!(
            out,
            r##"<rect x="{x:.1}" y="{:.1}" width="14" height="4" fill="{color}"/><text x="{:.1}" y="{y:.1}" font-size="12">{}</text>"##,
            y - 5.0,
            x + 18.0,
            escape(label)
        );
        x += 150.0;
    }
}

/// Renders the plot. Points sit at the middle of their second.
pub fn render(r: &Report) -> String {
    let x_max = (r.seconds.len() as f64).max(1.0);
    let rate_max = r
        .seconds
        .iter()
        .map(|s| s.sent.max(s.decided) as f64)
        .fold(0.0, f64::max);
    let p99_max = r
        .seconds
        .iter()
        .filter_map(|s| s.p99_ms)
        .fold(0.0, f64::max)
        .max(if r.steps.len() > 1 {
            r.config.p99_objective_ms
        } else {
            0.0
        });
    let rate = Panel {
        top: PANELS[0].0,
        height: PANELS[0].1,
        y_max: nice_max(rate_max),
        x_max,
    };
    let lat = Panel {
        top: PANELS[1].0,
        height: PANELS[1].1,
        y_max: nice_max(p99_max),
        x_max,
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif">"##
    );
    let _ = writeln!(out, r##"<rect width="100%" height="100%" fill="white"/>"##);
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="24" font-size="16">{}</text>"##,
        escape(&format!(
            "SentinelStream load test ({} -> {}), started {}",
            r.mode,
            r.target,
            r.started_at.format("%Y-%m-%d %H:%M:%S UTC")
        ))
    );
    rate.frame(&mut out, "Throughput per second", "/s");
    let at = |i: usize| i as f64 + 0.5;
    let sent: Vec<(f64, f64)> = r
        .seconds
        .iter()
        .enumerate()
        .map(|(i, s)| (at(i), s.sent as f64))
        .collect();
    let decided: Vec<(f64, f64)> = r
        .seconds
        .iter()
        .enumerate()
        .map(|(i, s)| (at(i), s.decided as f64))
        .collect();
    rate.line(&mut out, &sent, "#1f77b4");
    rate.line(&mut out, &decided, "#2ca02c");
    legend(
        &mut out,
        LEFT + 260.0,
        PANELS[0].0 - 10.0,
        &[("sent/s", "#1f77b4"), ("decided/s", "#2ca02c")],
    );
    lat.frame(
        &mut out,
        "p99 latency of the events sent in each second",
        "ms",
    );
    let p99: Vec<(f64, f64)> = r
        .seconds
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.p99_ms.map(|p| (at(i), p)))
        .collect();
    lat.line(&mut out, &p99, "#d62728");
    if r.steps.len() > 1 {
        let y = lat.y(r.config.p99_objective_ms);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ff7f0e" stroke-dasharray="6 4"/>"##,
            LEFT + PLOT_W
        );
        legend(
            &mut out,
            LEFT + 420.0,
            PANELS[1].0 - 10.0,
            &[("p99 objective", "#ff7f0e")],
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="{:.1}" font-size="12">seconds since start; sent {}, decided {}, p99 {}</text>"##,
        HEIGHT - 12.0,
        r.sent,
        r.decided,
        r.latency_ms
            .p99
            .map_or("-".to_owned(), |p| format!("{p:.1} ms"))
    );
    out.push_str("</svg>\n");
    out
}
