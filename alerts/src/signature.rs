//! Webhook signatures: HMAC-SHA256 (RFC 2104) over `timestamp.body`, hex-encoded.
//!
//! Receivers recompute `hex(hmac_sha256(secret, "<X-Sentinel-Timestamp>.<raw body>"))`, compare
//! it with the `v1=` value of `X-Sentinel-Signature` in constant time, and reject timestamps
//! too far from their clock (replays).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Header carrying the signature, `v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-sentinel-signature";
/// Header carrying the signing time, Unix seconds.
pub const TIMESTAMP_HEADER: &str = "x-sentinel-timestamp";
/// Header carrying the alert id, the same on every attempt: receivers deduplicate on it.
pub const DELIVERY_HEADER: &str = "x-sentinel-delivery";

/// HMAC-SHA256 of the concatenated `message` parts under `key`.
pub fn hmac_sha256(key: &[u8], message: &[&[u8]]) -> [u8; 32] {
    mac(key, message).finalize().into_bytes().into()
}

fn mac(key: &[u8], message: &[&[u8]]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in message {
        mac.update(part);
    }
    mac
}

/// The MAC of `<timestamp>.<body>` under `secret`, not yet finalised.
fn signed(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let ts = timestamp.to_string();
    mac(secret.as_bytes(), &[ts.as_bytes(), b".", body])
}

/// The `X-Sentinel-Signature` value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = signed(secret, timestamp, body).finalize().into_bytes();
    format!("v1={}", hex::encode(tag))
}

/// True when `signature` (`v1=<hex>`, hex digits in either case) is the signature of `body`
/// at `timestamp`; compares in constant time.
pub fn verify(secret: &str, timestamp: i64, body: &[u8], signature: &str) -> bool {
    let Some(tag) = signature
        .strip_prefix("v1=")
        .and_then(|hex| hex::decode(hex).ok())
    else {
        return false;
    };
    signed(secret, timestamp, body).verify_slice(&tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_rfc_4231_test_vectors() {
        // Test case 2: short key.
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        let mac = hmac_sha256(
            &[0xaa; 131],
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn a_signature_verifies_only_for_its_secret_timestamp_and_body() {
        let sig = sign("s3cret", 1_700_000_000, b"{\"a\":1}");
        assert!(sig.starts_with("v1="));
        assert!(verify("s3cret", 1_700_000_000, b"{\"a\":1}", &sig));
        assert!(!verify("other", 1_700_000_000, b"{\"a\":1}", &sig));
        assert!(!verify("s3cret", 1_700_000_001, b"{\"a\":1}", &sig));
        assert!(!verify("s3cret", 1_700_000_000, b"{\"a\":2}", &sig));
        assert!(!verify(
            "s3cret",
            1_700_000_000,
            b"{\"a\":1}",
            &sig[..sig.len() - 2]
        ));
        assert!(!verify("s3cret", 1_700_000_000, b"{\"a\":1}", &sig[3..]));
    }
}
