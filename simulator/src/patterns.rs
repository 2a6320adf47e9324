//! The history patterns: compromised terminals, compromised cards and card testing. Unlike the
//! other scenarios they play out over days and weeks and revisit the same merchant, device or
//! card, so only features over an entity's history (fraud shares with the label delay, per-card
//! windows) can learn them.
//!
//! A compromised card's frauds run beside the user's normal traffic; they wait while the user
//! is in another scenario or its cooldown, so no other scenario's signal mixes in. Every fraud
//! amount here is at least the user's normal floor, or (card testing) followed by a purchase
//! that lifts the user's average back, so later normal amounts never look like a spike.

use super::population::{Merchants, Profile, MERCHANTS};
use super::sample::exponential;
use super::schedule::{Action, COOLDOWN_MS, MAX_RING, MIN_GAP_MS};
use super::txn::{DeviceRef, Draft, IpRef, MerchantRef};
use super::{Scenario, SimEvent, Simulator};
use rand::Rng;
use sentinel_event::Channel;

const DAY_MS: i64 = 24 * 3_600_000;

/// Expected fraud events one compromised-terminal roll adds to the terminal budget.
const TERMINAL_CREDIT_PER_ROLL: f64 = 25.0;

/// A terminal stays compromised this many days (inclusive bounds).
const TERMINAL_DAYS: (i64, i64) = (14, 28);

/// A terminal is not compromised again for this long after a compromise ends (it has been
/// replaced), so one compromise never runs straight into the next.
const TERMINAL_REST_MS: i64 = 28 * DAY_MS;

/// A compromised card is used for at most this long.
const CARD_COMPROMISE_MS: i64 = 14 * DAY_MS;

/// Frauds on one compromised card (inclusive bounds), if the 14 days last that long.
const CARD_FRAUDS: (u8, u8) = (4, 12);

/// Shortest gap between two frauds on a compromised card, so they never add up to a
/// velocity signal with the card's normal use.
const CARD_FRAUD_MIN_GAP_MS: i64 = 10 * 60_000;

/// A compromised card's fraud amounts are a normal amount times this (handbook scenario 3).
const CARD_FRAUD_FACTOR: i64 = 5;

/// Tiny authorisations in one card-testing run (inclusive bounds).
const CARD_TESTS: (u8, u8) = (4, 10);

/// Card-testing amounts in cents (inclusive bounds): 0.01 to 2.00.
const TEST_CENTS: (i64, i64) = (1, 200);

/// Gap between two test authorisations (inclusive bounds).
const TEST_GAP_MS: (i64, i64) = (10_000, 60_000);

/// Gap between the last test and the larger purchase (inclusive bounds).
const CASH_OUT_GAP_MS: (i64, i64) = (60_000, 30 * 60_000);

/// Weak web merchants the card testers reuse.
const TESTING_MERCHANTS: usize = 12;

/// Categories of the merchants card testers pick (digital goods are easiest to resell).
const TESTING_CATEGORIES: [&str; 2] = ["electronics", "entertainment"];

/// Lowest average amount, as a share of the user's median, that card testing leaves behind.
/// Normal amounts are at most 2.5 × median, under the engine's 5× spike rule from 0.6 ×.
const AVERAGE_FLOOR: f64 = 0.6;

/// One running compromised card or card-testing run.
#[derive(Debug, Clone, Copy)]
struct Episode {
    /// Number of the fraudster's device.
    device: u32,
    /// No fraud at or after this event time.
    until_ms: i64,
    /// The card-testing merchant (unused for compromised cards).
    merchant: u16,
    /// The victim's card.
    card: u8,
    /// Events still to come (card testing: tiny ones before the purchase).
    left: u8,
}

/// State of the history patterns, beside the simulator's own.
#[derive(Debug, Clone)]
pub struct Patterns {
    /// Per ordinary merchant, the end of its latest compromise (`i64::MIN` if never).
    compromised_until: Vec<i64>,
    /// Per ordinary merchant, its expected share of one user's turns summed over the users:
    /// its normal transactions per mean gap.
    merchant_weight: Vec<f64>,
    /// Expected compromised-terminal events rolled but not yet spent on a terminal.
    terminal_credit: f64,
    /// Merchants card testers use.
    testing_merchants: Vec<u16>,
    /// Running episodes by slot; the free slots are listed in `free`.
    episodes: Vec<Episode>,
    free: Vec<u32>,
    /// Fraudster devices handed out so far.
    devices: u32,
}

impl Patterns {
    /// Derives the merchants' traffic weights and the testing merchants from the world, drawing
    /// nothing from the random stream (configs without the patterns keep their stream).
    pub fn new<'a>(merchants: &Merchants, profiles: impl Iterator<Item = &'a Profile>) -> Self {
        let mut merchant_weight = vec![0.0; usize::from(MERCHANTS)];
        for p in profiles {
            let share = 1.0 / p.preferred().len() as f64;
            for &m in p.preferred() {
                merchant_weight[usize::from(m)] += share;
            }
        }
        let testing_merchants = (0..MERCHANTS)
            .filter(|&m| TESTING_CATEGORIES.contains(&merchants.category(m)))
            .take(TESTING_MERCHANTS)
            .collect();
        Patterns {
            compromised_until: vec![i64::MIN; usize::from(MERCHANTS)],
            merchant_weight,
            terminal_credit: 0.0,
            testing_merchants,
            episodes: Vec::new(),
            free: Vec::new(),
            devices: 0,
        }
    }

    /// Books one compromised-terminal roll.
    pub fn add_terminal_credit(&mut self) {
        self.terminal_credit += TERMINAL_CREDIT_PER_ROLL;
    }

    fn open(&mut self, episode: Episode) -> u32 {
        match self.free.pop() {
            Some(slot) => {
                self.episodes[slot as usize] = episode;
                slot
            }
            None => {
                self.episodes.push(episode);
                // Slots ride in 29 bits of a queue entry; half a billion at once never run.
                (self.episodes.len() as u32 - 1) & MAX_RING
            }
        }
    }

    fn close(&mut self, slot: u32) {
        self.free.push(slot);
    }

    fn next_device(&mut self) -> u32 {
        let k = self.devices;
        self.devices = self.devices.wrapping_add(1);
        k
    }
}

impl Simulator {
    /// Mean gap between one user's normal turns, as the population actually runs.
    fn user_gap_ms(&self) -> f64 {
        self.mean_gap_ms.max(MIN_GAP_MS as f64)
    }

    /// `Some(CompromisedTerminal)` when a normal draft's merchant is compromised at `t`. With
    /// budget enough for the merchant's expected traffic over a new window, compromises it
    /// now (this event is the window's first fraud).
    pub(super) fn terminal_label(&mut self, draft: &Draft, t: i64) -> Option<Scenario> {
        let MerchantRef::Pool(m) = draft.merchant else {
            return None;
        };
        let m = usize::from(m);
        let patterns = &self.patterns;
        let until = patterns.compromised_until[m];
        if until > t {
            return Some(Scenario::CompromisedTerminal);
        }
        if until.saturating_add(TERMINAL_REST_MS) > t {
            return None;
        }
        let per_day = patterns.merchant_weight[m] * DAY_MS as f64 / self.user_gap_ms();
        // Checked against the longest window first, so nothing is drawn without the pattern.
        if patterns.terminal_credit < per_day * TERMINAL_DAYS.1 as f64 {
            return None;
        }
        let days = self.rng.random_range(TERMINAL_DAYS.0..=TERMINAL_DAYS.1);
        let patterns = &mut self.patterns;
        patterns.terminal_credit -= per_day * days as f64;
        patterns.compromised_until[m] = t + days * DAY_MS;
        Some(Scenario::CompromisedTerminal)
    }

    /// Compromises one of the user's cards and emits its first fraud.
    pub(super) fn start_card_compromise(&mut self, user: u32, t: i64) -> SimEvent {
        let cards = self.users[user as usize].profile.cards;
        let card = self.rng.random_range(0..cards);
        let frauds = self.rng.random_range(CARD_FRAUDS.0..=CARD_FRAUDS.1);
        let device = self.patterns.next_device();
        let slot = self.patterns.open(Episode {
            device,
            until_ms: t + CARD_COMPROMISE_MS,
            merchant: 0,
            card,
            left: frauds,
        });
        let event = self.card_fraud_event(user, t, slot);
        self.finish_scenario(user, t);
        event
    }

    /// One fraud on a compromised card; schedules the next while the episode lasts. The gap
    /// is half the card's normal rate, so frauds are about a third of the card's transactions.
    pub(super) fn card_fraud_event(&mut self, user: u32, t: i64, slot: u32) -> SimEvent {
        let episode = self.patterns.episodes[slot as usize];
        let profile = &self.users[user as usize].profile;
        let new_merchant = loop {
            let m = self.rng.random_range(0..MERCHANTS);
            if !profile.prefers(m) {
                break m;
            }
        };
        let mut draft = self.normal_draft(user);
        draft.cents *= CARD_FRAUD_FACTOR;
        draft.card = episode.card;
        draft.merchant = MerchantRef::Pool(new_merchant);
        draft.device = DeviceRef::CardNotPresent(episode.device);
        draft.ip = IpRef::Unknown(self.rng.random_range(1..=254));
        draft.channel = if self.rng.random_bool(0.7) {
            Channel::Web
        } else {
            Channel::Mobile
        };
        let event = self.emit(user, t, &draft, Some(Scenario::CompromisedCard));
        let left = episode.left - 1;
        let cards = self.users[user as usize].profile.cards;
        let card_gap = 2.0 * self.user_gap_ms() * f64::from(cards);
        let extra = exponential(&mut self.rng, card_gap - CARD_FRAUD_MIN_GAP_MS as f64);
        let next = t + CARD_FRAUD_MIN_GAP_MS + extra.min(CARD_COMPROMISE_MS as f64) as i64;
        if left > 0 && next < episode.until_ms {
            self.patterns.episodes[slot as usize].left = left;
            self.push(next, user, Action::CardFraud(slot));
        } else {
            self.patterns.close(slot);
        }
        event
    }

    /// Whether the compromised-card entry at the queue's head may emit now. If its user is in
    /// another scenario or its cooldown, moves it past them (or ends the episode if that is
    /// past its end) and returns false.
    pub(super) fn settle_card_fraud(&mut self, slot: u32, time_ms: i64, user: u32) -> bool {
        let state = &self.users[user as usize].state;
        if !state.busy && time_ms >= state.resume_ms {
            return true;
        }
        let at = if state.busy {
            time_ms + COOLDOWN_MS
        } else {
            state.resume_ms + self.rng.random_range(0..COOLDOWN_MS / 2)
        };
        self.queue.pop();
        if at < self.patterns.episodes[slot as usize].until_ms {
            self.push(at, user, Action::CardFraud(slot));
        } else {
            self.patterns.close(slot);
        }
        false
    }

    /// Starts a card-testing run on one of the user's cards and emits its first test.
    pub(super) fn start_card_testing(&mut self, user: u32, t: i64) -> SimEvent {
        if self.patterns.testing_merchants.is_empty() {
            return self.fall_back(user, t); // a world without a digital-goods merchant
        }
        let cards = self.users[user as usize].profile.cards;
        let card = self.rng.random_range(0..cards);
        let testing = &self.patterns.testing_merchants;
        let merchant = testing[self.rng.random_range(0..testing.len())];
        let tests = self.rng.random_range(CARD_TESTS.0..=CARD_TESTS.1);
        let device = self.patterns.next_device();
        let slot = self.patterns.open(Episode {
            device,
            until_ms: i64::MAX,
            merchant,
            card,
            left: tests,
        });
        self.card_test_event(user, t, slot)
    }

    /// A tiny test authorisation while tests are left, then the larger purchase that ends
    /// the run (and the scenario).
    pub(super) fn card_test_event(&mut self, user: u32, t: i64, slot: u32) -> SimEvent {
        let episode = self.patterns.episodes[slot as usize];
        let mut draft = self.normal_draft(user);
        draft.card = episode.card;
        draft.merchant = MerchantRef::Pool(episode.merchant);
        draft.device = DeviceRef::Tester(episode.device);
        draft.ip = IpRef::Unknown((episode.device % 254 + 1) as u8);
        draft.channel = Channel::Web;
        draft.kind = sentinel_event::TxnType::Debit;
        if episode.left > 0 {
            draft.cents = self.rng.random_range(TEST_CENTS.0..=TEST_CENTS.1);
            let event = self.emit(user, t, &draft, Some(Scenario::CardTesting));
            let left = episode.left - 1;
            self.patterns.episodes[slot as usize].left = left;
            let (lo, hi) = if left > 0 {
                TEST_GAP_MS
            } else {
                CASH_OUT_GAP_MS
            };
            let next = t + self.rng.random_range(lo..=hi);
            self.push(next, user, Action::CardTest(slot));
            return event;
        }
        let u = &self.users[user as usize];
        let median = f64::from(u.profile.median_cents);
        // Enough to lift the user's average back to the floor after the tiny amounts.
        let lift =
            AVERAGE_FLOOR * median * f64::from(u.state.events + 1) - u.state.all_cents as f64;
        let purchase = median * self.rng.random_range(2.0..5.0);
        draft.cents = purchase.max(lift).ceil() as i64;
        self.patterns.close(slot);
        self.single(user, t, &draft, Scenario::CardTesting)
    }
}
