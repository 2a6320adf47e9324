//! Households in the whole stream: a shared device has only its two members, partners live
//! in one city, some buy on it within minutes of each other, and a share of 0 changes nothing.

use super::tests::{ms, noon, user_index};
use super::*;
use std::collections::BTreeMap;

fn config() -> SimConfig {
    SimConfig {
        seed: 5,
        users: 2_000,
        rate_per_sec: 2.0,
        fraud_ratio: 0.0,
        start: noon(),
        daily_rhythm: true,
        scenarios: Vec::new(),
    }
}

#[test]
fn households_share_a_device_and_sometimes_buy_together() {
    let n = 20_000;
    let plain: Vec<SimEvent> = Simulator::new(config()).take(n).collect();
    let none: Vec<SimEvent> = Simulator::new(config())
        .with_households(0.0)
        .take(n)
        .collect();
    assert_eq!(plain, none, "a share of 0 leaves the stream as it was");

    let events: Vec<SimEvent> = Simulator::new(config())
        .with_households(0.2)
        .take(n)
        .collect();
    // Per shared device: its users, their cities, and the times of its uses by user.
    let mut devices: BTreeMap<u32, Vec<(usize, i64, String)>> = BTreeMap::new();
    for e in &events {
        assert!(e.label.is_none(), "households are legitimate traffic");
        let device = e.txn.device_id.as_deref().unwrap();
        if let Some(pair) = device.strip_prefix("home-dev-") {
            let city = e.txn.location.as_ref().unwrap().city.clone().unwrap();
            devices
                .entry(pair.parse().unwrap())
                .or_default()
                .push((user_index(e), ms(e), city));
        }
    }
    assert!(devices.len() > 50, "{} shared devices", devices.len());
    let mut joint = 0;
    for (pair, uses) in &devices {
        let pair = *pair as usize;
        assert!(uses.iter().all(|(u, _, _)| u / 2 == pair), "{uses:?}");
        assert!(
            uses.iter().all(|(_, _, city)| *city == uses[0].2),
            "{uses:?}"
        );
        joint += uses
            .windows(2)
            .filter(|w| w[0].0 != w[1].0 && w[1].1 - w[0].1 <= 20 * 60_000)
            .count();
    }
    assert!(joint > 10, "{joint} joint purchases");
    // Most households' shared devices see both members over the run.
    let both = devices
        .values()
        .filter(|uses| uses.iter().any(|u| u.0 != uses[0].0))
        .count();
    assert!(both * 2 > devices.len(), "{both} of {}", devices.len());
}
