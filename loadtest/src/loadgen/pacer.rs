//! Sending simulated events at the scheduled rate against the wall clock.

use super::schedule::RateSchedule;
use sentinel_simulator::{SimEvent, Simulator};
use std::time::{Duration, Instant};

/// Most events sent in one go before the pacer looks at the clock again.
const BURST: u64 = 512;

/// Where events go: Kafka or HTTP. `send` records the event as sent in the shared recorder
/// and hands it on; it may wait (a full producer queue, no free request slot). Whatever it
/// started finishes in the background; the run's drain waits for the decisions.
pub trait Sink {
    /// Sends one event.
    fn send(&mut self, event: SimEvent) -> impl std::future::Future<Output = anyhow::Result<()>>;
}

/// Sends events until `limit` has passed since `start` or `stop` says so; after each look at
/// the clock it sends as many events as the schedule has asked for by then (so it catches up
/// after a stall), then sleeps a millisecond. Returns the number sent.
pub async fn pace<S: Sink>(
    sim: &mut Simulator,
    schedule: &RateSchedule,
    limit: Duration,
    sink: &mut S,
    start: Instant,
    stop: impl Fn() -> bool,
) -> anyhow::Result<u64> {
    let mut sent = 0u64;
    loop {
        let elapsed = start.elapsed();
        if elapsed >= limit || stop() {
            return Ok(sent);
        }
        let due = schedule.events_by(elapsed);
        if sent >= due {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        let until = due.min(sent + BURST);
        while sent < until {
            sink.send(sim.next_event()).await?;
            sent += 1;
        }
        tokio::task::yield_now().await;
    }
}
