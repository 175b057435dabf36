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

/// Parses a duration: a number with a unit (us, ms, s, m, h); plain numbers are seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = split_number(text)
        .ok_or_else(|| format!("{:?} is not a duration (try 10s, 500ms, 2m)", text.trim()))?;
    let text = text.trim();
    let seconds = match unit {
        "" | "s" => number,
        "ms" => number / 1e3,
        "us" | "µs" => number / 1e6,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit {other:?} in {text:?} (use ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is out of range"))
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
    }
}
