//! The fraud scenarios: what each one emits, and what it schedules for later.

use super::population::{MERCHANTS, RISK_MERCHANTS};
use super::schedule::Action;
use super::txn::{DeviceRef, IpRef, MerchantRef};
use super::{Scenario, SimEvent, Simulator};
use rand::Rng;
use sentinel_event::Channel;

/// Normal transactions a user needs before an above-average amount means anything.
const ABOVE_AVERAGE_MIN_HISTORY: u32 = 5;

/// Fraud-ring size: the originator and three drafted users.
const RING_SIZE: usize = 4;

/// Random draws spent looking for free ring members before giving up on the ring.
const RING_DRAFT_TRIES: usize = 32;

/// Latest ring-member event after the originator's, inside the 10-minute window.
const RING_SPREAD_MS: i64 = 9 * 60_000;

impl Simulator {
    /// Runs scenario `s` at the user's turn `t`. Falls back to a normal transaction when the
    /// scenario cannot be recognised for this user right now.
    pub(super) fn start_scenario(&mut self, s: Scenario, user: u32, t: i64) -> SimEvent {
        match s {
            Scenario::MassiveAmount => {
                let mut draft = self.normal_draft(user);
                draft.cents = self.rng.random_range(1_500_000..=8_000_000);
                self.single(user, t, &draft, s)
            }
            Scenario::AboveAverage => {
                let state = &self.users[user as usize].state;
                if state.normals < ABOVE_AVERAGE_MIN_HISTORY {
                    return self.fall_back(user, t);
                }
                // At least 6× both the normal mean and the overall mean (which the engine
                // averages, scenarios included), so the spike shows against either.
                let floor = 6.0 * state.normal_mean().max(state.overall_mean());
                let median = f64::from(self.users[user as usize].profile.median_cents);
                let mut draft = self.normal_draft(user);
                let base = median * self.rng.random_range(8.0..15.0);
                draft.cents = base.max(floor).ceil() as i64;
                self.single(user, t, &draft, s)
            }
            Scenario::ImpossibleTravel => {
                // A normal transaction at home now gives the foreign one a fresh "previous".
                let draft = self.normal_draft(user);
                let label = self.terminal_label(&draft, t);
                let event = self.emit(user, t, &draft, label);
                let city = self.far_city(user);
                let later = self.rng.random_range(2 * 60_000..=20 * 60_000);
                self.push(t + later, user, Action::Travel(city));
                event
            }
            Scenario::VelocityBurst => {
                let count = self.rng.random_range(14..=20u8);
                self.burst_event(user, t, count)
            }
            Scenario::FraudRing => self.start_ring(user, t),
            Scenario::HighRiskMerchant => {
                let mut draft = self.normal_draft(user);
                draft.merchant = MerchantRef::Risk(self.rng.random_range(0..RISK_MERCHANTS));
                draft.channel = Channel::Web;
                self.single(user, t, &draft, s)
            }
            Scenario::CompromisedCard => self.start_card_compromise(user, t),
            Scenario::CardTesting => self.start_card_testing(user, t),
            // Takeovers are scheduled directly as `Action::Takeover`, and terminals are
            // compromised from normal turns; neither is started here.
            Scenario::AccountTakeover | Scenario::CompromisedTerminal => self.fall_back(user, t),
        }
    }

    /// Emits a one-event scenario and ends it.
    pub(super) fn single(
        &mut self,
        user: u32,
        t: i64,
        draft: &super::Draft,
        s: Scenario,
    ) -> SimEvent {
        let event = self.emit(user, t, draft, Some(s));
        self.finish_scenario(user, t);
        event
    }

    /// A normal turn instead of a scenario that does not fit.
    pub(super) fn fall_back(&mut self, user: u32, t: i64) -> SimEvent {
        self.users[user as usize].state.busy = false;
        self.normal_turn(user, t)
    }

    /// A destination in another country at least 3,000 km from the user's home.
    fn far_city(&mut self, user: u32) -> u8 {
        let far = &self.far[usize::from(self.users[user as usize].profile.city)];
        far[self.rng.random_range(0..far.len())]
    }

    /// The foreign transaction of impossible travel: card present, far from home.
    pub(super) fn travel_event(&mut self, user: u32, t: i64, city: u8) -> SimEvent {
        let mut draft = self.normal_draft(user);
        draft.city = city;
        draft.channel = Channel::Pos;
        self.emit(user, t, &draft, Some(Scenario::ImpossibleTravel))
    }

    /// One burst transaction (small, online); schedules the next one 5-15 s later while
    /// `remaining` says more follow.
    pub(super) fn burst_event(&mut self, user: u32, t: i64, remaining: u8) -> SimEvent {
        let mut draft = self.normal_draft(user);
        let median = f64::from(self.users[user as usize].profile.median_cents);
        // Not below the normal floor (0.55 × median), so bursts never drag the user's average
        // down far enough for a later normal amount to look like a spike.
        draft.cents = (median * self.rng.random_range(0.55..1.0)).round() as i64;
        draft.channel = Channel::Web;
        let event = self.emit(user, t, &draft, Some(Scenario::VelocityBurst));
        if remaining > 1 {
            let next = t + self.rng.random_range(5_000..=15_000);
            self.push(next, user, Action::Burst(remaining - 1));
        } else {
            self.finish_scenario(user, t);
        }
        event
    }

    /// Drafts three free users onto a new shared device and emits the originator's event.
    fn start_ring(&mut self, user: u32, t: i64) -> SimEvent {
        let n = self.users.len() as u32;
        let mut members = [user; RING_SIZE];
        let mut found = 1;
        for _ in 0..RING_DRAFT_TRIES {
            if found == RING_SIZE {
                break;
            }
            let candidate = self.rng.random_range(0..n);
            let state = &self.users[candidate as usize].state;
            // Free, and past any cooldown, so no other scenario's signal mixes in.
            if !members[..found].contains(&candidate) && !state.busy && state.resume_ms <= t {
                members[found] = candidate;
                found += 1;
            }
        }
        if found < RING_SIZE {
            return self.fall_back(user, t);
        }
        let k = self.rings;
        // Entries carry 29 bits of ring number; wrapping after half a billion rings is fine.
        self.rings = (self.rings + 1) & super::schedule::MAX_RING;
        for &member in &members[1..] {
            self.users[member as usize].state.busy = true;
            self.pause(member);
            let at = t + self.rng.random_range(30_000..=RING_SPREAD_MS);
            self.push(at, member, Action::Ring(k));
        }
        let event = self.ring_event(user, t, k);
        self.finish_scenario(user, t);
        event
    }

    /// A drafted ring member's event; the member then cools down like any scenario user. Its
    /// own pending turn is moved past the cooldown by `settle`.
    pub(super) fn ring_member_event(&mut self, user: u32, t: i64, k: u32) -> SimEvent {
        let event = self.ring_event(user, t, k);
        let state = &mut self.users[user as usize].state;
        state.busy = false;
        state.resume_ms = t + super::schedule::COOLDOWN_MS;
        event
    }

    /// A transaction on ring device `k` at a merchant the user has never used.
    fn ring_event(&mut self, user: u32, t: i64, k: u32) -> SimEvent {
        let mut draft = self.normal_draft(user);
        let merchant = loop {
            let m = self.rng.random_range(0..MERCHANTS);
            if !self.users[user as usize].profile.prefers(m) {
                break m;
            }
        };
        draft.merchant = MerchantRef::Pool(merchant);
        draft.device = DeviceRef::Ring(k);
        draft.channel = Channel::Web;
        self.emit(user, t, &draft, Some(Scenario::FraudRing))
    }

    /// New device, foreign country, unknown address, 2-4 × median, all at once.
    pub(super) fn takeover_event(&mut self, user: u32, t: i64) -> SimEvent {
        let mut draft = self.normal_draft(user);
        let user_ref = &self.users[user as usize];
        let median = f64::from(user_ref.profile.median_cents);
        // Capped at 4× the user's average so far (which is at least 0.55 × median, keeping
        // the amount >= 2 × median): the engine's 5× spike rule must not fire too, or the
        // takeover would be caught for the wrong reason.
        let cap = 4.0 * user_ref.state.overall_mean();
        draft.cents = (median * self.rng.random_range(2.0..4.0)).min(cap).floor() as i64;
        draft.city = self.far_city(user);
        draft.device = DeviceRef::Takeover(self.takeovers);
        self.takeovers += 1;
        draft.ip = IpRef::Unknown(self.rng.random_range(1..=254));
        draft.channel = if self.rng.random_bool(0.5) {
            Channel::Web
        } else {
            Channel::Mobile
        };
        self.emit(user, t, &draft, Some(Scenario::AccountTakeover))
    }
}
