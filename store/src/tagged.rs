//! Bytes the store keeps in one self-describing binary form: a format byte, then MessagePack
//! with named fields. JSON, the form before it, begins with `{` and still reads. Stored
//! decisions ([`crate::record`]) and user snapshots (`actors/src/snapshot.rs`) use it.
//!
//! Why MessagePack with named fields rather than JSON, postcard or bincode: it is binary (no
//! escaping, numbers as bytes) yet self-describing like JSON. A stored value outlives the
//! code that wrote it, and only a self-describing format keeps reading it when the struct
//! changes: fields added with `#[serde(default)]` are filled in, removed ones skipped, and
//! `rust_decimal` amounts and untagged enums, which deserialize through `deserialize_any`,
//! work at all (postcard and bincode refuse `deserialize_any` and read fields by position).

use serde::de::DeserializeOwned;
use serde::Serialize;

/// First byte of the MessagePack form. JSON begins with `{`.
pub const MSGPACK: u8 = 0x01;

/// Why tagged bytes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// MessagePack that does not describe the value.
    #[error("unreadable MessagePack: {0}")]
    MsgPack(#[from] rmp_serde::decode::Error),
    /// JSON (the form before MessagePack) that does not describe the value.
    #[error("unreadable JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Neither form's first byte.
    #[error("unknown format (first byte {0:#04x})")]
    UnknownFormat(u8),
    /// No bytes at all.
    #[error("empty value")]
    Empty,
}

/// Appends the format byte and `value` as MessagePack to `out`.
pub fn encode_into<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> Result<(), rmp_serde::encode::Error> {
    out.push(MSGPACK);
    rmp_serde::encode::write_named(out, value)
}

/// The value in bytes written by [`encode_into`], or as JSON by earlier versions.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FormatError> {
    match bytes.first() {
        Some(&MSGPACK) => Ok(rmp_serde::from_slice(&bytes[1..])?),
        Some(b'{') => Ok(serde_json::from_slice(bytes)?),
        Some(&other) => Err(FormatError::UnknownFormat(other)),
        None => Err(FormatError::Empty),
    }
}
