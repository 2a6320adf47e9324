//! The feature vector: fixed size, fixed order, named. Artifacts carry these names and are
//! refused at load when they differ, so a model never reads a vector it was not trained on.

/// Number of features.
pub const N_FEATURES: usize = 46;

/// One event's features, in [`FEATURE_NAMES`] order.
pub type FeatureVector = [f64; N_FEATURES];

/// Feature names, in vector order. The values are computed by `sentinel-engine`
/// (`ml_features.rs`), from one table of (name, function) checked against this list at compile
/// time. Counts, sums and averages describe the card holder's transactions *before* this event;
/// `log_*` values are `ln(1 + x)`. `merchant_*` and `device_*` describe every holder's
/// transactions at the event's merchant or device in windows that end a label delay before the
/// event, and the share of them known as fraud by then (see `sentinel_engine::EntityRisk`).
pub const FEATURE_NAMES: [&str; N_FEATURES] = [
    "amount",
    "log_amount",
    "amount_ratio_to_avg_30d",
    "amount_ratio_to_max_30d",
    "amount_ratio_to_avg_7d",
    "count_5m",
    "count_1h",
    "count_1d",
    "count_7d",
    "count_30d",
    "log_avg_amount_1d",
    "log_avg_amount_7d",
    "log_avg_amount_30d",
    "log_sum_1h",
    "log_sum_1d",
    "log_seconds_since_last",
    "log_distance_km_from_last",
    "log_speed_kmh_from_last",
    "is_new_device",
    "is_new_merchant",
    "is_new_country",
    "is_new_card",
    "is_away_from_home",
    "log_account_age_days",
    "hour_sin",
    "hour_cos",
    "is_weekend",
    "channel_pos",
    "channel_web",
    "channel_mobile",
    "channel_atm",
    "category_high_risk",
    "category_travel_electronics",
    "category_everyday",
    "log_merchant_txn_count_1d",
    "log_merchant_txn_count_7d",
    "log_merchant_txn_count_30d",
    "merchant_fraud_share_1d",
    "merchant_fraud_share_7d",
    "merchant_fraud_share_30d",
    "log_device_txn_count_1d",
    "log_device_txn_count_7d",
    "log_device_txn_count_30d",
    "device_fraud_share_1d",
    "device_fraud_share_7d",
    "device_fraud_share_30d",
];

/// Index of a feature by name, for code that fills or explains the vector.
pub fn index_of(name: &str) -> Option<usize> {
    FEATURE_NAMES.iter().position(|n| *n == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        for (i, name) in FEATURE_NAMES.iter().enumerate() {
            assert_eq!(index_of(name), Some(i), "{name} listed twice");
        }
    }
}
