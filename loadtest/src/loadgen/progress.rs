//! The live progress line on stderr, once a second: rates, lag and latency so far.

use super::recorder::Totals;
use super::{lock, now_us, Shared};
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// The running progress task; it also samples the lag every second, shown or not.
pub struct Progress {
    task: tokio::task::JoinHandle<()>,
    tty: bool,
    show: bool,
}

/// One progress line from two consecutive totals a second apart.
pub fn line(second: u64, now: &Totals, before: &Totals) -> String {
    format!(
        "[{second:>4} s] sent {:>6}/s  decided {:>6}/s  lag {:>7}  p50 {:>7.1} ms  p99 {:>7.1} ms  \
         (sent {} decided {} failed {})",
        now.sent - before.sent,
        now.decided - before.decided,
        now.outstanding,
        now.p50_us as f64 / 1_000.0,
        now.p99_us as f64 / 1_000.0,
        now.sent,
        now.decided,
        now.failed
    )
}

impl Progress {
    /// Starts sampling (and, when `show`, printing) every second.
    pub fn spawn(shared: Shared, show: bool) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            tick.tick().await;
            let mut before = lock(&shared).totals();
            let mut second = 0;
            loop {
                tick.tick().await;
                second += 1;
                let now = {
                    let mut rec = lock(&shared);
                    rec.sample_lag(now_us());
                    rec.totals()
                };
                if show {
                    let text = line(second, &now, &before);
                    let mut err = std::io::stderr().lock();
                    if tty {
                        let _ = write!(err, "\r\x1b[2K{text}");
                    } else {
                        let _ = writeln!(err, "{text}");
                    }
                    let _ = err.flush();
                }
                before = now;
            }
        });
        Progress { task, tty, show }
    }

    /// Stops the line (ending it on a terminal).
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        if self.tty && self.show {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_rates_lag_and_percentiles() {
        let before = Totals {
            sent: 1_000,
            decided: 990,
            failed: 0,
            outstanding: 10,
            p50_us: 0,
            p99_us: 0,
        };
        let now = Totals {
            sent: 2_000,
            decided: 1_985,
            failed: 1,
            outstanding: 14,
            p50_us: 3_100,
            p99_us: 9_800,
        };
        let l = line(2, &now, &before);
        assert!(l.contains("sent   1000/s"), "{l}");
        assert!(l.contains("decided    995/s"), "{l}");
        assert!(l.contains("lag      14"), "{l}");
        assert!(l.contains("p99     9.8 ms"), "{l}");
    }
}
