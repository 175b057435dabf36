//! Human-friendly sizes and durations, as flags, environment variables and config files
//! spell them: `64MiB`, `1.5GB`, `250ms`, `10s`, `2m`. Shared by every subcommand.

use std::time::Duration;

/// Parses a byte size: a number with an optional unit (B, KB/KiB, MB/MiB, GB/GiB; K/M/G are
/// binary). Plain numbers are bytes.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let (number, unit) =
        split_number(text).ok_or_else(|| format!("{:?} is not a size (try 64MiB)", text.trim()))?;
    let text = text.trim();
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "k" | "kib" => 1 << 10,
        "mb" => 1_000_000,
        "m" | "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "g" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {text:?} (use B, KiB, MiB, GiB)"
            ));
        }
    };
    Ok((number * multiplier as f64) as u64)
}

/// Parses a setting in milliseconds (the balancer's `…_ms` flags): a plain number is
/// milliseconds, and a duration with a unit (`1s`, `1m30s`) is taken as well.
pub fn parse_millis(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    if let Ok(millis) = trimmed.parse::<u64>() {
        return Ok(millis);
    }
    parse_duration(trimmed).map(|d| d.as_millis() as u64)
}

/// Parses a duration: a number with a unit (us, ms, s, m, h); plain numbers are seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let bad = || format!("{trimmed:?} is not a duration (try 10s, 500ms, 2m, 1m30s)");
    if trimmed.is_empty() {
        return Err(bad());
    }
    // One or more NUMBER[UNIT] parts, added up: `1m30s`. A bare number is seconds.
    let mut rest = trimmed;
    let mut seconds = 0.0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = rest[..unit_len].trim();
        rest = &rest[unit_len..];
        let scale = match unit {
            "" if rest.is_empty() => 1.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "" => return Err(bad()),
            other => {
                return Err(format!(
                    "unknown duration unit {other:?} in {trimmed:?} (use ms, s, m or h)"
                ));
            }
        };
        seconds += number * scale;
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{trimmed:?} is out of range"))
}

/// Splits `12.5MiB` into `(12.5, "MiB")`; `None` when it does not start with a number.
fn split_number(text: &str) -> Option<(f64, &str)> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    Some((number.parse().ok()?, unit.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millisecond_settings_take_plain_numbers_and_durations() {
        assert_eq!(parse_millis("250"), Ok(250));
        assert_eq!(parse_millis("1s"), Ok(1000));
        assert_eq!(parse_millis("1m30s"), Ok(90_000));
        assert_eq!(parse_millis("20ms"), Ok(20));
        assert!(parse_millis("soon").is_err());
    }

    #[test]
    fn sizes_and_durations_parse_with_units() {
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("1k"), Ok(1024));
        assert_eq!(parse_bytes("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("MiB").is_err());
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1.5us"), Ok(Duration::from_nanos(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h 2m"), Ok(Duration::from_secs(3720)));
        assert_eq!(parse_duration("1s500ms"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("1 30").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5parsecs").is_err());
    }
}
