//! A user's running balance per currency, kept in the user's state.
//!
//! Why here and not in the store: the ledger is part of [`crate::UserState`], so it is folded
//! in by the same step that assigns the decision its `user_seq`, snapshotted with the windows
//! and rebuilt by the same replay of the decisions stored after the snapshot. That gives every
//! property a balance needs without a new storage operation on each backend:
//! - restarts: snapshot + replay restore it exactly, as they restore the windows;
//! - re-imports and redeliveries: an event already folded in (or already stored) is answered
//!   with its stored decision and never folded in again, so nothing counts twice;
//! - a cluster: the user's actor lives on one member and `GET …/balance` asks that member, as
//!   `GET …/profile` does.
//!
//! Snapshots written before ledgers existed carry none; restoring the user (see `restore.rs`)
//! then rebuilds it once from the stored decisions up to the snapshot, and the next snapshot
//! carries it.

use rust_decimal::Decimal;
use sentinel_event::{Outcome, Transaction, TxnType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Money moved per currency by a user's decided transactions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ledger {
    /// Credits minus debits and transfers, per ISO 4217 currency, exact.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub totals: BTreeMap<String, Decimal>,
    /// Transactions that moved money (approved or sent to review).
    pub counted: u64,
}

impl Ledger {
    /// Folds in one decided transaction. A declined payment was refused, so it moved no
    /// money; approved and reviewed ones did (a review lets the payment through and asks an
    /// analyst to look at it afterwards). Credits add; debits, transfers and untyped
    /// transactions subtract.
    pub fn record(&mut self, event: &Transaction, outcome: Outcome) {
        if outcome == Outcome::Decline {
            return;
        }
        let signed = match event.kind {
            Some(TxnType::Credit) => event.amount,
            _ => -event.amount,
        };
        // Looked up before inserting: no allocation for a currency already held.
        match self.totals.get_mut(&event.currency) {
            Some(total) => *total += signed,
            None => {
                self.totals.insert(event.currency.clone(), signed);
            }
        }
        self.counted += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn event(amount: Decimal, currency: &str, kind: Option<TxnType>) -> Transaction {
        serde_json::from_value(serde_json::json!({
            "transaction_id": "t", "user_id": "u", "amount": amount.to_string(),
            "currency": currency, "timestamp": "2026-01-01T00:00:00Z",
            "type": kind,
        }))
        .unwrap()
    }

    #[test]
    fn declines_move_no_money_and_credits_add() {
        let mut ledger = Ledger::default();
        ledger.record(&event(dec("10.50"), "EUR", None), Outcome::Approve);
        ledger.record(&event(dec("99"), "EUR", None), Outcome::Decline);
        ledger.record(
            &event(dec("1"), "EUR", Some(TxnType::Transfer)),
            Outcome::Review,
        );
        ledger.record(
            &event(dec("100"), "USD", Some(TxnType::Credit)),
            Outcome::Approve,
        );
        assert_eq!(ledger.totals["EUR"], dec("-11.50"));
        assert_eq!(ledger.totals["USD"], dec("100"));
        assert_eq!(ledger.counted, 3);
    }
}
