//! Byte strings as base64 text in serde formats (`#[serde(with = "base64_bytes")]`): the store
//! host's wire is JSON, where a `Vec<u8>` would travel as an array of numbers, three to four
//! times larger than its base64 and decoded a number at a time.
//!
//! Written here rather than taken from `serde_with`: these fifteen lines borrow the text
//! when the format allows (no copy of a large record before it is decoded) on `base64`'s
//! engine, which the workspace already uses. Nodes of releases before this format (arrays of
//! numbers) cannot share a store host with nodes of this one.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Deserializer, Serializer};
use std::borrow::Cow;

/// Writes `bytes` as one base64 string.
pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&STANDARD.encode(bytes))
}

/// Reads a base64 string written by [`serialize`].
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text = <Cow<'de, str>>::deserialize(deserializer)?;
    STANDARD
        .decode(text.as_bytes())
        .map_err(serde::de::Error::custom)
}

/// The same for an optional byte string (`None` stays `null`).
pub mod option {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `Some(bytes)` as a base64 string, `None` as none.
    pub fn serialize<S: Serializer>(
        bytes: &Option<Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => super::serialize(bytes, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Reads what [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        #[derive(Deserialize)]
        struct Encoded(#[serde(with = "super")] Vec<u8>);
        Ok(Option::<Encoded>::deserialize(deserializer)?.map(|Encoded(bytes)| bytes))
    }
}

#[cfg(test)]
mod tests {
    use crate::{RecordGuard, RecordKind, RecordWrite, UserSnapshot};

    #[test]
    fn records_and_snapshots_carry_their_bytes_as_base64() {
        let bytes: Vec<u8> = (0..=255).collect();
        let write = RecordWrite {
            kind: RecordKind::Idempotency,
            key: "k".into(),
            value: Some(bytes.clone()),
        };
        let json = serde_json::to_string(&write).unwrap();
        assert!(!json.contains('['), "{json}");
        let back: RecordWrite = serde_json::from_str(&json).unwrap();
        assert_eq!(back.value.as_deref(), Some(bytes.as_slice()));

        let deleted = RecordWrite {
            value: None,
            ..write
        };
        let json = serde_json::to_string(&deleted).unwrap();
        assert!(json.contains("\"value\":null"), "{json}");
        assert_eq!(
            serde_json::from_str::<RecordWrite>(&json).unwrap().value,
            None
        );

        let guard = RecordGuard {
            kind: RecordKind::Idempotency,
            key: "k".into(),
            expected: Some(vec![0, 255]),
        };
        let json = serde_json::to_string(&guard).unwrap();
        assert!(json.contains("\"AP8=\""), "{json}");
        assert_eq!(serde_json::from_str::<RecordGuard>(&json).unwrap(), guard);

        let snapshot = UserSnapshot {
            user_id: "u".into(),
            seq: 7,
            state: bytes,
        };
        let json = serde_json::to_string(&snapshot).unwrap();
        assert!(json.len() < 400, "{} bytes: {json}", json.len());
        assert_eq!(
            serde_json::from_str::<UserSnapshot>(&json).unwrap(),
            snapshot
        );
    }

    #[test]
    fn text_that_is_not_base64_is_refused() {
        let err = serde_json::from_str::<UserSnapshot>(r#"{"user_id":"u","seq":1,"state":"@@"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("Invalid"), "{err}");
    }
}
