//! A gate in front of the queries that scan stored decisions (`/v1/decisions`,
//! `/v1/aggregates`): only a few run at once, so a burst of them cannot starve the store's
//! writer of disk and CPU. A query waits a little for its turn, then gets 429.

use crate::ApiError;
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Scanning queries that run at once by default.
pub const DEFAULT_CONCURRENT: usize = 2;
/// How long a query waits for its turn by default before it is refused.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// The permits of the scanning queries.
pub struct HeavyQueries {
    permits: Semaphore,
    wait: Duration,
}

impl Default for HeavyQueries {
    fn default() -> Self {
        HeavyQueries::new(DEFAULT_CONCURRENT, DEFAULT_WAIT)
    }
}

/// The refusal: 429 (with `Retry-After`, as every 429).
pub struct Busy;

impl From<Busy> for ApiError {
    fn from(_: Busy) -> ApiError {
        crate::metrics::refused("busy");
        ApiError::too_many("too many decision searches and aggregates are running; retry shortly")
    }
}

impl HeavyQueries {
    /// At most `concurrent` scanning queries at once; the others wait up to `wait`.
    pub fn new(concurrent: usize, wait: Duration) -> HeavyQueries {
        HeavyQueries {
            permits: Semaphore::new(concurrent.max(1)),
            wait,
        }
    }

    /// A turn, held until the permit is dropped; [`Busy`] after waiting too long.
    pub async fn enter(&self) -> Result<SemaphorePermit<'_>, Busy> {
        match tokio::time::timeout(self.wait, self.permits.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_query_past_the_limit_is_refused_and_a_freed_turn_is_taken() {
        // No waiting: the third query is refused as soon as it finds no free turn.
        let gate = HeavyQueries::new(2, Duration::ZERO);
        let first = gate.enter().await.ok().unwrap();
        let _second = gate.enter().await.ok().unwrap();
        assert!(gate.enter().await.is_err());
        drop(first);
        assert!(gate.enter().await.is_ok());
    }
}
