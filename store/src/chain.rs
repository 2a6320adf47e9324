//! The tamper-evident decision log: every stored decision appends an entry whose hash covers
//! the previous entry's hash, its own position, the transaction id and the decision's stored
//! bytes. Editing a decision, removing or moving an entry, or deleting a decision breaks the
//! chain at that point, and `verify` names the first place it breaks.
//!
//! Retention deletes entries only from the front, and declares each deletion in the chain
//! itself (a [`RetentionDeclaration`] entry appended at the end), so the log may start after
//! position 1 only where a declaration says so, with a cutoff old enough for the minimum
//! retention. The recorded head must be the chain's last entry, hash included.
//!
//! A chain proves nothing against someone who rewrites it from the edit onwards; for that, keep
//! the head (`sentinel verify-log` prints it, the node logs it periodically) somewhere the
//! store's writer cannot reach, and check with `verify-log --expect-head`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What stands in an entry's transaction id for a retention declaration (transaction ids
/// never contain control characters, so no decision can look like one).
pub const RETENTION_MARKER: &str = "\0retention";

/// The youngest cutoff a retention declaration may claim: decisions younger than this are
/// never deleted (the feature windows look back 30 days).
pub const MIN_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(31);

/// A retention pass, declared in the chain: entries before `first_kept` were deleted, and
/// the last of them had hash `anchor_hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionDeclaration {
    /// The first position kept.
    pub first_kept: u64,
    /// Hex hash of the last deleted entry: the kept chain builds on it.
    pub anchor_hash: String,
    /// Only decisions decided before this were deleted.
    pub cutoff: DateTime<Utc>,
    /// When the pass ran.
    pub at: DateTime<Utc>,
}

impl RetentionDeclaration {
    /// The entry's stored bytes and new head for this declaration appended at `head`.
    pub fn append(&self, head: &mut Head) -> (u64, Vec<u8>) {
        let body = serde_json::to_vec(self).expect("a declaration always serializes");
        let seq = head.next_seq;
        let hash = entry_hash(&head.hash, seq, RETENTION_MARKER, &body);
        head.next_seq += 1;
        head.hash = hash;
        let mut entry = encode_entry(seq, &hash, RETENTION_MARKER);
        entry.extend_from_slice(&body);
        (seq, entry)
    }

    /// The declaration an entry's "transaction id" part holds, if it is one.
    pub fn parse(txn: &str) -> Option<Result<(&str, RetentionDeclaration), serde_json::Error>> {
        let body = txn.strip_prefix(RETENTION_MARKER)?;
        Some(serde_json::from_str(body).map(|d| (body, d)))
    }
}

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
    /// Position of the last verified entry (0 when none).
    pub head_seq: u64,
    /// Hex hash of the last verified entry: keep it elsewhere to anchor the chain.
    pub head: String,
    /// The retention passes declared in the kept chain, oldest first.
    pub retention: Vec<RetentionDeclaration>,
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
    /// The recorded head is not the chain's last entry: entries were cut from the end and the
    /// head rewritten, or the head was edited.
    HeadMismatch,
    /// The log starts after position 1 without a retention declaration saying so.
    UndeclaredDeletion,
    /// A retention declaration claims a cutoff younger than the minimum retention, or a time
    /// in the future.
    EarlyDeletion,
    /// The chain does not pass through the head the operator kept (`--expect-head`).
    ExpectedHeadMissing,
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// What an operator brings to a verification besides the store.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions {
    /// A head kept outside the store: the chain must pass through this entry hash.
    pub expect_head: Option<[u8; 32]>,
    /// The time of the check (no declaration may be later).
    pub now: DateTime<Utc>,
}

/// Walks entries in key order from `start` (where retention left the chain: the first kept
/// position and the hash before it; [`Head::default`] when nothing was pruned), checking each
/// against its predecessor; then checks the end against the recorded head (hash included, so
/// removing the newest entries shows too), the start against the last retention declaration,
/// and the chain against the operator's kept head. `decision` returns the stored bytes of a
/// transaction's decision.
pub fn verify<'a>(
    entries: impl Iterator<Item = (u64, Vec<u8>)>,
    start: Head,
    recorded: Head,
    mut decision: impl FnMut(&str) -> Option<Vec<u8>> + 'a,
    options: VerifyOptions,
) -> LogReport {
    let mut prev = start.hash;
    let mut expected = start.next_seq;
    let mut verified = 0;
    let mut retention = Vec::new();
    let mut met_expected = options.expect_head == Some(start.hash) && start.next_seq > 1;
    let mut problem = None;
    for (key, value) in entries {
        let at = |kind, txn: Option<&str>| LogProblem {
            seq: expected.min(key),
            kind,
            transaction_id: txn.map(str::to_owned),
        };
        let found = if key != expected {
            Some(at(ProblemKind::Removed, None))
        } else {
            match decode_entry(&value) {
                None => Some(at(ProblemKind::Corrupt, None)),
                Some((seq, _, txn)) if seq != key => Some(at(ProblemKind::Reordered, Some(txn))),
                Some((seq, hash, txn)) => match RetentionDeclaration::parse(txn) {
                    Some(Err(_)) => Some(at(ProblemKind::Corrupt, None)),
                    Some(Ok((body, declared))) => {
                        if entry_hash(&prev, seq, RETENTION_MARKER, body.as_bytes()) != hash {
                            Some(at(ProblemKind::Edited, None))
                        } else if declared.at > options.now
                            || declared.cutoff > declared.at - MIN_RETENTION
                        {
                            Some(at(ProblemKind::EarlyDeletion, None))
                        } else {
                            retention.push(declared);
                            prev = hash;
                            None
                        }
                    }
                    None => match decision(txn) {
                        None => Some(at(ProblemKind::Removed, Some(txn))),
                        Some(bytes) if entry_hash(&prev, seq, txn, &bytes) != hash => {
                            Some(at(ProblemKind::Edited, Some(txn)))
                        }
                        Some(_) => {
                            prev = hash;
                            None
                        }
                    },
                },
            }
        };
        if found.is_some() {
            problem = found;
            break;
        }
        met_expected |= options.expect_head == Some(prev);
        verified += 1;
        expected += 1;
    }
    let problem = problem
        .or_else(|| end_problem(expected, prev, recorded))
        .or_else(|| start_problem(start, &retention))
        .or_else(|| {
            (options.expect_head.is_some() && !met_expected).then_some(LogProblem {
                seq: expected,
                kind: ProblemKind::ExpectedHeadMissing,
                transaction_id: None,
            })
        });
    LogReport {
        first_seq: start.next_seq,
        verified,
        head_seq: expected - 1,
        head: hex(&prev),
        retention,
        problem,
    }
}

/// The walk ended at `expected` on hash `prev`: the recorded head must be exactly there.
fn end_problem(expected: u64, prev: [u8; 32], recorded: Head) -> Option<LogProblem> {
    let kind = if expected < recorded.next_seq {
        ProblemKind::Removed
    } else if expected > recorded.next_seq || prev != recorded.hash {
        ProblemKind::HeadMismatch
    } else {
        return None;
    };
    Some(LogProblem {
        seq: expected.min(recorded.next_seq),
        kind,
        transaction_id: None,
    })
}

/// A log that starts after position 1 must say so in its last retention declaration.
fn start_problem(start: Head, retention: &[RetentionDeclaration]) -> Option<LogProblem> {
    if start == Head::default() {
        return None;
    }
    let declared = retention
        .last()
        .is_some_and(|d| d.first_kept == start.next_seq && d.anchor_hash == hex(&start.hash));
    (!declared).then_some(LogProblem {
        seq: start.next_seq,
        kind: ProblemKind::UndeclaredDeletion,
        transaction_id: None,
    })
}

/// Parses a 64-digit hex hash (as `verify-log` prints it).
pub fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut out).ok()?;
    Some(out)
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
