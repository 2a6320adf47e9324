//! Retention's walk over the front of the decision log, shared by the embedded engines: which
//! entries have expired, stopping at the first that is newer or does not check out.

use crate::chain::{self, Head, RetentionDeclaration};
use crate::record::decode;
use crate::StoreError;
use sentinel_event::Decision;

/// One expired log entry at the log's front.
pub(crate) struct Expired {
    /// Its log position.
    pub seq: u64,
    /// Its hash: the anchor the kept chain builds on once it is deleted.
    pub hash: [u8; 32],
    /// The decision it covers; `None` for an earlier retention declaration.
    pub decision: Option<Decision>,
}

/// The entries from the log's front (`entries`, from `anchor.next_seq` in position order) that
/// may be deleted: retention declarations and decisions decided before `cutoff`, each checked
/// against the chain. Stops at the first decision that is newer (the log is in storing order,
/// so a late one may keep a few older ones a little longer), at the first entry that does not
/// check out (tampering stays for `verify_log` to report), or after `max`. `decision` reads a
/// decision's stored bytes by transaction id.
pub(crate) fn expired_front(
    entries: impl Iterator<Item = Result<(u64, Vec<u8>), StoreError>>,
    anchor: &Head,
    cutoff: chrono::DateTime<chrono::Utc>,
    max: usize,
    mut decision: impl FnMut(&str) -> Result<Option<Vec<u8>>, StoreError>,
) -> Result<Vec<Expired>, StoreError> {
    let mut expired: Vec<Expired> = Vec::new();
    for entry in entries.take(max) {
        let (key, value) = entry?;
        let Some((seq, hash, txn_id)) = chain::decode_entry(&value) else {
            break;
        };
        if seq != key || seq != anchor.next_seq + expired.len() as u64 {
            break;
        }
        let prev = expired.last().map_or(anchor.hash, |e| e.hash);
        if let Some(declared) = RetentionDeclaration::parse(txn_id) {
            let Ok((body, declared)) = declared else {
                break;
            };
            if chain::entry_hash(&prev, seq, chain::RETENTION_MARKER, body.as_bytes()) != hash
                || declared.at >= cutoff
            {
                break;
            }
            expired.push(Expired {
                seq,
                hash,
                decision: None,
            });
            continue;
        }
        let Some(bytes) = decision(txn_id)? else {
            break;
        };
        if chain::entry_hash(&prev, seq, txn_id, &bytes) != hash {
            break;
        }
        let decision = decode(&bytes)?;
        if decision.decided_at >= cutoff {
            break;
        }
        expired.push(Expired {
            seq,
            hash,
            decision: Some(decision),
        });
    }
    Ok(expired)
}

/// The anchor after deleting `expired`, and the retention declaration to append for it (`None`
/// when nothing expired).
pub(crate) fn declare(
    anchor: Head,
    expired: &[Expired],
    cutoff: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> (Head, Option<RetentionDeclaration>) {
    let Some(last) = expired.last() else {
        return (anchor, None);
    };
    let anchor = Head {
        next_seq: last.seq + 1,
        hash: last.hash,
    };
    let declaration = RetentionDeclaration {
        first_kept: anchor.next_seq,
        anchor_hash: chain::hex(&anchor.hash),
        cutoff,
        at: now,
    };
    (anchor, Some(declaration))
}

/// The users of the decisions in `expired`, each with its highest `user_seq` there, by user id.
pub(crate) fn latest_per_user(expired: Vec<Expired>) -> Vec<(String, u64)> {
    let mut latest = std::collections::BTreeMap::new();
    for decision in expired.into_iter().filter_map(|e| e.decision) {
        let seq = latest.entry(decision.user_id).or_insert(decision.user_seq);
        *seq = (*seq).max(decision.user_seq);
    }
    latest.into_iter().collect()
}

/// Refuses a retention cutoff younger than the minimum retention.
pub(crate) fn check_cutoff(
    cutoff: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    if cutoff > now - chain::MIN_RETENTION {
        return Err(StoreError::Backend(format!(
            "retention cutoff {cutoff} is younger than the minimum retention of {} days",
            chain::MIN_RETENTION.num_days()
        )));
    }
    Ok(())
}
