//! What a chunk records about its rows' primary key, so that a lookup by key can skip chunks
//! that cannot hold the rows it wants:
//!
//! - the **range** of the key's leading column (smallest and largest value, in the order the
//!   column's [`KeyOrder`] gives), recorded in the manifest; it prunes lookups on keys whose values
//!   are clustered in the data (serial ids, time-ordered ids, a composite key led by one);
//! - a **membership filter** (a Bloom filter) over the whole key, for keys whose values are not
//!   clustered (random uuids, a tenant id leading a key of interleaved rows). It is stored right
//!   after the chunk's zstd frame in the same data object, as a zstd *skippable frame*, so the
//!   object still decompresses with `zstd -dc` to the COPY text alone; the manifest records its
//!   offset, length and SHA-256.
//!
//! Values are compared as COPY prints them (the raw field bytes, escapes included): both sides
//! of a comparison come from COPY output, the dump's from the rows and a lookup's from the same
//! server formatting the lookup's literals. The filter is only built for keys whose types print
//! equal values identically (see `pgark_pg`), so that "printed differently" means "not equal".
//!
//! Filter frame: `50 2A 4D 18` (skippable frame magic `0x184D2A50`, little-endian), payload
//! length (u32 LE), then the payload: `K`, version `1`, the number of hash functions `k`, and
//! the bit array (bit `i` is bit `i % 8` of byte `i / 8`). A key's bits: `h` = XXH3-128 (seed
//! 0) of the key's fields joined by a tab; `h1` its low 64 bits, `h2` its high 64 bits with the
//! lowest bit set; bit `j` (for `j` in `0..k`) is `((h1 + j * h2) * m) >> 64`: the sum in
//! wrapping 64-bit arithmetic, the product in 128 bits (a multiply in place of a division), with
//! `m` the number of bits.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::ArchiveError;

/// How the values of a key's leading column are ordered, as COPY prints them; `None` on a
/// [`crate::LookupKey`] means they are not (no ranges are recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyOrder {
    /// `smallint`, `integer`, `bigint`: as numbers.
    Integer,
    /// `uuid`: as strings (the lower-case canonical form sorts as the bytes do).
    Uuid,
    /// `date`, `timestamp`, `timestamptz` printed in ISO style (in UTC): as strings, for years
    /// 1000 to 9999 (a chunk with other values records no range).
    Temporal,
    /// Text types: byte order. This is not the order of the database's collation, so it prunes
    /// lookups by equality only.
    Text,
}

/// The longest text value a range records; a chunk with a longer one records no range.
const MAX_RANGE_VALUE: usize = 256;

impl KeyOrder {
    /// Whether `value` (a raw COPY field) can be placed in this order.
    pub fn accepts(self, value: &str) -> bool {
        match self {
            KeyOrder::Integer => self.integer(value).is_some(),
            KeyOrder::Uuid => value.len() == 36,
            KeyOrder::Temporal => is_iso_temporal(value),
            KeyOrder::Text => value.len() <= MAX_RANGE_VALUE && value != "\\N",
        }
    }

    /// Compares two values this order [accepts](Self::accepts).
    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            KeyOrder::Integer => match (self.integer(a), self.integer(b)) {
                (Some(a), Some(b)) => a.cmp(&b),
                _ => a.cmp(b),
            },
            KeyOrder::Uuid | KeyOrder::Temporal | KeyOrder::Text => a.as_bytes().cmp(b.as_bytes()),
        }
    }

    /// The number an integer key's `value` is compared as; `None` for other orders, and for a
    /// value that is no integer.
    pub(crate) fn integer(self, value: &str) -> Option<i64> {
        match self {
            KeyOrder::Integer => value.parse().ok(),
            _ => None,
        }
    }

    /// Whether ranges (`<`, `>`, `BETWEEN`) can be decided in this order, not only equality.
    pub fn orders_like_sql(self) -> bool {
        !matches!(self, KeyOrder::Text)
    }
}

/// `YYYY-MM-DD`, optionally followed by ` HH:MM:SS`, a fraction, and `+00`: the forms whose
/// string order is their time order.
fn is_iso_temporal(value: &str) -> bool {
    let b = value.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    let date = b.len() >= 10 && digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-';
    if !date || !digits(8..10) || b[0] == b'0' {
        return false;
    }
    let mut rest = &b[10..];
    if rest.is_empty() {
        return true;
    }
    if rest.len() < 9 || rest[0] != b' ' || rest[3] != b':' || rest[6] != b':' {
        return false;
    }
    if ![1..3, 4..6, 7..9]
        .into_iter()
        .all(|r| rest[r].iter().all(u8::is_ascii_digit))
    {
        return false;
    }
    rest = &rest[9..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    rest.is_empty() || rest == b"+00"
}

/// Which fields of a table's COPY rows make its key, and how its leading one is ordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFields {
    /// 0-based positions of the key's columns in the COPY rows, in key order.
    pub fields: Vec<usize>,
    /// The leading column's order; `None` records no range.
    pub order: Option<KeyOrder>,
    /// Whether to build a membership filter over the whole key.
    pub filtered: bool,
}

/// Bits per key: about a 2% false-positive rate with 6 hash functions, for about 2% of the
/// stored size of a table of narrow rows keyed by random uuids (see `scripts/bench-key-lookups.sh`).
const BITS_PER_KEY: usize = 8;
const HASHES: u8 = 6;
const FILTER_MAGIC: u32 = 0x184D_2A50;
const FILTER_VERSION: u8 = 1;
/// Magic, length, then `K`, version and `k`.
const FILTER_HEADER: usize = 8 + 3;

/// The two hashes a key's bits derive from.
pub fn key_hash(key: &[u8]) -> (u64, u64) {
    let h = xxhash_rust::xxh3::xxh3_128(key);
    (h as u64, ((h >> 64) as u64) | 1)
}

/// Builds the filter frame for the keys whose hashes are given.
pub fn build_filter(hashes: &[(u64, u64)]) -> Vec<u8> {
    let bytes = (hashes.len() * BITS_PER_KEY).div_ceil(8).max(8);
    let bits = (bytes * 8) as u64;
    let mut frame = Vec::with_capacity(FILTER_HEADER + bytes);
    frame.extend_from_slice(&FILTER_MAGIC.to_le_bytes());
    let payload = u32::try_from(3 + bytes).unwrap_or(u32::MAX);
    frame.extend_from_slice(&payload.to_le_bytes());
    frame.extend_from_slice(&[b'K', FILTER_VERSION, HASHES]);
    frame.resize(FILTER_HEADER + bytes, 0);
    let array = &mut frame[FILTER_HEADER..];
    for &(h1, h2) in hashes {
        for j in 0..u64::from(HASHES) {
            let bit = bit_of(h1.wrapping_add(j.wrapping_mul(h2)), bits);
            array[(bit / 8) as usize] |= 1 << (bit % 8);
        }
    }
    frame
}

/// Maps a 64-bit hash onto `0..bits`.
fn bit_of(hash: u64, bits: u64) -> u64 {
    ((u128::from(hash) * u128::from(bits)) >> 64) as u64
}

/// A filter frame read back; check its SHA-256 against the manifest before parsing it.
#[derive(Debug)]
pub struct KeyFilter<'a> {
    hashes: u8,
    array: &'a [u8],
}

impl<'a> KeyFilter<'a> {
    pub fn parse(frame: &'a [u8]) -> Result<KeyFilter<'a>, ArchiveError> {
        let invalid = |reason: &str| ArchiveError::InvalidKeyFilter {
            reason: reason.to_owned(),
        };
        if frame.len() < FILTER_HEADER + 1 {
            return Err(invalid("shorter than its header"));
        }
        let word = |at: usize| {
            u32::from_le_bytes([frame[at], frame[at + 1], frame[at + 2], frame[at + 3]])
        };
        if word(0) != FILTER_MAGIC {
            return Err(invalid("not a key filter frame"));
        }
        if word(4) as usize != frame.len() - 8 {
            return Err(invalid("its length field disagrees with its size"));
        }
        if frame[8] != b'K' || frame[9] != FILTER_VERSION {
            return Err(invalid("unknown filter version"));
        }
        let hashes = frame[10];
        if hashes == 0 {
            return Err(invalid("no hash functions"));
        }
        Ok(KeyFilter {
            hashes,
            array: &frame[FILTER_HEADER..],
        })
    }

    /// Whether the chunk may hold a row with this key (the key's raw COPY fields joined by a
    /// tab); `false` is certain.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        let (h1, h2) = key_hash(key);
        let bits = self.array.len() as u64 * 8;
        (0..u64::from(self.hashes)).all(|j| {
            let bit = bit_of(h1.wrapping_add(j.wrapping_mul(h2)), bits);
            self.array[(bit / 8) as usize] & (1 << (bit % 8)) != 0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_hold_every_key_and_few_others() {
        let keys: Vec<String> = (0..5000).map(|i| format!("42\t{i}")).collect();
        let hashes: Vec<(u64, u64)> = keys.iter().map(|k| key_hash(k.as_bytes())).collect();
        let frame = build_filter(&hashes);
        assert_eq!(frame.len(), FILTER_HEADER + 5000 * BITS_PER_KEY / 8);
        let filter = KeyFilter::parse(&frame).expect("parses");
        assert!(keys.iter().all(|k| filter.may_contain(k.as_bytes())));
        let false_positives = (0..10_000)
            .filter(|i| filter.may_contain(format!("43\t{i}").as_bytes()))
            .count();
        assert!(false_positives < 400, "{false_positives} of 10000");
        // A skippable frame: zstd reads past it.
        let mut object = zstd::encode_all(&b"1\n"[..], 3).expect("zstd");
        object.extend_from_slice(&frame);
        assert_eq!(zstd::decode_all(&object[..]).expect("decodes"), b"1\n");
    }

    #[test]
    fn damaged_filters_are_refused() {
        let frame = build_filter(&[key_hash(b"1")]);
        assert!(KeyFilter::parse(&frame[..5]).is_err());
        let mut wrong = frame.clone();
        wrong[9] = 9;
        assert!(KeyFilter::parse(&wrong).is_err());
        let mut short = frame.clone();
        short.pop();
        assert!(KeyFilter::parse(&short).is_err());
    }

    #[test]
    fn orders_compare_as_sql_would_for_the_values_they_accept() {
        assert_eq!(KeyOrder::Integer.compare("-5", "3"), Ordering::Less);
        assert_eq!(KeyOrder::Integer.compare("10", "9"), Ordering::Greater);
        for ok in [
            "2024-01-31",
            "2024-01-31 10:00:00",
            "2024-01-31 10:00:00.5",
            "2024-01-31 10:00:00.123456+00",
        ] {
            assert!(KeyOrder::Temporal.accepts(ok), "{ok}");
        }
        for not in [
            "infinity",
            "0044-03-15 BC",
            "12024-01-01",
            "2024-01-31 10:00:00+02",
            "2024-01-31T10",
        ] {
            assert!(!KeyOrder::Temporal.accepts(not), "{not}");
        }
        // A whole second sorts before a fraction of it, with and without a zone.
        assert_eq!(
            KeyOrder::Temporal.compare("2024-01-31 10:00:00+00", "2024-01-31 10:00:00.5+00"),
            Ordering::Less
        );
        assert_eq!(
            KeyOrder::Temporal.compare("2024-01-31 10:00:00", "2024-01-31 10:00:00.5"),
            Ordering::Less
        );
        assert!(!KeyOrder::Text.orders_like_sql());
    }
}
