//! Which users have anything stored, so that restoring a user the store has never seen (most
//! users of card traffic, on their first payment) costs no read transaction and no blocking
//! thread.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, DefaultHasher, Hash, Hasher};
use std::sync::{PoisonError, RwLock};

/// The 64-bit hashes of the ids of users with a stored snapshot or decision. A hash collision
/// only sends a restore to the store (which then finds nothing); it never answers "nothing
/// stored" for a user with history. Never shrinks: retention may leave a user with nothing
/// stored, and a restore of that user simply reads nothing. About 9 bytes per user.
#[derive(Default)]
pub(crate) struct History(RwLock<HashSet<u64, BuildHasherDefault<Identity>>>);

impl History {
    /// Whether `user` may have something stored (`false`: certainly nothing).
    pub(crate) fn may_have(&self, user: &str) -> bool {
        let key = user_key(user);
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&key)
    }

    /// Records users that have something stored from now on. Called inside the write
    /// transaction, before it commits, so no reader ever meets committed history the filter
    /// lacks (a failed commit only leaves a harmless extra entry).
    pub(crate) fn extend(&self, keys: impl IntoIterator<Item = u64>) {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(keys);
    }

    /// Number of users recorded.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.read().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// The filter's key for a user id: SipHash with fixed keys (stable within the process, which
/// is all an in-memory filter needs).
pub(crate) fn user_key(user: &str) -> u64 {
    let mut h = DefaultHasher::new();
    user.hash(&mut h);
    h.finish()
}

/// The keys are hashes already: the set uses them as they are.
#[derive(Default)]
pub(crate) struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed (write_u64); fold anything else in for completeness.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
