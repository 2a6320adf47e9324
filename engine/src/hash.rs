//! A stable 64-bit hash for identifiers kept in windows and snapshots.
//!
//! Snapshots outlive processes and Rust versions, so the hash must never change: FNV-1a, not
//! the standard library's hasher. Zero means "absent".

/// FNV-1a of `s`, never zero (so zero can stand for "no value").
pub fn id_hash(s: &str) -> u64 {
    parts_hash(&[s.as_bytes()])
}

/// [`id_hash`] of the concatenation of `parts`, without building it.
pub fn parts_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.iter().flat_map(|part| part.iter()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

/// [`id_hash`] of an optional identifier; zero when absent.
pub fn opt_hash(s: Option<&str>) -> u64 {
    s.map_or(0, id_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_across_releases() {
        // Changing these values would silently corrupt every stored snapshot.
        assert_eq!(id_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(id_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(opt_hash(None), 0);
        assert_eq!(parts_hash(&[b"a"]), id_hash("a"));
        assert_eq!(parts_hash(&[b"ab", b"", b"c"]), id_hash("abc"));
    }
}
