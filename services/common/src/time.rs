//! Time conversions used at every service edge.

use chrono::{DateTime, Utc};

/// The protobuf timestamp of a UTC time.
pub fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or_default(),
    }
}

/// The UTC time of a protobuf timestamp (`None` when out of range).
pub fn from_timestamp(timestamp: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(timestamp.seconds, u32::try_from(timestamp.nanos).ok()?)
}

/// Where a service reads the current time for leases and limits. Injected, so that tests
/// move time forward instead of sleeping until a lease or a window has passed.
pub trait Clock: Send + Sync {
    /// The current time, truncated to microseconds (what both databases store).
    fn now(&self) -> DateTime<Utc>;
}

/// A clock as services hold it.
pub type SharedClock = std::sync::Arc<dyn Clock>;

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        truncate_to_micros(Utc::now())
    }
}

/// The system's clock, shared.
pub fn system_clock() -> SharedClock {
    std::sync::Arc::new(SystemClock)
}

/// `time` without its nanoseconds below the microsecond, so that a value read back from
/// PostgreSQL or SQLite equals the one written.
pub fn truncate_to_micros(time: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    time.trunc_subsecs(6)
}

/// The system's clock, moved forward on demand (tests): time keeps running, so the code
/// under test and its real-time neighbours agree, and [`ManualClock::advance`] jumps over a
/// lease or a window instead of sleeping through it.
#[cfg(any(test, feature = "testing"))]
#[derive(Debug)]
pub struct ManualClock {
    offset: std::sync::Mutex<std::time::Duration>,
}

#[cfg(any(test, feature = "testing"))]
impl ManualClock {
    /// A clock showing the system's time.
    pub fn starting_now() -> Self {
        ManualClock {
            offset: std::sync::Mutex::new(std::time::Duration::ZERO),
        }
    }

    /// Moves the clock forward by `duration`.
    pub fn advance(&self, duration: std::time::Duration) {
        let mut offset = self
            .offset
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *offset = offset.saturating_add(duration);
    }
}

#[cfg(any(test, feature = "testing"))]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        let offset = *self
            .offset
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        crate::lease::later(SystemClock.now(), offset)
    }
}
