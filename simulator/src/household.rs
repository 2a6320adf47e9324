//! Households: legitimate device sharing. Real card holders share a tablet or laptop with the
//! person they live with, so normal traffic has two users on one device — sometimes within
//! minutes, when a couple shops together. Rules on `device.distinct_users` must be measured
//! against that, not against a world where every device has one user.
//!
//! Holders `2p` and `2p + 1` form household `p` when a hash of the seed and `p` falls under
//! the configured share; they live in one city and share device `home-dev-<p>`. Membership
//! comes from a hash, not the simulator's random stream, so a share of 0 leaves the stream
//! exactly as it was.

use super::schedule::activity;

/// Chance that a household member's turn in the evening (17-24 UTC, the busy hours of the
/// daily rhythm) is paid on the shared device; the rest of the day it is [`DAYTIME_SHARED`].
pub const EVENING_SHARED: f64 = 0.6;

/// Chance a daytime turn uses the shared device.
pub const DAYTIME_SHARED: f64 = 0.1;

/// Chance that a purchase on the shared device is followed by the partner's own purchase on
/// it within [`JOINT_DELAY_MS`]: shopping together.
pub const JOINT_SHARE: f64 = 0.1;

/// Bounds of the delay of the partner's joint purchase, in milliseconds (1 to 20 minutes).
pub const JOINT_DELAY_MS: (i64, i64) = (60_000, 20 * 60_000);

/// Which holders live in two-person households.
#[derive(Debug, Clone, Copy)]
pub struct Households {
    seed: u64,
    /// Share of pairs `(2p, 2p + 1)` that are households, 0..=1.
    share: f64,
    users: u32,
}

impl Households {
    /// Households among `users` holders: `share` of the pairs (clamped to 0..=1; NaN is 0).
    pub fn new(seed: u64, users: u32, share: f64) -> Self {
        let share = if share.is_nan() {
            0.0
        } else {
            share.clamp(0.0, 1.0)
        };
        Households { seed, share, users }
    }

    /// The household of `user` and the partner's index, if the user lives in one.
    pub fn of(&self, user: u32) -> Option<(u32, u32)> {
        let pair = user / 2;
        let partner = user ^ 1;
        if self.share <= 0.0 || partner >= self.users {
            return None;
        }
        let draw = mix(self.seed ^ mix(u64::from(pair) + 0x9e37_79b9_7f4a_7c15)) >> 11;
        ((draw as f64) < self.share * (1u64 << 53) as f64).then_some((pair, partner))
    }

    /// Chance that a turn at `time_ms` uses the shared device.
    pub fn shared_chance(time_ms: i64) -> f64 {
        // The evening hours are the ones the daily rhythm makes busiest.
        if activity(true, time_ms) > 1.0 {
            EVENING_SHARED
        } else {
            DAYTIME_SHARED
        }
    }
}

/// SplitMix64's finaliser (a bijection of `u64`).
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_symmetric_and_the_share_holds() {
        let h = Households::new(7, 100_001, 0.2);
        let mut members = 0;
        for user in 0..100_001 {
            if let Some((pair, partner)) = h.of(user) {
                members += 1;
                assert_eq!(pair, user / 2);
                assert_eq!(h.of(partner), Some((pair, user)));
            }
        }
        let share = f64::from(members) / 100_000.0;
        assert!((share - 0.2).abs() < 0.01, "{share}");
        // The last holder of an odd population has no partner.
        assert_eq!(h.of(100_000), None);
        assert!((0..1_000).all(|u| Households::new(7, 1_000, 0.0).of(u).is_none()));
        assert!((0..1_000).all(|u| Households::new(7, 1_000, f64::NAN).of(u).is_none()));
    }

    #[test]
    fn evenings_share_more() {
        let noon = 1_709_294_400_000; // 2024-03-01T12:00:00Z
        assert_eq!(Households::shared_chance(noon), DAYTIME_SHARED);
        assert_eq!(
            Households::shared_chance(noon + 8 * 3_600_000),
            EVENING_SHARED
        );
    }
}
