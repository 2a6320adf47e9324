//! Token buckets per caller (token subject or API key), with per-role rates: a burst from one
//! client is refused with 429 and `Retry-After` before it can starve the others. The buckets
//! are `governor`'s; memory stays bounded by dropping the callers whose bucket has refilled.

use crate::auth::{Principal, Role};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::Deserialize;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// One role's allowance.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Sustained requests per second per caller; 0 disables the limit for the role.
    pub per_sec: f64,
    /// Requests a caller may make at once after being idle (whole requests, at least one).
    pub burst: f64,
}

/// `[auth.rate_limits]`: the allowance of each role's callers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Administrators.
    pub admin: Rate,
    /// Analysts.
    pub analyst: Rate,
    /// Viewers (and dashboards).
    pub viewer: Rate,
    /// Producers: high, since each one sends every transaction it sees.
    pub ingest: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            admin: Rate {
                per_sec: 1_000.0,
                burst: 2_000.0,
            },
            analyst: Rate {
                per_sec: 100.0,
                burst: 200.0,
            },
            viewer: Rate {
                per_sec: 50.0,
                burst: 100.0,
            },
            ingest: Rate {
                per_sec: 20_000.0,
                burst: 40_000.0,
            },
        }
    }
}

impl RateLimits {
    fn of(&self, role: Role) -> Rate {
        match role {
            Role::Admin => self.admin,
            Role::Analyst => self.analyst,
            Role::Viewer => self.viewer,
            Role::Ingest => self.ingest,
        }
    }
}

/// Callers tracked per role before those whose bucket has refilled are dropped.
const MAX_CALLERS: usize = 65_536;
/// Checks between two looks at the number of callers tracked, which visits every shard.
const COUNT_EVERY: usize = 1024;

/// One role's buckets, keyed by caller name.
type Buckets = DefaultKeyedRateLimiter<String>;

/// The buckets of every caller seen: `governor`'s keyed GCRA limiters (a token bucket kept as
/// one timestamp per caller), one per role since each role has its own allowance.
pub struct RateLimiter {
    /// By role, in [`Role::ALL`] order; `None` for a role without a limit.
    roles: [Option<Buckets>; 4],
    checks: AtomicUsize,
}

impl RateLimiter {
    /// Buckets with these allowances; fails on an allowance that cannot be kept.
    pub fn new(limits: &RateLimits) -> Result<RateLimiter, String> {
        let mut roles = [None, None, None, None];
        for (slot, role) in roles.iter_mut().zip(Role::ALL) {
            *slot = quota(limits.of(role))
                .map_err(|e| format!("[auth.rate_limits] {role}: {e}"))?
                .map(Buckets::keyed);
        }
        Ok(RateLimiter {
            roles,
            checks: AtomicUsize::new(0),
        })
    }

    /// Takes one request from the caller's bucket, or says how long to wait.
    pub fn check(&self, caller: &Principal) -> Result<(), Duration> {
        let Some(buckets) = Role::ALL
            .iter()
            .position(|r| *r == caller.role)
            .and_then(|i| self.roles[i].as_ref())
        else {
            return Ok(());
        };
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(COUNT_EVERY)
            && buckets.len() > MAX_CALLERS
        {
            // A caller whose bucket is full again is no different from one never seen.
            buckets.retain_recent();
        }
        buckets.check_key(&caller.name).map_err(|not_until| {
            metrics::counter!(crate::metrics::RATE_LIMITED, "role" => caller.role.as_str())
                .increment(1);
            not_until.wait_time_from(buckets.clock().now())
        })
    }
}

/// The quota for `rate`, or `None` for no limit. The burst counts whole requests (at least one).
fn quota(rate: Rate) -> Result<Option<Quota>, String> {
    if rate.per_sec <= 0.0 {
        return Ok(None);
    }
    let burst = rate.burst.max(1.0);
    // A full bucket refills in burst / per_sec; governor keeps that time in u64 nanoseconds.
    if !rate.per_sec.is_finite() || burst > f64::from(u32::MAX) || burst / rate.per_sec > YEAR {
        return Err(format!(
            "per_sec = {} with burst = {} cannot be kept (refilling a full bucket must take under a year)",
            rate.per_sec, rate.burst
        ));
    }
    let period = Duration::from_secs_f64(1.0 / rate.per_sec).max(Duration::from_nanos(1));
    let burst = NonZeroU32::new(burst as u32).unwrap_or(NonZeroU32::MIN);
    Ok(Quota::with_period(period).map(|q| q.allow_burst(burst)))
}

/// Seconds in a year.
const YEAR: f64 = 365.0 * 24.0 * 3600.0;

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(name: String) -> Principal {
        Principal {
            name,
            role: Role::Viewer,
        }
    }

    fn viewers(per_sec: f64, burst: f64) -> RateLimits {
        RateLimits {
            viewer: Rate { per_sec, burst },
            ..RateLimits::default()
        }
    }

    #[test]
    fn callers_whose_bucket_refilled_are_dropped_past_the_bound() {
        let limiter = RateLimiter::new(&viewers(1_000_000.0, 1.0)).unwrap();
        for i in 0..MAX_CALLERS + COUNT_EVERY {
            assert!(limiter.check(&caller(format!("c{i}"))).is_ok());
        }
        std::thread::sleep(Duration::from_millis(20));
        for _ in 0..COUNT_EVERY {
            let _ = limiter.check(&caller("again".into()));
        }
        let tracked = limiter.roles[2].as_ref().unwrap().len();
        assert!(tracked < COUNT_EVERY, "{tracked} callers still tracked");
    }

    #[test]
    fn an_allowance_that_cannot_be_kept_is_refused_and_zero_means_no_limit() {
        assert!(RateLimiter::new(&viewers(1e-9, 10.0)).is_err());
        assert!(RateLimiter::new(&viewers(f64::INFINITY, 10.0)).is_err());
        let unlimited = RateLimiter::new(&viewers(0.0, 0.0)).unwrap();
        for _ in 0..1000 {
            assert!(unlimited.check(&caller("v".into())).is_ok());
        }
    }
}
