//! Limits on anonymous work: failed logins per user name and per client address, and
//! registrations per client address, each counted in a sliding window.
//!
//! A key (user name or address) that reached its limit is refused until its oldest counted
//! event leaves the window; the refusal says when (`google.rpc.RetryInfo`). Counters live in
//! memory, per replica, bounded in the number of keys they track (least recently used keys
//! are forgotten first), so a flood of made-up user names cannot exhaust memory. A
//! successful login clears its user name's failures, never its address's.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use serde::Deserialize;

/// Keys tracked per counter at most.
const MAX_TRACKED_KEYS: u64 = 100_000;

/// The limits (configuration `limits.*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    /// Failed logins per user name within the window before it is locked.
    pub failures_per_user: u32,
    /// Failed logins per client address within the window before it is locked.
    pub failures_per_address: u32,
    /// Registrations per client address within the window.
    pub registrations_per_address: u32,
    /// The sliding window, seconds.
    pub window_seconds: u64,
    /// Password hashes computed at once (0: one per available core).
    pub hashing_threads: usize,
    /// Password checks waiting for a hashing thread before further ones are refused.
    pub hashing_queue: usize,
}

impl LimitSettings {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if self.failures_per_user == 0
            || self.failures_per_address == 0
            || self.registrations_per_address == 0
        {
            return Err("limits.* counts must be at least 1".into());
        }
        if !(1..=86_400).contains(&self.window_seconds) {
            return Err("limits.window_seconds must be between 1 and 86400".into());
        }
        if self.hashing_threads > 64 || !(1..=10_000).contains(&self.hashing_queue) {
            return Err(
                "limits.hashing_threads must be at most 64 and limits.hashing_queue 1-10000".into(),
            );
        }
        Ok(())
    }

    /// Hashing threads to run.
    pub fn threads(&self) -> usize {
        if self.hashing_threads > 0 {
            return self.hashing_threads;
        }
        std::thread::available_parallelism().map_or(2, usize::from)
    }
}

/// Events of one kind counted per key in a sliding window.
pub struct Counter {
    limit: u32,
    window: Duration,
    events: moka::sync::Cache<String, Arc<Mutex<VecDeque<DateTime<Utc>>>>>,
}

impl Counter {
    /// At most `limit` events per key within `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        Counter {
            limit,
            window,
            events: moka::sync::Cache::builder()
                .max_capacity(MAX_TRACKED_KEYS)
                .time_to_idle(window)
                .build(),
        }
    }

    fn log(&self, key: &str) -> Arc<Mutex<VecDeque<DateTime<Utc>>>> {
        self.events.get_with(key.to_owned(), Arc::default)
    }

    /// `Err(retry after)` when `key` has reached its limit at `now`.
    pub fn check(&self, key: &str, now: DateTime<Utc>) -> Result<(), Duration> {
        let Some(log) = self.events.get(key) else {
            return Ok(());
        };
        let Ok(mut log) = log.lock() else {
            return Ok(());
        };
        while log
            .front()
            .is_some_and(|oldest| elapsed(*oldest, now) >= self.window)
        {
            log.pop_front();
        }
        if log.len() < self.limit as usize {
            return Ok(());
        }
        let oldest = log.front().copied().unwrap_or(now);
        Err(self
            .window
            .saturating_sub(elapsed(oldest, now))
            .max(Duration::from_secs(1)))
    }

    /// Counts an event of `key` at `now`.
    pub fn record(&self, key: &str, now: DateTime<Utc>) {
        let log = self.log(key);
        if let Ok(mut log) = log.lock() {
            log.push_back(now);
            while log.len() > self.limit as usize {
                log.pop_front();
            }
        }
    }

    /// Forgets `key`'s events.
    pub fn clear(&self, key: &str) {
        self.events.invalidate(key);
    }
}

/// The registry's limits on anonymous callers.
pub struct Limits {
    /// Failed logins per user name: slows guessing one account's password.
    pub failures_by_user: Counter,
    /// Failed logins per client address: slows one client guessing across accounts.
    pub failures_by_address: Counter,
    /// Registrations per client address: bounds the accounts and hashing one client causes.
    pub registrations_by_address: Counter,
}

impl Limits {
    /// Limits as configured.
    pub fn new(settings: &LimitSettings) -> Self {
        let window = Duration::from_secs(settings.window_seconds);
        Limits {
            failures_by_user: Counter::new(settings.failures_per_user, window),
            failures_by_address: Counter::new(settings.failures_per_address, window),
            registrations_by_address: Counter::new(settings.registrations_per_address, window),
        }
    }
}

/// Time from `earlier` to `now`; zero when the clock went backwards (the event still counts).
fn elapsed(earlier: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (now - earlier).to_std().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_locked_at_its_limit_and_released_by_the_window() {
        let start = Utc::now();
        let at = |seconds: i64| start + chrono::Duration::seconds(seconds);
        let counter = Counter::new(3, Duration::from_secs(60));
        for second in 0..3 {
            assert_eq!(counter.check("alice", at(second)), Ok(()));
            counter.record("alice", at(second));
        }
        assert_eq!(
            counter.check("alice", at(10)),
            Err(Duration::from_secs(50)),
            "locked until the first failure leaves the window"
        );
        assert_eq!(counter.check("bob", at(10)), Ok(()), "per key");
        assert_eq!(counter.check("alice", at(60)), Ok(()), "the window slid");
        counter.record("alice", at(61));
        assert_eq!(
            counter.check("alice", at(61)),
            Ok(()),
            "two failures in the window"
        );
        counter.record("alice", at(61));
        assert_eq!(
            counter.check("alice", at(61)),
            Err(Duration::from_secs(1)),
            "the failure at 2 s leaves the window at 62 s"
        );
        counter.clear("alice");
        assert_eq!(counter.check("alice", at(61)), Ok(()));
    }
}
