//! What a user's history says about them beyond the windows: home, known devices, cards,
//! merchants and countries. Bounded: each set keeps its most recent members.

use crate::window::Entry;
use serde::{Deserialize, Serialize};

const MAX_DEVICES: usize = 32;
const MAX_CARDS: usize = 16;
const MAX_MERCHANTS: usize = 64;
const MAX_COUNTRIES: usize = 16;

/// A user's long-lived profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Transactions seen over the user's whole life.
    pub txn_count: u64,
    /// Event time of the first transaction (ms).
    pub first_seen_ms: Option<i64>,
    /// Transactions per country, most frequent first once sorted; the first is home.
    countries: Vec<([u8; 2], u32)>,
    devices: Vec<u64>,
    cards: Vec<u64>,
    merchants: Vec<u64>,
}

impl Profile {
    /// The country the user transacts in most.
    pub fn home_country(&self) -> Option<&str> {
        self.countries
            .iter()
            .max_by_key(|(_, n)| *n)
            .and_then(|(c, _)| std::str::from_utf8(c).ok())
    }

    /// Distinct devices, cards and merchants remembered (each set is bounded).
    pub fn known_counts(&self) -> (usize, usize, usize) {
        (self.devices.len(), self.cards.len(), self.merchants.len())
    }

    /// Countries the user transacted in, with their counts, most used first.
    pub fn countries(&self) -> Vec<(String, u32)> {
        let mut out: Vec<(String, u32)> = self
            .countries
            .iter()
            .filter_map(|(c, n)| Some((std::str::from_utf8(c).ok()?.to_owned(), *n)))
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }

    /// Whether the device hash is new for this user (a missing device is never new).
    pub fn is_new_device(&self, h: u64) -> bool {
        h != 0 && !self.devices.contains(&h)
    }

    /// Whether the card hash is new for this user.
    pub fn is_new_card(&self, h: u64) -> bool {
        h != 0 && !self.cards.contains(&h)
    }

    /// Whether the merchant hash is new for this user.
    pub fn is_new_merchant(&self, h: u64) -> bool {
        h != 0 && !self.merchants.contains(&h)
    }

    /// Whether the user has never transacted in this country.
    pub fn is_new_country(&self, country: [u8; 2]) -> bool {
        country != [0, 0] && !self.countries.iter().any(|(c, _)| *c == country)
    }

    /// Folds one transaction into the profile.
    pub fn record(&mut self, e: &Entry) {
        self.txn_count += 1;
        self.first_seen_ms = Some(self.first_seen_ms.map_or(e.time_ms, |t| t.min(e.time_ms)));
        remember(&mut self.devices, e.device, MAX_DEVICES);
        remember(&mut self.cards, e.card, MAX_CARDS);
        remember(&mut self.merchants, e.merchant, MAX_MERCHANTS);
        if e.country != [0, 0] {
            match self.countries.iter_mut().find(|(c, _)| *c == e.country) {
                Some((_, n)) => *n += 1,
                None => {
                    if self.countries.len() == MAX_COUNTRIES {
                        // Forget the least used country to stay bounded.
                        if let Some(i) =
                            (0..self.countries.len()).min_by_key(|&i| self.countries[i].1)
                        {
                            self.countries.swap_remove(i);
                        }
                    }
                    self.countries.push((e.country, 1));
                }
            }
        }
    }
}

/// Moves `h` to the most-recent end of `set`, dropping the oldest member past `cap`.
fn remember(set: &mut Vec<u64>, h: u64, cap: usize) {
    if h == 0 {
        return;
    }
    if let Some(i) = set.iter().position(|x| *x == h) {
        set.remove(i);
    } else if set.len() == cap {
        set.remove(0);
    }
    set.push(h);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(device: u64, country: &[u8; 2]) -> Entry {
        Entry {
            time_ms: 0,
            amount: 1.0,
            txn: 1,
            card: 3,
            device,
            merchant: 4,
            ip: 0,
            country: *country,
            coords: None,
        }
    }

    #[test]
    fn learns_home_and_known_things() {
        let mut p = Profile::default();
        assert!(p.home_country().is_none());
        p.record(&entry(1, b"FR"));
        p.record(&entry(1, b"FR"));
        p.record(&entry(2, b"US"));
        assert_eq!(p.home_country(), Some("FR"));
        assert!(!p.is_new_device(1) && !p.is_new_device(2) && p.is_new_device(9));
        assert!(!p.is_new_device(0));
        assert!(p.is_new_country(*b"DE") && !p.is_new_country(*b"US"));
        assert_eq!(p.txn_count, 3);
    }

    #[test]
    fn sets_stay_bounded() {
        let mut p = Profile::default();
        for d in 1..=100 {
            p.record(&entry(d, b"FR"));
        }
        assert_eq!(p.devices.len(), MAX_DEVICES);
        assert!(p.is_new_device(1) && !p.is_new_device(100));
    }
}
