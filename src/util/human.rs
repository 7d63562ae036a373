//! Human-readable sizes and ages, formatted the way Docker prints them.

use std::time::{Duration, SystemTime};

/// Docker's `units.HumanSize`: decimal units, 3 significant digits (`7.8MB`).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    // %.4g in Go, then trimmed: 3 significant digits is what users see.
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", UNITS[i])
}

/// Docker's `units.HumanDuration`: "Less than a second", "5 seconds",
/// "About a minute", "3 hours", "2 weeks", ...
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    let mins = secs / 60;
    let hours = mins / 60;
    match () {
        _ if secs < 1 => "Less than a second".into(),
        _ if secs == 1 => "1 second".into(),
        _ if secs < 60 => format!("{secs} seconds"),
        _ if mins == 1 => "About a minute".into(),
        _ if mins < 60 => format!("{mins} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

/// "5 minutes ago" from an RFC 3339 timestamp; the timestamp itself if unparsable.
pub fn ago(rfc3339: &str) -> String {
    match humantime::parse_rfc3339_weak(rfc3339) {
        Ok(t) => format!("{} ago", since(t)),
        Err(_) => rfc3339.to_string(),
    }
}

/// Humanized time elapsed since `t` (zero if `t` is in the future).
pub fn since(t: SystemTime) -> String {
    duration(SystemTime::now().duration_since(t).unwrap_or_default())
}

/// Docker's `CreatedAt` column (Go's `time.String()` in UTC):
/// `2024-05-01 12:34:56 +0000 UTC`; the input itself if unparsable.
pub fn created_at(rfc3339: &str) -> String {
    match humantime::parse_rfc3339_weak(rfc3339) {
        Ok(t) => {
            let s = humantime::format_rfc3339_seconds(t).to_string();
            format!(
                "{} +0000 UTC",
                s.trim_end_matches('Z').replacen('T', " ", 1)
            )
        }
        Err(_) => rfc3339.to_string(),
    }
}

/// The current time as RFC 3339 with nanoseconds, as Docker writes it.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_at_like_go() {
        assert_eq!(
            created_at("2024-05-01T12:34:56.123456789Z"),
            "2024-05-01 12:34:56 +0000 UTC"
        );
        assert_eq!(created_at("bogus"), "bogus");
    }

    #[test]
    fn sizes_like_docker() {
        assert_eq!(size(0), "0B");
        assert_eq!(size(999), "999B");
        assert_eq!(size(1_000), "1kB");
        assert_eq!(size(4_261_000), "4.26MB");
        assert_eq!(size(77_800_000), "77.8MB");
        assert_eq!(size(187_000_000), "187MB");
        assert_eq!(size(1_500_000_000), "1.5GB");
    }

    #[test]
    fn durations_like_docker() {
        assert_eq!(duration(Duration::from_millis(300)), "Less than a second");
        assert_eq!(duration(Duration::from_secs(5)), "5 seconds");
        assert_eq!(duration(Duration::from_secs(70)), "About a minute");
        assert_eq!(duration(Duration::from_secs(3 * 60)), "3 minutes");
        assert_eq!(duration(Duration::from_secs(3600 * 5)), "5 hours");
        assert_eq!(duration(Duration::from_secs(86400 * 3)), "3 days");
        assert_eq!(duration(Duration::from_secs(86400 * 20)), "2 weeks");
    }
}
