//! Wall time for deadlines and grace periods that outlive one process (a [`RunKey`](crate::RunKey)
//! kept in a custom resource's status): the system clock, moved by tokio's paused time in
//! tests so that a poll under `tokio::time::advance` sees the time the cluster sees.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The current wall time: the system clock plus how far tokio's clock runs ahead of the
/// monotonic clock (nothing outside paused time).
pub fn wall_now() -> SystemTime {
    let wall = SystemTime::now();
    let real = std::time::Instant::now();
    let tokio = tokio::time::Instant::now().into_std();
    match tokio.checked_duration_since(real) {
        Some(ahead) => wall + ahead,
        None => wall - real.duration_since(tokio),
    }
}

/// Milliseconds since the Unix epoch of `t` (0 before it).
pub fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The time `ms` milliseconds after the Unix epoch.
pub fn from_epoch_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn follows_paused_time() {
        let before = wall_now();
        tokio::time::advance(Duration::from_secs(3600)).await;
        let after = wall_now();
        let moved = after.duration_since(before).unwrap();
        // The system and monotonic clocks are read one after the other, and the system
        // clock may be slewed meanwhile: a few nanoseconds either way (seen: 3599.99999999 s).
        assert!(
            moved >= Duration::from_secs(3600) - Duration::from_millis(1),
            "{moved:?}"
        );
        assert!(moved < Duration::from_secs(3660), "{moved:?}");
    }

    #[test]
    fn is_the_system_clock_outside_paused_time() {
        let ours = epoch_ms(wall_now());
        let system = epoch_ms(SystemTime::now());
        assert!(ours.abs_diff(system) < 1_000, "{ours} vs {system}");
        assert_eq!(epoch_ms(from_epoch_ms(1_234)), 1_234);
    }
}
