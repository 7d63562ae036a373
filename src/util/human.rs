//! Human-readable sizes and ages, formatted the way Docker prints them, and
//! Docker's size syntax read back.

use std::time::{Duration, SystemTime};

/// Docker's size syntax (`RAMInBytes`): a number, optionally with a
/// fraction, and a unit b, k, m, g, t or p (any case, optional trailing
/// "b"/"ib"): 512m, 1.5g, 1048576.
pub fn ram_in_bytes(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b').filter(|u| !u.is_empty()))
        .unwrap_or(unit);
    let mult: f64 = match unit {
        "" | "b" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    let bytes = n * mult;
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return None;
    }
    Some(bytes as i64)
}

/// Docker's `units.HumanSize`: decimal units, 3 significant digits (`7.8MB`).
pub fn size(bytes: u64) -> String {
    // %.4g in Go, then trimmed: 3 significant digits is what users see.
    size_in(bytes, 3)
}

/// A size in powers of 1000 with `significant` digits, trailing zeros
/// dropped (`3.375MB` with 4).
pub fn size_in(bytes: u64, significant: usize) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let digits = if v < 1.0 {
        1
    } else {
        v.log10().floor() as usize + 1
    };
    let mut s = format!("{:.*}", significant.saturating_sub(digits), v);
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
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

/// Text that is no duration in Go's syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("invalid duration")]
    Invalid,
    #[error("missing unit in duration")]
    MissingUnit,
    #[error("unknown unit {0:?} in duration")]
    UnknownUnit(String),
    #[error("duration out of range")]
    OutOfRange,
}

/// A duration in Go's syntax (`300ms`, `1.5h`, `2h45m`, `-1s`; units ns, us,
/// µs, ms, s, m, h; a bare `0`), as Docker reads HEALTHCHECK's and `--health-*` flags, in
/// nanoseconds.
pub fn go_duration(s: &str) -> Result<i64, DurationError> {
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(DurationError::Invalid);
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                a.split_at(n)
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(DurationError::Invalid);
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(DurationError::MissingUnit),
            u => return Err(DurationError::UnknownUnit(u.to_string())),
        };
        let too_big = || DurationError::OutOfRange;
        let whole: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| too_big())?
        };
        // The fraction's digits past nanosecond precision do not matter.
        let digits = &frac[..frac.len().min(20)];
        let part: u128 = if digits.is_empty() {
            0
        } else {
            digits.parse::<u128>().map_err(|_| too_big())? * scale / 10u128.pow(digits.len() as u32)
        };
        total = whole
            .checked_mul(scale)
            .and_then(|w| w.checked_add(part))
            .and_then(|v| v.checked_add(total))
            .filter(|v| *v <= i64::MAX as u128)
            .ok_or_else(too_big)?;
        rest = after;
    }
    let n = total as i64;
    Ok(if negative { -n } else { n })
}

/// A duration of `ns` nanoseconds as Go's `time.Duration.String()` writes
/// it (`30s`, `1.5s`, `500ms`, `1m30s`, `1h0m0s`), as Docker's health
/// messages show a configured timeout.
pub fn go_duration_string(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    // Below a second: one unit, with a fraction as needed.
    let frac = |v: u64, scale: u64, unit: &str| {
        let whole = v / scale;
        let rest = v % scale;
        if rest == 0 {
            format!("{sign}{whole}{unit}")
        } else {
            let width = scale.ilog10() as usize;
            let digits = format!("{rest:0width$}");
            format!("{sign}{whole}.{}{unit}", digits.trim_end_matches('0'))
        }
    };
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return frac(u, 1_000, "µs");
    }
    if u < 1_000_000_000 {
        return frac(u, 1_000_000, "ms");
    }
    let secs = u / 1_000_000_000;
    let nanos = u % 1_000_000_000;
    let s = frac((secs % 60) * 1_000_000_000 + nanos, 1_000_000_000, "s");
    let s = s.trim_start_matches('-').to_string();
    let (h, m) = (secs / 3600, secs / 60 % 60);
    match (h, secs / 60) {
        (0, 0) => format!("{sign}{s}"),
        (0, _) => format!("{sign}{m}m{s}"),
        _ => format!("{sign}{h}h{m}m{s}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_strings() {
        for (ns, s) in [
            (30_000_000_000, "30s"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (500_000_000, "500ms"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (1_500, "1.5µs"),
            (12, "12ns"),
            (0, "0s"),
        ] {
            assert_eq!(go_duration_string(ns), s);
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("5s"), Ok(5_000_000_000));
        assert_eq!(go_duration("0"), Ok(0));
        assert_eq!(go_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(go_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(go_duration(".5ms"), Ok(500_000));
        assert_eq!(go_duration("300us"), Ok(300_000));
        assert_eq!(go_duration("2µs"), Ok(2_000));
        assert_eq!(go_duration("-2m"), Ok(-120_000_000_000));
        assert_eq!(go_duration("1m0.25s10ns"), Ok(60_250_000_010));
        for bad in ["", "5", "s", "5x", "1.s.", "3000000h", "1..5s", "- 1s"] {
            assert!(go_duration(bad).is_err(), "{bad:?}");
        }
    }

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
