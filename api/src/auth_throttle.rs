//! Failed authentication, limited per client address: after `failed_auth_limit` forged or
//! unknown credentials from one address within `failed_auth_window_secs`, that address gets
//! 429 with `Retry-After` until its window ends, whatever it sends, so credentials cannot be
//! guessed at the API's request rate. Missing credentials are not counted (a page that has not
//! signed in yet is not guessing).

use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `[auth.failed_auth]`: how many failures an address may have in a window.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailedAuthLimit {
    /// Failures tolerated per address and window; 0 turns the limit off.
    pub max_failures: u32,
    /// Length of the window in seconds, counted from an address's first failure.
    pub window_secs: u64,
}

impl Default for FailedAuthLimit {
    fn default() -> Self {
        FailedAuthLimit {
            max_failures: 20,
            window_secs: 60,
        }
    }
}

/// A fixed window counted from an address's first failure, not a token bucket (so not
/// `governor`, which the rate limit uses): only failures are counted, and asking whether an
/// address may try again must not use up an attempt.
struct Window {
    started: Instant,
    failures: u32,
}

/// Addresses tracked at once; past it, finished windows are dropped, then the oldest.
const MAX_ADDRESSES: usize = 65_536;

/// Failure counts by client address.
pub struct FailureLimiter {
    limit: FailedAuthLimit,
    windows: Mutex<HashMap<IpAddr, Window>>,
}

impl FailureLimiter {
    /// A limiter with this allowance.
    pub fn new(limit: FailedAuthLimit) -> FailureLimiter {
        FailureLimiter {
            limit,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.limit.window_secs)
    }

    /// `Err(wait)` while `address` has used up its failures in its current window.
    pub fn check(&self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.limit.max_failures == 0 {
            return Ok(());
        }
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        match windows.get(&address) {
            Some(w) if w.failures >= self.limit.max_failures => {
                let ends = w.started + self.window();
                if ends > now {
                    Err(ends - now)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Counts one failed authentication from `address`.
    pub fn failed(&self, address: IpAddr, now: Instant) {
        if self.limit.max_failures == 0 {
            return;
        }
        let window = self.window();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= MAX_ADDRESSES && !windows.contains_key(&address) {
            windows.retain(|_, w| w.started + window > now);
            if windows.len() >= MAX_ADDRESSES {
                let oldest = windows
                    .iter()
                    .min_by_key(|(_, w)| w.started)
                    .map(|(a, _)| *a);
                if let Some(oldest) = oldest {
                    windows.remove(&oldest);
                }
            }
        }
        let entry = windows.entry(address).or_insert(Window {
            started: now,
            failures: 0,
        });
        if entry.started + window <= now {
            *entry = Window {
                started: now,
                failures: 0,
            };
        }
        entry.failures = entry.failures.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_stopped_after_its_failures_until_the_window_ends() {
        let limiter = FailureLimiter::new(FailedAuthLimit {
            max_failures: 3,
            window_secs: 60,
        });
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(limiter.check(a, t0).is_ok(), "failure {i}");
            limiter.failed(a, t0 + Duration::from_secs(i));
        }
        assert_eq!(
            limiter.check(a, t0 + Duration::from_secs(10)),
            Err(Duration::from_secs(50))
        );
        assert!(
            limiter.check(b, t0).is_ok(),
            "another address is unaffected"
        );
        let later = t0 + Duration::from_secs(60);
        assert!(limiter.check(a, later).is_ok(), "a new window starts");
        limiter.failed(a, later);
        assert!(limiter.check(a, later).is_ok(), "and counts afresh");
    }
}
