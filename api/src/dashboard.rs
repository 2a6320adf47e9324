//! The live analyst dashboard: a self-contained page at `GET /` and its server-sent event
//! stream at `GET /v1/stream`.
//!
//! The scoring path hands every new decision to a [`LiveFeed`], a bounded
//! `tokio::sync::broadcast` channel. Publishing never waits: with nobody watching it costs one
//! atomic load, and a stream that falls behind loses the oldest decisions (it is told how many,
//! and the page shows the count) instead of slowing scoring down. Each stream aggregates what it
//! receives into a `stats` event every second and forwards review and decline decisions as
//! compact `decision` events; everything heavier (reasons with their values) is fetched on
//! demand from `GET /v1/decisions/{transaction_id}`.

use crate::auth::{Credentials, Principal, Role};
use crate::ApiState;
use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Extension;
use futures::Stream;
use sentinel_event::{Decision, Outcome};
use serde_json::json;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

mod links;

const PAGE: &str = include_str!("../assets/dashboard.html");
const STYLE: &str = include_str!("../assets/dashboard.css");
const SCRIPT: &str = include_str!("../assets/dashboard.js");
const ICON: &str = include_str!("../assets/favicon.svg");

/// Decisions a stream may have queued before it starts skipping the oldest.
pub const DEFAULT_CAPACITY: usize = 4096;

/// Flagged decisions one stream forwards per second at most; the rest are still counted in the
/// figures, and the number held back is reported as `held_back`.
const FLAGGED_PER_SECOND: u32 = 200;

/// One new decision as the scoring path announces it: the stored decision (shared, not
/// copied) and the node's receipt-to-stored latency.
#[derive(Debug, Clone)]
pub struct LiveDecision {
    /// The decision of record.
    pub decision: Arc<Decision>,
    /// Receipt to stored, in microseconds (what `sentinel_decision_latency_seconds` measures).
    pub latency_us: u64,
}

/// The fan-out of new decisions to live dashboard streams.
#[derive(Clone)]
pub struct LiveFeed {
    sender: broadcast::Sender<LiveDecision>,
}

impl Default for LiveFeed {
    fn default() -> Self {
        LiveFeed::new(DEFAULT_CAPACITY)
    }
}

impl LiveFeed {
    /// A feed whose streams may fall `capacity` decisions behind before skipping.
    pub fn new(capacity: usize) -> Self {
        LiveFeed {
            sender: broadcast::channel(capacity.max(1)).0,
        }
    }

    /// Announces a new decision to every open stream. Never waits; does nothing when no stream
    /// is open.
    pub fn publish(&self, decision: &Arc<Decision>, latency: Duration) {
        if self.sender.receiver_count() == 0 {
            return;
        }
        let _ = self.sender.send(LiveDecision {
            decision: Arc::clone(decision),
            latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
        });
    }

    /// A new subscription, from the next decision on.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveDecision> {
        self.sender.subscribe()
    }

    /// Streams open right now.
    pub fn watchers(&self) -> usize {
        self.sender.receiver_count()
    }
}

/// `GET /`: the dashboard page.
pub async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
}

/// `GET /assets/dashboard.css`.
pub async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STYLE,
    )
}

/// `GET /assets/dashboard.js`.
pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
}

/// `GET /favicon.svg`.
pub async fn icon() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "image/svg+xml")], ICON)
}

/// `GET /v1/stream`: server-sent events for the dashboard.
///
/// - `hello` once: `{version, policy_version, watchers}`;
/// - `decision` for each new review or decline decision: `{id, user, amount, currency,
///   outcome, score, rules, card, device, merchant, category, country, channel, at,
///   latency_ms, linked}`, where `linked` holds the latest decision (any outcome) of each other
///   user on its device or card among the stream's recent ones;
/// - `stats` every second: `{secs, events, eps, approve, review, decline, fraud_rate, p50_ms,
///   p99_ms, rules, shadow, policy_version, skipped, held_back, ready}`, where `skipped` counts
///   the decisions this stream lost by falling behind since it opened.
///
/// The stream ends when the node drains, so an open page never holds a shutdown up, and, after
/// an `end` event, when the caller's token expires or its key is revoked (checked every 5 s; a
/// stored key revoked through another node counts once this node forgets it: at once when told,
/// else within `[auth] stored_key_recheck_secs`).
#[utoipa::path(get, path = "/v1/stream", tag = "operations", responses((status = 200, description = "Server-sent events: `hello`, then `decision` (review and decline) and `stats` (every second); `end` before the stream closes because the caller's token expired or its key was revoked", content_type = "text/event-stream", body = String)))]
pub async fn stream(
    State(state): State<ApiState>,
    caller: Option<Extension<Arc<Principal>>>,
    credentials: Option<Extension<Credentials>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let recheck = credentials
        .zip(caller)
        .map(|(Extension(credentials), Extension(caller))| (credentials, caller.role));
    let session = Session::new(&state, recheck);
    let hello = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "policy_version": state.catalog.policy().rules.version,
        "watchers": state.live.watchers(),
    });
    let first = Event::default()
        .event("hello")
        .retry(Duration::from_secs(2))
        .data(hello.to_string());
    let events =
        futures::stream::unfold((Some(first), session), |(first, mut session)| async move {
            if let Some(event) = first {
                return Some((Ok(event), (None, session)));
            }
            let event = session.next().await?;
            Some((Ok(event), (None, session)))
        });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// How often an open stream checks that its caller's credentials are still good.
const RECHECK: Duration = Duration::from_secs(5);

/// One open stream: its subscription and the figures of the current second.
struct Session {
    feed: broadcast::Receiver<LiveDecision>,
    tick: tokio::time::Interval,
    /// The caller's credentials and role, checked every [`RECHECK`].
    credentials: Option<(Credentials, Role)>,
    recheck: tokio::time::Interval,
    ready: Arc<std::sync::atomic::AtomicBool>,
    window: Window,
    /// Recent decisions, to link a flagged one to the other users of its device or card.
    links: links::Links,
    skipped: u64,
    last_tick: Instant,
    ending: bool,
}

impl Session {
    fn new(state: &ApiState, credentials: Option<(Credentials, Role)>) -> Session {
        let period = Duration::from_secs(1);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        // A stream held back by a slow client sends one late `stats`, not a burst of them.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let recheck = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
        Session {
            feed: state.live.subscribe(),
            tick,
            credentials,
            recheck,
            ready: Arc::clone(&state.ready),
            window: Window::default(),
            links: links::Links::default(),
            skipped: 0,
            last_tick: Instant::now(),
            ending: false,
        }
    }

    /// The next event to send, or `None` when the stream should end.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if self.ending {
                return None;
            }
            tokio::select! {
                received = self.feed.recv() => match received {
                    Ok(live) => {
                        let flagged = self.window.add(&live).map(|mut summary| {
                            summary["linked"] = self.links.linked(&live.decision);
                            summary
                        });
                        self.links.remember(&live.decision);
                        if let Some(summary) = flagged {
                            return Some(Event::default().event("decision").data(summary.to_string()));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        self.skipped += n;
                        metrics::counter!(crate::metrics::STREAM_LAGGED).increment(n);
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = self.recheck.tick(), if self.credentials.is_some() => {
                    let Some((credentials, role)) = &self.credentials else { continue };
                    if !credentials.still_valid(*role).await {
                        // Say why, then end; the browser's reconnection gets 401.
                        self.ending = true;
                        let why = json!({"reason": "the credentials expired or were revoked"});
                        return Some(Event::default().event("end").data(why.to_string()));
                    }
                }
                _ = self.tick.tick() => {
                    let ready = self.ready.load(Ordering::Relaxed);
                    let secs = self.last_tick.elapsed().as_secs_f64();
                    self.last_tick = Instant::now();
                    let stats = self.window.take(secs, self.skipped, ready);
                    let stats = Event::default().event("stats").data(stats.to_string());
                    // Starting or draining: say so, then end (the browser reconnects).
                    self.ending = !ready;
                    return Some(stats);
                }
            }
        }
    }
}

/// The figures of one second of decisions.
#[derive(Default)]
struct Window {
    outcomes: [u64; 3],
    latencies_us: Vec<u64>,
    rules: BTreeMap<String, u64>,
    shadow: BTreeMap<String, u64>,
    policy_version: u64,
    forwarded: u32,
    held_back: u64,
}

impl Window {
    /// Counts a decision; returns its summary when it is flagged and within the per-second
    /// allowance.
    fn add(&mut self, live: &LiveDecision) -> Option<serde_json::Value> {
        let d = &live.decision;
        self.outcomes[d.outcome as usize] += 1;
        self.latencies_us.push(live.latency_us);
        self.policy_version = self.policy_version.max(d.rule_set_version);
        for r in &d.reasons {
            count(&mut self.rules, &r.rule);
        }
        for r in &d.shadow_hits {
            count(&mut self.shadow, &r.rule);
        }
        if d.outcome == Outcome::Approve {
            return None;
        }
        if self.forwarded >= FLAGGED_PER_SECOND {
            self.held_back += 1;
            return None;
        }
        self.forwarded += 1;
        Some(summary(live))
    }

    /// The figures of the interval (a `stats` event), and a fresh interval.
    fn take(&mut self, secs: f64, skipped: u64, ready: bool) -> serde_json::Value {
        let [approve, review, decline] = self.outcomes;
        let events = approve + review + decline;
        self.latencies_us.sort_unstable();
        let quantile = |q: f64| -> Option<f64> {
            let n = self.latencies_us.len();
            if n == 0 {
                return None;
            }
            let i = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
            Some(self.latencies_us[i] as f64 / 1000.0)
        };
        let stats = json!({
            "secs": secs,
            "events": events,
            "eps": events as f64 / secs.max(1e-3),
            "approve": approve,
            "review": review,
            "decline": decline,
            "fraud_rate": (events > 0).then(|| (review + decline) as f64 / events as f64),
            "p50_ms": quantile(0.5),
            "p99_ms": quantile(0.99),
            "rules": self.rules,
            "shadow": self.shadow,
            "policy_version": (self.policy_version > 0).then_some(self.policy_version),
            "skipped": skipped,
            "held_back": self.held_back,
            "ready": ready,
        });
        let held_back = self.held_back;
        *self = Window {
            held_back,
            ..Window::default()
        };
        stats
    }
}

fn count(counts: &mut BTreeMap<String, u64>, rule: &str) {
    match counts.get_mut(rule) {
        Some(n) => *n += 1,
        None => {
            counts.insert(rule.to_owned(), 1);
        }
    }
}

/// The compact JSON a `decision` event carries.
fn summary(live: &LiveDecision) -> serde_json::Value {
    let d = &live.decision;
    let e = &d.event;
    json!({
        "id": d.transaction_id,
        "user": d.user_id,
        "amount": e.amount.to_string(),
        "currency": e.currency,
        "outcome": d.outcome.as_str(),
        "score": d.score,
        "rules": d.reasons.iter().map(|r| r.rule.as_str()).collect::<Vec<_>>(),
        "card": e.card_id,
        "device": e.device_id,
        "merchant": e.merchant_id,
        "category": e.merchant_category,
        "country": e.location.as_ref().map(|l| l.country.as_str()),
        "channel": e.channel,
        "at": d.decided_at.timestamp_millis(),
        "latency_ms": live.latency_us as f64 / 1000.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(id: &str, outcome: &str, rules: &[&str], shadow: &[&str]) -> Arc<Decision> {
        let reason =
            |r: &&str| json!({"rule": r, "action": "review", "values": [["amount", 12.5]]});
        Arc::new(
            serde_json::from_value(json!({
                "transaction_id": id,
                "user_id": "u-1",
                "outcome": outcome,
                "score": if outcome == "approve" { 0.0 } else { 0.5 },
                "reasons": rules.iter().map(reason).collect::<Vec<_>>(),
                "shadow_hits": shadow.iter().map(reason).collect::<Vec<_>>(),
                "rule_set_version": 3,
                "user_seq": 1,
                "decided_at": "2026-11-22T10:00:00Z",
                "latency_us": 100,
                "event": {
                    "transaction_id": id, "user_id": "u-1", "amount": "12.50", "currency": "EUR",
                    "timestamp": "2026-11-22T10:00:00Z", "device_id": "d-9", "card_id": "c-1",
                    "location": {"country": "FR"}, "channel": "web",
                },
            }))
            .unwrap(),
        )
    }

    fn data(value: Option<serde_json::Value>) -> serde_json::Value {
        value.expect("an event")
    }

    #[tokio::test]
    async fn publishing_never_waits_and_a_slow_stream_skips_the_oldest() {
        let feed = LiveFeed::new(2);
        // Nobody watching: nothing is kept.
        feed.publish(
            &decision("t-0", "approve", &[], &[]),
            Duration::from_millis(1),
        );
        let mut slow = feed.subscribe();
        assert_eq!(feed.watchers(), 1);
        for i in 1..=5 {
            feed.publish(
                &decision(&format!("t-{i}"), "approve", &[], &[]),
                Duration::from_millis(1),
            );
        }
        assert!(matches!(
            slow.recv().await,
            Err(broadcast::error::RecvError::Lagged(3))
        ));
        assert_eq!(slow.recv().await.unwrap().decision.transaction_id, "t-4");
        assert_eq!(slow.recv().await.unwrap().decision.transaction_id, "t-5");
    }

    #[test]
    fn a_second_of_decisions_becomes_figures_and_flagged_summaries() {
        let mut window = Window::default();
        let live = |d: Arc<Decision>, us: u64| LiveDecision {
            decision: d,
            latency_us: us,
        };
        for i in 0..97 {
            let d = decision(&format!("a-{i}"), "approve", &[], &["probe"]);
            assert!(
                window.add(&live(d, 1000)).is_none(),
                "approvals are not forwarded"
            );
        }
        let flagged = window
            .add(&live(
                decision("r-1", "review", &["large_amount"], &[]),
                2000,
            ))
            .expect("a review is forwarded");
        let summary = data(Some(flagged));
        assert_eq!(summary["id"], "r-1");
        assert_eq!(summary["outcome"], "review");
        assert_eq!(summary["rules"], json!(["large_amount"]));
        assert_eq!(summary["amount"], "12.50");
        assert_eq!(summary["device"], "d-9");
        assert_eq!(summary["card"], "c-1");
        assert_eq!(summary["country"], "FR");
        assert_eq!(summary["latency_ms"], 2.0);
        window.add(&live(
            decision("d-1", "decline", &["velocity_5m", "large_amount"], &[]),
            50_000,
        ));
        window.add(&live(
            decision("d-2", "decline", &["velocity_5m"], &[]),
            3000,
        ));

        let stats = window.take(2.0, 7, true);
        assert_eq!(stats["events"], 100);
        assert_eq!(stats["eps"], 50.0);
        assert_eq!(
            (&stats["approve"], &stats["review"], &stats["decline"]),
            (&json!(97), &json!(1), &json!(2))
        );
        assert_eq!(stats["fraud_rate"], 0.03);
        assert_eq!(stats["p50_ms"], 1.0);
        assert_eq!(stats["p99_ms"], 3.0);
        assert_eq!(stats["rules"], json!({"large_amount": 2, "velocity_5m": 2}));
        assert_eq!(stats["shadow"], json!({"probe": 97}));
        assert_eq!(stats["policy_version"], 3);
        assert_eq!(stats["skipped"], 7);
        assert_eq!(stats["ready"], true);

        // The next interval starts empty.
        let stats = window.take(1.0, 7, false);
        assert_eq!(stats["events"], 0);
        assert!(stats["fraud_rate"].is_null() && stats["p50_ms"].is_null());
        assert_eq!(stats["ready"], false);
    }

    #[test]
    fn a_flood_of_flagged_decisions_is_capped_per_second_but_fully_counted() {
        let mut window = Window::default();
        let mut forwarded = 0;
        for i in 0..(FLAGGED_PER_SECOND + 50) {
            let d = decision(&format!("r-{i}"), "review", &["large_amount"], &[]);
            let live = LiveDecision {
                decision: d,
                latency_us: 10,
            };
            forwarded += u32::from(window.add(&live).is_some());
        }
        assert_eq!(forwarded, FLAGGED_PER_SECOND);
        let stats = window.take(1.0, 0, true);
        assert_eq!(stats["review"], FLAGGED_PER_SECOND + 50);
        assert_eq!(stats["held_back"], 50);
        // A new second has a new allowance.
        let d = decision("r-next", "review", &[], &[]);
        assert!(window
            .add(&LiveDecision {
                decision: d,
                latency_us: 10
            })
            .is_some());
    }
}
