//! Numbers for people: sizes and ages as the summary lines print them.

use std::time::Duration;

/// `3.1 MB`, `512 B`: decimal units, as `ls -lh --si` and GitHub show them.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `45s`, `14m`, `3h 5m`, `2d 4h`: two units at most, rounded down. A
/// negative age (a time in the future: a clock was ahead) reads `in 6h`,
/// never `0s`: clamping it is how a record from the future passed for fresh.
pub fn age(secs: i64) -> String {
    if secs < 0 {
        return format!("in {}", magnitude(secs.unsigned_abs()));
    }
    magnitude(secs.unsigned_abs())
}

/// `14m ago`, or `6h in the future` for a negative age.
pub fn ago(secs: i64) -> String {
    if secs < 0 {
        format!("{} in the future", magnitude(secs.unsigned_abs()))
    } else {
        format!("{} ago", magnitude(secs.unsigned_abs()))
    }
}

fn magnitude(s: u64) -> String {
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// A configured duration in the config's own notation: `2h`, `7d`, `90m`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        format!("{}ms", d.as_millis())
    } else if s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(3_100_000), "3.1 MB");
        assert_eq!(bytes(999_999), "1.0 MB");
        assert_eq!(bytes(12_345_678_901), "12.3 GB");
    }

    #[test]
    fn ages_and_durations() {
        assert_eq!(age(-5), "in 5s");
        assert_eq!(age(-6 * 3600 - 59), "in 6h");
        assert_eq!(age(i64::MIN), "in 106751991167300d 15h");
        assert_eq!(ago(14 * 60), "14m ago");
        assert_eq!(ago(0), "0s ago");
        assert_eq!(ago(-6 * 3600), "6h in the future");
        assert_eq!(age(59), "59s");
        assert_eq!(age(14 * 60 + 3), "14m");
        assert_eq!(age(3 * 3600 + 5 * 60), "3h 5m");
        assert_eq!(age(7200), "2h");
        assert_eq!(age(2 * 86_400 + 4 * 3600 + 59), "2d 4h");
        assert_eq!(duration(Duration::from_secs(7 * 86_400)), "7d");
        assert_eq!(duration(Duration::from_secs(5400)), "90m");
        assert_eq!(duration(Duration::from_millis(500)), "500ms");
    }
}
