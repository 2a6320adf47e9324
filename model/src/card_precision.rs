//! Card precision@k per day, the fraud-detection literature's measure of what an analyst team
//! gains from a model: each day the team checks the `k` cards the model ranks highest (a card
//! ranks by its highest score that day); the precision is the share of those cards with fraud
//! that day. Cards already known compromised before the day are blocked, so they are left out.
//! (Le Borgne et al., "Reproducible Machine Learning for Credit Card Fraud Detection —
//! Practical Handbook", chapter 4.)

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One scored transaction as the measure needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredCard {
    /// Event time, ms since the epoch.
    pub time_ms: i64,
    /// The card (any stable key, e.g. a hash of its id).
    pub card: u64,
    /// The model's score.
    pub score: f64,
    /// Whether the transaction was fraud.
    pub fraud: bool,
}

/// One day's figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyCardPrecision {
    /// The UTC day.
    pub day: NaiveDate,
    /// Cards with transactions that day, known compromised ones excluded.
    pub cards: usize,
    /// Of which had fraud that day.
    pub compromised: usize,
    /// Compromised cards among the `k` ranked highest, divided by `k`.
    pub precision: f64,
}

/// Card precision@`k` for every day of `scored`; `compromised_since` gives, per card, when it
/// became known compromised (such cards are left out from the following day on).
pub fn card_precision_at_k(
    scored: &[ScoredCard],
    compromised_since: &HashMap<u64, i64>,
    k: usize,
) -> Vec<DailyCardPrecision> {
    // Per day, per card: (highest score, any fraud).
    let mut days: HashMap<NaiveDate, HashMap<u64, (f64, bool)>> = HashMap::new();
    for s in scored {
        let Some(time) = DateTime::<Utc>::from_timestamp_millis(s.time_ms) else {
            continue;
        };
        let day = time.date_naive();
        let day_start = day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        if compromised_since
            .get(&s.card)
            .is_some_and(|&known| known < day_start.timestamp_millis())
        {
            continue;
        }
        let card = days
            .entry(day)
            .or_default()
            .entry(s.card)
            .or_insert((s.score, false));
        card.0 = card.0.max(s.score);
        card.1 |= s.fraud;
    }
    let mut out: Vec<DailyCardPrecision> = days
        .into_iter()
        .map(|(day, cards)| {
            let mut ranked: Vec<(u64, f64, bool)> =
                cards.iter().map(|(c, (s, f))| (*c, *s, *f)).collect();
            // Highest score first; ties broken by card so the figure is deterministic.
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let hits = ranked.iter().take(k).filter(|c| c.2).count();
            DailyCardPrecision {
                day,
                cards: ranked.len(),
                compromised: ranked.iter().filter(|c| c.2).count(),
                precision: if k == 0 { 0.0 } else { hits as f64 / k as f64 },
            }
        })
        .collect();
    out.sort_by_key(|d| d.day);
    out
}

/// The mean of the daily figures (`None` without days).
pub fn mean_precision(days: &[DailyCardPrecision]) -> Option<f64> {
    (!days.is_empty()).then(|| days.iter().map(|d| d.precision).sum::<f64>() / days.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn s(day: i64, card: u64, score: f64, fraud: bool) -> ScoredCard {
        ScoredCard {
            time_ms: 20_000 * DAY + day * DAY + 1_000,
            card,
            score,
            fraud,
        }
    }

    #[test]
    fn ranks_cards_by_their_highest_score_per_day() {
        let scored = [
            s(0, 1, 0.9, false),
            s(0, 1, 0.1, false),
            s(0, 2, 0.2, false),
            s(0, 2, 0.8, true),
            s(0, 3, 0.95, false),
            s(1, 2, 0.1, true),
            s(1, 4, 0.5, false),
        ];
        let days = card_precision_at_k(&scored, &HashMap::new(), 2);
        assert_eq!(days.len(), 2);
        // Day 0: cards 3 (0.95), 1 (0.9) on top; card 2 (fraud, 0.8) is third.
        assert_eq!((days[0].cards, days[0].compromised), (3, 1));
        assert_eq!(days[0].precision, 0.0);
        let days = card_precision_at_k(&scored, &HashMap::new(), 3);
        assert!((days[0].precision - 1.0 / 3.0).abs() < 1e-12);
        // Day 1: card 2 ranks second of two; precision divides by k.
        assert!((days[1].precision - 1.0 / 3.0).abs() < 1e-12);
        assert!((mean_precision(&days).unwrap() - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn cards_known_compromised_before_the_day_are_left_out() {
        let scored = [s(1, 2, 0.9, true), s(1, 5, 0.1, true)];
        let known_on_day_0 = HashMap::from([(2, 20_000 * DAY + 5_000)]);
        let days = card_precision_at_k(&scored, &known_on_day_0, 1);
        assert_eq!((days[0].cards, days[0].compromised), (1, 1));
        assert_eq!(days[0].precision, 1.0);
        // Known only during the day itself: still counted that day.
        let known_that_day = HashMap::from([(2, 20_001 * DAY + 5_000)]);
        assert_eq!(card_precision_at_k(&scored, &known_that_day, 1)[0].cards, 2);
    }
}
