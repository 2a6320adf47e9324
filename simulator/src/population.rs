//! The simulated world drawn once from the seed: a merchant pool and each user's fixed habits.

use super::geo::CITIES;
use super::sample::weighted;
use rand::rngs::StdRng;
use rand::Rng;

/// Categories of ordinary merchants; normal traffic only ever uses these.
pub const NORMAL_CATEGORIES: [&str; 8] = [
    "grocery",
    "restaurants",
    "fuel",
    "retail",
    "travel",
    "electronics",
    "pharmacy",
    "entertainment",
];

/// How common each normal category is among merchants (same order as [`NORMAL_CATEGORIES`]).
const CATEGORY_WEIGHTS: [u32; 8] = [25, 20, 12, 15, 5, 5, 8, 10];

/// Categories on the engine's default high-risk list; only `m-risk-<n>` merchants have them.
pub const RISK_CATEGORIES: [&str; 2] = ["gambling", "crypto"];

/// Ordinary merchants `m-0` .. `m-1999`.
pub const MERCHANTS: u16 = 2_000;

/// High-risk merchants `m-risk-0` .. `m-risk-49`.
pub const RISK_MERCHANTS: u16 = 50;

/// Most preferred merchants a user has.
pub const MAX_PREFERRED: usize = 8;

/// Channel mixes users are drawn from, as weights over pos, web, mobile, atm (ATM stays rare).
pub const CHANNEL_MIXES: [[u32; 4]; 4] = [
    [70, 15, 13, 2], // shops in person
    [20, 55, 23, 2], // shops online
    [20, 15, 63, 2], // pays by phone
    [40, 30, 29, 1], // a bit of everything
];

/// The fixed category of every ordinary merchant, by merchant number.
#[derive(Debug, Clone)]
pub struct Merchants {
    categories: Vec<u8>,
}

impl Merchants {
    /// Draws a category for each of the [`MERCHANTS`] ordinary merchants.
    pub fn generate(rng: &mut StdRng) -> Self {
        let categories = (0..MERCHANTS)
            .map(|_| weighted(rng, &CATEGORY_WEIGHTS) as u8)
            .collect();
        Merchants { categories }
    }

    /// Category name of ordinary merchant `m`.
    pub fn category(&self, m: u16) -> &'static str {
        NORMAL_CATEGORIES[usize::from(self.categories[usize::from(m)])]
    }
}

/// One user's fixed habits (28 bytes; the strings are built from these numbers per event).
#[derive(Debug, Clone)]
pub struct Profile {
    /// Median normal amount in cents, 15.00 to 150.00.
    pub median_cents: u32,
    /// Home city, an index into [`CITIES`].
    pub city: u8,
    /// Cards `card-<user>-0` .. (1 or 2).
    pub cards: u8,
    /// Known devices `dev-<user>-0` .. (1 or 2).
    pub devices: u8,
    /// Index into [`CHANNEL_MIXES`].
    pub channels: u8,
    /// How many of `merchants` are used (3 to 8).
    pub preferred_len: u8,
    /// Preferred ordinary merchants, by number.
    pub merchants: [u16; MAX_PREFERRED],
}

impl Profile {
    /// Draws a user's habits.
    pub fn generate(rng: &mut StdRng) -> Self {
        // Log-uniform median: as many thrifty users as big spenders.
        let median = (rng.random_range(15f64.ln()..150f64.ln())).exp();
        let preferred_len = rng.random_range(3..=MAX_PREFERRED as u8);
        let mut merchants = [0u16; MAX_PREFERRED];
        let mut n = 0;
        while n < usize::from(preferred_len) {
            let m = rng.random_range(0..MERCHANTS);
            if !merchants[..n].contains(&m) {
                merchants[n] = m;
                n += 1;
            }
        }
        Profile {
            median_cents: (median * 100.0).round() as u32,
            city: rng.random_range(0..CITIES.len() as u8),
            cards: rng.random_range(1..=2),
            devices: rng.random_range(1..=2),
            channels: rng.random_range(0..CHANNEL_MIXES.len() as u8),
            preferred_len,
            merchants,
        }
    }

    /// The preferred merchants in use.
    pub fn preferred(&self) -> &[u16] {
        &self.merchants[..usize::from(self.preferred_len)]
    }

    /// Whether `m` is one of the preferred merchants.
    pub fn prefers(&self, m: u16) -> bool {
        self.preferred().contains(&m)
    }
}

/// The user's home IP: derived from the user number (not stored), in the documentation ranges
/// 203.0.113.0/24 and 198.51.100.0/24 so simulated traffic can never hit a real host. Many users
/// share an address, as they would behind carrier NAT.
pub fn home_ip(user: u32) -> String {
    let prefix = if user & 1 == 0 {
        "203.0.113."
    } else {
        "198.51.100."
    };
    format!("{prefix}{}", (user / 2) % 254 + 1)
}

/// An address no user has at home (192.0.2.0/24, the third documentation range).
pub fn unknown_ip(host: u8) -> String {
    format!("192.0.2.{host}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn profiles_stay_in_their_ranges() {
        let mut rng = StdRng::seed_from_u64(3);
        let merchants = Merchants::generate(&mut rng);
        for _ in 0..5_000 {
            let p = Profile::generate(&mut rng);
            assert!((1_500..=15_000).contains(&p.median_cents));
            assert!((1..=2).contains(&p.cards) && (1..=2).contains(&p.devices));
            let pref = p.preferred();
            assert!((3..=8).contains(&pref.len()));
            assert!(pref.iter().all(|&m| m < MERCHANTS && p.prefers(m)));
            assert!(pref
                .iter()
                .all(|&m| NORMAL_CATEGORIES.contains(&merchants.category(m))));
        }
        assert!(std::mem::size_of::<Profile>() <= 32);
    }

    #[test]
    fn ips_are_documentation_addresses() {
        for u in [0, 1, 2, 507, 508, 1_000_001] {
            let ip = home_ip(u);
            assert!(ip.starts_with("203.0.113.") || ip.starts_with("198.51.100."));
            assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{ip}");
        }
        assert_eq!(unknown_ip(7), "192.0.2.7");
    }
}
