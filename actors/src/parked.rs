//! Passivated users' states kept in memory, compact, so that a user coming back starts its
//! actor without reading the store.
//!
//! A live actor costs 15–20 KiB (its task, mailboxes and state); the same state encoded is
//! about 200 bytes. A shard keeps the states of the users it passivated,
//! least recently passivated first out, within a byte budget. A returning user's actor
//! decodes its state instead of reading its snapshot and the decisions after it and replaying
//! them (BENCHMARKS.md, "Passivated users' states kept in memory").
//!
//! A state is parked only once everything it folds in is durable, so it is what a restore
//! from the store would rebuild, for as long as no one else decides for the user. The node
//! parks only where it is the users' only decider (README, "Passivation"), only users of the
//! Kafka partitions it owns ([`crate::Scorer::park_only`]), and forgets the parked states of
//! every partition a rebalance did not leave it ([`crate::Scorer::passivate_users`]).

use crate::metrics as m;
use lru::LruCache;
use sentinel_engine::UserState;
use std::sync::Arc;

/// A passivated user's state, as its actor left it.
pub struct ParkedState {
    /// The state as MessagePack with fields by position, not name: about half the bytes of
    /// a snapshot, which must outlive the code that wrote it; these bytes never leave the
    /// process that wrote them.
    bytes: Box<[u8]>,
    /// The `seq` of the user's stored snapshot, which the state's later decisions build on,
    /// as the actor knew it. It may overstate what is stored (a retention pass rewrote an
    /// older snapshot meanwhile): the user's next passivation then writes one later than due,
    /// which only lengthens a replay after a crash.
    pub snapshot_seq: u64,
}

impl ParkedState {
    /// `user`'s state, to park.
    pub fn encode(user: &UserState, snapshot_seq: u64) -> Result<Self, rmp_serde::encode::Error> {
        Ok(ParkedState {
            bytes: rmp_serde::to_vec(user)?.into_boxed_slice(),
            snapshot_seq,
        })
    }

    /// The state parked.
    pub fn decode(&self) -> Result<UserState, rmp_serde::decode::Error> {
        rmp_serde::from_slice(&self.bytes)
    }
}

/// What an entry costs beyond its bytes and user id, by estimate: the list's node (key,
/// value, two links: 56 bytes, allocated in 64), the hash table's slot and control byte at
/// its load factor (~20–40), the user id's reference counts (16) and the allocator's
/// rounding of the bytes.
const ENTRY_OVERHEAD: usize = 128;

/// One shard's parked states, bounded by an estimate of the memory they hold.
pub struct ParkedStates {
    states: LruCache<Arc<str>, ParkedState>,
    /// What `states` holds, by [`cost`].
    bytes: usize,
    /// Most `bytes` may reach; 0 parks nothing.
    budget: usize,
    /// `(len, bytes)` as last added to the node's gauges, which every shard's parked states
    /// add to.
    reported: (usize, usize),
}

/// The memory an entry holds, by estimate.
fn cost(user: &str, state: &ParkedState) -> usize {
    user.len() + state.bytes.len() + ENTRY_OVERHEAD
}

impl ParkedStates {
    /// An empty set that holds up to `budget` bytes.
    pub fn new(budget: usize) -> Self {
        ParkedStates {
            states: LruCache::unbounded(),
            bytes: 0,
            budget,
            reported: (0, 0),
        }
    }

    /// Whether states are parked at all.
    pub fn enabled(&self) -> bool {
        self.budget > 0
    }

    /// Keeps `state` for `user` (replacing any), forgetting the least recently parked states
    /// beyond the budget. A state larger than the whole budget is not kept.
    pub fn park(&mut self, user: Arc<str>, state: ParkedState) {
        let added = cost(&user, &state);
        if added > self.budget {
            self.take(&user);
            return;
        }
        if let Some(old) = self.states.put(Arc::clone(&user), state) {
            self.bytes -= cost(&user, &old);
        }
        self.bytes += added;
        while self.bytes > self.budget {
            let Some((user, state)) = self.states.pop_lru() else {
                break;
            };
            self.bytes -= cost(&user, &state);
        }
        self.report();
    }

    /// Removes and returns the state parked for `user`.
    pub fn take(&mut self, user: &str) -> Option<ParkedState> {
        let state = self.states.pop(user)?;
        self.bytes -= cost(user, &state);
        self.report();
        Some(state)
    }

    /// Forgets the states of the users `picks` chooses; returns how many.
    pub fn forget(&mut self, picks: impl Fn(&str) -> bool) -> usize {
        let picked: Vec<Arc<str>> = self
            .states
            .iter()
            .filter(|(user, _)| picks(user))
            .map(|(user, _)| Arc::clone(user))
            .collect();
        for user in &picked {
            self.take(user);
        }
        picked.len()
    }

    /// States parked.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Moves the node's gauges by what changed since the last report.
    fn report(&mut self) {
        let now = (self.states.len(), self.bytes);
        let (len, bytes) = std::mem::replace(&mut self.reported, now);
        m::ACTOR.parked_states.increment(now.0 as f64 - len as f64);
        m::ACTOR.parked_bytes.increment(now.1 as f64 - bytes as f64);
    }
}

impl Drop for ParkedStates {
    /// A shard that stops takes its parked states out of the node's gauges.
    fn drop(&mut self) {
        self.states.clear();
        self.bytes = 0;
        self.report();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(len: usize) -> ParkedState {
        ParkedState {
            bytes: vec![0; len].into_boxed_slice(),
            snapshot_seq: 1,
        }
    }

    #[test]
    fn a_parked_state_decodes_to_the_state_in_fewer_bytes_than_its_snapshot() {
        let user = crate::snapshot::tests::busy_user();
        let parked = ParkedState::encode(&user, 7).unwrap();
        assert_eq!(parked.decode().unwrap(), user);
        let snapshot = crate::snapshot::encode(&user).unwrap();
        assert!(
            parked.bytes.len() * 3 < snapshot.len() * 2,
            "parked {} bytes, snapshot {}",
            parked.bytes.len(),
            snapshot.len()
        );
    }

    #[test]
    fn the_least_recently_parked_go_first_beyond_the_budget() {
        let one = cost("u0", &state(100));
        let mut parked = ParkedStates::new(3 * one);
        for u in 0..4 {
            parked.park(Arc::from(format!("u{u}")), state(100));
        }
        assert_eq!(parked.states.len(), 3);
        assert_eq!(parked.bytes, 3 * one);
        assert!(parked.take("u0").is_none(), "the oldest went");
        assert!(parked.take("u3").is_some());
        assert_eq!(parked.bytes, 2 * one);
    }

    #[test]
    fn parking_a_user_again_replaces_its_state_and_its_cost() {
        let mut parked = ParkedStates::new(10_000);
        parked.park(Arc::from("u"), state(100));
        parked.park(Arc::from("u"), state(300));
        assert_eq!(parked.states.len(), 1);
        assert_eq!(parked.bytes, cost("u", &state(300)));
        assert_eq!(parked.take("u").unwrap().bytes.len(), 300);
        assert_eq!(parked.bytes, 0);
    }

    #[test]
    fn a_state_over_the_budget_is_not_kept_and_drops_the_older_one() {
        let mut parked = ParkedStates::new(500);
        parked.park(Arc::from("u"), state(100));
        parked.park(Arc::from("u"), state(1_000));
        assert!(parked.states.is_empty());
        assert_eq!(parked.bytes, 0);
        let mut off = ParkedStates::new(0);
        off.park(Arc::from("u"), state(1));
        assert!(!off.enabled() && off.states.is_empty());
    }

    #[test]
    fn forgetting_picks_by_user() {
        let mut parked = ParkedStates::new(100_000);
        for u in 0..10 {
            parked.park(Arc::from(format!("u{u}")), state(10));
        }
        assert_eq!(parked.forget(|user| user.ends_with(['1', '3'])), 2);
        assert_eq!(parked.states.len(), 8);
        assert!(parked.take("u1").is_none() && parked.take("u2").is_some());
        assert_eq!(parked.bytes, 7 * cost("u0", &state(10)));
    }
}
