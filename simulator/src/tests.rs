//! Whole-stream checks: determinism, rate, and that normal and fraud traffic look the way the
//! engine's default rules expect.

use super::geo::CITIES;
use super::population::{home_ip, NORMAL_CATEGORIES, RISK_CATEGORIES};
use super::schedule::Entry;
use super::*;
use sentinel_event::distance_km;
use std::collections::{BTreeMap, BTreeSet, HashSet};

pub(super) fn noon() -> DateTime<Utc> {
    "2024-03-01T12:00:00Z".parse().unwrap()
}

/// Heavy fraud over few users, long enough in event time for the hour-long takeover wait.
pub(super) fn fraud_heavy(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        users: 2_000,
        rate_per_sec: 20.0,
        fraud_ratio: 0.05,
        start: noon(),
        daily_rhythm: true,
        scenarios: Scenario::ALL.to_vec(),
    }
}

pub(super) fn run(config: SimConfig, n: usize) -> (Simulator, Vec<SimEvent>) {
    let mut sim = Simulator::new(config);
    let events = (&mut sim).take(n).collect();
    (sim, events)
}

pub(super) fn user_index(e: &SimEvent) -> usize {
    e.txn
        .user_id
        .strip_prefix("user-")
        .unwrap()
        .parse()
        .unwrap()
}

pub(super) fn ms(e: &SimEvent) -> i64 {
    e.txn.event_time_ms()
}

pub(super) fn amount(e: &SimEvent) -> f64 {
    e.txn.amount.to_string().parse().unwrap()
}

pub(super) fn country(e: &SimEvent) -> &str {
    &e.txn.location.as_ref().unwrap().country
}

/// What the engine knows about a user before each event (its default rules' features).
#[derive(Default)]
struct Seen {
    times: Vec<i64>,
    amounts_sum: f64,
    count: usize,
    last_country: Option<String>,
    devices: BTreeSet<String>,
}

/// Every device's users with the time each used it last (what the engine's entity actors
/// remember).
#[derive(Default)]
struct DeviceUsers(BTreeMap<String, BTreeMap<usize, i64>>);

impl DeviceUsers {
    /// Distinct users of the event's device over the `window_ms` ending at it, its own user
    /// included.
    fn distinct(&self, e: &SimEvent, window_ms: i64) -> usize {
        let (t, u) = (ms(e), user_index(e));
        let device = e.txn.device_id.as_deref().unwrap();
        let others = self.0.get(device).map_or(0, |users| {
            users
                .iter()
                .filter(|&(&v, &at)| v != u && at >= t - window_ms)
                .count()
        });
        others + 1
    }

    fn record(&mut self, e: &SimEvent) {
        let device = e.txn.device_id.clone().unwrap();
        let last = self.0.entry(device).or_default().entry(user_index(e));
        let at = last.or_insert(ms(e));
        *at = (*at).max(ms(e));
    }
}

/// The default rules that fired on one event, given the user's history and the devices' users
/// before it.
fn fired(seen: &Seen, devices: &DeviceUsers, e: &SimEvent) -> Vec<&'static str> {
    let t = ms(e);
    let mut out = Vec::new();
    if amount(e) > 10_000.0 {
        out.push("large_amount");
    }
    if seen.count >= 3 && amount(e) > 5.0 * seen.amounts_sum / seen.count as f64 {
        out.push("amount_spike");
    }
    let last = seen.times.last().copied();
    if let (Some(c), Some(l)) = (&seen.last_country, last) {
        if c != country(e) && t - l < 60 * 60_000 {
            out.push("impossible_travel");
        }
    }
    // Window includes the current event; count the boundary in, to be strict.
    let recent = seen.times.iter().filter(|&&x| x >= t - 5 * 60_000).count() + 1;
    if recent > 10 {
        out.push("velocity_5m");
    }
    let category = e.txn.merchant_category.as_deref().unwrap();
    if RISK_CATEGORIES.contains(&category) {
        out.push("high_risk_merchant");
    }
    if devices.distinct(e, 24 * 3_600_000) > 2 {
        out.push("shared_device_ring");
    }
    // Cards are never shared between simulated users; devices are, by rings and households.
    let device = e.txn.device_id.as_deref().unwrap();
    if devices.distinct(e, 10 * 60_000) > 1 && !seen.devices.contains(device) {
        out.push("shared_device_pair");
    }
    out
}

fn record(seen: &mut Seen, e: &SimEvent) {
    seen.times.push(ms(e));
    seen.amounts_sum += amount(e);
    seen.count += 1;
    seen.last_country = Some(country(e).to_owned());
    seen.devices.insert(e.txn.device_id.clone().unwrap());
}

/// 10,000 users at 100 events/s from noon, 5% of turns fraud.
fn ten_thousand_users_at_noon() -> SimConfig {
    SimConfig {
        users: 10_000,
        rate_per_sec: 100.0,
        fraud_ratio: 0.05,
        start: noon(),
        ..SimConfig::default()
    }
}

#[test]
fn same_config_same_stream_other_seed_other_stream() {
    let config = ten_thousand_users_at_noon();
    let (_, a) = run(config.clone(), 50_000);
    let (_, b) = run(config.clone(), 50_000);
    assert!(a == b);
    assert!(a.iter().any(|e| e.label.is_some()));
    let (_, c) = run(SimConfig { seed: 7, ..config }, 1_000);
    assert!(a[..1_000] != c[..]);
}

/// Random transaction ids: UUID-shaped, unique, the same for the same seed, not in the order
/// sent; everything else in the stream is what the sequential ids name.
#[test]
fn random_transaction_ids_name_the_same_traffic() {
    let config = ten_thousand_users_at_noon();
    let stream = |ids: TransactionIds, n: usize| {
        let mut sim = Simulator::new(config.clone()).with_transaction_ids(ids);
        (0..n).map(|_| sim.next_event()).collect::<Vec<_>>()
    };
    let sequential = stream(TransactionIds::Sequential, 100_000);
    let random = stream(TransactionIds::Random, 100_000);
    assert_eq!(
        random,
        stream(TransactionIds::Random, 100_000),
        "same seed, same ids"
    );
    let mut ids = HashSet::new();
    for (r, s) in random.iter().zip(&sequential) {
        let id = &r.txn.transaction_id;
        assert!(ids.insert(id.clone()), "duplicate id {id}");
        let dashes: Vec<usize> = id.match_indices('-').map(|(i, _)| i).collect();
        assert_eq!((id.len(), dashes), (36, vec![8, 13, 18, 23]), "{id}");
        assert!(
            id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()),
            "{id}"
        );
        let mut renamed = r.clone();
        renamed.txn.transaction_id = s.txn.transaction_id.clone();
        assert_eq!(&renamed, s, "only the id differs");
    }
    let ascending = random
        .windows(2)
        .filter(|w| w[0].txn.transaction_id < w[1].txn.transaction_id)
        .count();
    assert!(
        (40_000..60_000).contains(&ascending),
        "ids in no order: {ascending} of 99,999 pairs ascending"
    );
    let other_seed = Simulator::new(SimConfig { seed: 7, ..config })
        .with_transaction_ids(TransactionIds::Random)
        .next_event();
    assert_ne!(other_seed.txn.transaction_id, random[0].txn.transaction_id);
}

#[test]
fn stream_is_ordered_unique_and_valid() {
    let mut sim = Simulator::new(fraud_heavy(1));
    let mut ids = HashSet::new();
    let mut last = sim.peek_time();
    for _ in 0..200_000 {
        let peeked = sim.peek_time();
        let e = sim.next_event();
        assert_eq!(
            e.txn.timestamp, peeked,
            "peek_time is the next event's time"
        );
        assert!(e.txn.timestamp >= last, "time went backwards");
        last = e.txn.timestamp;
        assert!(ids.insert(e.txn.transaction_id.clone()), "duplicate id");
        assert!(e.txn.transaction_id.starts_with("sim-1-"));
        assert!(sentinel_event::is_country(country(&e)));
        assert!(sentinel_event::is_currency(&e.txn.currency));
        assert!(e.txn.amount > rust_decimal::Decimal::ZERO && e.txn.amount.scale() == 2);
        assert_eq!(e.txn.timestamp.timestamp_subsec_nanos() % 1_000_000, 0);
        let ip = e.txn.ip.as_deref().unwrap();
        assert!(ip.parse::<std::net::Ipv4Addr>().is_ok());
        assert!(e.txn.card_id.is_some() && e.txn.metadata.is_none());
    }
}

#[test]
fn aggregate_rate_is_on_target() {
    for (hour, daily_rhythm, expected) in [
        (12, true, 1_000.0),
        (2, true, 1_000.0 / 3.0),
        (2, false, 1_000.0),
    ] {
        let start = noon() + chrono::Duration::hours(hour - 12);
        let config = SimConfig {
            start,
            daily_rhythm,
            ..SimConfig::default()
        };
        let (_, events) = run(config, 100_000);
        let elapsed = (ms(events.last().unwrap()) - start.timestamp_millis()) as f64 / 1e3;
        let rate = events.len() as f64 / elapsed;
        assert!((rate / expected - 1.0).abs() < 0.1, "{hour}h: {rate}/s");
    }
    // Too few users for the target: every user at the 45 s minimum, no faster.
    let config = SimConfig {
        users: 450,
        fraud_ratio: 0.0,
        start: noon(),
        ..SimConfig::default()
    };
    let (_, events) = run(config, 20_000);
    let elapsed = (ms(events.last().unwrap()) - noon().timestamp_millis()) as f64 / 1e3;
    let rate = events.len() as f64 / elapsed;
    assert!((rate / 10.0 - 1.0).abs() < 0.05, "{rate}/s");
}

/// Scenario instances by label: a burst is one run of a user's burst events, a ring one
/// device, everything else one event.
fn instances(events: &[SimEvent]) -> BTreeMap<Scenario, usize> {
    let mut out = BTreeMap::new();
    let mut last_label: BTreeMap<usize, Option<Scenario>> = BTreeMap::new();
    let mut rings = BTreeSet::new();
    for e in events {
        let previous = last_label.insert(user_index(e), e.label).flatten();
        let Some(s) = e.label else { continue };
        let new = match s {
            Scenario::VelocityBurst => previous != Some(s),
            Scenario::FraudRing => rings.insert(e.txn.device_id.clone().unwrap()),
            _ => true,
        };
        if new {
            *out.entry(s).or_insert(0) += 1;
        }
    }
    out
}

#[test]
fn every_scenario_appears_in_proportion() {
    let (_, events) = run(fraud_heavy(2), 200_000);
    let counts = instances(&events);
    assert_eq!(counts.len(), 7, "{counts:?}");
    let mean = counts.values().sum::<usize>() as f64 / 7.0;
    for (s, &c) in &counts {
        assert!((c as f64 / mean - 1.0).abs() < 0.35, "{s:?}: {counts:?}");
    }
    // At the default ratio, fraud stays rare.
    let (_, events) = run(
        SimConfig {
            start: noon(),
            ..SimConfig::default()
        },
        100_000,
    );
    let labelled = events.iter().filter(|e| e.label.is_some()).count();
    assert!(labelled > 0 && labelled < 2_000, "{labelled}");
}

#[test]
fn only_enabled_scenarios_appear() {
    let none = SimConfig {
        scenarios: Vec::new(),
        ..fraud_heavy(3)
    };
    let (_, events) = run(none, 100_000);
    assert!(events.iter().all(|e| e.label.is_none()));
    let one = SimConfig {
        scenarios: vec![Scenario::HighRiskMerchant],
        ..fraud_heavy(3)
    };
    let (_, events) = run(one, 100_000);
    let labels: BTreeSet<_> = events.iter().filter_map(|e| e.label).collect();
    assert_eq!(labels, BTreeSet::from([Scenario::HighRiskMerchant]));
}

#[test]
fn normal_traffic_keeps_its_invariants_and_trips_no_default_rule() {
    check_normal_traffic(fraud_heavy(4), 200_000);
}

/// Every normal event of `n` looks like its user's habits and trips no default rule, whatever
/// fraud ran before it.
pub(super) fn check_normal_traffic(config: SimConfig, n: usize) {
    let (sim, events) = run(config, n);
    let mut seen: Vec<Seen> = (0..sim.users.len()).map(|_| Seen::default()).collect();
    let mut normal_times: Vec<Vec<i64>> = vec![Vec::new(); sim.users.len()];
    let mut devices = DeviceUsers::default();
    for e in &events {
        let u = user_index(e);
        if e.label.is_none() {
            let p = &sim.users[u].profile;
            let home = &CITIES[usize::from(p.city)];
            let a = amount(e);
            assert!(
                a < 5_000.0 && a <= 3.0 * f64::from(p.median_cents) / 100.0,
                "{a}"
            );
            assert_eq!(country(e), home.country);
            assert_eq!(e.txn.currency, home.currency);
            let loc = e.txn.location.as_ref().unwrap();
            assert!(distance_km(home.lat, home.lon, loc.lat.unwrap(), loc.lon.unwrap()) < 5.0);
            assert!(e
                .txn
                .device_id
                .as_deref()
                .unwrap()
                .starts_with(&format!("dev-{u}-")));
            assert!(e
                .txn
                .card_id
                .as_deref()
                .unwrap()
                .starts_with(&format!("card-{u}-")));
            assert_eq!(e.txn.ip.as_deref(), Some(home_ip(u as u32).as_str()));
            let m: u16 = e.txn.merchant_id.as_deref().unwrap()[2..].parse().unwrap();
            assert!(p.prefers(m));
            let category = e.txn.merchant_category.as_deref().unwrap();
            assert!(NORMAL_CATEGORIES.contains(&category));
            let rules = fired(&seen[u], &devices, e);
            assert!(rules.is_empty(), "normal event fired {rules:?}: {e:?}");
            normal_times[u].push(ms(e));
        }
        record(&mut seen[u], e);
        devices.record(e);
    }
    for times in &normal_times {
        assert!(times.windows(8).all(|w| w[7] - w[0] > 5 * 60_000));
    }
}

#[test]
fn scenario_events_are_recognisable() {
    check_scenarios(fraud_heavy(5));
}

/// Each of the seven classic scenarios in 200,000 events of `config` shows the signal it is
/// built for (and the takeover none of the default rules).
pub(super) fn check_scenarios(config: SimConfig) {
    let (sim, events) = run(config, 200_000);
    let mut seen: Vec<Seen> = (0..sim.users.len()).map(|_| Seen::default()).collect();
    let mut normal_sums = vec![(0.0f64, 0usize); sim.users.len()];
    let mut rings: BTreeMap<String, Vec<(usize, i64)>> = BTreeMap::new();
    let mut bursts: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
    let mut bursts_checked = 0;
    let mut devices = DeviceUsers::default();
    let mut ring_hits: BTreeMap<String, Vec<(bool, bool)>> = BTreeMap::new();
    for e in &events {
        let u = user_index(e);
        let home = &CITIES[usize::from(sim.users[u].profile.city)];
        let rules = fired(&seen[u], &devices, e);
        if e.label != Some(Scenario::VelocityBurst) {
            // A burst ends at the user's first non-burst event (a cooldown later).
            if let Some(times) = bursts.remove(&u) {
                assert!(times.len() >= 14);
                let fast = times.windows(11).any(|w| w[10] - w[0] <= 5 * 60_000);
                assert!(fast, "burst not dense enough: {times:?}");
                bursts_checked += 1;
            }
        }
        match e.label {
            None => {
                normal_sums[u].0 += amount(e);
                normal_sums[u].1 += 1;
            }
            Some(Scenario::MassiveAmount) => {
                assert!((15_000.0..=80_000.0).contains(&amount(e)));
                assert!(rules.contains(&"large_amount"));
            }
            Some(Scenario::AboveAverage) => {
                let (sum, n) = normal_sums[u];
                assert!(n >= 5 && amount(e) >= 5.0 * sum / n as f64);
                assert!(rules.contains(&"amount_spike"), "{rules:?}");
            }
            Some(Scenario::ImpossibleTravel) => {
                let last = *seen[u].times.last().unwrap();
                assert!((2 * 60_000..=20 * 60_000).contains(&(ms(e) - last)));
                assert_ne!(country(e), home.country);
                let loc = e.txn.location.as_ref().unwrap();
                let d = distance_km(home.lat, home.lon, loc.lat.unwrap(), loc.lon.unwrap());
                assert!(d >= 2_990.0, "{d}");
                assert!(rules.contains(&"impossible_travel"));
            }
            Some(Scenario::VelocityBurst) => bursts.entry(u).or_default().push(ms(e)),
            Some(Scenario::FraudRing) => {
                let device = e.txn.device_id.clone().unwrap();
                assert!(device.starts_with("ring-dev-"));
                let m: u16 = e.txn.merchant_id.as_deref().unwrap()[2..].parse().unwrap();
                assert!(!sim.users[u].profile.prefers(m));
                let hit = (
                    rules.contains(&"shared_device_ring"),
                    rules.contains(&"shared_device_pair"),
                );
                ring_hits.entry(device.clone()).or_default().push(hit);
                rings.entry(device).or_default().push((u, ms(e)));
            }
            Some(Scenario::HighRiskMerchant) => {
                assert!(e.txn.merchant_id.as_deref().unwrap().starts_with("m-risk-"));
                assert!(rules.contains(&"high_risk_merchant"));
            }
            Some(Scenario::AccountTakeover) => {
                let last = *seen[u].times.last().unwrap();
                assert!(ms(e) - last > 60 * 60_000);
                let device = e.txn.device_id.clone().unwrap();
                assert!(device.starts_with("ato-dev-") && !seen[u].devices.contains(&device));
                assert_ne!(country(e), home.country);
                assert_ne!(e.txn.ip.as_deref(), Some(home_ip(u as u32).as_str()));
                let median = f64::from(sim.users[u].profile.median_cents) / 100.0;
                assert!((2.0 * median - 0.01..=4.0 * median + 0.01).contains(&amount(e)));
                assert!(
                    rules.is_empty(),
                    "takeover should need its own rule: {rules:?}"
                );
            }
            // Checked over their whole history in `pattern_tests`.
            Some(
                Scenario::CompromisedTerminal | Scenario::CompromisedCard | Scenario::CardTesting,
            ) => {}
        }
        record(&mut seen[u], e);
        devices.record(e);
    }
    assert!(bursts_checked > 10);
    // Rings still completing at the end of the run are skipped.
    let end = ms(events.last().unwrap());
    let complete: Vec<_> = rings
        .values()
        .filter(|m| m[0].1 < end - 10 * 60_000)
        .collect();
    assert!(complete.len() > 10);
    // The seed's shared_device_ring rule catches the third and fourth member of every ring,
    // shared_device_pair every member after the first.
    for (device, members) in &rings {
        if members[0].1 < end - 10 * 60_000 {
            let (ring, pair): (Vec<bool>, Vec<bool>) = ring_hits[device].iter().copied().unzip();
            assert_eq!(ring, [false, false, true, true], "{device}");
            assert_eq!(pair, [false, true, true, true], "{device}");
        }
    }
    for members in complete {
        let users: BTreeSet<_> = members.iter().map(|m| m.0).collect();
        assert_eq!((members.len(), users.len()), (4, 4), "{members:?}");
        let span = members.iter().map(|m| m.1).max().unwrap() - members[0].1;
        assert!(span < 10 * 60_000);
    }
}

#[test]
fn scenario_names_match_serde() {
    for s in Scenario::EVERY {
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, format!("\"{}\"", s.as_str()));
        assert_eq!(serde_json::from_str::<Scenario>(&json).unwrap(), s);
        assert_eq!(s.as_str().parse::<Scenario>(), Ok(s));
    }
    let all_then_patterns: Vec<Scenario> = Scenario::ALL
        .into_iter()
        .chain(Scenario::PATTERNS)
        .collect();
    assert_eq!(all_then_patterns, Scenario::EVERY);
    let unknown = "card_tests".parse::<Scenario>().unwrap_err().to_string();
    assert!(
        unknown.contains("`card_tests`") && unknown.contains("compromised_terminal"),
        "{unknown}"
    );
}

#[test]
fn odd_configs_do_not_panic() {
    for config in [
        SimConfig {
            users: 0,
            rate_per_sec: f64::NAN,
            fraud_ratio: 7.0,
            ..SimConfig::default()
        },
        SimConfig {
            users: 3,
            rate_per_sec: -1.0,
            fraud_ratio: f64::NAN,
            ..SimConfig::default()
        },
        SimConfig {
            users: 2,
            fraud_ratio: 1.0,
            ..SimConfig::default()
        },
    ] {
        let mut sim = Simulator::new(config);
        for e in (&mut sim).take(200) {
            assert!(e.txn.amount > rust_decimal::Decimal::ZERO);
        }
    }
}

#[test]
fn per_user_memory_is_small() {
    let per_user = std::mem::size_of::<User>() + std::mem::size_of::<Reverse<Entry>>();
    assert!(per_user < 200, "{per_user} bytes");
}

/// Cost per event; run with
/// `cargo test --release -p sentinel-simulator --lib -- --ignored --nocapture cost`.
#[test]
#[ignore = "a measurement, not a check: run it in release with --ignored --nocapture"]
fn cost_per_event() {
    let mut sim = Simulator::new(SimConfig {
        start: noon(),
        ..SimConfig::default()
    });
    let n = 2_000_000;
    let started = std::time::Instant::now();
    let mut bytes = 0usize;
    for e in (&mut sim).take(n) {
        bytes += e.txn.transaction_id.len();
    }
    let ns = started.elapsed().as_nanos() as f64 / n as f64;
    println!("{ns:.0} ns/event ({bytes} id bytes)");
}
