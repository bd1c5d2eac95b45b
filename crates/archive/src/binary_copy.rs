//! COPY text rows rewritten as PostgreSQL's binary COPY format, for tables whose every column is
//! of a built-in type whose text form the server's output functions produce canonically and
//! whose binary form is simple and the same in every supported release (integers, `numeric`,
//! floats, `date`, `timestamp` with and without time zone, `time`, `boolean`, `uuid`, `bytea` in
//! its hex form, and the character types).
//!
//! Why: a restore's server spends much of its COPY time parsing text (dates, numerics, integers);
//! reading the binary form of the same values is cheaper for it (a quarter to a third less
//! server time to load TPC-H's `lineitem`, measured), and the client converts beside it.
//!
//! The conversion accepts exactly the text the server's output functions write under the dump's
//! settings (`DateStyle` ISO, `extra_float_digits` 3) and refuses anything else with
//! [`NotConvertible`], rather than guess: a caller then sends that text as text, so the server's
//! own input functions decide, as they would have without this module. Values that reach the
//! server in binary are the values its text input would have made, bit for bit (checked against
//! real servers by the restore's tests); typmods (`numeric(p,s)`, `varchar(n)`, `char(n)`) are
//! applied by the server's receive functions, which share that code with the text input.

use crate::copy_text;

/// The binary COPY header: signature, flags (no OIDs), no header extension.
pub const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The binary COPY trailer: a tuple of -1 fields.
pub const TRAILER: &[u8] = &[0xff, 0xff];

/// How one column's values are written in binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnKind {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Date,
    Bool,
    Uuid,
    /// `timestamp without time zone`: microseconds from 2000-01-01 00:00.
    Timestamp,
    /// `timestamp with time zone`: microseconds from 2000-01-01 00:00 UTC.
    TimestampTz,
    /// `time without time zone`: microseconds from midnight.
    Time,
    /// `bytea` in the hex form (the server's default `bytea_output`).
    Bytea,
    /// `text`, `character varying`, `character`: the value's bytes (the server applies the
    /// length limit or padding, and the encoding conversion, as for text).
    Characters,
}

impl ColumnKind {
    /// The kind for a column type as `format_type` prints it under an empty `search_path`
    /// (so a user's type of the same name would be schema-qualified and not match).
    fn of(type_name: &str) -> Option<ColumnKind> {
        // A typmod is printed after the type's first word (`timestamp(3) with time zone`,
        // `numeric(15,2)`) and must be the plain `(n)` or `(p,s)` format_type writes.
        let (base, modifier) = match type_name.split_once('(') {
            Some((first, rest)) => {
                let (inner, after) = rest.split_once(')')?;
                if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_digit() || b == b',') {
                    return None;
                }
                (format!("{first}{after}"), true)
            }
            None => (type_name.to_owned(), false),
        };
        let kind = match base.as_str() {
            "smallint" => ColumnKind::Int2,
            "integer" => ColumnKind::Int4,
            "bigint" => ColumnKind::Int8,
            "real" => ColumnKind::Float4,
            "double precision" => ColumnKind::Float8,
            "numeric" => ColumnKind::Numeric,
            "date" => ColumnKind::Date,
            "boolean" => ColumnKind::Bool,
            "uuid" => ColumnKind::Uuid,
            "timestamp without time zone" => ColumnKind::Timestamp,
            "timestamp with time zone" => ColumnKind::TimestampTz,
            "time without time zone" => ColumnKind::Time,
            "bytea" => ColumnKind::Bytea,
            "text" | "character varying" | "character" => ColumnKind::Characters,
            _ => return None,
        };
        // Only these take a modifier (applied by the server's receive function as by its input).
        let takes_modifier = matches!(
            kind,
            ColumnKind::Numeric
                | ColumnKind::Characters
                | ColumnKind::Timestamp
                | ColumnKind::TimestampTz
                | ColumnKind::Time
        );
        (!modifier || takes_modifier).then_some(kind)
    }
}

/// Why some text was not converted: the first value not in the form the server writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row {row}, column {column}: {reason}")]
pub struct NotConvertible {
    /// The row's index in the text converted.
    pub row: u64,
    /// The column's index in the row.
    pub column: usize,
    pub reason: &'static str,
}

/// Rewrites COPY text rows of one table's columns as binary COPY tuples.
#[derive(Debug, Clone)]
pub struct BinaryRows {
    kinds: Vec<ColumnKind>,
}

impl BinaryRows {
    /// A converter for rows of columns of these types (as `format_type` prints them), or `None`
    /// if a type is not one converted (or there are no columns, or more than binary COPY's
    /// 16-bit field count holds).
    pub fn for_types<'a>(types: impl IntoIterator<Item = &'a str>) -> Option<BinaryRows> {
        let kinds = types
            .into_iter()
            .map(ColumnKind::of)
            .collect::<Option<Vec<_>>>()?;
        (!kinds.is_empty() && i16::try_from(kinds.len()).is_ok()).then_some(BinaryRows { kinds })
    }

    /// Appends the binary tuples of `text`'s rows (whole rows, each ending in `\n`) to `out`,
    /// without the header or the trailer. On failure `out` holds a part of the tuples and is to
    /// be discarded.
    pub fn convert(&self, text: &[u8], out: &mut Vec<u8>) -> Result<(), NotConvertible> {
        let field_count = (self.kinds.len() as u16).to_be_bytes();
        let last = self.kinds.len() - 1;
        // One pass over the text for the fields' ends, tabs and newlines alike (this runs over
        // every byte a restore sends).
        let mut at = 0;
        let mut row = 0;
        while at < text.len() {
            out.extend_from_slice(&field_count);
            for (column, &kind) in self.kinds.iter().enumerate() {
                let fail = |reason| NotConvertible {
                    row,
                    column,
                    reason,
                };
                let end = memchr::memchr2(b'\t', b'\n', &text[at..]).map_or(text.len(), |i| at + i);
                match (text.get(end), column == last) {
                    (Some(b'\t'), false) | (Some(b'\n') | None, true) => {}
                    // Named: the field after this one, extra or missing.
                    (_, is_last) => {
                        return Err(NotConvertible {
                            row,
                            column: column + 1,
                            reason: if is_last {
                                "the row has more fields"
                            } else {
                                "the row has fewer fields"
                            },
                        });
                    }
                }
                write_field(kind, &text[at..end], out).map_err(fail)?;
                at = end + 1;
            }
            row += 1;
        }
        Ok(())
    }
}

/// Appends one field (length word and value) to `out`.
fn write_field(kind: ColumnKind, raw: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    if raw == b"\\N" {
        out.extend_from_slice(&(-1i32).to_be_bytes());
        return Ok(());
    }
    match kind {
        ColumnKind::Int2 => {
            let value = i16::try_from(integer(raw)?).map_err(|_| "out of range for smallint")?;
            put(out, &value.to_be_bytes());
        }
        ColumnKind::Int4 => {
            let value = i32::try_from(integer(raw)?).map_err(|_| "out of range for integer")?;
            put(out, &value.to_be_bytes());
        }
        ColumnKind::Int8 => put(out, &integer(raw)?.to_be_bytes()),
        ColumnKind::Float4 => put(out, &float::<f32>(raw)?.to_bits().to_be_bytes()),
        ColumnKind::Float8 => put(out, &float::<f64>(raw)?.to_bits().to_be_bytes()),
        ColumnKind::Numeric => numeric(raw, out)?,
        ColumnKind::Date => put(out, &date(raw)?.to_be_bytes()),
        ColumnKind::Bool => match raw {
            b"t" => put(out, &[1]),
            b"f" => put(out, &[0]),
            _ => return Err("not t or f"),
        },
        ColumnKind::Uuid => put(out, &uuid(raw)?),
        ColumnKind::Timestamp => put(out, &timestamp(raw, false)?.to_be_bytes()),
        ColumnKind::TimestampTz => put(out, &timestamp(raw, true)?.to_be_bytes()),
        ColumnKind::Time => put(out, &time(raw)?.to_be_bytes()),
        ColumnKind::Bytea => {
            let hex = raw.strip_prefix(b"\\\\x").ok_or("not bytea in hex")?;
            let length = i32::try_from(hex.len() / 2).map_err(|_| "longer than a field can be")?;
            out.extend_from_slice(&length.to_be_bytes());
            let start = out.len();
            out.resize(start + hex.len() / 2, 0);
            // Refuses an odd number of digits too.
            hex::decode_to_slice(hex, &mut out[start..]).map_err(|_| "not bytea in hex")?;
        }
        ColumnKind::Characters => {
            let start = out.len();
            out.extend_from_slice(&[0; 4]);
            copy_text::decode_field_into(raw, out);
            let length =
                i32::try_from(out.len() - start - 4).map_err(|_| "longer than a field can be")?;
            out[start..start + 4].copy_from_slice(&length.to_be_bytes());
        }
    }
    Ok(())
}

fn put(out: &mut Vec<u8>, value: &[u8]) {
    // Values written here are at most 16 bytes long.
    out.extend_from_slice(&(value.len() as i32).to_be_bytes());
    out.extend_from_slice(value);
}

/// An integer as the server writes it: an optional `-` and decimal digits.
fn integer(raw: &[u8]) -> Result<i64, &'static str> {
    let (negative, digits) = match raw.strip_prefix(b"-") {
        Some(digits) => (true, digits),
        None => (false, raw),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err("not an integer");
    }
    // Accumulated negatively so that the most negative value fits.
    let mut value: i64 = 0;
    for &d in digits {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_sub(i64::from(d - b'0')))
            .ok_or("out of range for bigint")?;
    }
    if negative {
        Ok(value)
    } else {
        value.checked_neg().ok_or("out of range for bigint")
    }
}

/// The text of a float as the server writes it, checked to hold nothing Rust's parser would take
/// that the server's would not (`inf`, `+1`, spaces); `None` for the special values' words.
fn float_text(raw: &[u8]) -> Result<Option<&str>, &'static str> {
    let body = raw.strip_prefix(b"-").unwrap_or(raw);
    let plain = !body.is_empty()
        && body[0].is_ascii_digit()
        && body
            .iter()
            .all(|&b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'));
    if !plain {
        return match raw {
            b"NaN" | b"Infinity" | b"-Infinity" => Ok(None),
            _ => Err("not a float"),
        };
    }
    let text = std::str::from_utf8(raw).map_err(|_| "not a float")?;
    Ok(Some(text))
}

/// Whether a float's mantissa has a digit other than zero (a value that must not read as zero).
fn nonzero_mantissa(text: &str) -> bool {
    text.split(['e', 'E'])
        .next()
        .is_some_and(|m| m.bytes().any(|b| (b'1'..=b'9').contains(&b)))
}

/// `real` and `double precision`.
trait Float: std::str::FromStr + Copy {
    /// NaN, infinity and minus infinity, in the order of their words in [`float`].
    const SPECIAL: [Self; 3];
    fn is_finite(self) -> bool;
    fn is_zero(self) -> bool;
}

impl Float for f32 {
    const SPECIAL: [f32; 3] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    fn is_zero(self) -> bool {
        self == 0.0
    }
}

impl Float for f64 {
    const SPECIAL: [f64; 3] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    fn is_zero(self) -> bool {
        self == 0.0
    }
}

fn float<F: Float>(raw: &[u8]) -> Result<F, &'static str> {
    let Some(text) = float_text(raw)? else {
        let [nan, infinity, minus_infinity] = F::SPECIAL;
        return Ok(match raw {
            b"NaN" => nan,
            b"Infinity" => infinity,
            _ => minus_infinity,
        });
    };
    let value: F = text.parse().map_err(|_| "not a float")?;
    // The server refuses what overflows or underflows to zero; so must the conversion.
    if !value.is_finite() || (value.is_zero() && nonzero_mantissa(text)) {
        return Err("out of range for its float type");
    }
    Ok(value)
}

/// `numeric`'s binary sign words.
const NUMERIC_POSITIVE: u16 = 0x0000;
const NUMERIC_NEGATIVE: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PLUS_INFINITY: u16 = 0xD000;
const NUMERIC_MINUS_INFINITY: u16 = 0xF000;
/// The largest display scale a numeric records.
const NUMERIC_MAX_SCALE: usize = 0x3FFF;

/// Appends a numeric as the server writes it (`-12.340`, `NaN`, `Infinity`) in binary: digit
/// count, weight (of the first base-10000 digit), sign, display scale, then the base-10000 digits,
/// without leading or trailing zero digits (the form the server stores).
fn numeric(raw: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    let special = match raw {
        b"NaN" => Some(NUMERIC_NAN),
        b"Infinity" => Some(NUMERIC_PLUS_INFINITY),
        b"-Infinity" => Some(NUMERIC_MINUS_INFINITY),
        _ => None,
    };
    if let Some(sign) = special {
        put_numeric_special(out, sign);
        return Ok(());
    }
    let (negative, body) = match raw.strip_prefix(b"-") {
        Some(body) => (true, body),
        None => (false, raw),
    };
    let (whole, fraction) = match memchr::memchr(b'.', body) {
        Some(dot) => (&body[..dot], &body[dot + 1..]),
        None => (body, &body[body.len()..]),
    };
    let has_dot = whole.len() < body.len();
    if whole.is_empty()
        || (has_dot && fraction.is_empty())
        || !whole.iter().chain(fraction).all(u8::is_ascii_digit)
    {
        return Err("not a numeric");
    }
    if fraction.len() > NUMERIC_MAX_SCALE {
        return Err("scale out of range for numeric");
    }
    let whole = &whole[whole.iter().take_while(|&&d| d == b'0').count()..];
    // Base-10000 digits line up on the decimal point: the whole part is padded on the left to
    // a multiple of four decimal digits, the fraction on the right.
    let lead = (4 - whole.len() % 4) % 4;
    let trail = (4 - fraction.len() % 4) % 4;
    let decimals = std::iter::repeat_n(b'0', lead)
        .chain(whole.iter().copied())
        .chain(fraction.iter().copied())
        .chain(std::iter::repeat_n(b'0', trail));
    // The header is written once the digits are known; they are written as they are made,
    // without the leading zero digits, and cut after the last digit that is not zero.
    let start = out.len();
    out.extend_from_slice(&[0; 12]);
    let mut weight = ((lead + whole.len()) / 4) as i64 - 1;
    let mut significant_end = out.len();
    let (mut digit, mut decimals_in_digit) = (0u16, 0);
    for d in decimals {
        digit = digit * 10 + u16::from(d - b'0');
        decimals_in_digit += 1;
        if decimals_in_digit < 4 {
            continue;
        }
        if significant_end == start + 12 && digit == 0 {
            weight -= 1;
        } else {
            out.extend_from_slice(&digit.to_be_bytes());
            if digit != 0 {
                significant_end = out.len();
            }
        }
        (digit, decimals_in_digit) = (0, 0);
    }
    out.truncate(significant_end);
    let count = (significant_end - start - 12) / 2;
    let (weight, sign) = if count == 0 {
        // Zero is positive, whatever its text said.
        (0, NUMERIC_POSITIVE)
    } else {
        let weight = i16::try_from(weight).map_err(|_| "out of range for numeric")?;
        (
            weight,
            if negative {
                NUMERIC_NEGATIVE
            } else {
                NUMERIC_POSITIVE
            },
        )
    };
    let count = u16::try_from(count).map_err(|_| "out of range for numeric")?;
    let length = (significant_end - start - 4) as i32;
    let header = &mut out[start..start + 12];
    header[..4].copy_from_slice(&length.to_be_bytes());
    header[4..6].copy_from_slice(&count.to_be_bytes());
    header[6..8].copy_from_slice(&weight.to_be_bytes());
    header[8..10].copy_from_slice(&sign.to_be_bytes());
    header[10..12].copy_from_slice(&(fraction.len() as u16).to_be_bytes());
    Ok(())
}

/// A numeric without digits (NaN, an infinity) of sign word `sign`.
fn put_numeric_special(out: &mut Vec<u8>, sign: u16) {
    out.extend_from_slice(&8i32.to_be_bytes());
    for word in [0, 0, sign, 0] {
        out.extend_from_slice(&word.to_be_bytes());
    }
}

/// Days from 2000-01-01 (binary `date`'s origin) of the earliest date the server accepts
/// (Julian day 0, 4714-11-24 BC), and one past its latest (5874897-12-31).
const DATE_FIRST: i64 = -2_451_545;
const DATE_END: i64 = 2_145_031_949;

/// A date as the server writes it under `DateStyle` ISO (`2024-02-29`, `0044-03-15 BC`,
/// `infinity`) as days from 2000-01-01, the proleptic Gregorian calendar throughout.
fn date(raw: &[u8]) -> Result<i32, &'static str> {
    match raw {
        b"infinity" => return Ok(i32::MAX),
        b"-infinity" => return Ok(i32::MIN),
        _ => {}
    }
    let (ymd, before_christ) = match raw.strip_suffix(b" BC") {
        Some(ymd) => (ymd, true),
        None => (raw, false),
    };
    let days = civil_days(ymd, before_christ)?;
    if !(DATE_FIRST..DATE_END).contains(&days) {
        return Err("out of range for date");
    }
    i32::try_from(days).map_err(|_| "out of range for date")
}

/// Days from 2000-01-01 of an ISO `YYYY-MM-DD` date (four digits or more in the year), of the
/// era before Christ if `before_christ`.
fn civil_days(ymd: &[u8], before_christ: bool) -> Result<i64, &'static str> {
    // `YYYY-MM-DD`, the year of four digits or more.
    let Some((year, month_day)) = ymd.split_at_checked(ymd.len().wrapping_sub(6)) else {
        return Err("not an ISO date");
    };
    let two_digits = |a: u8, b: u8| {
        (a.is_ascii_digit() && b.is_ascii_digit()).then(|| i64::from((a - b'0') * 10 + b - b'0'))
    };
    let (Some(year), &[b'-', m0, m1, b'-', d0, d1]) = (digits(year, 4..=7), month_day) else {
        return Err("not an ISO date");
    };
    let (Some(month), Some(day)) = (two_digits(m0, m1), two_digits(d0, d1)) else {
        return Err("not an ISO date");
    };
    if year == 0 {
        return Err("not an ISO date");
    }
    // 1 BC is year 0 of the astronomical count, which the calendar arithmetic uses.
    let year = if before_christ { 1 - year } else { year };
    let leap = year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err("not an ISO date"),
    };
    if !(1..=month_days).contains(&day) {
        return Err("not an ISO date");
    }
    Ok(days_from_2000(year, month, day))
}

/// A number of `width` decimal digits.
fn digits(part: &[u8], width: std::ops::RangeInclusive<usize>) -> Option<i64> {
    (width.contains(&part.len()) && part.iter().all(u8::is_ascii_digit))
        .then(|| part.iter().fold(0, |n, &d| n * 10 + i64::from(d - b'0')))
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;
/// The microseconds from 2000-01-01 00:00 of the earliest timestamp the server accepts
/// (4714-11-24 00:00 BC) and of one past its latest (294277-01-01 00:00).
const TIMESTAMP_FIRST: i64 = DATE_FIRST * MICROS_PER_DAY;
const TIMESTAMP_END: i64 = 9_223_371_331_200_000_000;

/// A time of day as the server writes it: `HH:MM:SS` and up to six digits of fraction (`24:00:00`
/// only where `end_of_day` may be), in microseconds; and what follows it.
fn time_of_day(raw: &[u8], end_of_day: bool) -> Result<(i64, &[u8]), &'static str> {
    const BAD: &str = "not an ISO time";
    if raw.len() < 8 || raw[2] != b':' || raw[5] != b':' {
        return Err(BAD);
    }
    let (Some(hour), Some(minute), Some(second)) = (
        digits(&raw[..2], 2..=2),
        digits(&raw[3..5], 2..=2),
        digits(&raw[6..8], 2..=2),
    ) else {
        return Err(BAD);
    };
    let mut rest = &raw[8..];
    let mut fraction = 0;
    if let Some(after_point) = rest.strip_prefix(b".") {
        let count = after_point
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let value = digits(&after_point[..count], 1..=6).ok_or(BAD)?;
        fraction = value * 10i64.pow(6 - count as u32);
        rest = &after_point[count..];
    }
    let whole_day = end_of_day && hour == 24 && minute == 0 && second == 0 && fraction == 0;
    if !whole_day && (hour > 23 || minute > 59 || second > 59) {
        return Err(BAD);
    }
    Ok((
        ((hour * 60 + minute) * 60 + second) * MICROS_PER_SECOND + fraction,
        rest,
    ))
}

/// A timestamp as the server writes it under `DateStyle` ISO (`2024-02-29 13:45:00.25`, with
/// the session's offset `+05:30` if `with_zone`, then ` BC` for the era before Christ), in
/// microseconds from 2000-01-01 00:00 (UTC with a zone).
fn timestamp(raw: &[u8], with_zone: bool) -> Result<i64, &'static str> {
    const BAD: &str = "not an ISO timestamp";
    match raw {
        b"infinity" => return Ok(i64::MAX),
        b"-infinity" => return Ok(i64::MIN),
        _ => {}
    }
    let (stamp, before_christ) = match raw.strip_suffix(b" BC") {
        Some(stamp) => (stamp, true),
        None => (raw, false),
    };
    let space = memchr::memchr(b' ', stamp).ok_or(BAD)?;
    let days = civil_days(&stamp[..space], before_christ)?;
    let (time, zone) = time_of_day(&stamp[space + 1..], false)?;
    let offset = if with_zone {
        zone_offset(zone)?
    } else if zone.is_empty() {
        0
    } else {
        return Err(BAD);
    };
    let micros = days * MICROS_PER_DAY + time - offset * MICROS_PER_SECOND;
    if !(TIMESTAMP_FIRST..TIMESTAMP_END).contains(&micros) {
        return Err("out of range for timestamp");
    }
    Ok(micros)
}

/// A zone offset as the server writes it: `+HH`, `-HH:MM` or `+HH:MM:SS`, in seconds east.
fn zone_offset(raw: &[u8]) -> Result<i64, &'static str> {
    const BAD: &str = "not a zone offset";
    let (sign, rest) = match raw.split_first() {
        Some((b'+', rest)) => (1, rest),
        Some((b'-', rest)) => (-1, rest),
        _ => return Err(BAD),
    };
    let mut seconds = 0;
    for (i, part) in rest.split(|&b| b == b':').enumerate() {
        let value = digits(part, 2..=2).ok_or(BAD)?;
        if i > 2 || (i > 0 && value > 59) {
            return Err(BAD);
        }
        seconds = seconds * 60 + value;
    }
    // Whatever parts were written, the first is hours: scale up to seconds.
    let parts = rest.split(|&b| b == b':').count() as u32;
    Ok(sign * seconds * 60i64.pow(3 - parts))
}

/// A `time without time zone` as the server writes it, in microseconds from midnight.
fn time(raw: &[u8]) -> Result<i64, &'static str> {
    match time_of_day(raw, true)? {
        (micros, []) => Ok(micros),
        _ => Err("not an ISO time"),
    }
}

/// Days from 2000-01-01 to a date of the proleptic Gregorian calendar (astronomical year): the
/// count of whole 400-year cycles (146,097 days each) from a March-based year, as in Howard
/// Hinnant's `days_from_civil`.
fn days_from_2000(year: i64, month: i64, day: i64) -> i64 {
    // Years start in March, so that February's leap day ends a year.
    let year = if month <= 2 { year - 1 } else { year };
    let cycle = year.div_euclid(400);
    let year_of_cycle = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_cycle = year_of_cycle * 365 + year_of_cycle / 4 - year_of_cycle / 100 + day_of_year;
    // 2000-03-01 starts cycle 5; 2000-01-01 is 60 days before it.
    (cycle - 5) * 146_097 + day_of_cycle + 60
}

/// A uuid as the server writes it: 32 lowercase hex digits in groups of 8-4-4-4-12.
fn uuid(raw: &[u8]) -> Result<[u8; 16], &'static str> {
    if raw.len() != 36
        || [8, 13, 18, 23].iter().any(|&i| raw[i] != b'-')
        || raw.iter().any(u8::is_ascii_uppercase)
    {
        return Err("not a uuid");
    }
    let mut bytes = [0u8; 16];
    // Each group of hex digits and the bytes it spells.
    for (digits, spelled) in [
        (0..8, 0..4),
        (9..13, 4..6),
        (14..18, 6..8),
        (19..23, 8..10),
        (24..36, 10..16),
    ] {
        hex::decode_to_slice(&raw[digits], &mut bytes[spelled]).map_err(|_| "not a uuid")?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn field(kind: ColumnKind, raw: &str) -> Result<Vec<u8>, &'static str> {
        let mut out = Vec::new();
        write_field(kind, raw.as_bytes(), &mut out)?;
        let length = i32::from_be_bytes(out[..4].try_into().expect("4 bytes"));
        assert_eq!(usize::try_from(length).ok(), Some(out.len() - 4));
        Ok(out[4..].to_vec())
    }

    fn numeric_parts(raw: &str) -> (Vec<u16>, i16, u16, u16) {
        let bytes = field(ColumnKind::Numeric, raw).expect("a numeric");
        let word = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
        let count = usize::from(word(0));
        let digits = (0..count).map(|i| word(8 + 2 * i)).collect();
        (digits, word(2) as i16, word(4), word(6))
    }

    #[test]
    fn types_are_recognised_only_in_format_types_spelling() {
        for (name, converted) in [
            ("integer", true),
            ("numeric(15,2)", true),
            ("numeric", true),
            ("character varying(44)", true),
            ("character(1)", true),
            ("double precision", true),
            ("integer[]", false),
            ("public.integer", false),
            ("integer(3)", false),
            ("timestamp with time zone", true),
            ("numeric(15,2", false),
            ("bytea", true),
            ("bytea(3)", false),
            ("timestamp(3) with time zone", true),
            ("timestamp without time zone", true),
            ("time(6) without time zone", true),
            ("time with time zone", false),
            ("timestamp(3 with time zone", false),
        ] {
            assert_eq!(ColumnKind::of(name).is_some(), converted, "{name}");
        }
        assert!(BinaryRows::for_types([]).is_none());
        assert!(BinaryRows::for_types(["integer", "json"]).is_none());
    }

    #[test]
    fn numerics_are_base_10000_digits_aligned_on_the_point() {
        assert_eq!(numeric_parts("12345.678"), (vec![1, 2345, 6780], 1, 0, 3));
        assert_eq!(numeric_parts("-0.0001"), (vec![1], -1, 0x4000, 4));
        assert_eq!(numeric_parts("0.00001"), (vec![1000], -2, 0, 5));
        assert_eq!(numeric_parts("100000000"), (vec![1], 2, 0, 0));
        assert_eq!(numeric_parts("0"), (vec![], 0, 0, 0));
        assert_eq!(numeric_parts("-0.00"), (vec![], 0, 0, 2));
        assert_eq!(numeric_parts("NaN"), (vec![], 0, 0xC000, 0));
        assert_eq!(numeric_parts("-Infinity"), (vec![], 0, 0xF000, 0));
        for bad in ["", "-", "1.", ".5", "1e5", "+1", " 1", "1.2.3", "inf"] {
            assert!(field(ColumnKind::Numeric, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dates_count_days_from_2000() {
        let days = |raw: &str| {
            field(ColumnKind::Date, raw).map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")))
        };
        assert_eq!(days("2000-01-01"), Ok(0));
        assert_eq!(days("1999-12-31"), Ok(-1));
        assert_eq!(days("2000-03-01"), Ok(60));
        assert_eq!(days("1970-01-01"), Ok(-10957));
        assert_eq!(days("4714-11-24 BC"), Ok(-2_451_545));
        assert_eq!(days("0001-01-01"), Ok(-730_119));
        assert_eq!(days("0001-12-31 BC"), Ok(-730_120));
        assert_eq!(days("5874897-12-31"), Ok(2_145_031_948));
        assert_eq!(days("infinity"), Ok(i32::MAX));
        assert_eq!(days("-infinity"), Ok(i32::MIN));
        for bad in [
            "2023-02-29",
            "2000-13-01",
            "2000-00-10",
            "4714-11-23 BC",
            "5874898-01-01",
            "0000-01-01",
            "20-01-01",
            "2000-1-01",
            "2000-01-01 AD",
            "epoch",
        ] {
            assert!(days(bad).is_err(), "{bad}");
        }
        assert_eq!(days("2024-02-29"), Ok(8825));
        assert_eq!(days("0001-02-29 BC"), Ok(-730_426));
    }

    #[test]
    fn timestamps_count_microseconds_from_2000_in_utc() {
        let micros = |kind, raw: &str| {
            field(kind, raw).map(|b| i64::from_be_bytes(b.try_into().expect("8 bytes")))
        };
        let stamp = |raw| micros(ColumnKind::Timestamp, raw);
        let zoned = |raw| micros(ColumnKind::TimestampTz, raw);
        assert_eq!(stamp("2000-01-01 00:00:00"), Ok(0));
        assert_eq!(stamp("1999-12-31 23:59:59.999999"), Ok(-1));
        assert_eq!(stamp("2000-01-02 00:00:00.5"), Ok(86_400_500_000));
        assert_eq!(stamp("4714-11-24 00:00:00 BC"), Ok(TIMESTAMP_FIRST));
        assert_eq!(stamp("294276-12-31 23:59:59.999999"), Ok(TIMESTAMP_END - 1));
        assert_eq!(stamp("infinity"), Ok(i64::MAX));
        assert_eq!(zoned("2000-01-01 01:00:00+01"), Ok(0));
        assert_eq!(zoned("2000-01-01 05:30:00+05:30"), Ok(0));
        assert_eq!(zoned("1999-12-31 23:00:00-01"), Ok(0));
        assert_eq!(
            zoned("1900-01-01 00:19:32+00:19:32"),
            stamp("1900-01-01 00:00:00")
        );
        assert_eq!(
            zoned("0044-03-15 12:00:00+00:53:28 BC"),
            stamp("0044-03-15 11:06:32 BC")
        );
        assert_eq!(zoned("-infinity"), Ok(i64::MIN));
        for bad in [
            "2000-01-01",
            "2000-01-01T00:00:00",
            "2000-01-01 24:00:00",
            "2000-01-01 00:00",
            "2000-01-01 00:00:00.1234567",
            "2000-01-01 00:00:00.",
            "2000-01-01 00:00:00+01",
            "4714-11-23 23:59:59 BC",
            "294277-01-01 00:00:00",
        ] {
            assert!(stamp(bad).is_err(), "{bad}");
        }
        for bad in [
            "2000-01-01 00:00:00",
            "2000-01-01 00:00:00+1",
            "2000-01-01 00:00:00+01:60",
        ] {
            assert!(zoned(bad).is_err(), "{bad}");
        }
        let time = |raw| micros(ColumnKind::Time, raw);
        assert_eq!(time("00:00:00"), Ok(0));
        assert_eq!(time("24:00:00"), Ok(86_400_000_000));
        assert_eq!(time("13:45:01.25"), Ok(49_501_250_000));
        for bad in ["24:00:00.1", "24:00:01", "12:60:00", "12:00:00+01", "12:00"] {
            assert!(time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn integers_floats_and_others_take_only_the_servers_forms() {
        assert_eq!(field(ColumnKind::Int2, "-32768"), Ok(vec![0x80, 0]));
        assert!(field(ColumnKind::Int2, "32768").is_err());
        assert_eq!(
            field(ColumnKind::Int8, "-9223372036854775808"),
            Ok(i64::MIN.to_be_bytes().to_vec())
        );
        assert!(field(ColumnKind::Int8, "9223372036854775808").is_err());
        for bad in ["", "+1", " 1", "1 ", "0x10", "--1", "1e3"] {
            assert!(field(ColumnKind::Int4, bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            field(ColumnKind::Float8, "-0"),
            Ok((-0.0f64).to_bits().to_be_bytes().to_vec())
        );
        assert_eq!(
            field(ColumnKind::Float8, "1e+100"),
            Ok(1e100f64.to_bits().to_be_bytes().to_vec())
        );
        assert_eq!(
            field(ColumnKind::Float4, "Infinity"),
            Ok(f32::INFINITY.to_bits().to_be_bytes().to_vec())
        );
        for bad in [
            "inf", "nan", "+1", "1e999", "1e-999", ".5", "infinity", "1_0",
        ] {
            assert!(field(ColumnKind::Float8, bad).is_err(), "{bad:?}");
        }
        assert!(field(ColumnKind::Float4, "1e39").is_err());
        assert_eq!(field(ColumnKind::Bool, "t"), Ok(vec![1]));
        assert!(field(ColumnKind::Bool, "true").is_err());
        assert_eq!(
            field(ColumnKind::Uuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            Ok(vec![
                0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
                0x0a, 0x11
            ])
        );
        assert!(field(ColumnKind::Uuid, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11").is_err());
        assert_eq!(
            field(ColumnKind::Characters, "a\\tb\\\\"),
            Ok(b"a\tb\\".to_vec())
        );
        // COPY text doubles the backslash of bytea's `\x`.
        assert_eq!(field(ColumnKind::Bytea, r"\\x00fF"), Ok(vec![0, 255]));
        assert_eq!(field(ColumnKind::Bytea, r"\\x"), Ok(vec![]));
        for bad in [r"\\x0", r"\\x0g", r"\\001", r"\x00", "abc", ""] {
            assert!(field(ColumnKind::Bytea, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rows_become_tuples_and_nulls_have_no_value() {
        let rows = BinaryRows::for_types(["integer", "text"]).expect("converted");
        let mut out = Vec::new();
        rows.convert(b"7\t\\N\n-1\tx\n", &mut out)
            .expect("converts");
        let expected: Vec<u8> = [
            &[0, 2][..],
            &[0, 0, 0, 4, 0, 0, 0, 7],
            &[0xff, 0xff, 0xff, 0xff],
            &[0, 2],
            &[0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff],
            &[0, 0, 0, 1, b'x'],
        ]
        .concat();
        assert_eq!(out, expected);
        let short = rows.convert(b"7\t\\N\n1\n", &mut Vec::new());
        assert_eq!(short.map_err(|e| (e.row, e.column)), Err((1, 1)));
        let long = rows.convert(b"7\ta\tb\n", &mut Vec::new());
        assert_eq!(long.map_err(|e| (e.row, e.column)), Err((0, 2)));
    }

    proptest! {
        #[test]
        fn integers_read_back_as_written(value: i64) {
            prop_assert_eq!(integer(value.to_string().as_bytes()), Ok(value));
        }

        #[test]
        fn floats_read_back_bit_for_bit(bits: u64) {
            let value = f64::from_bits(bits);
            prop_assume!(value.is_finite());
            // Rust's shortest round-trip form, as the server's (exponent spelled differently).
            let text = format!("{value:e}");
            prop_assert_eq!(float::<f64>(text.as_bytes()).map(f64::to_bits), Ok(bits));
        }

        #[test]
        fn reals_read_back_bit_for_bit(bits: u32) {
            let value = f32::from_bits(bits);
            prop_assume!(value.is_finite());
            let text = format!("{value:e}");
            prop_assert_eq!(float::<f32>(text.as_bytes()).map(f32::to_bits), Ok(bits));
        }

        #[test]
        fn timestamps_read_back_as_their_microseconds(
            micros in TIMESTAMP_FIRST + MICROS_PER_DAY..TIMESTAMP_END - MICROS_PER_DAY,
            offset in -57_599i64..=57_599,
        ) {
            let text = stamp_text(micros, offset);
            prop_assert_eq!(timestamp(text.as_bytes(), true), Ok(micros), "{}", text);
        }

        #[test]
        fn dates_read_back_as_their_day_counts(days in DATE_FIRST..DATE_END) {
            // The date is found by the inverse arithmetic, written as the server writes it.
            let (y, m, d) = civil_from_2000(days);
            let text = iso(y, m, d);
            prop_assert_eq!(date(text.as_bytes()).map(i64::from), Ok(days), "{}", text);
        }

        #[test]
        fn numerics_spell_back_as_the_server_writes_them(
            whole in "0|[1-9][0-9]{0,40}",
            fraction in proptest::option::of("[0-9]{1,40}"),
            negative: bool,
        ) {
            let fraction = fraction.map(|f| format!(".{f}")).unwrap_or_default();
            let text = format!("{}{whole}{fraction}", if negative { "-" } else { "" });
            let (digits, weight, sign, scale) = numeric_parts(&text);
            prop_assert!(digits.first() != Some(&0) && digits.last() != Some(&0));
            let spelled = spell(&digits, weight, sign, scale);
            // Negative zero is zero.
            let expected = if digits.is_empty() { text.trim_start_matches('-') } else { &text };
            prop_assert_eq!(spelled, expected);
        }
    }

    /// A binary numeric written out as `numeric_out` does: the whole part without leading
    /// zeros (at least one digit) and exactly `scale` digits after the point.
    fn spell(digits: &[u16], weight: i16, sign: u16, scale: u16) -> String {
        let decimal: String = digits.iter().map(|d| format!("{d:04}")).collect();
        // Decimal digits before the point in `decimal`, counted from its start.
        let point = (i64::from(weight) + 1) * 4;
        let digit = |i: i64| -> char {
            usize::try_from(i)
                .ok()
                .and_then(|i| decimal.as_bytes().get(i))
                .map_or('0', |&b| b as char)
        };
        let whole: String = (point.min(0)..point).map(digit).collect();
        let whole = whole.trim_start_matches('0');
        let mut text = String::new();
        if sign == 0x4000 {
            text.push('-');
        }
        text.push_str(if whole.is_empty() { "0" } else { whole });
        if scale > 0 {
            text.push('.');
            text.extend((point..point + i64::from(scale)).map(digit));
        }
        text
    }

    /// The date `days` from 2000-01-01 (astronomical year), by counting from the other side.
    fn civil_from_2000(days: i64) -> (i64, i64, i64) {
        let z = days - 60 + 5 * 146_097;
        let cycle = z.div_euclid(146_097);
        let day_of_cycle = z.rem_euclid(146_097);
        let year_of_cycle = (day_of_cycle - day_of_cycle / 1460 + day_of_cycle / 36524
            - day_of_cycle / 146_096)
            / 365;
        let day_of_year =
            day_of_cycle - (365 * year_of_cycle + year_of_cycle / 4 - year_of_cycle / 100);
        let month_from_march = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
        let month = if month_from_march < 10 {
            month_from_march + 3
        } else {
            month_from_march - 9
        };
        let year = year_of_cycle + cycle * 400 + if month <= 2 { 1 } else { 0 };
        (year, month, day)
    }

    /// A timestamp as the server writes it in a zone `offset` seconds east of UTC.
    fn stamp_text(micros: i64, offset: i64) -> String {
        let local = micros + offset * MICROS_PER_SECOND;
        let (y, m, d) = civil_from_2000(local.div_euclid(MICROS_PER_DAY));
        let of_day = local.rem_euclid(MICROS_PER_DAY);
        let seconds = of_day / MICROS_PER_SECOND;
        let mut time = format!(
            "{:02}:{:02}:{:02}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        );
        let fraction = of_day % MICROS_PER_SECOND;
        if fraction > 0 {
            time.push_str(format!(".{fraction:06}").trim_end_matches('0'));
        }
        let sign = if offset < 0 { '-' } else { '+' };
        let east = offset.abs();
        let mut zone = format!("{sign}{:02}", east / 3600);
        if east % 3600 != 0 {
            zone.push_str(&format!(":{:02}", east / 60 % 60));
        }
        if east % 60 != 0 {
            zone.push_str(&format!(":{:02}", east % 60));
        }
        let date = iso(y, m, d);
        match date.strip_suffix(" BC") {
            Some(date) => format!("{date} {time}{zone} BC"),
            None => format!("{date} {time}{zone}"),
        }
    }

    fn iso(year: i64, month: i64, day: i64) -> String {
        if year <= 0 {
            format!("{:04}-{month:02}-{day:02} BC", 1 - year)
        } else {
            format!("{year:04}-{month:02}-{day:02}")
        }
    }
}
