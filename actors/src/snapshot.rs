//! The bytes of a user's snapshot: the store's tagged form (`sentinel_store::tagged`: a format
//! byte, then the state as MessagePack with named fields; it says why that form). A snapshot
//! outlives the code that wrote it: fields added to the state with `#[serde(default)]` (the
//! ledger) are filled in, removed ones skipped. Snapshots stored as JSON before this format
//! begin with `{` and still restore.

use sentinel_engine::UserState;
use sentinel_store::tagged;

/// Why snapshot bytes could not be read.
pub use sentinel_store::tagged::FormatError as SnapshotError;

/// The snapshot bytes of `user`.
pub fn encode(user: &UserState) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    let mut bytes = Vec::with_capacity(256);
    tagged::encode_into(&mut bytes, user)?;
    Ok(bytes)
}

/// The user state in snapshot bytes written by [`encode`], or as JSON by earlier versions.
pub fn decode(bytes: &[u8]) -> Result<UserState, SnapshotError> {
    tagged::decode(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sentinel_engine::PolicyDef;
    use sentinel_event::Transaction;
    use sentinel_store::tagged::MSGPACK;
    use std::time::Instant;

    /// A user with a few decided events: windows, profile, ledger in two currencies.
    pub(crate) fn busy_user() -> UserState {
        let policy = PolicyDef::seed().compile().unwrap();
        let mut user = UserState::default();
        for i in 0..20 {
            let event: Transaction = serde_json::from_value(serde_json::json!({
                "transaction_id": format!("t{i}"), "user_id": "u",
                "amount": format!("{}.25", 10 + i), "currency": if i % 3 == 0 { "EUR" } else { "USD" },
                "timestamp": format!("2026-11-22T10:{i:02}:00Z"),
                "card_id": format!("card-{}", i % 2), "device_id": "d1", "merchant_id": format!("m{i}"),
                "ip": "10.0.0.1",
                "location": {"country": "FR", "lat": 48.85, "lon": 2.35},
            }))
            .unwrap();
            user.decide_with(
                std::sync::Arc::new(event),
                &policy,
                &Default::default(),
                300_000,
                Instant::now(),
            );
        }
        user
    }

    #[test]
    fn a_state_round_trips_through_the_binary_form_smaller_than_json() {
        let user = busy_user();
        let bytes = encode(&user).unwrap();
        assert_eq!(bytes[0], MSGPACK);
        assert_eq!(decode(&bytes).unwrap(), user);
        let json = serde_json::to_vec(&user).unwrap();
        assert!(
            bytes.len() < json.len(),
            "binary {} bytes, JSON {} bytes",
            bytes.len(),
            json.len()
        );
    }

    #[test]
    fn a_json_snapshot_of_earlier_versions_still_reads() {
        let user = busy_user();
        let json = serde_json::to_vec(&user).unwrap();
        assert_eq!(decode(&json).unwrap(), user);
    }

    #[test]
    fn bad_bytes_are_an_error_not_a_crash() {
        let bytes = encode(&busy_user()).unwrap();
        assert!(decode(&bytes[..bytes.len() / 2]).is_err());
        assert!(matches!(decode(&[]), Err(SnapshotError::Empty)));
        assert!(matches!(
            decode(b"\x7fgarbage"),
            Err(SnapshotError::UnknownFormat(0x7f))
        ));
        assert!(decode(b"{not json").is_err());
        assert!(decode(&[MSGPACK, 0xc1]).is_err());
    }
}
