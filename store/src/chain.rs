//! The tamper-evident decision log: every stored decision appends an entry whose hash covers
//! the previous entry's hash, its own position, the transaction id and the decision's stored
//! bytes. Editing a decision, removing or moving an entry, or deleting a decision breaks the
//! chain at that point, and `verify` names the first place it breaks.
//!
//! A chain proves nothing against someone who rewrites it from the edit onwards; for that, keep
//! the head (`sentinel verify-log` prints it) somewhere the store's writer cannot reach.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The hash of the chain before its first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// The hash of entry `seq`.
pub fn entry_hash(prev: &[u8; 32], seq: u64, transaction_id: &str, decision: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update((transaction_id.len() as u64).to_be_bytes());
    h.update(transaction_id.as_bytes());
    h.update(decision);
    h.finalize().into()
}

/// A stored log entry: its own position, its hash and the transaction it covers.
pub fn encode_entry(seq: u64, hash: &[u8; 32], transaction_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + transaction_id.len());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(hash);
    out.extend_from_slice(transaction_id.as_bytes());
    out
}

/// The parts of a stored entry, if it is well-formed.
pub fn decode_entry(bytes: &[u8]) -> Option<(u64, [u8; 32], &str)> {
    if bytes.len() < 40 {
        return None;
    }
    let seq = u64::from_be_bytes(bytes[..8].try_into().ok()?);
    let hash: [u8; 32] = bytes[8..40].try_into().ok()?;
    let txn = std::str::from_utf8(&bytes[40..]).ok()?;
    Some((seq, hash, txn))
}

/// The end of the chain: the next position and the hash it must build on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Position of the next entry (entries are numbered from 1).
    pub next_seq: u64,
    /// Hash of the last entry, or [`GENESIS`].
    pub hash: [u8; 32],
}

impl Default for Head {
    fn default() -> Self {
        Head {
            next_seq: 1,
            hash: GENESIS,
        }
    }
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogReport {
    /// Entries before this position were removed by retention; the walk starts here, from the
    /// hash the pruning recorded (1 when nothing was pruned).
    pub first_seq: u64,
    /// Entries checked before the first problem (all of them when intact).
    pub verified: u64,
    /// Hex hash of the last verified entry: keep it elsewhere to anchor the chain.
    pub head: String,
    /// The first problem, if any.
    pub problem: Option<LogProblem>,
}

/// The first place the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogProblem {
    /// Position of the first bad entry.
    pub seq: u64,
    /// What is wrong there.
    pub kind: ProblemKind,
    /// The transaction the entry covers, when readable.
    pub transaction_id: Option<String>,
}

/// Kinds of tampering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Entries are missing from this position on (or the decision they cover was deleted).
    Removed,
    /// The entry found here belongs at another position.
    Reordered,
    /// The decision (or the entry) was changed after it was written.
    Edited,
    /// The entry cannot be read at all.
    Corrupt,
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Walks entries in key order from `start` (where retention left the chain: the first kept
/// position and the hash before it; [`Head::default`] when nothing was pruned), checking each
/// against its predecessor and, at the end, against the recorded head (so removing the newest
/// entries shows too). `decision` returns the stored bytes of a transaction's decision.
pub fn verify<'a>(
    entries: impl Iterator<Item = (u64, Vec<u8>)>,
    start: Head,
    recorded: Head,
    mut decision: impl FnMut(&str) -> Option<Vec<u8>> + 'a,
) -> LogReport {
    let mut prev = start.hash;
    let mut expected = start.next_seq;
    let mut verified = 0;
    for (key, value) in entries {
        let problem = |kind, txn: Option<&str>| LogProblem {
            seq: expected.min(key),
            kind,
            transaction_id: txn.map(str::to_owned),
        };
        let found = if key != expected {
            Some(problem(ProblemKind::Removed, None))
        } else {
            match decode_entry(&value) {
                None => Some(problem(ProblemKind::Corrupt, None)),
                Some((seq, _, txn)) if seq != key => {
                    Some(problem(ProblemKind::Reordered, Some(txn)))
                }
                Some((seq, hash, txn)) => match decision(txn) {
                    None => Some(problem(ProblemKind::Removed, Some(txn))),
                    Some(bytes) if entry_hash(&prev, seq, txn, &bytes) != hash => {
                        Some(problem(ProblemKind::Edited, Some(txn)))
                    }
                    Some(_) => {
                        prev = hash;
                        None
                    }
                },
            }
        };
        if let Some(problem) = found {
            return LogReport {
                first_seq: start.next_seq,
                verified,
                head: hex(&prev),
                problem: Some(problem),
            };
        }
        verified += 1;
        expected += 1;
    }
    let problem = (expected < recorded.next_seq).then_some(LogProblem {
        seq: expected,
        kind: ProblemKind::Removed,
        transaction_id: None,
    });
    LogReport {
        first_seq: start.next_seq,
        verified,
        head: hex(&prev),
        problem,
    }
}

impl Head {
    /// The stored form: next position and hash.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.next_seq.to_be_bytes().to_vec();
        out.extend_from_slice(&self.hash);
        out
    }

    /// Reads the stored form.
    pub fn decode(bytes: &[u8]) -> Option<Head> {
        (bytes.len() == 40).then(|| Head {
            next_seq: u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes")),
            hash: bytes[8..40].try_into().expect("32 bytes"),
        })
    }

    /// Appends an entry for a decision; returns the entry's key and stored bytes.
    pub fn append(&mut self, transaction_id: &str, decision: &[u8]) -> (u64, Vec<u8>) {
        let seq = self.next_seq;
        let hash = entry_hash(&self.hash, seq, transaction_id, decision);
        self.next_seq += 1;
        self.hash = hash;
        (seq, encode_entry(seq, &hash, transaction_id))
    }
}
