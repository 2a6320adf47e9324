//! Ranking and threshold metrics of a score against labels.

use serde::{Deserialize, Serialize};

/// Counts at one threshold (flagged = score at or above it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confusion {
    /// Flagged fraud.
    pub true_positives: u64,
    /// Flagged legit.
    pub false_positives: u64,
    /// Passed legit.
    pub true_negatives: u64,
    /// Passed fraud.
    pub false_negatives: u64,
}

/// How a model scored a labelled period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    /// Events scored.
    pub events: u64,
    /// Of which labelled fraud.
    pub frauds: u64,
    /// Area under the ROC curve (ties count half); absent with only one class.
    pub auc_roc: Option<f64>,
    /// Average precision (area under the precision-recall curve); absent without fraud.
    pub average_precision: Option<f64>,
    /// Fraction of fraud among the 100 highest scores (fewer when fewer events).
    pub precision_at_100: Option<f64>,
    /// Threshold of the confusion matrix.
    pub threshold: f64,
    /// Counts at `threshold`.
    pub confusion: Confusion,
}

impl Evaluation {
    /// Evaluates `scores` against `labels` (true = fraud).
    pub fn of(scores: &[f64], labels: &[bool], threshold: f64) -> Evaluation {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        // Highest first; ties keep input order so the result is deterministic.
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let frauds = labels.iter().filter(|&&l| l).count() as u64;
        let legit = labels.len() as u64 - frauds;
        let mut confusion = Confusion::default();
        for (&s, &l) in scores.iter().zip(labels) {
            match (s >= threshold, l) {
                (true, true) => confusion.true_positives += 1,
                (true, false) => confusion.false_positives += 1,
                (false, false) => confusion.true_negatives += 1,
                (false, true) => confusion.false_negatives += 1,
            }
        }
        let top = order.len().min(100);
        Evaluation {
            events: scores.len() as u64,
            frauds,
            auc_roc: (frauds > 0 && legit > 0).then(|| auc(&order, scores, labels, frauds, legit)),
            average_precision: (frauds > 0).then(|| average_precision(&order, labels, frauds)),
            precision_at_100: (top > 0)
                .then(|| order[..top].iter().filter(|&&i| labels[i]).count() as f64 / top as f64),
            threshold,
            confusion,
        }
    }
}

/// AUC as the probability a random fraud outscores a random legit event (ties half).
fn auc(order: &[usize], scores: &[f64], labels: &[bool], frauds: u64, legit: u64) -> f64 {
    // Walk from the lowest score up, in groups of equal scores.
    let mut legit_below = 0u64;
    let mut wins = 0.0;
    let mut i = order.len();
    while i > 0 {
        let s = scores[order[i - 1]];
        let mut j = i;
        let (mut f, mut l) = (0u64, 0u64);
        while j > 0 && scores[order[j - 1]] == s {
            if labels[order[j - 1]] {
                f += 1
            } else {
                l += 1
            }
            j -= 1;
        }
        wins += f as f64 * (legit_below as f64 + l as f64 / 2.0);
        legit_below += l;
        i = j;
    }
    wins / (frauds as f64 * legit as f64)
}

/// Mean of the precision at each fraud's rank.
fn average_precision(order: &[usize], labels: &[bool], frauds: u64) -> f64 {
    let mut hits = 0u64;
    let mut sum = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        if labels[i] {
            hits += 1;
            sum += hits as f64 / (rank + 1) as f64;
        }
    }
    sum / frauds as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_random_and_inverted_rankings() {
        let labels = [false, false, true, true];
        let e = Evaluation::of(&[0.1, 0.2, 0.8, 0.9], &labels, 0.5);
        assert_eq!(e.auc_roc, Some(1.0));
        assert_eq!(e.average_precision, Some(1.0));
        assert_eq!(e.precision_at_100, Some(0.5));
        assert_eq!(
            e.confusion,
            Confusion {
                true_positives: 2,
                false_positives: 0,
                true_negatives: 2,
                false_negatives: 0
            }
        );
        assert_eq!(Evaluation::of(&[0.5; 4], &labels, 0.5).auc_roc, Some(0.5));
        assert_eq!(
            Evaluation::of(&[0.9, 0.8, 0.2, 0.1], &labels, 0.5).auc_roc,
            Some(0.0)
        );
        let one_class = Evaluation::of(&[0.1, 0.2], &[false, false], 0.5);
        assert_eq!(
            (one_class.auc_roc, one_class.average_precision),
            (None, None)
        );
    }

    #[test]
    fn average_precision_by_hand() {
        // Ranks: fraud, legit, fraud → (1/1 + 2/3) / 2.
        let e = Evaluation::of(&[0.9, 0.8, 0.7], &[true, false, true], 0.5);
        assert!((e.average_precision.unwrap() - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
    }
}
