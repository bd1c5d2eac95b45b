//! UTC timestamps with one-second resolution, formatted as RFC 3339 (`2026-11-17T03:00:00Z`) in
//! manifests and compactly (`2026-11-17T030000Z`) in backup ids. Civil-date conversion follows
//! Howard Hinnant's `days_from_civil` algorithm, so no date library is needed.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, UTC.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Timestamp(i64);

#[derive(Debug, thiserror::Error)]
#[error("invalid timestamp {input:?}: expected {expected}")]
pub struct TimestampError {
    input: String,
    expected: &'static str,
}

impl Timestamp {
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// `at`, to the second.
    pub fn from_system_time(at: SystemTime) -> Self {
        let secs = match at.duration_since(UNIX_EPOCH) {
            Ok(elapsed) => i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
        };
        Timestamp(secs)
    }

    /// The same instant as a `SystemTime`.
    pub fn system_time(self) -> SystemTime {
        let magnitude = std::time::Duration::from_secs(self.0.unsigned_abs());
        let at = if self.0 >= 0 {
            UNIX_EPOCH.checked_add(magnitude)
        } else {
            UNIX_EPOCH.checked_sub(magnitude)
        };
        // Beyond what the platform's clock can represent: the epoch is as good as any.
        at.unwrap_or(UNIX_EPOCH)
    }

    pub fn from_unix(secs: i64) -> Self {
        Timestamp(secs)
    }

    pub fn unix(self) -> i64 {
        self.0
    }

    /// `2026-11-17T03:00:00Z`
    pub fn rfc3339(self) -> String {
        let (y, mo, d, h, mi, s) = self.civil();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }

    /// `2026-11-17T030000Z`, the form used in backup ids: no colons, so it is a valid object key
    /// and file name everywhere, and it sorts in time order.
    pub fn compact(self) -> String {
        let (y, mo, d, h, mi, s) = self.civil();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}{mi:02}{s:02}Z")
    }

    pub fn parse_rfc3339(input: &str) -> Result<Self, TimestampError> {
        Self::parse_with(input, "YYYY-MM-DDTHH:MM:SSZ", &[4, 7, 10, 13, 16], 20)
    }

    pub fn parse_compact(input: &str) -> Result<Self, TimestampError> {
        Self::parse_with(input, "YYYY-MM-DDTHHMMSSZ", &[4, 7, 10], 18)
    }

    /// Parses fixed-width `YYYY-MM-DDTHH[:]MM[:]SSZ`; `separators` are the byte positions of `-`,
    /// `-`, `T` and, for RFC 3339, the two `:`.
    fn parse_with(
        input: &str,
        expected: &'static str,
        separators: &[usize],
        len: usize,
    ) -> Result<Self, TimestampError> {
        let err = || TimestampError {
            input: input.to_owned(),
            expected,
        };
        let bytes = input.as_bytes();
        if bytes.len() != len || bytes[len - 1] != b'Z' {
            return Err(err());
        }
        let mut digits = Vec::with_capacity(14);
        for (i, &b) in bytes[..len - 1].iter().enumerate() {
            if separators.contains(&i) {
                let want = match i {
                    4 | 7 => b'-',
                    10 => b'T',
                    _ => b':',
                };
                if b != want {
                    return Err(err());
                }
            } else if b.is_ascii_digit() {
                digits.push(i64::from(b - b'0'));
            } else {
                return Err(err());
            }
        }
        let num = |from: usize, to: usize| digits[from..to].iter().fold(0, |acc, d| acc * 10 + d);
        let (y, mo, d) = (num(0, 4), num(4, 6), num(6, 8));
        let (h, mi, s) = (num(8, 10), num(10, 12), num(12, 14));
        if !(1..=12).contains(&mo)
            || d < 1
            || d > days_in_month(y, mo)
            || h > 23
            || mi > 59
            || s > 59
        {
            return Err(err());
        }
        Ok(Timestamp(
            days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s,
        ))
    }

    fn civil(self) -> (i64, i64, i64, i64, i64, i64) {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (y, mo, d) = civil_from_days(days);
        (y, mo, d, secs / 3600, secs % 3600 / 60, secs % 60)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants_format_as_expected() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_795_563_599, "2026-11-24T23:39:59Z"),
            (-1, "1969-12-31T23:59:59Z"),
        ];
        for (secs, text) in cases {
            let ts = Timestamp::from_unix(secs);
            assert_eq!(ts.rfc3339(), text);
            assert_eq!(Timestamp::parse_rfc3339(text).expect("parses"), ts);
            assert_eq!(Timestamp::parse_compact(&ts.compact()).expect("parses"), ts);
        }
    }

    #[test]
    fn every_day_over_several_centuries_round_trips() {
        for day in (-200_000..200_000).step_by(7) {
            let ts = Timestamp::from_unix(day * 86_400 + 3_723);
            assert_eq!(Timestamp::parse_rfc3339(&ts.rfc3339()).expect("parses"), ts);
        }
    }

    #[test]
    fn malformed_timestamps_are_rejected() {
        for bad in [
            "",
            "2026-11-24T23:39:59",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-24 23:39:59Z",
            "2026-11-24T24:00:00Z",
            "２026-11-24T23:39:59Z",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad}");
        }
        assert!(Timestamp::parse_compact("2026-11-24T233959Z").is_ok());
        assert!(Timestamp::parse_compact("2026-11-24T23:39:59Z").is_err());
    }
}
