//! Token buckets per caller (token subject or API key), with per-role rates: a burst from one
//! client is refused with 429 and `Retry-After` before it can starve the others.

use crate::auth::{Principal, Role};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One role's allowance.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Sustained requests per second per caller; 0 disables the limit for the role.
    pub per_sec: f64,
    /// Requests a caller may make at once after being idle.
    pub burst: f64,
}

/// `[api.rate_limits]`: the allowance of each role's callers.
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

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Shards of the bucket map, so callers rarely wait on each other's lock.
const SHARDS: usize = 64;
/// Buckets kept per shard before idle (full) ones are dropped.
const MAX_PER_SHARD: usize = 4096;

/// The buckets of every caller seen.
pub struct RateLimiter {
    limits: RateLimits,
    shards: Vec<Mutex<HashMap<String, Bucket>>>,
}

impl RateLimiter {
    /// Buckets with these allowances.
    pub fn new(limits: RateLimits) -> RateLimiter {
        RateLimiter {
            limits,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Takes one request from the caller's bucket, or says how long to wait.
    pub fn check(&self, caller: &Principal) -> Result<(), Duration> {
        let rate = self.limits.of(caller.role);
        if rate.per_sec <= 0.0 {
            return Ok(());
        }
        let burst = rate.burst.max(1.0);
        let shard = shard_of(&caller.name);
        let now = Instant::now();
        let mut buckets = self.shards[shard]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_PER_SHARD && !buckets.contains_key(&caller.name) {
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * rate.per_sec < burst
            });
        }
        let bucket = buckets.entry(caller.name.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate.per_sec).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / rate.per_sec;
            drop(buckets);
            metrics::counter!(crate::metrics::RATE_LIMITED, "role" => caller.role.as_str())
                .increment(1);
            Err(Duration::from_secs_f64(wait))
        }
    }
}

fn shard_of(name: &str) -> usize {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) as usize
        % SHARDS
}
