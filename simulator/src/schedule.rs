//! Event-time scheduling: the queue entries, the daily rhythm, and the gaps between a user's
//! normal transactions.

use super::sample::exponential;
use super::Scenario;
use rand::rngs::StdRng;
use rand::Rng;

/// Shortest gap between two normal transactions of one user. Eight events then span at least
/// 7 × 45 s = 315 s, so a user never has more than 7 normal events in any 5 minutes.
pub const MIN_GAP_MS: i64 = 45_000;

/// Quiet time after a scenario before the user's next normal transaction, so the scenario's
/// signals (foreign country, burst count) never reach into normal traffic.
pub const COOLDOWN_MS: i64 = 60 * 60_000;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// What happens when an entry comes due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// A normal turn (the fraud roll already said no).
    Turn,
    /// A turn that starts this scenario.
    Start(Scenario),
    /// The foreign transaction of impossible travel, in this city (index into the table).
    Travel(u8),
    /// The next burst transaction; this many remain, this one included.
    Burst(u8),
    /// A fraud-ring member's transaction on ring device `k`.
    Ring(u32),
    /// The account-takeover transaction.
    Takeover,
    /// The next fraud on a compromised card, episode `slot` (see `patterns`).
    CardFraud(u32),
    /// The next card-testing authorisation (or the final purchase), episode `slot`.
    CardTest(u32),
    /// A household member's purchase on the shared device right after the partner's.
    Joint,
}

/// Bits of an entry's code that carry the action's payload; the top 3 carry its kind.
const PAYLOAD_BITS: u32 = 29;

/// Largest fraud-ring number an entry can carry; ring numbers wrap past it (after half a
/// billion rings). Also the largest episode slot.
pub const MAX_RING: u32 = (1 << PAYLOAD_BITS) - 1;

impl Action {
    /// Packs the action into 32 bits, so a queue entry is 16 bytes: the queue is the hottest
    /// memory of the simulator and half-size entries halve its cache misses.
    fn encode(self) -> u32 {
        let (kind, payload) = match self {
            Action::Turn => (0, 0),
            Action::Start(s) => (1, s as u32),
            Action::Travel(city) => (2, u32::from(city)),
            Action::Burst(remaining) => (3, u32::from(remaining)),
            Action::Ring(k) => (4, k & MAX_RING),
            Action::Takeover => (5, 0),
            Action::CardFraud(slot) => (6, slot & MAX_RING),
            Action::CardTest(slot) => (7, slot & MAX_RING),
            // Every kind is taken: a joint purchase is a turn with a payload.
            Action::Joint => (0, 1),
        };
        kind << PAYLOAD_BITS | payload
    }

    /// Unpacks [`Action::encode`].
    fn decode(code: u32) -> Action {
        let payload = code & MAX_RING;
        match code >> PAYLOAD_BITS {
            1 => Action::Start(Scenario::EVERY[payload as usize % Scenario::EVERY.len()]),
            2 => Action::Travel(payload as u8),
            3 => Action::Burst(payload as u8),
            4 => Action::Ring(payload),
            5 => Action::Takeover,
            6 => Action::CardFraud(payload),
            7 => Action::CardTest(payload),
            _ if payload == 1 => Action::Joint,
            _ => Action::Turn,
        }
    }
}

/// One scheduled event. Ordered by time, then user, then action: a total order on distinct
/// entries (a user never has two identical entries), so ties break the same way on every run
/// without a push counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// Event time, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// User index.
    pub user: u32,
    /// The packed [`Action`].
    code: u32,
}

impl Entry {
    /// An entry for `user` at `time_ms`.
    pub fn new(time_ms: i64, user: u32, action: Action) -> Self {
        Entry {
            time_ms,
            user,
            code: action.encode(),
        }
    }

    /// What to do when it comes due.
    pub fn action(&self) -> Action {
        Action::decode(self.code)
    }
}

/// Traffic intensity at an event time, relative to the daily average (UTC hours): nights
/// (00-06) a third, days (06-17) average, evenings (17-24) busier. The weights average to
/// exactly 1 over a day: (6 × 1/3 + 11 × 1 + 7 × 11/7) / 24 = 1.
pub fn activity(daily_rhythm: bool, time_ms: i64) -> f64 {
    if !daily_rhythm {
        return 1.0;
    }
    match time_ms.rem_euclid(DAY_MS) / HOUR_MS {
        0..=5 => 1.0 / 3.0,
        6..=16 => 1.0,
        _ => 11.0 / 7.0,
    }
}

/// Mean of the exponential part of the gap at `time_ms`: the target gap scaled by the rhythm,
/// less the fixed minimum. Zero when the target is below the minimum (the rate then falls
/// short of the target instead of breaking the minimum).
fn exponential_mean_ms(mean_gap_ms: f64, daily_rhythm: bool, time_ms: i64) -> f64 {
    (mean_gap_ms / activity(daily_rhythm, time_ms) - MIN_GAP_MS as f64).max(0.0)
}

/// Gap from a normal transaction at `time_ms` to the user's next turn: `MIN_GAP` plus an
/// exponential, for a mean of `mean_gap_ms / activity` whenever that is at least `MIN_GAP`.
pub fn normal_gap_ms(rng: &mut StdRng, mean_gap_ms: f64, daily_rhythm: bool, time_ms: i64) -> i64 {
    let extra = exponential(rng, exponential_mean_ms(mean_gap_ms, daily_rhythm, time_ms));
    MIN_GAP_MS + extra.min(i64::MAX as f64 / 4.0) as i64
}

/// Offset of a user's first turn after the start: the stationary residual of the gap
/// distribution (uniform over the fixed part with its share of the mean, otherwise the fixed
/// part plus an exponential). Starting from this, the rate is on target from the first second;
/// a plain uniform spread over one mean gap would overshoot by ~20% during the first gap.
pub fn initial_offset_ms(
    rng: &mut StdRng,
    mean_gap_ms: f64,
    daily_rhythm: bool,
    start_ms: i64,
) -> i64 {
    let exp_mean = exponential_mean_ms(mean_gap_ms, daily_rhythm, start_ms);
    let fixed = MIN_GAP_MS as f64;
    if rng.random::<f64>() * (fixed + exp_mean) < fixed {
        rng.random_range(0..MIN_GAP_MS)
    } else {
        MIN_GAP_MS + exponential(rng, exp_mean).min(i64::MAX as f64 / 4.0) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const NOON: i64 = 1_709_294_400_000; // 2024-03-01T12:00:00Z

    #[test]
    fn actions_round_trip_through_entries() {
        let mut actions = vec![
            Action::Turn,
            Action::Joint,
            Action::Takeover,
            Action::Ring(0),
            Action::Ring(MAX_RING),
        ];
        actions.extend(Scenario::EVERY.map(Action::Start));
        actions.extend([
            Action::CardFraud(0),
            Action::CardFraud(MAX_RING),
            Action::CardTest(3),
            Action::Travel(0),
            Action::Travel(33),
            Action::Burst(1),
            Action::Burst(20),
        ]);
        for a in actions {
            assert_eq!(Entry::new(NOON, 7, a).action(), a);
        }
        assert_eq!(std::mem::size_of::<Entry>(), 16);
    }

    #[test]
    fn rhythm_averages_to_one() {
        let mean = (0..24).map(|h| activity(true, h * HOUR_MS)).sum::<f64>() / 24.0;
        assert!((mean - 1.0).abs() < 1e-12, "{mean}");
        assert!((activity(true, NOON) - 1.0).abs() < 1e-12);
        assert!(activity(true, NOON + 14 * HOUR_MS) < 0.5); // 02:00
        assert!(activity(true, NOON + 8 * HOUR_MS) > 1.0); // 20:00
        assert_eq!(activity(false, NOON + 14 * HOUR_MS), 1.0);
    }

    #[test]
    fn gaps_respect_the_minimum_and_the_mean() {
        let mut rng = StdRng::seed_from_u64(9);
        let n = 100_000;
        let gaps: Vec<i64> = (0..n)
            .map(|_| normal_gap_ms(&mut rng, 100_000.0, true, NOON))
            .collect();
        assert!(gaps.iter().all(|&g| g >= MIN_GAP_MS));
        let mean = gaps.iter().sum::<i64>() as f64 / n as f64;
        assert!((mean - 100_000.0).abs() < 1_500.0, "{mean}");
        // A target below the minimum gives the minimum, not less.
        assert_eq!(normal_gap_ms(&mut rng, 1_000.0, true, NOON), MIN_GAP_MS);
        let first: Vec<i64> = (0..n)
            .map(|_| initial_offset_ms(&mut rng, 100_000.0, true, NOON))
            .collect();
        assert!(first.iter().all(|&o| o >= 0));
    }
}
