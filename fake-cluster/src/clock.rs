//! The fake cluster's clock: wall time that follows tokio's clock, so that under paused
//! time (`tokio::time::pause`) timestamps advance with the virtual time and stay
//! deterministic for a given start.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Wall-clock time derived from tokio's monotonic clock.
#[derive(Debug, Clone)]
pub struct Clock {
    wall_start: SystemTime,
    start: Instant,
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Self {
        Self::starting_at(SystemTime::now())
    }

    /// A clock whose current time is `wall_start` (for reproducible timestamps).
    pub fn starting_at(wall_start: SystemTime) -> Self {
        Self {
            wall_start,
            start: Instant::now(),
        }
    }

    /// The current wall time.
    pub fn now(&self) -> SystemTime {
        self.wall_start + self.start.elapsed()
    }

    /// Seconds since the Unix epoch, with the fraction.
    pub fn since_epoch(&self) -> Duration {
        self.now().duration_since(UNIX_EPOCH).unwrap_or_default()
    }

    /// RFC 3339 in whole seconds, as `metadata.creationTimestamp` is written.
    pub fn now_rfc3339_seconds(&self) -> String {
        format_rfc3339(self.since_epoch(), false)
    }

    /// RFC 3339 with nanoseconds, as log timestamps are written.
    pub fn now_rfc3339_nanos(&self) -> String {
        format_rfc3339(self.since_epoch(), true)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// Formats a time since the epoch as RFC 3339 in UTC.
pub fn format_rfc3339(since_epoch: Duration, nanos: bool) -> String {
    let ts = jiff::Timestamp::from_second(since_epoch.as_secs() as i64)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let base = ts.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    if nanos {
        format!("{base}.{:09}Z", since_epoch.subsec_nanos())
    } else {
        format!("{base}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_whole_seconds_and_nanoseconds() {
        let t = Duration::new(1_700_000_000, 123);
        assert_eq!(format_rfc3339(t, false), "2023-11-14T22:13:20Z");
        assert_eq!(format_rfc3339(t, true), "2023-11-14T22:13:20.000000123Z");
    }
}
