//! Quantile bins: each feature's values are cut into at most [`MAX_BINS`] ranges, and every row
//! is stored as one `u8` code per feature (row-major), so a histogram is a small fixed array.
//!
//! The codes are also kept column-major, for partitioning rows by one feature.
//!
//! A cut is a value seen in the data; bin `b` holds `cuts[b-1] < x <= cuts[b]`. A split after
//! bin `b` therefore sends a row left exactly when `x <= cuts[b]`, which is the test the scorer
//! applies to raw values: training and scoring cannot disagree.

use crate::features::{FeatureVector, N_FEATURES};

/// Upper bound on bins per feature.
pub(crate) const MAX_BINS: usize = 64;

/// Rows drawn (evenly spaced) to place the cuts; the codes cover every row.
const CUT_SAMPLE: usize = 1 << 17;

/// Per feature, the ascending cut values (one fewer than its bins).
pub(crate) struct Bins {
    cuts: Vec<Vec<f64>>,
}

impl Bins {
    /// Places the cuts from the data's values (a sample of them for large data).
    pub(crate) fn new(data: &[&FeatureVector]) -> Bins {
        let step = data.len().div_ceil(CUT_SAMPLE).max(1);
        let sample: Vec<&FeatureVector> = data.iter().step_by(step).copied().collect();
        let mut values = Vec::with_capacity(sample.len());
        let cuts = (0..N_FEATURES)
            .map(|f| {
                values.clear();
                values.extend(sample.iter().map(|x| x[f]));
                values.sort_by(f64::total_cmp);
                cuts_of(&values)
            })
            .collect();
        Bins { cuts }
    }

    /// The cut after bin `bin` of `feature`: the split threshold.
    pub(crate) fn threshold(&self, feature: usize, bin: usize) -> f64 {
        self.cuts[feature][bin]
    }

    /// Bins of `feature`.
    pub(crate) fn count(&self, feature: usize) -> usize {
        self.cuts[feature].len() + 1
    }

    /// Every row's codes.
    pub(crate) fn codes(&self, data: &[&FeatureVector]) -> Codes {
        let n = data.len();
        let mut rows = Vec::with_capacity(n * N_FEATURES);
        let mut columns = vec![0; n * N_FEATURES];
        for (r, x) in data.iter().enumerate() {
            for (f, (v, cuts)) in x.iter().zip(&self.cuts).enumerate() {
                let code = cuts.partition_point(|&c| c < *v) as u8;
                rows.push(code);
                columns[f * n + r] = code;
            }
        }
        Codes { rows, columns, n }
    }
}

/// The bin codes in both layouts: histograms read whole rows, partitions read one feature.
pub(crate) struct Codes {
    rows: Vec<u8>,
    columns: Vec<u8>,
    n: usize,
}

impl Codes {
    /// Row `r`'s codes, one per feature.
    pub(crate) fn row(&self, r: usize) -> &[u8] {
        &self.rows[r * N_FEATURES..(r + 1) * N_FEATURES]
    }

    /// Every row's code for `feature`.
    pub(crate) fn column(&self, feature: usize) -> &[u8] {
        &self.columns[feature * self.n..(feature + 1) * self.n]
    }
}

/// Cuts for sorted `values`: every distinct value when they are few, else greedy quantiles
/// over the distinct values, so a heavily repeated value (say 0) takes one bin and the others
/// share the rest evenly.
fn cuts_of(values: &[f64]) -> Vec<f64> {
    let mut distinct: Vec<(f64, usize)> = Vec::new();
    for &v in values {
        match distinct.last_mut() {
            Some((last, count)) if *last == v => *count += 1,
            _ => distinct.push((v, 1)),
        }
    }
    let last = distinct.len().saturating_sub(1);
    if distinct.len() <= MAX_BINS {
        return distinct[..last].iter().map(|&(v, _)| v).collect();
    }
    let mut cuts = Vec::with_capacity(MAX_BINS - 1);
    let mut rest = values.len();
    let mut filled = 0;
    for &(v, count) in &distinct[..last] {
        filled += count;
        // Close the bin once it holds its share of what is left.
        if filled * (MAX_BINS - cuts.len()) >= rest {
            cuts.push(v);
            rest -= filled;
            filled = 0;
            if cuts.len() == MAX_BINS - 1 {
                break;
            }
        }
    }
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_distinct_values_get_one_bin_each() {
        assert_eq!(cuts_of(&[0.0, 0.0, 1.0, 1.0, 3.0]), vec![0.0, 1.0]);
        assert!(cuts_of(&[2.0; 10]).is_empty());
    }

    #[test]
    fn a_heavy_value_takes_one_bin_and_the_rest_share_the_others() {
        let mut values = vec![0.0; 9_000];
        values.extend((1..=1_000).map(f64::from));
        let cuts = cuts_of(&values);
        assert_eq!(cuts.len(), MAX_BINS - 1);
        assert_eq!(cuts[0], 0.0);
        // The remaining 1,000 values spread over the 63 remaining bins (~16 each).
        assert!(cuts[1] > 10.0 && cuts[1] < 25.0, "{cuts:?}");
    }

    #[test]
    fn codes_send_a_row_left_exactly_when_it_is_at_most_the_threshold() {
        let rows: Vec<FeatureVector> = (0..1_000)
            .map(|i| {
                let mut x = [0.0; N_FEATURES];
                x[0] = f64::from(i % 300) * 0.37;
                x
            })
            .collect();
        let refs: Vec<&FeatureVector> = rows.iter().collect();
        let bins = Bins::new(&refs);
        let codes = bins.codes(&refs);
        assert_eq!(bins.count(0), MAX_BINS);
        for b in 0..bins.count(0) - 1 {
            let t = bins.threshold(0, b);
            for (r, x) in rows.iter().enumerate() {
                assert_eq!(usize::from(codes.row(r)[0]) <= b, x[0] <= t);
                assert_eq!(codes.column(0)[r], codes.row(r)[0]);
            }
        }
    }
}
