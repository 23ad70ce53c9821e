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
///
/// The date comes from jiff; the digits are written directly instead of through
/// `strftime`, whose format string is parsed on every call (this runs for every
/// timestamp the fake cluster writes, about 20 per Job run). The output is the same as
/// `strftime("%Y-%m-%dT%H:%M:%S")` for the years 0 to 9999, which `%Y` writes as four
/// digits; any other year takes the `strftime` path.
pub fn format_rfc3339(since_epoch: Duration, nanos: bool) -> String {
    let ts = jiff::Timestamp::from_second(since_epoch.as_secs() as i64)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let dt = jiff::tz::Offset::UTC.to_datetime(ts);
    let Ok(year) = u32::try_from(dt.year()) else {
        return format_rfc3339_strftime(ts, since_epoch, nanos);
    };
    if year > 9999 {
        return format_rfc3339_strftime(ts, since_epoch, nanos);
    }
    let mut out = String::with_capacity(if nanos { 30 } else { 20 });
    let mut digits = |n: u32, width: u32, after: char| {
        for i in (0..width).rev() {
            let d = (n / 10u32.pow(i)) % 10;
            out.push(char::from(b'0' + d as u8));
        }
        out.push(after);
    };
    let two = |n: i8| u32::try_from(n).unwrap_or_default();
    digits(year, 4, '-');
    digits(two(dt.month()), 2, '-');
    digits(two(dt.day()), 2, 'T');
    digits(two(dt.hour()), 2, ':');
    digits(two(dt.minute()), 2, ':');
    if nanos {
        digits(two(dt.second()), 2, '.');
        digits(since_epoch.subsec_nanos(), 9, 'Z');
    } else {
        digits(two(dt.second()), 2, 'Z');
    }
    out
}

/// [`format_rfc3339`] through `strftime`, for years it does not write itself.
fn format_rfc3339_strftime(ts: jiff::Timestamp, since_epoch: Duration, nanos: bool) -> String {
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

    /// The digits written directly are those `strftime` writes, for seeded times from the
    /// epoch to the end of jiff's range (and just past it) and for the edges of days, months and leap years.
    #[test]
    fn direct_digits_match_strftime() {
        let last = 253_402_207_200u64; // jiff's last second, 9999-12-30T22:00:00Z
        let mut secs = vec![0, 1, 59, 60, 86_399, 86_400, 951_782_400, 951_868_799, last];
        // 2000-02-29 and 2100-02-28/03-01 (a century that is not a leap year).
        secs.extend([951_782_400 + 86_399, 4_107_542_399, 4_107_542_400, last + 1]);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            secs.push(x % (last + 1));
        }
        for s in secs {
            for nanos in [0, 7, 999_999_999, (s % 1_000_000_000) as u32] {
                let t = Duration::new(s, nanos);
                let ts =
                    jiff::Timestamp::from_second(s as i64).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
                for with_nanos in [false, true] {
                    assert_eq!(
                        format_rfc3339(t, with_nanos),
                        format_rfc3339_strftime(ts, t, with_nanos),
                        "{s}.{nanos:09}"
                    );
                }
            }
        }
        // Beyond jiff's range: the epoch, as before.
        let far = Duration::from_secs(u64::MAX);
        assert_eq!(
            format_rfc3339(far, false),
            format_rfc3339_strftime(jiff::Timestamp::from_second(-1).unwrap(), far, false)
        );
    }
}
