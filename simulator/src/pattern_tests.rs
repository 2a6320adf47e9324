//! The history patterns over long simulated histories: each keeps the shape it is built for,
//! and none of them makes normal traffic look suspicious or hides the classic scenarios.

use super::tests::{
    amount, check_normal_traffic, check_scenarios, country, fraud_heavy, ms, noon, run, user_index,
};
use super::*;
use std::collections::{BTreeMap, BTreeSet};

const DAY_MS: i64 = 24 * 3_600_000;

/// A bank-like history: 2,000 card holders paying about twice a day, for 46 days of event
/// time in 200,000 events.
fn history(seed: u64, scenarios: &[Scenario]) -> SimConfig {
    SimConfig {
        seed,
        users: 2_000,
        rate_per_sec: 0.05,
        fraud_ratio: 0.02,
        start: noon(),
        daily_rhythm: true,
        scenarios: scenarios.to_vec(),
    }
}

fn median(sim: &Simulator, e: &SimEvent) -> f64 {
    f64::from(sim.users[user_index(e)].profile.median_cents) / 100.0
}

fn merchant_number(e: &SimEvent) -> u16 {
    e.txn.merchant_id.as_deref().unwrap()[2..].parse().unwrap()
}

fn device(e: &SimEvent) -> &str {
    e.txn.device_id.as_deref().unwrap()
}

/// Events grouped by device, for the devices whose name starts with `prefix`.
fn by_device<'a>(events: &'a [SimEvent], prefix: &str) -> BTreeMap<&'a str, Vec<&'a SimEvent>> {
    let mut out: BTreeMap<&str, Vec<&SimEvent>> = BTreeMap::new();
    for e in events.iter().filter(|e| device(e).starts_with(prefix)) {
        out.entry(device(e)).or_default().push(e);
    }
    out
}

#[test]
fn patterns_leave_normal_traffic_clean_and_deterministic() {
    let dense = SimConfig {
        scenarios: Scenario::EVERY.to_vec(),
        ..fraud_heavy(4)
    };
    check_normal_traffic(dense, 200_000);
    check_normal_traffic(history(14, &Scenario::EVERY), 200_000);
    let (_, a) = run(history(15, &Scenario::EVERY), 50_000);
    let (_, b) = run(history(15, &Scenario::EVERY), 50_000);
    assert!(a == b);
    let labels: BTreeSet<_> = a.iter().filter_map(|e| e.label).collect();
    assert!(
        Scenario::PATTERNS.iter().all(|s| labels.contains(s)),
        "{labels:?}"
    );
}

#[test]
fn classic_scenarios_stay_recognisable_beside_the_patterns() {
    check_scenarios(SimConfig {
        scenarios: Scenario::EVERY.to_vec(),
        ..fraud_heavy(5)
    });
}

/// A compromise of one merchant: its frauds from the first on, and the first normal event
/// there afterwards (which ends it).
struct Window {
    first: i64,
    last: i64,
    frauds: usize,
    users: BTreeSet<usize>,
    closed_at: Option<i64>,
}

#[test]
fn compromised_terminals_turn_all_their_traffic_to_fraud_for_weeks() {
    let (sim, events) = run(history(11, &[Scenario::CompromisedTerminal]), 200_000);
    let mut open: BTreeMap<u16, Window> = BTreeMap::new();
    let mut closed = Vec::new();
    for e in &events {
        let m = merchant_number(e);
        match e.label {
            Some(Scenario::CompromisedTerminal) => {
                // The events themselves look like the user's habits: only the merchant's
                // history gives them away.
                let u = user_index(e);
                let p = &sim.users[u].profile;
                assert!(p.prefers(m));
                assert!(amount(e) <= 2.5 * median(&sim, e) + 0.01);
                assert!(device(e).starts_with(&format!("dev-{u}-")));
                let w = open.entry(m).or_insert(Window {
                    first: ms(e),
                    last: ms(e),
                    frauds: 0,
                    users: BTreeSet::new(),
                    closed_at: None,
                });
                w.last = ms(e);
                w.frauds += 1;
                w.users.insert(u);
            }
            None => {
                if let Some(mut w) = open.remove(&m) {
                    w.closed_at = Some(ms(e));
                    closed.push(w);
                }
            }
            Some(other) => panic!("{other:?} is not enabled"),
        }
    }
    assert!(closed.len() >= 10, "{} compromises", closed.len());
    for w in &closed {
        // No normal transaction there for at least 14 days, and none of its frauds past 28.
        assert!(w.closed_at.unwrap() - w.first >= 14 * DAY_MS);
        assert!(w.last - w.first < 28 * DAY_MS);
    }
    // The merchant keeps producing fraud from many card holders: its history predicts it.
    let repeated = closed
        .iter()
        .filter(|w| w.frauds >= 5 && w.users.len() >= 2 && w.last - w.first >= 7 * DAY_MS)
        .count();
    assert!(
        repeated * 10 >= closed.len() * 8,
        "{repeated}/{}",
        closed.len()
    );
    let frauds = events.iter().filter(|e| e.label.is_some()).count();
    assert!(frauds > 5_000 && frauds < 80_000, "{frauds}");
}

#[test]
fn compromised_cards_change_spending_for_two_weeks() {
    let (sim, events) = run(history(12, &[Scenario::CompromisedCard]), 200_000);
    assert!(events
        .iter()
        .all(|e| e.label.is_none() || e.label == Some(Scenario::CompromisedCard)));
    let end = ms(events.last().unwrap());
    let episodes = by_device(&events, "cnp-dev-");
    assert_eq!(
        episodes.values().map(Vec::len).sum::<usize>(),
        events.iter().filter(|e| e.label.is_some()).count(),
        "every fraud on the attacker's device"
    );
    let (mut frauds, mut normals, mut long) = (0, 0, 0);
    for list in episodes.values() {
        let (first, last) = (list[0], list[list.len() - 1]);
        let u = user_index(first);
        let p = &sim.users[u].profile;
        assert!(list.len() <= 12);
        assert!(ms(last) - ms(first) < 14 * DAY_MS);
        for e in list {
            assert_eq!(e.label, Some(Scenario::CompromisedCard));
            assert_eq!((user_index(e), &e.txn.card_id), (u, &first.txn.card_id));
            assert!(amount(e) > 2.5 * median(&sim, e), "5 × a normal amount");
            assert!(!p.prefers(merchant_number(e)), "a merchant new to the user");
            assert!(e.txn.ip.as_deref().unwrap().starts_with("192.0.2."));
            assert_eq!(country(e), country(first));
        }
        if ms(first) + 14 * DAY_MS < end && list.len() >= 2 {
            long += usize::from(ms(last) - ms(first) >= 7 * DAY_MS);
            frauds += list.len();
            normals += events
                .iter()
                .filter(|e| e.label.is_none() && e.txn.card_id == first.txn.card_id)
                .filter(|e| (ms(first)..=ms(last)).contains(&ms(e)))
                .count();
        }
    }
    assert!(episodes.len() > 100, "{}", episodes.len());
    assert!(
        long * 2 > episodes.len() / 2,
        "{long} episodes of a week or more"
    );
    // About a third of the card's transactions while it is compromised.
    let share = frauds as f64 / (frauds + normals) as f64;
    assert!((0.2..0.5).contains(&share), "{share}");
}

#[test]
fn card_testing_is_tiny_amounts_then_a_larger_purchase() {
    let (sim, events) = run(history(13, &[Scenario::CardTesting]), 200_000);
    let end = ms(events.last().unwrap());
    let runs = by_device(&events, "ct-dev-");
    let mut per_user: BTreeMap<usize, Vec<&SimEvent>> = BTreeMap::new();
    for e in &events {
        per_user.entry(user_index(e)).or_default().push(e);
    }
    let mut merchants: BTreeMap<&str, usize> = BTreeMap::new();
    let mut complete = 0;
    for list in runs.values() {
        let last = list[list.len() - 1];
        if ms(list[0]) + 6 * 60 * 60_000 > end {
            continue; // may still be running
        }
        complete += 1;
        let (tests, purchase) = list.split_at(list.len() - 1);
        assert!((4..=10).contains(&tests.len()), "{}", tests.len());
        for e in tests {
            assert!((0.01..=2.0).contains(&amount(e)), "{}", amount(e));
        }
        assert!(amount(purchase[0]) >= 2.0 * median(&sim, last) - 0.01);
        for pair in list.windows(2) {
            let gap = ms(pair[1]) - ms(pair[0]);
            let bounds = if pair[1] == last {
                60_000..=30 * 60_000
            } else {
                10_000..=60_000
            };
            assert!(bounds.contains(&gap), "{gap}");
        }
        for e in list {
            assert_eq!(e.label, Some(Scenario::CardTesting));
            assert_eq!(e.txn.merchant_id, list[0].txn.merchant_id);
            assert_eq!(e.txn.card_id, list[0].txn.card_id);
            assert_eq!(e.txn.channel, Some(sentinel_event::Channel::Web));
        }
        // Nothing else of the user's in between: one uninterrupted run.
        let own = &per_user[&user_index(last)];
        let start = own.iter().position(|e| e.txn == list[0].txn).unwrap();
        assert!(own[start..start + list.len()]
            .iter()
            .zip(list)
            .all(|(a, b)| a.txn == b.txn));
        *merchants
            .entry(list[0].txn.merchant_id.as_deref().unwrap())
            .or_default() += 1;
    }
    assert!(complete > 500, "{complete} runs");
    // The testers come back to the same weak merchants.
    assert!(merchants.len() <= 12, "{merchants:?}");
    assert!(merchants.values().all(|&n| n >= 10), "{merchants:?}");
}
