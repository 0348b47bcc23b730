//! Failed admin authentications, rate-limited per client address.
//!
//! Every failed attempt (no token, another scheme, a wrong token) takes a cell from the
//! client address's bucket (governor's GCRA: [`FAILURES_QUOTA`], a burst then a steady refill).
//! The attempt that finds the bucket empty blocks the address until the next cell is due, and a
//! blocked address gets 429 for every admin request, its token not even compared: guessing is
//! held to the refill rate, and a 429 says nothing about the token. Other addresses are not
//! affected, and successful authentications cost nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

/// 10 failures at once, then one more every 6 s (10 a minute) per client address.
pub const FAILURES_QUOTA: Quota = Quota::per_minute(NonZeroU32::new(10).expect("non-zero"));

/// Addresses tracked before the expired ones are dropped (memory bound under a spread attack).
const MAX_TRACKED: usize = 10_000;

/// The failed-authentication buckets of one server.
pub struct FailedAuthentications<C: Clock = DefaultClock> {
    limiter: RateLimiter<IpAddr, DashMapStateStore<IpAddr>, C, NoOpMiddleware<C::Instant>>,
    /// Addresses whose bucket ran empty, until when.
    blocked: Mutex<HashMap<IpAddr, C::Instant>>,
    clock: C,
}

impl Default for FailedAuthentications {
    fn default() -> Self {
        FailedAuthentications::with_clock(FAILURES_QUOTA, DefaultClock::default())
    }
}

impl<C: Clock + Clone> FailedAuthentications<C> {
    pub fn with_clock(quota: Quota, clock: C) -> Self {
        FailedAuthentications {
            limiter: RateLimiter::dashmap_with_clock(quota, clock.clone()),
            blocked: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// `Err(retry after)` while `client` is blocked: refuse before looking at its token.
    pub fn admit(&self, client: IpAddr) -> Result<(), Duration> {
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        let Some(until) = blocked.get(&client).copied() else { return Ok(()) };
        let now = self.clock.now();
        if now < until {
            return Err(until.duration_since(now).into());
        }
        blocked.remove(&client);
        Ok(())
    }

    /// Counts a failed attempt of `client`; `Err(retry after)` when it was one too many (the
    /// address is blocked from now on).
    pub fn failed(&self, client: IpAddr) -> Result<(), Duration> {
        let Err(not_until) = self.limiter.check_key(&client) else { return Ok(()) };
        let now = self.clock.now();
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        blocked.insert(client, not_until.earliest_possible());
        if blocked.len() > MAX_TRACKED {
            blocked.retain(|_, until| *until > now);
            self.limiter.retain_recent();
        }
        Err(not_until.wait_time_from(now))
    }
}

/// Whole seconds to announce in `Retry-After`: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0 || wait.is_zero())
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn address(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_burst_of_failures_then_the_refill_rate() {
        let clock = FakeRelativeClock::default();
        let failures = FailedAuthentications::with_clock(FAILURES_QUOTA, clock.clone());
        let attacker = address(1);
        for attempt in 0..10 {
            assert_eq!(failures.admit(attacker), Ok(()), "attempt {attempt}");
            assert_eq!(failures.failed(attacker), Ok(()), "attempt {attempt}");
        }
        // The 11th failure blocks the address for the refill interval.
        let wait = failures.failed(attacker).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(6), "{wait:?}");
        assert!(failures.admit(attacker).is_err(), "blocked: refused before the token is compared");
        // Another address is not affected.
        assert_eq!(failures.admit(address(2)), Ok(()));
        assert_eq!(failures.failed(address(2)), Ok(()));
        // Once the next cell is due, one more attempt, then blocked again.
        clock.advance(Duration::from_secs(6));
        assert_eq!(failures.admit(attacker), Ok(()));
        assert_eq!(failures.failed(attacker), Ok(()));
        assert!(failures.failed(attacker).is_err());
        assert!(failures.admit(attacker).is_err());
    }

    #[test]
    fn retry_after_is_rounded_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(5_001)), 6);
        assert_eq!(retry_after_secs(Duration::from_secs(6)), 6);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
