//! Stored API keys verified recently, so that a request presenting one needs no store read.
//!
//! A key created through `/v1/keys` changes once at most: when it is revoked. So a key found
//! valid is kept here (its hash and role, never the key) and trusted for at most
//! `[auth] stored_key_recheck_secs`; after that the next request reads the store again. A
//! revocation through this node's API forgets the key here before the `DELETE` answers, and
//! the node tells every other cluster member to forget it too ([`RevocationNotice`]); the
//! recheck interval bounds how long a member the notice did not reach may still accept it.
//! Any forget makes every kept key be read again once (revocations are rare).
//!
//! Only keys found valid are kept, so guessing ids never fills the cache; it holds at most
//! [`CAPACITY`] keys, the least used leaving first.

use crate::auth::Role;
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Most stored keys kept at once (an admin creates keys; this only bounds a runaway).
pub const CAPACITY: usize = 10_000;

/// Tells the other nodes of the cluster that a key was revoked here, so that they forget it.
pub trait RevocationNotice: Send + Sync + 'static {
    /// Completes once every member reached has forgotten `id`, or has not answered in time.
    fn announce(&self, id: &str) -> BoxFuture<'static, ()>;
}

/// A stored key as verified: the hash of its secret and its role.
#[derive(Debug)]
pub(crate) struct VerifiedKey {
    /// Lower-case hex SHA-256 of the key, as stored.
    pub secret_sha256: String,
    /// What the key may do.
    pub role: Role,
    /// When the store was read.
    read_at: Instant,
    /// Where forgetting stood when the read began: after any later forget the entry is not
    /// trusted, even in the moment before [`KeyCache::keep`] removes it.
    generation: u64,
}

/// The stored keys this node verified recently. Shared with the node, which forgets the keys
/// other members revoke ([`KeyCache::forget`]).
pub struct KeyCache {
    keys: quick_cache::sync::Cache<String, Arc<VerifiedKey>>,
    recheck_after: Duration,
    /// Moves on every forget: a key read from the store before one may not be kept, since the
    /// read may predate the revocation that caused it.
    forgets: AtomicU64,
}

impl KeyCache {
    /// Trusts each key for `recheck_after` after reading it (zero: reads the store every time).
    pub fn new(recheck_after: Duration) -> KeyCache {
        KeyCache {
            keys: quick_cache::sync::Cache::new(CAPACITY),
            recheck_after,
            forgets: AtomicU64::new(0),
        }
    }

    /// The key `id` if it was read from the store within the recheck interval and no key was
    /// forgotten since the read began.
    pub(crate) fn fresh(&self, id: &str) -> Option<Arc<VerifiedKey>> {
        self.keys.get(id).filter(|key| {
            key.read_at.elapsed() < self.recheck_after && key.generation == self.generation()
        })
    }

    /// Where forgetting stands; pass it to [`KeyCache::keep`] with what a store read returns.
    pub(crate) fn generation(&self) -> u64 {
        self.forgets.load(Ordering::SeqCst)
    }

    /// Keeps a valid key read from the store when no key was forgotten since `generation`.
    pub(crate) fn keep(
        &self,
        id: &str,
        secret_sha256: String,
        role: Role,
        generation: u64,
    ) -> Arc<VerifiedKey> {
        let key = Arc::new(VerifiedKey {
            secret_sha256,
            role,
            read_at: Instant::now(),
            generation,
        });
        if self.recheck_after.is_zero() {
            return key;
        }
        self.keys.insert(id.to_owned(), Arc::clone(&key));
        // `fresh` never trusts it once the generation moved; removed here so it takes no room.
        if self.generation() != generation {
            self.keys.remove(id);
        }
        key
    }

    /// Forgets `id`: the next request presenting it reads the store.
    pub fn forget(&self, id: &str) {
        self.forgets.fetch_add(1, Ordering::SeqCst);
        self.keys.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_key_is_trusted_until_its_recheck_is_due() {
        let cache = KeyCache::new(Duration::from_secs(5));
        cache.keep("a", "hash".into(), Role::Ingest, cache.generation());
        assert_eq!(cache.fresh("a").unwrap().role, Role::Ingest);
        tokio::time::advance(Duration::from_millis(4_999)).await;
        assert!(cache.fresh("a").is_some());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(cache.fresh("a").is_none(), "due for a store read");
    }

    #[tokio::test]
    async fn a_read_older_than_a_forget_is_not_kept() {
        let cache = KeyCache::new(Duration::from_secs(5));
        let before_the_read = cache.generation();
        // A revocation lands while the store read is under way.
        cache.forget("a");
        cache.keep("a", "hash".into(), Role::Ingest, before_the_read);
        assert!(cache.fresh("a").is_none());
        assert!(cache.keys.is_empty());
        // An entry kept before a forget of another key is not trusted after it either.
        cache.keep("a", "hash".into(), Role::Ingest, cache.generation());
        cache.forget("b");
        assert!(cache.fresh("a").is_none());
        // A read that began after it is kept.
        cache.keep("a", "hash".into(), Role::Ingest, cache.generation());
        assert!(cache.fresh("a").is_some());
        cache.forget("a");
        assert!(cache.fresh("a").is_none());
    }

    #[tokio::test]
    async fn a_zero_interval_keeps_nothing() {
        let cache = KeyCache::new(Duration::ZERO);
        cache.keep("a", "hash".into(), Role::Ingest, cache.generation());
        assert!(cache.fresh("a").is_none());
        assert_eq!(cache.keys.len(), 0);
    }
}
