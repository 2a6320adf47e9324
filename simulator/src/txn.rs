//! Turning a compact description of a transaction into the `Transaction` the engine sees.
//! Only here are strings built, so an event allocates nothing beyond its own fields.

use super::geo::CITIES;
use super::population::{home_ip, unknown_ip, Merchants, RISK_CATEGORIES};
use chrono::DateTime;
use rust_decimal::Decimal;
use sentinel_event::{Channel, Location, Transaction, TxnType};

/// Which device the transaction came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRef {
    /// One of the user's own devices, `dev-<user>-<n>`.
    Known(u8),
    /// A fraud ring's shared device, `ring-dev-<k>`.
    Ring(u32),
    /// An account taker's device, `ato-dev-<k>`.
    Takeover(u32),
    /// The device a compromised card's details are used from, `cnp-dev-<k>`.
    CardNotPresent(u32),
    /// A card tester's fresh device, `ct-dev-<k>`.
    Tester(u32),
    /// Household `p`'s shared device, `home-dev-<p>`.
    Household(u32),
}

/// Which address the transaction came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpRef {
    /// The user's home address.
    Home,
    /// An address in 192.0.2.0/24, never anyone's home.
    Unknown(u8),
}

/// Where the money went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MerchantRef {
    /// Ordinary merchant `m-<n>`.
    Pool(u16),
    /// High-risk merchant `m-risk-<n>`.
    Risk(u16),
}

/// A transaction before its strings exist.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draft {
    /// Card number `card-<user>-<n>`.
    pub card: u8,
    /// Device used.
    pub device: DeviceRef,
    /// Address used.
    pub ip: IpRef,
    /// Amount in cents, positive.
    pub cents: i64,
    /// Merchant paid.
    pub merchant: MerchantRef,
    /// Channel.
    pub channel: Channel,
    /// Type.
    pub kind: TxnType,
    /// City, an index into the city table.
    pub city: u8,
    /// Offset from the city centre in degrees (lat, lon): people move around town.
    pub jitter: (f64, f64),
}

/// How the simulator names its transactions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransactionIds {
    /// `sim-<seed>-<counter>`: readable, numbered in the order they are sent, so a store's
    /// index takes each new one near the last.
    #[default]
    Sequential,
    /// UUID-shaped random hex, as many gateways send: an index takes each one anywhere. The
    /// same seed gives the same ids; a run never repeats one (the first 64 bits are a
    /// bijection of the counter).
    Random,
}

impl TransactionIds {
    /// The id of event `counter` of the simulation seeded with `seed`.
    pub fn name(self, seed: u64, counter: u64) -> String {
        match self {
            TransactionIds::Sequential => format!("sim-{seed}-{counter}"),
            TransactionIds::Random => {
                let unique =
                    crate::household::mix(counter.wrapping_add(crate::household::mix(seed)));
                let rest = crate::household::mix(unique ^ 0x9e37_79b9_7f4a_7c15);
                format!(
                    "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                    unique >> 32,
                    (unique >> 16) & 0xffff,
                    unique & 0xffff,
                    rest >> 48,
                    rest & 0xffff_ffff_ffff
                )
            }
        }
    }
}

/// Everything besides the draft that names the transaction.
#[derive(Debug, Clone, Copy)]
pub struct Naming<'a> {
    /// Simulation seed, part of the transaction id.
    pub seed: u64,
    /// Global event counter, the rest of the transaction id.
    pub counter: u64,
    /// How the transaction id is written.
    pub ids: TransactionIds,
    /// User index.
    pub user: u32,
    /// The user's card currency (home country's).
    pub currency: &'static str,
    /// The merchant pool, for categories.
    pub merchants: &'a Merchants,
}

/// Rounds degrees to 1e-5 (about a metre): keeps the JSON short and the output stable.
fn round5(x: f64) -> f64 {
    (x * 1e5).round() / 1e5
}

impl Draft {
    /// Builds the transaction at `time_ms` (milliseconds since the epoch).
    pub fn build(&self, naming: Naming<'_>, time_ms: i64) -> Transaction {
        let user = naming.user;
        let city = &CITIES[usize::from(self.city)];
        let (merchant_id, category) = match self.merchant {
            MerchantRef::Pool(m) => (format!("m-{m}"), naming.merchants.category(m)),
            MerchantRef::Risk(m) => (
                format!("m-risk-{m}"),
                RISK_CATEGORIES[usize::from(m) % RISK_CATEGORIES.len()],
            ),
        };
        let device = match self.device {
            DeviceRef::Known(n) => format!("dev-{user}-{n}"),
            DeviceRef::Ring(k) => format!("ring-dev-{k}"),
            DeviceRef::Takeover(k) => format!("ato-dev-{k}"),
            DeviceRef::CardNotPresent(k) => format!("cnp-dev-{k}"),
            DeviceRef::Tester(k) => format!("ct-dev-{k}"),
            DeviceRef::Household(p) => format!("home-dev-{p}"),
        };
        let ip = match self.ip {
            IpRef::Home => home_ip(user),
            IpRef::Unknown(host) => unknown_ip(host),
        };
        Transaction {
            transaction_id: naming.ids.name(naming.seed, naming.counter),
            user_id: format!("user-{user}"),
            card_id: Some(format!("card-{user}-{}", self.card)),
            device_id: Some(device),
            ip: Some(ip),
            amount: Decimal::new(self.cents.max(1), 2),
            currency: naming.currency.to_owned(),
            merchant_id: Some(merchant_id),
            merchant_name: None,
            merchant_category: Some(category.to_owned()),
            channel: Some(self.channel),
            kind: Some(self.kind),
            location: Some(Location {
                country: city.country.to_owned(),
                city: Some(city.name.to_owned()),
                lat: Some(round5(city.lat + self.jitter.0)),
                lon: Some(round5(city.lon + self.jitter.1)),
            }),
            // Only fails past the year 262,000; no simulation runs that long.
            timestamp: DateTime::from_timestamp_millis(time_ms)
                .expect("simulated event time within chrono's range"),
            metadata: None,
            base: None,
        }
    }
}
