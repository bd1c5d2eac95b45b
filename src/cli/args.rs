//! Parsers for argument values that clap does not know: sizes, durations, times, time zones.

use std::time::Duration;

/// `8MiB`, `512KiB`, `1GiB`, `1048576` (bytes); `MB`/`KB`/`GB` are read as the binary units too.
pub fn parse_size(input: &str) -> Result<u64, String> {
    let trimmed = input.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{input:?} is not a size; use e.g. 8MiB, 512KiB or 1GiB"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "unknown size unit in {input:?}; use KiB, MiB or GiB"
            ));
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{input:?} is too large"))
}

/// `500ms`, `30s`, `5m`, `1h`, `90d`; a bare number is seconds.
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let trimmed = input.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{input:?} is not a duration; use e.g. 500ms, 30s, 5m, 1h or 90d"))?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(number)),
        "" | "s" => Ok(Duration::from_secs(number)),
        "m" | "min" => Ok(Duration::from_secs(number * 60)),
        "h" => Ok(Duration::from_secs(number * 3600)),
        "d" => Ok(Duration::from_secs(number * 86_400)),
        _ => Err(format!(
            "unknown duration unit in {input:?}; use ms, s, m, h or d"
        )),
    }
}

/// `--jobs`: at least one.
pub fn parse_jobs(input: &str) -> Result<usize, String> {
    match input.trim().parse::<usize>() {
        Ok(0) | Err(_) => Err(format!(
            "{input:?} is not a job count; use a whole number of 1 or more"
        )),
        Ok(n) => Ok(n),
    }
}

/// A UTC time in RFC 3339 form, `2026-12-05T03:00:00Z`.
pub fn parse_timestamp(input: &str) -> Result<pgark_archive::Timestamp, String> {
    pgark_archive::Timestamp::parse_rfc3339(input.trim()).map_err(|e| e.to_string())
}

/// An IANA time zone name (`Europe/Berlin`, `America/New_York`) or `UTC`.
pub fn parse_time_zone(input: &str) -> Result<jiff::tz::TimeZone, String> {
    jiff::tz::TimeZone::get(input.trim()).map_err(|_| {
        format!("{input:?} is not a time zone; use an IANA name such as Europe/Berlin, or UTC")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("512kb"), Ok(512 << 10));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 days").is_err());
    }

    #[test]
    fn jobs_must_be_positive() {
        assert_eq!(parse_jobs("4"), Ok(4));
        assert!(parse_jobs("0").is_err());
        assert!(parse_jobs("-1").is_err());
    }
}
