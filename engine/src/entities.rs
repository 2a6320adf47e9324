//! Entities shared between users — cards, devices, IP addresses, merchants — and the users
//! that touch them, for `device.distinct_users(24h)`.
//!
//! Each entity remembers, per user, the latest event time at which that user used it, over a
//! sliding event-time window ([`ENTITY_RETENTION_MS`]) and for at most
//! [`MAX_USERS_PER_ENTITY`] users. Before deciding an event the user actor sends one
//! "record and count" request naming the event's entities ([`Sighting`]s) and receives, per
//! entity, the latest times of the *other* users ([`OtherUsers`]); the rule functions then count
//! the users inside any window without another round trip. Event time, never wall time, so a
//! replay in the same order gives the same counts.
//!
//! Entities live in [`EntityTable`]s; the actors crate owns the shards that hold them and the
//! routing between nodes.

use crate::hash::{id_hash, parts_hash};
use crate::metrics::ENTITIES_EVICTED;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Longest window `distinct_users` can see: older uses are forgotten.
pub const ENTITY_RETENTION_MS: i64 = 7 * 24 * 3_600_000;
/// Users remembered per entity (the most recent ones); counts above this saturate.
pub const MAX_USERS_PER_ENTITY: usize = 64;
/// Entities one table keeps before it forgets the least recently used ones.
pub const MAX_ENTITIES_PER_TABLE: usize = 500_000;
/// Event time between two sweeps of entities idle beyond the retention: a sweep visits every
/// entity of the table, so it follows event time (an idle entity outlives the retention by at
/// most this), not the number of sightings (which made its cost grow with the table: at
/// 500,000 entities, a sweep every 4,096 sightings visited ~120 entities per sighting).
const SWEEP_INTERVAL_MS: i64 = ENTITY_RETENTION_MS / 56;

/// The kinds of shared entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// A payment card (`card_id`).
    Card,
    /// A device fingerprint (`device_id`).
    Device,
    /// A merchant (`merchant_id`).
    Merchant,
    /// A client IP address (`ip`).
    Ip,
}

impl EntityKind {
    /// Every kind, in the order [`EntityCounts`] stores them.
    pub const ALL: [EntityKind; 4] = [
        EntityKind::Card,
        EntityKind::Device,
        EntityKind::Merchant,
        EntityKind::Ip,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// One entity, identified by kind and the stable hash of its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EntityKey {
    /// What it is.
    pub kind: EntityKind,
    /// [`id_hash`] of its id (never zero).
    pub id: u64,
}

impl EntityKey {
    /// The key of the entity of `kind` with this id (such as a device id).
    pub fn new(kind: EntityKind, id: &str) -> EntityKey {
        EntityKey {
            kind,
            id: id_hash(id),
        }
    }

    /// A stable 64-bit placement hash, the same on every node and across releases (members
    /// of a rolling upgrade must agree): FNV-1a of `"<Kind>:<id as 16 hex digits>"`, hashed
    /// without building that text, since this runs for every entity of every event.
    pub fn placement_hash(&self) -> u64 {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let kind: &[u8] = match self.kind {
            EntityKind::Card => b"Card",
            EntityKind::Device => b"Device",
            EntityKind::Merchant => b"Merchant",
            EntityKind::Ip => b"Ip",
        };
        let mut id = [0u8; 16];
        for (i, digit) in id.iter_mut().enumerate() {
            *digit = HEX[((self.id >> (60 - 4 * i)) & 0xf) as usize];
        }
        parts_hash(&[kind, b":", &id])
    }

    /// The member that owns this entity among `members` (by name): rendezvous hashing, so
    /// every node that sees the same members picks the same owner, and a member joining or
    /// leaving moves only the keys it wins or held.
    pub fn owner<'m>(&self, members: impl IntoIterator<Item = &'m str>) -> Option<&'m str> {
        let key = self.placement_hash();
        members
            .into_iter()
            .max_by_key(|name| (mix(key ^ id_hash(name)), *name))
    }
}

/// SplitMix64's finaliser: spreads the XOR of two hashes over all 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// "User `user` used entity `key` at event time `time_ms`."
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sighting {
    /// The entity.
    pub key: EntityKey,
    /// [`id_hash`] of the user id.
    pub user: u64,
    /// The event's time, in milliseconds since the epoch.
    pub time_ms: i64,
}

/// The latest event times at which the *other* users of an entity used it.
pub type OtherUsers = Vec<i64>;

/// One entity's recent users.
#[derive(Debug, Clone, Default)]
struct EntityUsers {
    /// (user hash, latest event time), at most [`MAX_USERS_PER_ENTITY`].
    users: Vec<(u64, i64)>,
    /// Latest event time of any use.
    newest_ms: i64,
}

impl EntityUsers {
    /// The other users' latest times within the retention before `time_ms`.
    fn others(&self, user: u64, time_ms: i64) -> OtherUsers {
        let horizon = time_ms.saturating_sub(ENTITY_RETENTION_MS);
        self.users
            .iter()
            .filter(|&&(u, t)| u != user && t >= horizon)
            .map(|&(_, t)| t)
            .collect()
    }

    /// The other users' latest times, then records this use.
    fn record_and_count(&mut self, user: u64, time_ms: i64) -> OtherUsers {
        let others = self.others(user, time_ms);
        let horizon = time_ms.saturating_sub(ENTITY_RETENTION_MS);
        self.users.retain(|&(_, t)| t >= horizon);
        match self.users.iter_mut().find(|(u, _)| *u == user) {
            Some((_, t)) => *t = (*t).max(time_ms),
            None => {
                if self.users.len() >= MAX_USERS_PER_ENTITY {
                    // Forget the user seen longest ago.
                    if let Some(oldest) = (0..self.users.len()).min_by_key(|&i| self.users[i].1) {
                        self.users.swap_remove(oldest);
                    }
                }
                self.users.push((user, time_ms));
            }
        }
        self.newest_ms = self.newest_ms.max(time_ms);
        others
    }
}

/// The entities of one share of the key space. Memory is bounded: entities unused for longer
/// than the retention (in event time) are swept (every three hours of event time), and past
/// [`MAX_ENTITIES_PER_TABLE`] the least recently used are dropped.
#[derive(Debug, Default)]
pub struct EntityTable {
    entities: HashMap<EntityKey, EntityUsers>,
    watermark_ms: i64,
    /// The watermark at the last sweep (`None` before the first sighting).
    swept_at_ms: Option<i64>,
}

impl EntityTable {
    /// Answers one sighting (the other users' latest times) and records it.
    pub fn record_and_count(&mut self, sighting: &Sighting) -> OtherUsers {
        self.watermark_ms = self.watermark_ms.max(sighting.time_ms);
        let swept_at = *self.swept_at_ms.get_or_insert(sighting.time_ms);
        if self.watermark_ms.saturating_sub(swept_at) >= SWEEP_INTERVAL_MS
            || self.entities.len() >= MAX_ENTITIES_PER_TABLE
        {
            self.sweep();
        }
        self.entities
            .entry(sighting.key)
            // Room for one user: most entities (a card, a device) only ever have one, and a
            // vector's first push would make room for four.
            .or_insert_with(|| EntityUsers {
                users: Vec::with_capacity(1),
                ..EntityUsers::default()
            })
            .record_and_count(sighting.user, sighting.time_ms)
    }

    /// Answers one sighting as [`EntityTable::record_and_count`] would, recording nothing.
    pub fn count(&self, sighting: &Sighting) -> OtherUsers {
        self.entities
            .get(&sighting.key)
            .map_or_else(Vec::new, |e| e.others(sighting.user, sighting.time_ms))
    }

    /// Answers one sighting, recording it when `mode` says so.
    pub fn answer(&mut self, sighting: &Sighting, mode: LookupMode) -> OtherUsers {
        match mode {
            LookupMode::Record => self.record_and_count(sighting),
            LookupMode::Peek => self.count(sighting),
        }
    }

    /// Entities currently remembered.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// Whether no entity is remembered.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    fn sweep(&mut self) {
        self.swept_at_ms = Some(self.watermark_ms);
        let before = self.entities.len();
        let horizon = self.watermark_ms.saturating_sub(ENTITY_RETENTION_MS);
        self.entities.retain(|_, e| e.newest_ms >= horizon);
        if self.entities.len() >= MAX_ENTITIES_PER_TABLE {
            // Still full of live entities: keep the most recently used half.
            let mut newest: Vec<i64> = self.entities.values().map(|e| e.newest_ms).collect();
            let mid = newest.len() / 2;
            let (_, cut, _) = newest.select_nth_unstable(mid);
            let cut = *cut;
            self.entities.retain(|_, e| e.newest_ms > cut);
        }
        let evicted = before - self.entities.len();
        if evicted > 0 {
            metrics::counter!(ENTITIES_EVICTED).increment(evicted as u64);
        }
    }
}

/// Whether a lookup records its sightings (scoring) or only reads the counts (screening,
/// which must leave no trace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LookupMode {
    /// Record the sightings, then answer.
    Record,
    /// Answer as if recording, change nothing.
    Peek,
}

/// A set of [`EntityKind`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindSet(u8);

impl KindSet {
    /// Adds `kind`.
    pub fn with(self, kind: EntityKind) -> KindSet {
        KindSet(self.0 | 1 << kind.index())
    }

    /// Whether `kind` is in the set.
    pub fn contains(self, kind: EntityKind) -> bool {
        self.0 & 1 << kind.index() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// What the entities of one event said: per kind, the other users' latest times, or `None`
/// when the event has no such entity, the policy did not ask, or the owner did not answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntityCounts {
    others: [Option<OtherUsers>; 4],
}

impl EntityCounts {
    /// Records the answer for the event's `kind` entity: its other users' latest times.
    pub fn set(&mut self, kind: EntityKind, others: OtherUsers) {
        self.others[kind.index()] = Some(others);
    }

    /// Distinct users of the event's `kind` entity over `window_ms` ending at `at_ms`, the
    /// event's own user included; `None` when unknown.
    pub fn distinct_users(&self, kind: EntityKind, at_ms: i64, window_ms: i64) -> Option<u64> {
        let others = self.others[kind.index()].as_ref()?;
        let from = at_ms.saturating_sub(window_ms);
        Some(1 + others.iter().filter(|&&t| t >= from).count() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn seen(table: &mut EntityTable, device: u64, user: u64, time_ms: i64) -> OtherUsers {
        table.record_and_count(&Sighting {
            key: EntityKey {
                kind: EntityKind::Device,
                id: device,
            },
            user,
            time_ms,
        })
    }

    fn counts(others: OtherUsers, kind: EntityKind) -> EntityCounts {
        let mut c = EntityCounts::default();
        c.others[kind.index()] = Some(others);
        c
    }

    #[test]
    fn counts_distinct_users_over_an_event_time_window() {
        let mut t = EntityTable::default();
        let d = EntityKind::Device;
        assert_eq!(seen(&mut t, 7, 1, 0), Vec::<i64>::new());
        // The same user again does not count twice.
        assert_eq!(seen(&mut t, 7, 1, H), Vec::<i64>::new());
        let others = seen(&mut t, 7, 2, 2 * H);
        assert_eq!(others, vec![H], "user 1's latest use");
        assert_eq!(
            counts(others.clone(), d).distinct_users(d, 2 * H, 24 * H),
            Some(2)
        );
        assert_eq!(
            counts(others, d).distinct_users(d, 2 * H, 30 * 60_000),
            Some(1)
        );
        let others = seen(&mut t, 7, 3, 3 * H);
        assert_eq!(counts(others, d).distinct_users(d, 3 * H, 24 * H), Some(3));
        // Another device is separate; another kind with the same id hash too.
        assert!(seen(&mut t, 8, 3, 3 * H).is_empty());
        let card = t.record_and_count(&Sighting {
            key: EntityKey {
                kind: EntityKind::Card,
                id: 7,
            },
            user: 9,
            time_ms: 3 * H,
        });
        assert!(card.is_empty());
        // Unknown kinds are unknown, not zero.
        assert_eq!(EntityCounts::default().distinct_users(d, 0, H), None);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn a_peek_answers_like_a_recording_and_records_nothing() {
        let mut t = EntityTable::default();
        seen(&mut t, 7, 1, 0);
        let peek = Sighting {
            key: EntityKey {
                kind: EntityKind::Device,
                id: 7,
            },
            user: 2,
            time_ms: H,
        };
        assert_eq!(t.answer(&peek, LookupMode::Peek), vec![0]);
        assert_eq!(t.answer(&peek, LookupMode::Peek), vec![0]);
        // User 2 was never recorded: user 3 sees only user 1.
        assert_eq!(seen(&mut t, 7, 3, 2 * H), vec![0]);
        let unknown = Sighting {
            key: EntityKey {
                kind: EntityKind::Card,
                id: 1,
            },
            ..peek
        };
        assert!(t.answer(&unknown, LookupMode::Peek).is_empty());
        assert_eq!(t.len(), 1, "a peek at an unknown entity creates none");
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = EntityTable::default();
        for user in 0..(MAX_USERS_PER_ENTITY as u64 + 10) {
            seen(&mut t, 1, user + 1, user as i64);
        }
        let others = seen(&mut t, 1, 999, 1_000);
        assert_eq!(others.len(), MAX_USERS_PER_ENTITY);
        // The oldest were forgotten.
        assert!(others.iter().all(|&t| t >= 10));
        // Uses older than the retention are dropped from the entity ...
        assert!(seen(&mut t, 1, 5, 1_000 + ENTITY_RETENTION_MS + 1).is_empty());
        // ... and idle entities are swept as event time moves on.
        let device_1 = EntityKey {
            kind: EntityKind::Device,
            id: 1,
        };
        seen(&mut t, 100, 1, 3 * ENTITY_RETENTION_MS);
        assert!(!t.entities.contains_key(&device_1));
    }

    /// A sweep visits every entity, so it runs as event time passes, not per sighting: any
    /// number of sightings within the sweep interval leaves an idle entity alone until the
    /// interval has passed.
    #[test]
    fn idle_entities_are_swept_once_per_interval_of_event_time() {
        let mut t = EntityTable::default();
        let device_3 = EntityKey {
            kind: EntityKind::Device,
            id: 3,
        };
        let t0 = 10 * ENTITY_RETENTION_MS;
        seen(&mut t, 3, 3, t0);
        // A sweep (the watermark moved past the interval) while device 3 is within retention.
        let swept_at = t0 + ENTITY_RETENTION_MS - 1;
        seen(&mut t, 9, 9, swept_at);
        assert!(t.entities.contains_key(&device_3));
        // Device 3 is now idle beyond the retention, yet any number of sightings within the
        // interval since the last sweep leaves it alone.
        for i in 0..100_000u64 {
            seen(&mut t, 1_000 + i, 4, swept_at + 2);
        }
        assert!(
            t.entities.contains_key(&device_3),
            "no sweep within the interval, however many sightings"
        );
        seen(&mut t, 5, 5, swept_at + SWEEP_INTERVAL_MS);
        assert!(
            !t.entities.contains_key(&device_3),
            "swept once the interval passed"
        );
    }

    #[test]
    fn placement_hash_is_the_hash_of_the_kind_and_hex_id() {
        // The definition members of different releases share; pinned for one key as well.
        for kind in EntityKind::ALL {
            for id in [
                1,
                0xab,
                u64::MAX,
                id_hash("device-7"),
                0x0123_4567_89ab_cdef,
            ] {
                let key = EntityKey { kind, id };
                assert_eq!(
                    key.placement_hash(),
                    id_hash(&format!("{kind:?}:{id:016x}")),
                    "{key:?}"
                );
            }
        }
        let card = EntityKey {
            kind: EntityKind::Card,
            id: 0xab,
        };
        assert_eq!(card.placement_hash(), id_hash("Card:00000000000000ab"));
    }

    #[test]
    fn owners_agree_and_move_little() {
        let key = |id| EntityKey {
            kind: EntityKind::Device,
            id,
        };
        let three = ["n1", "n2", "n3"];
        let mut per_member = HashMap::new();
        let mut moved = 0;
        for id in 1..=3_000 {
            let owner = key(id).owner(three).unwrap();
            // The order members are listed in does not matter.
            assert_eq!(key(id).owner(["n3", "n1", "n2"]), Some(owner));
            *per_member.entry(owner).or_insert(0) += 1;
            // Without n3, only n3's keys move.
            let two = key(id).owner(["n1", "n2"]).unwrap();
            if owner != "n3" {
                assert_eq!(two, owner);
            } else {
                moved += 1;
            }
        }
        assert_eq!(moved, per_member["n3"]);
        assert!(per_member.values().all(|&n| n > 800), "{per_member:?}");
        assert_eq!(key(1).owner([]), None);
    }

    #[test]
    fn kind_sets() {
        let s = KindSet::default()
            .with(EntityKind::Device)
            .with(EntityKind::Ip);
        assert!(s.contains(EntityKind::Device) && s.contains(EntityKind::Ip));
        assert!(!s.contains(EntityKind::Card) && !s.contains(EntityKind::Merchant));
        assert!(KindSet::default().is_empty());
    }
}
