//! Large objects' contents as a binary record stream. A large-object chunk's payload (what its
//! zstd frame decompresses to) is a run of records, each one piece of one object:
//!
//! ```text
//! oid u32 big-endian | offset u64 big-endian | length u32 big-endian | length bytes
//! ```
//!
//! Pieces are read at multiples of [`PIECE_SIZE`] and are that long except an object's last
//! (an empty object has no record; a chunk never splits a record). Records may arrive in any
//! order: writing each piece at its offset rebuilds the object, so a reader never needs a whole
//! object at once. The content digest is the [`ContentDigest`] sum over every record's bytes
//! (header and data), which is the same however the pieces are spread over chunks.

use crate::ContentDigest;

/// The size of the pieces contents are read in, and the largest record's data.
pub const PIECE_SIZE: u32 = 256 << 10;

/// Bytes before each record's data: oid, offset, length.
pub const RECORD_HEADER_LEN: usize = 16;

/// One piece of one large object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LargeObjectPiece<'a> {
    pub oid: u32,
    pub offset: u64,
    pub data: &'a [u8],
}

impl LargeObjectPiece<'_> {
    /// The record header for this piece.
    pub fn header(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut header = [0u8; RECORD_HEADER_LEN];
        header[..4].copy_from_slice(&self.oid.to_be_bytes());
        header[4..12].copy_from_slice(&self.offset.to_be_bytes());
        // Pieces are at most PIECE_SIZE long; `append_record` refuses longer ones.
        let length = u32::try_from(self.data.len()).unwrap_or(u32::MAX);
        header[12..].copy_from_slice(&length.to_be_bytes());
        header
    }

    /// Adds this piece's record to `digest`.
    pub fn add_to(&self, digest: &mut ContentDigest) {
        digest.add_parts(&[&self.header(), self.data]);
    }

    /// Bytes the record takes in the stream.
    pub fn record_len(&self) -> usize {
        RECORD_HEADER_LEN + self.data.len()
    }
}

/// Appends `piece` as one record to `stream`. Returns `false` (and appends nothing) when the
/// piece is longer than a record may be.
pub fn append_record(stream: &mut Vec<u8>, piece: &LargeObjectPiece<'_>) -> bool {
    if piece.data.len() > PIECE_SIZE as usize {
        return false;
    }
    stream.extend_from_slice(&piece.header());
    stream.extend_from_slice(piece.data);
    true
}

/// The records of a record stream, in order; a malformed stream yields one error and ends.
pub fn records(stream: &[u8]) -> Records<'_> {
    Records { rest: stream }
}

#[derive(Debug, Clone)]
pub struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<LargeObjectPiece<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let Some((header, rest)) = self.rest.split_first_chunk::<RECORD_HEADER_LEN>() else {
            let left = self.rest.len();
            self.rest = &[];
            return Some(Err(format!(
                "ends in a {left}-byte fragment of a record header"
            )));
        };
        let [
            o0,
            o1,
            o2,
            o3,
            f0,
            f1,
            f2,
            f3,
            f4,
            f5,
            f6,
            f7,
            l0,
            l1,
            l2,
            l3,
        ] = *header;
        let oid = u32::from_be_bytes([o0, o1, o2, o3]);
        let offset = u64::from_be_bytes([f0, f1, f2, f3, f4, f5, f6, f7]);
        let length = u32::from_be_bytes([l0, l1, l2, l3]);
        let fail = |reason: String| {
            Some(Err(format!(
                "record for large object {oid} at offset {offset}: {reason}"
            )))
        };
        if length > PIECE_SIZE {
            self.rest = &[];
            return fail(format!(
                "length {length} exceeds the piece size {PIECE_SIZE}"
            ));
        }
        if offset.checked_add(u64::from(length)).is_none() {
            self.rest = &[];
            return fail("offset and length overflow".to_owned());
        }
        let Some((data, rest)) = rest.split_at_checked(length as usize) else {
            let left = rest.len();
            self.rest = &[];
            return fail(format!("records {length} bytes but only {left} follow"));
        };
        self.rest = rest;
        Some(Ok(LargeObjectPiece { oid, offset, data }))
    }
}

/// What a valid record stream holds, for checking it against a manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordTotals {
    pub records: u64,
    pub content_bytes: u64,
    pub digest: ContentDigest,
}

/// Parses a whole record stream, or says what is wrong with it.
pub fn record_totals(stream: &[u8]) -> Result<RecordTotals, String> {
    let mut totals = RecordTotals::default();
    for piece in records(stream) {
        let piece = piece?;
        totals.records += 1;
        totals.content_bytes += piece.data.len() as u64;
        piece.add_to(&mut totals.digest);
    }
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_of(pieces: &[LargeObjectPiece<'_>]) -> Vec<u8> {
        let mut stream = Vec::new();
        for piece in pieces {
            assert!(append_record(&mut stream, piece));
        }
        stream
    }

    #[test]
    fn records_round_trip_and_have_the_documented_layout() {
        let pieces = [
            LargeObjectPiece {
                oid: 0x0102_0304,
                offset: 0x0506,
                data: b"xyz",
            },
            LargeObjectPiece {
                oid: 7,
                offset: 1 << 40,
                data: b"",
            },
        ];
        let stream = stream_of(&pieces);
        assert_eq!(
            &stream[..RECORD_HEADER_LEN + 3],
            b"\x01\x02\x03\x04\0\0\0\0\0\0\x05\x06\0\0\0\x03xyz"
        );
        let parsed: Vec<_> = records(&stream).collect::<Result<_, _>>().expect("parses");
        assert_eq!(parsed, pieces);
        let totals = record_totals(&stream).expect("valid");
        assert_eq!((totals.records, totals.content_bytes), (2, 3));
    }

    #[test]
    fn digest_does_not_depend_on_how_records_are_grouped() {
        let a = LargeObjectPiece {
            oid: 1,
            offset: 0,
            data: b"first",
        };
        let b = LargeObjectPiece {
            oid: 2,
            offset: 0,
            data: b"second",
        };
        let together = record_totals(&stream_of(&[a, b])).expect("valid").digest;
        let apart = record_totals(&stream_of(&[b]))
            .expect("valid")
            .digest
            .combine(record_totals(&stream_of(&[a])).expect("valid").digest);
        assert_eq!(together, apart);
        let moved = LargeObjectPiece { offset: 1, ..a };
        assert_ne!(
            together,
            record_totals(&stream_of(&[moved, b]))
                .expect("valid")
                .digest,
            "the offset is part of the digest"
        );
    }

    #[test]
    fn malformed_streams_are_reported_not_misread() {
        let good = stream_of(&[LargeObjectPiece {
            oid: 9,
            offset: 0,
            data: b"0123456789",
        }]);
        let truncated = &good[..good.len() - 1];
        let err = record_totals(truncated).expect_err("truncated");
        assert!(
            err.contains("large object 9") && err.contains("only 9"),
            "{err}"
        );
        let err = record_totals(&good[..5]).expect_err("header fragment");
        assert!(err.contains("5-byte fragment"), "{err}");
        let mut too_long = good.clone();
        too_long[12..16].copy_from_slice(&(PIECE_SIZE + 1).to_be_bytes());
        let err = record_totals(&too_long).expect_err("too long");
        assert!(err.contains("exceeds the piece size"), "{err}");
        let oversized = vec![0u8; PIECE_SIZE as usize + 1];
        assert!(!append_record(
            &mut Vec::new(),
            &LargeObjectPiece {
                oid: 1,
                offset: 0,
                data: &oversized
            }
        ));
    }
}
