//! A deterministic discrete-event simulator of card traffic with labelled, injected fraud: one
//! code path for the node (`sentinel demo`, `simulate`, `train --from simulator`), the benches
//! and the load generator.
//!
//! A fixed population (drawn from the seed) transacts in event time through one priority queue,
//! so events come out in timestamp order. Normal traffic is built never to trip the engine's
//! default rules; at a user's turn a fraud scenario may run instead, and every event it produces
//! carries its [`Scenario`] as a label.
//!
//! Rate: each user's gap between normal transactions is `MIN_GAP` (45 s) plus an exponential,
//! with a mean of `users / rate_per_sec`, so the aggregate rate is `rate_per_sec` whenever
//! `users / rate_per_sec >= 45 s` (in the busy evening hours: `>= 45 s × 11/7`). With fewer
//! users the gap stays at 45 s and the rate falls short (at most `users / 45` per second).
//! A daily rhythm in UTC scales it: nights (00-06) a third, evenings (17-24) 11/7, days the
//! target; the day averages to the target. Scenarios take their users out of normal traffic for
//! over an hour; the other users then go proportionally faster (never below 45 s), so the rate
//! holds with fraud too, as long as the active users can still reach it.

mod geo;
mod household;
mod labels;
mod patterns;
mod population;
mod sample;
mod scenarios;
mod schedule;
mod txn;

#[cfg(test)]
mod household_tests;
#[cfg(test)]
mod pattern_tests;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use household::{Households, JOINT_DELAY_MS, JOINT_SHARE};
use population::{Merchants, Profile, CHANNEL_MIXES};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use schedule::{Action, Entry, COOLDOWN_MS};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use txn::{DeviceRef, Draft, IpRef, MerchantRef, Naming};

pub use labels::{analyst_labels, Feedback, Labeller, LateTail, SimLabel};
pub use schedule::MIN_GAP_MS;
pub use txn::TransactionIds;

/// Lowest accepted rate; anything lower (or not a number) is raised to it so gaps stay finite.
pub const MIN_RATE_PER_SEC: f64 = 1e-3;

/// Card holders of the realistic population ([`SimConfig::realistic`]).
pub const REALISTIC_HOLDERS: u32 = 1_000_000;

/// Payments per holder and day in the realistic population, on average.
pub const REALISTIC_PAYMENTS_PER_DAY: f64 = 4.0;

/// What to simulate. The same config (seed and start included) gives the same stream, byte
/// for byte.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Seed of everything random: population, schedule, fraud.
    pub seed: u64,
    /// Distinct users `user-0` .. `user-<users-1>`; 0 is treated as 1.
    pub users: u32,
    /// Target events per second of event time (see the module docs for when it is reached);
    /// values below [`MIN_RATE_PER_SEC`] are raised to it.
    pub rate_per_sec: f64,
    /// Fraction of user turns that run a fraud scenario instead, clamped to 0..=1.
    pub fraud_ratio: f64,
    /// Event time of the simulation start (used to millisecond precision).
    pub start: DateTime<Utc>,
    /// Whether traffic follows the daily rhythm (quiet nights, busy evenings, UTC) or stays at
    /// the target rate around the clock (the demo, benchmarks).
    pub daily_rhythm: bool,
    /// Scenarios that may be injected, picked uniformly (a scenario listed twice is twice as
    /// likely); empty means no fraud at all.
    pub scenarios: Vec<Scenario>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 42,
            users: 100_000,
            rate_per_sec: 1_000.0,
            fraud_ratio: 0.002,
            start: Utc::now(),
            daily_rhythm: true,
            scenarios: Scenario::ALL.to_vec(),
        }
    }
}

impl SimConfig {
    /// A realistic card population: `holders` card holders who each pay `payments_per_day`
    /// times a day on average, every holder on their own Poisson clock (exponential gaps, at
    /// least 45 s apart), no daily rhythm. The population's event-time rate is
    /// `holders × payments_per_day / 86,400` per second (about 46 for a million holders paying
    /// four times a day), so a holder's previous payment is typically hours of event time
    /// earlier. A `payments_per_day` that is not positive is raised to the lowest rate.
    pub fn realistic(seed: u64, holders: u32, payments_per_day: f64) -> Self {
        let per_day = if payments_per_day > 0.0 {
            payments_per_day
        } else {
            0.0
        };
        SimConfig {
            seed,
            users: holders,
            rate_per_sec: f64::from(holders.max(1)) * per_day / 86_400.0,
            daily_rhythm: false,
            ..SimConfig::default()
        }
    }
}

/// A kind of injected fraud. The first seven are recognisable from the events of one user in
/// order (the fraud ring from one device across users); the history patterns
/// ([`Scenario::PATTERNS`]) play out over days and weeks and show in the history of a merchant,
/// a device or a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// One transaction of 15,000 to 80,000.
    MassiveAmount,
    /// One transaction of 8 to 15 times the user's median, and at least 6 times the user's
    /// average so far; only for users with 5 or more normal transactions.
    AboveAverage,
    /// A transaction in a country at least 3,000 km from home, 2 to 20 minutes after a
    /// normal one at home.
    ImpossibleTravel,
    /// 14 to 20 small transactions 5 to 15 s apart.
    VelocityBurst,
    /// One new device (`ring-dev-<k>`) used by 4 users within 10 minutes, each at a merchant
    /// new to them.
    FraudRing,
    /// One transaction at a gambling or crypto merchant (`m-risk-<n>`).
    HighRiskMerchant,
    /// A new device (`ato-dev-<k>`), a foreign country and an unknown IP at once, for 2 to 4
    /// times the median (at most 4 times the user's average so far), more than an hour after
    /// the user's previous transaction; the user is left quiet until then.
    AccountTakeover,
    /// An ordinary merchant (a terminal) is compromised for 14 to 28 days of event time, and
    /// every transaction there in that window is fraud (the terminal's own transactions, as in
    /// scenario 2 of Le Borgne et al.'s handbook): the events look normal, only the merchant's
    /// history gives them away. Each roll adds 25 expected fraud events to a budget; a merchant
    /// is compromised when a normal turn draws it and the budget covers its expected traffic
    /// over the window, so several merchants fall over a long simulation.
    CompromisedTerminal,
    /// A card's details leak: up to 14 days (and at most 4 to 12 frauds) of card-not-present
    /// fraud on one of the user's cards beside its normal use, about a third of the card's
    /// transactions, each 5 times a normal amount, at merchants new to the user, from one
    /// fraudster device (`cnp-dev-<k>`) and unknown addresses (handbook scenario 3).
    CompromisedCard,
    /// 4 to 10 authorisations of 0.01 to 2.00 at one web merchant (one of a few weak ones the
    /// testers reuse) from a fresh device (`ct-dev-<k>`) 10 to 60 s apart, then 1 to 30
    /// minutes later a larger purchase there (2 to 5 times the median, more if needed to keep
    /// the user's average where normal traffic expects it).
    CardTesting,
}

impl Scenario {
    /// The scenarios injected by default (the demo, `sentinel train --from simulator`, the
    /// load generator): each shows in one user's recent events. The history patterns are
    /// opt-in: the shipped model and the existing detection figures are built on these seven.
    pub const ALL: [Scenario; 7] = [
        Scenario::MassiveAmount,
        Scenario::AboveAverage,
        Scenario::ImpossibleTravel,
        Scenario::VelocityBurst,
        Scenario::FraudRing,
        Scenario::HighRiskMerchant,
        Scenario::AccountTakeover,
    ];

    /// The patterns that need a long history to learn from (entity fraud shares, per-card
    /// windows): compromised terminals, compromised cards, card testing.
    pub const PATTERNS: [Scenario; 3] = [
        Scenario::CompromisedTerminal,
        Scenario::CompromisedCard,
        Scenario::CardTesting,
    ];

    /// Every scenario: [`Scenario::ALL`] then [`Scenario::PATTERNS`], in declaration order.
    pub const EVERY: [Scenario; 10] = [
        Scenario::MassiveAmount,
        Scenario::AboveAverage,
        Scenario::ImpossibleTravel,
        Scenario::VelocityBurst,
        Scenario::FraudRing,
        Scenario::HighRiskMerchant,
        Scenario::AccountTakeover,
        Scenario::CompromisedTerminal,
        Scenario::CompromisedCard,
        Scenario::CardTesting,
    ];

    /// The snake-case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::MassiveAmount => "massive_amount",
            Scenario::AboveAverage => "above_average",
            Scenario::ImpossibleTravel => "impossible_travel",
            Scenario::VelocityBurst => "velocity_burst",
            Scenario::FraudRing => "fraud_ring",
            Scenario::HighRiskMerchant => "high_risk_merchant",
            Scenario::AccountTakeover => "account_takeover",
            Scenario::CompromisedTerminal => "compromised_terminal",
            Scenario::CompromisedCard => "compromised_card",
            Scenario::CardTesting => "card_testing",
        }
    }
}

/// A name that is not a scenario's (see [`Scenario::as_str`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownScenario(pub String);

impl std::fmt::Display for UnknownScenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = Scenario::EVERY.iter().map(|s| s.as_str()).collect();
        write!(
            f,
            "unknown scenario `{}` (expected one of {})",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownScenario {}

impl std::str::FromStr for Scenario {
    type Err = UnknownScenario;

    /// Parses the snake-case name, as serialized.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Scenario::EVERY
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| UnknownScenario(name.to_owned()))
    }
}

/// One simulated transaction and the truth about it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEvent {
    /// The transaction, as a producer would send it.
    pub txn: sentinel_event::Transaction,
    /// The scenario this event belongs to; `None` for normal traffic.
    pub label: Option<Scenario>,
}

/// What changes about a user as the simulation runs (48 bytes).
#[derive(Debug, Clone, Default)]
struct UserState {
    /// Time of the user's latest event; meaningless while `events` is 0.
    last_ms: i64,
    /// No normal transaction before this time (end of the latest scenario's cooldown).
    resume_ms: i64,
    /// Sum of normal amounts, in cents.
    normal_cents: u64,
    /// Sum of all amounts, in cents.
    all_cents: u64,
    /// Normal transactions so far.
    normals: u32,
    /// All transactions so far.
    events: u32,
    /// In a scenario (or about to start one): never drafted into another.
    busy: bool,
    /// Out of normal traffic since a scenario took the user, until the next normal turn.
    paused: bool,
}

impl UserState {
    /// Mean normal amount in cents (0 without history).
    fn normal_mean(&self) -> f64 {
        if self.normals == 0 {
            0.0
        } else {
            self.normal_cents as f64 / f64::from(self.normals)
        }
    }

    /// Mean of every amount in cents, what the engine's average sees (0 without history).
    fn overall_mean(&self) -> f64 {
        if self.events == 0 {
            0.0
        } else {
            self.all_cents as f64 / f64::from(self.events)
        }
    }
}

/// A user: fixed habits and running state.
#[derive(Debug, Clone)]
struct User {
    profile: Profile,
    state: UserState,
}

/// The simulator: an infinite, event-time-ordered stream of [`SimEvent`]s.
pub struct Simulator {
    config: SimConfig,
    rng: StdRng,
    merchants: Merchants,
    /// Per home city, far cities in other countries (indices into the city table).
    far: Vec<Vec<u8>>,
    users: Vec<User>,
    queue: BinaryHeap<Reverse<Entry>>,
    /// Events emitted, the transaction-id counter.
    emitted: u64,
    /// Fraud rings and takeovers so far, for their device ids.
    rings: u32,
    takeovers: u32,
    /// State of the history patterns (terminals, compromised cards, card testing).
    patterns: patterns::Patterns,
    /// Target mean gap between one user's normal transactions, before the daily rhythm.
    mean_gap_ms: f64,
    /// Users currently out of normal traffic (see [`Simulator::active_mean_gap_ms`]).
    paused: u32,
    fraud_ratio: f64,
    /// Holders sharing a device at home (none unless [`Simulator::with_households`]).
    households: Households,
    /// How transactions are named (see [`Simulator::with_transaction_ids`]).
    transaction_ids: TransactionIds,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("config", &self.config)
            .field("emitted", &self.emitted)
            .field("next", &self.peek_time())
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Draws the population from the seed and schedules every user's first turn.
    pub fn new(config: SimConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let users = config.users.max(1);
        let rate = if config.rate_per_sec >= MIN_RATE_PER_SEC {
            config.rate_per_sec
        } else {
            MIN_RATE_PER_SEC
        };
        let fraud_ratio = if config.fraud_ratio.is_nan() {
            0.0
        } else {
            config.fraud_ratio.clamp(0.0, 1.0)
        };
        let merchants = Merchants::generate(&mut rng);
        let population: Vec<User> = (0..users)
            .map(|_| User {
                profile: Profile::generate(&mut rng),
                state: UserState::default(),
            })
            .collect();
        let patterns =
            patterns::Patterns::new(&merchants, population.iter().map(|u: &User| &u.profile));
        let mut sim = Simulator {
            patterns,
            rng,
            merchants,
            far: geo::far_cities(),
            users: population,
            queue: BinaryHeap::with_capacity(users as usize + 64),
            emitted: 0,
            rings: 0,
            takeovers: 0,
            mean_gap_ms: f64::from(users) / rate * 1_000.0,
            paused: 0,
            fraud_ratio,
            households: Households::new(config.seed, users, 0.0),
            transaction_ids: TransactionIds::Sequential,
            config,
        };
        let start_ms = sim.config.start.timestamp_millis();
        for user in 0..users {
            let offset = schedule::initial_offset_ms(
                &mut sim.rng,
                sim.mean_gap_ms,
                sim.config.daily_rhythm,
                start_ms,
            );
            sim.schedule_turn(user, start_ms + offset);
        }
        sim.settle();
        sim
    }

    /// Puts `share` (0..=1) of the holders into two-person households that share a device at
    /// home: mostly in the evening, and now and then both buy on it within minutes (see the
    /// `household` module). Both members live in the first one's city. Call it before taking
    /// the first event; a share of 0 changes nothing.
    pub fn with_households(mut self, share: f64) -> Self {
        self.households = Households::new(self.config.seed, self.users.len() as u32, share);
        for user in (1..self.users.len() as u32).step_by(2) {
            if self.households.of(user).is_some() {
                let city = self.users[user as usize - 1].profile.city;
                self.users[user as usize].profile.city = city;
            }
        }
        self
    }

    /// Names transactions as `ids` says (sequential `sim-<seed>-<n>` unless changed); the
    /// traffic itself stays the same.
    pub fn with_transaction_ids(mut self, ids: TransactionIds) -> Self {
        self.transaction_ids = ids;
        self
    }

    /// The next event in event-time order (timestamps never decrease). Infinite stream.
    pub fn next_event(&mut self) -> SimEvent {
        let Reverse(entry) = self
            .queue
            .pop()
            .expect("every user always has a pending entry");
        let event = self.dispatch(entry);
        self.settle();
        event
    }

    /// Event time of the next event without consuming it (for pacing against the wall clock).
    pub fn peek_time(&self) -> DateTime<Utc> {
        let Reverse(entry) = self
            .queue
            .peek()
            .expect("every user always has a pending entry");
        DateTime::from_timestamp_millis(entry.time_ms)
            .expect("simulated event time within chrono's range")
    }

    /// The configuration, as given.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    fn push(&mut self, time_ms: i64, user: u32, action: Action) {
        self.queue.push(Reverse(Entry::new(time_ms, user, action)));
    }

    /// Schedules the user's next turn at `time_ms`, rolling now whether it runs a scenario.
    /// Rolling at scheduling time marks the user busy early, so no fraud ring drafts a user
    /// whose own scenario is pending.
    fn schedule_turn(&mut self, user: u32, time_ms: i64) {
        let scenarios = &self.config.scenarios;
        let scenario = if !scenarios.is_empty() && self.rng.random::<f64>() < self.fraud_ratio {
            Some(scenarios[self.rng.random_range(0..scenarios.len())])
        } else {
            None
        };
        let state = &self.users[user as usize].state;
        let (at, action) = match scenario {
            None => (time_ms, Action::Turn),
            // A takeover needs an hour of silence after the previous transaction, or the
            // foreign country would also read as impossible travel: wait for it.
            Some(Scenario::AccountTakeover) if state.events > 0 => {
                let quiet = COOLDOWN_MS + self.rng.random_range(60_000..30 * 60_000);
                (time_ms.max(state.last_ms + quiet), Action::Takeover)
            }
            Some(Scenario::AccountTakeover) => (time_ms, Action::Turn),
            // The turn stays normal; the roll feeds the terminal budget (see the scenario).
            Some(Scenario::CompromisedTerminal) => {
                self.patterns.add_terminal_credit();
                (time_ms, Action::Turn)
            }
            Some(s) => (time_ms, Action::Start(s)),
        };
        if action != Action::Turn {
            self.users[user as usize].state.busy = true;
            self.pause(user);
        }
        self.push(at, user, action);
    }

    /// Takes the user out of normal traffic until its next normal turn.
    fn pause(&mut self, user: u32) {
        let state = &mut self.users[user as usize].state;
        if !state.paused {
            state.paused = true;
            self.paused += 1;
        }
    }

    /// Mean gap for the next normal turn. Scenarios keep their users out of normal traffic for
    /// over an hour; the active users go proportionally faster so the aggregate rate holds
    /// (without this it would settle ~10% low at the defaults). `MIN_GAP` still bounds it.
    fn active_mean_gap_ms(&self) -> f64 {
        let users = self.users.len() as f64;
        self.mean_gap_ms * (users - f64::from(self.paused)) / users
    }

    /// Reschedules turns of users drafted into a fraud ring (or cooling down after one), and
    /// a compromised card's frauds that fall into another scenario or its cooldown, until the
    /// queue's head is an entry that emits, so `peek_time` is exact.
    fn settle(&mut self) {
        while let Some(Reverse(head)) = self.queue.peek() {
            let (time_ms, user) = (head.time_ms, head.user);
            let state = &self.users[user as usize].state;
            if let Action::CardFraud(slot) = head.action() {
                if self.settle_card_fraud(slot, time_ms, user) {
                    return;
                }
                continue;
            }
            if head.action() == Action::Joint {
                if !state.busy && time_ms >= state.resume_ms {
                    return;
                }
                // The partner is in a scenario or cooling down after one: no joint purchase.
                self.queue.pop();
                continue;
            }
            if head.action() != Action::Turn || (!state.busy && time_ms >= state.resume_ms) {
                return;
            }
            let (busy, resume_ms) = (state.busy, state.resume_ms);
            self.queue.pop();
            if busy {
                // The ring event is still ahead; look again after the longest possible wait.
                self.push(time_ms + COOLDOWN_MS, user, Action::Turn);
            } else {
                let mean = self.active_mean_gap_ms();
                let gap = schedule::normal_gap_ms(
                    &mut self.rng,
                    mean,
                    self.config.daily_rhythm,
                    resume_ms,
                );
                self.schedule_turn(user, resume_ms + gap);
            }
        }
    }

    fn dispatch(&mut self, entry: Entry) -> SimEvent {
        let Entry {
            time_ms: t, user, ..
        } = entry;
        match entry.action() {
            Action::Turn => self.normal_turn(user, t),
            Action::Start(s) => self.start_scenario(s, user, t),
            Action::Travel(city) => {
                let event = self.travel_event(user, t, city);
                self.finish_scenario(user, t);
                event
            }
            Action::Burst(remaining) => self.burst_event(user, t, remaining),
            Action::Ring(k) => self.ring_member_event(user, t, k),
            Action::Takeover => {
                let event = self.takeover_event(user, t);
                self.finish_scenario(user, t);
                event
            }
            Action::CardFraud(slot) => self.card_fraud_event(user, t, slot),
            Action::CardTest(slot) => self.card_test_event(user, t, slot),
            Action::Joint => self.joint_event(user, t),
        }
    }

    /// A normal transaction, then the user's next turn.
    fn normal_turn(&mut self, user: u32, t: i64) -> SimEvent {
        let mut draft = self.normal_draft(user);
        if let Some((pair, partner)) = self.households.of(user) {
            if self.rng.random::<f64>() < Households::shared_chance(t) {
                draft.device = DeviceRef::Household(pair);
                if self.rng.random::<f64>() < JOINT_SHARE {
                    let delay = self.rng.random_range(JOINT_DELAY_MS.0..=JOINT_DELAY_MS.1);
                    self.push(t + delay, partner, Action::Joint);
                }
            }
        }
        let label = self.terminal_label(&draft, t);
        let event = self.emit(user, t, &draft, label);
        let state = &mut self.users[user as usize].state;
        if state.paused {
            state.paused = false;
            self.paused -= 1;
        }
        let mean = self.active_mean_gap_ms();
        let gap = schedule::normal_gap_ms(&mut self.rng, mean, self.config.daily_rhythm, t);
        self.schedule_turn(user, t + gap);
        event
    }

    /// The partner's purchase on the household's shared device, minutes after the other
    /// member's: an extra normal transaction beside the partner's own schedule.
    fn joint_event(&mut self, user: u32, t: i64) -> SimEvent {
        let mut draft = self.normal_draft(user);
        if let Some((pair, _)) = self.households.of(user) {
            draft.device = DeviceRef::Household(pair);
        }
        let label = self.terminal_label(&draft, t);
        self.emit(user, t, &draft, label)
    }

    /// Ends the user's scenario at `t`: normal traffic resumes after the cooldown.
    fn finish_scenario(&mut self, user: u32, t: i64) {
        let state = &mut self.users[user as usize].state;
        state.busy = false;
        state.resume_ms = t + COOLDOWN_MS;
        let resume = t + COOLDOWN_MS;
        let mean = self.active_mean_gap_ms();
        let gap = schedule::normal_gap_ms(&mut self.rng, mean, self.config.daily_rhythm, resume);
        self.schedule_turn(user, resume + gap);
    }

    /// A transaction in the user's habits: preferred merchant, own card and device, home city,
    /// amount within [0.55, 2.5] × median. Those bounds keep any average of normal amounts
    /// within a factor 4.6 of any single one, under the engine's 5× spike rule.
    fn normal_draft(&mut self, user: u32) -> Draft {
        let p = &self.users[user as usize].profile;
        let rng = &mut self.rng;
        let merchant = p.preferred()[rng.random_range(0..p.preferred().len())];
        let channel = match sample::weighted(rng, &CHANNEL_MIXES[usize::from(p.channels)]) {
            0 => sentinel_event::Channel::Pos,
            1 => sentinel_event::Channel::Web,
            2 => sentinel_event::Channel::Mobile,
            _ => sentinel_event::Channel::Atm,
        };
        let kind = match sample::weighted(rng, &[92, 5, 3]) {
            0 => sentinel_event::TxnType::Debit,
            1 => sentinel_event::TxnType::Credit,
            _ => sentinel_event::TxnType::Transfer,
        };
        let factor = sample::bounded_lognormal(rng, 0.5, 0.55, 2.5);
        Draft {
            card: rng.random_range(0..p.cards),
            device: DeviceRef::Known(rng.random_range(0..p.devices)),
            ip: IpRef::Home,
            cents: (f64::from(p.median_cents) * factor).round() as i64,
            merchant: MerchantRef::Pool(merchant),
            channel,
            kind,
            city: p.city,
            jitter: (rng.random_range(-0.01..0.01), rng.random_range(-0.01..0.01)),
        }
    }

    /// Builds the event and records it in the user's running state.
    fn emit(&mut self, user: u32, t: i64, draft: &Draft, label: Option<Scenario>) -> SimEvent {
        let naming = Naming {
            seed: self.config.seed,
            counter: self.emitted,
            ids: self.transaction_ids,
            user,
            currency: geo::CITIES[usize::from(self.users[user as usize].profile.city)].currency,
            merchants: &self.merchants,
        };
        let txn = draft.build(naming, t);
        self.emitted += 1;
        let cents = draft.cents.max(1) as u64;
        let state = &mut self.users[user as usize].state;
        state.last_ms = t;
        state.events += 1;
        state.all_cents += cents;
        if label.is_none() {
            state.normals += 1;
            state.normal_cents += cents;
        }
        SimEvent { txn, label }
    }
}

impl Iterator for Simulator {
    type Item = SimEvent;

    fn next(&mut self) -> Option<SimEvent> {
        Some(self.next_event())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}
