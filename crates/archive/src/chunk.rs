//! Chunk framing. A chunk is a run of whole COPY text rows compressed as one independent, standard
//! zstd frame (with zstd's own content checksum; with the content size too when the rows came at
//! once, not when they were compressed as they arrived), so `zstd -dc object` prints COPY text.
//! The SHA-256 recorded in the manifest covers the stored (compressed) bytes: a reader checks it
//! before handing the bytes to the decompressor, so nothing from a damaged chunk is ever decoded.

use std::cmp::Ordering;

use sha2::{Digest, Sha256};
use zstd::zstd_safe::{self, CCtx, CParameter, InBuffer, OutBuffer, ResetDirective};

use crate::key_summary::{self, KeyFields, KeyOrder};
use crate::large_objects::{self, RecordTotals};
use crate::seal::{DataKey, Piece};
use crate::{ArchiveError, ChunkEntry, ContentDigest, copy_text};

/// One compressed chunk, ready to append to a data object.
#[derive(Debug, Clone)]
pub struct EncodedChunk {
    pub frame: Vec<u8>,
    pub sha256: String,
    pub raw_length: u64,
    pub rows: u64,
    /// The rows' contribution to the table's content digest.
    pub content_digest: ContentDigest,
    /// Smallest and largest value of the key's leading field, as COPY prints them, when the key
    /// has an order and every row's value fits it (otherwise `None`: no range is recorded).
    pub key_range: Option<(String, String)>,
    /// The key membership filter frame (see `key_summary`), when the key is filtered.
    pub key_filter: Option<Vec<u8>>,
}

/// Compresses chunks, whole or as their rows arrive: [`Self::add_rows`] compresses each piece of
/// rows at once and keeps the chunk's row count, digest and key summary as it goes, so a reader
/// can compress what it has just read while it is still in cache, on its own thread, and
/// [`Self::finish`] completes the frame. Holds a reusable zstd context: keep one per thread or
/// per reader.
pub struct ChunkEncoder {
    zstd: CCtx<'static>,
    /// The chunk being built: its frame so far (the frame's header is written on the first
    /// rows), and what is known of its rows.
    frame: Vec<u8>,
    raw_length: u64,
    rows: u64,
    content_digest: ContentDigest,
    summary: Option<KeySummary>,
}

impl std::fmt::Debug for ChunkEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkEncoder")
            .field("raw_length", &self.raw_length)
            .finish_non_exhaustive()
    }
}

fn zstd_error(code: zstd_safe::ErrorCode) -> ArchiveError {
    ArchiveError::Compress(std::io::Error::other(zstd_safe::get_error_name(code)))
}

impl ChunkEncoder {
    pub fn new(level: i32) -> Result<Self, ArchiveError> {
        let mut zstd = CCtx::try_create().ok_or_else(|| {
            ArchiveError::Compress(std::io::Error::other("cannot create a zstd context"))
        })?;
        zstd.set_parameter(CParameter::CompressionLevel(level))
            .map_err(zstd_error)?;
        zstd.set_parameter(CParameter::ChecksumFlag(true))
            .map_err(zstd_error)?;
        Ok(ChunkEncoder {
            zstd,
            frame: Vec::new(),
            raw_length: 0,
            rows: 0,
            content_digest: ContentDigest::default(),
            summary: None,
        })
    }

    /// Starts a chunk whose rows' key is `key` (its range and filter are recorded), dropping
    /// what an unfinished one had.
    pub fn begin(&mut self, key: Option<&KeyFields>) -> Result<(), ArchiveError> {
        // A frame left unfinished (a failed COPY's) is dropped; after a finished one this is a
        // no-op, and cheaper than keeping track of which it was.
        self.zstd
            .reset(ResetDirective::SessionOnly)
            .map_err(zstd_error)?;
        self.frame.clear();
        self.raw_length = 0;
        self.rows = 0;
        self.content_digest = ContentDigest::default();
        self.summary = key.map(|key| KeySummary::new(key.clone()));
        Ok(())
    }

    /// Bytes of rows in the chunk being built.
    pub fn raw_length(&self) -> u64 {
        self.raw_length
    }

    /// Adds `rows_text`, which must hold whole COPY text rows (each ending in `\n`), to the
    /// chunk being built.
    pub fn add_rows(&mut self, rows_text: &[u8]) -> Result<(), ArchiveError> {
        if rows_text.is_empty() {
            return Ok(());
        }
        self.note_rows(rows_text);
        self.compress_some(
            rows_text,
            zstd_safe::zstd_sys::ZSTD_EndDirective::ZSTD_e_continue,
        )
    }

    /// Completes the chunk being built and starts the next with the same key.
    pub fn finish(&mut self) -> Result<EncodedChunk, ArchiveError> {
        self.compress_some(&[], zstd_safe::zstd_sys::ZSTD_EndDirective::ZSTD_e_end)?;
        Ok(self.take_chunk())
    }

    /// Compresses `rows_text`, which must hold whole COPY text rows (each ending in `\n`), and
    /// computes its content digest and, for `key`, its key range and filter. The rows are all
    /// there, so the frame records their size.
    pub fn encode(
        &mut self,
        rows_text: &[u8],
        key: Option<&KeyFields>,
    ) -> Result<EncodedChunk, ArchiveError> {
        self.begin(key)?;
        self.note_rows(rows_text);
        self.compress_some(
            rows_text,
            zstd_safe::zstd_sys::ZSTD_EndDirective::ZSTD_e_end,
        )?;
        Ok(self.take_chunk())
    }

    /// Counts `rows_text`'s rows into the chunk being built: its length, digest and key summary.
    fn note_rows(&mut self, rows_text: &[u8]) {
        for row in copy_text::rows(rows_text) {
            self.rows += 1;
            self.content_digest.add_row(row);
            if let Some(summary) = self.summary.as_mut() {
                summary.add(row);
            }
        }
        self.raw_length += rows_text.len() as u64;
    }

    /// The chunk just completed; the encoder starts the next with the same key.
    fn take_chunk(&mut self) -> EncodedChunk {
        let rows = std::mem::take(&mut self.rows);
        let (key_range, key_filter) = match self.summary.as_mut() {
            Some(summary) => summary.take(rows),
            None => (None, None),
        };
        // The next frame is likely about as large: its buffer is allocated once.
        let next = Vec::with_capacity(self.frame.len());
        let frame = std::mem::replace(&mut self.frame, next);
        EncodedChunk {
            sha256: sha256_hex(&frame),
            raw_length: std::mem::take(&mut self.raw_length),
            rows,
            content_digest: std::mem::take(&mut self.content_digest),
            key_range,
            key_filter,
            frame,
        }
    }

    /// Feeds `input` to the frame being built (begun by the first input) and, with
    /// `ZSTD_e_end`, ends it. Called with all of a chunk's rows and `ZSTD_e_end` at once, zstd
    /// knows the frame's size and records it in the header.
    fn compress_some(
        &mut self,
        input: &[u8],
        end: zstd_safe::zstd_sys::ZSTD_EndDirective,
    ) -> Result<(), ArchiveError> {
        let ending = end == zstd_safe::zstd_sys::ZSTD_EndDirective::ZSTD_e_end;
        let mut input = InBuffer::around(input);
        loop {
            // Room for what zstd may write in one call: one block's worth, or all of a small
            // input.
            let room =
                zstd_safe::CCtx::out_size().min(zstd_safe::compress_bound(input.src.len()) + 64);
            self.frame.reserve(room.max(64));
            let written = self.frame.len();
            let mut output = OutBuffer::around_pos(&mut self.frame, written);
            let remaining = self
                .zstd
                .compress_stream2(&mut output, &mut input, end)
                .map_err(zstd_error)?;
            let consumed = input.pos() == input.src.len();
            if consumed && (!ending || remaining == 0) {
                return Ok(());
            }
        }
    }
}

impl ChunkEncoder {
    /// Compresses a large-object record stream (see [`large_objects`]); `rows` counts its
    /// records and the content digest covers them. Fails if the stream is malformed.
    pub fn encode_large_objects(&mut self, stream: &[u8]) -> Result<EncodedChunk, ArchiveError> {
        let totals = large_objects::record_totals(stream)
            .map_err(|reason| ArchiveError::InvalidRecords { reason })?;
        self.begin(None)?;
        self.compress_some(stream, zstd_safe::zstd_sys::ZSTD_EndDirective::ZSTD_e_end)?;
        let frame = std::mem::take(&mut self.frame);
        Ok(EncodedChunk {
            sha256: sha256_hex(&frame),
            raw_length: stream.len() as u64,
            rows: totals.records,
            content_digest: totals.digest,
            key_range: None,
            key_filter: None,
            frame,
        })
    }
}

/// A chunk's key range and filter, gathered row by row.
struct KeySummary {
    key: KeyFields,
    /// The whole key's hash of every row so far, when the key is filtered: the filter is built
    /// from them at the chunk's end unless the keys were in order.
    hashes: Vec<(u64, u64)>,
    /// A row's key fields joined, reused.
    joined: Vec<u8>,
    /// `None` once a row's leading value does not fit the order.
    range: Option<(Leading, Leading)>,
    ranged: bool,
    /// Rows whose leading value is below the one before them: a chunk whose keys are in order
    /// (give or take a stray row: at most 1% descents) is pruned by its range alone, and no
    /// filter is built for it.
    descents: u64,
    /// The previous row's leading value (empty text before the first row).
    last: Leading,
}

/// A leading key value kept across rows: its text and, for an integer key, the number it
/// parses to, parsed once per row rather than at each of a row's three comparisons
/// ([`KeyOrder::compare`] compares integers as numbers).
#[derive(Default)]
struct Leading {
    text: String,
    integer: Option<i64>,
}

impl Leading {
    /// `value` as `order` places it, if it [accepts](KeyOrder::accepts) it.
    fn of(order: KeyOrder, value: &str) -> Option<(&str, Option<i64>)> {
        match order.integer(value) {
            Some(n) => Some((value, Some(n))),
            None => order.accepts(value).then_some((value, None)),
        }
    }

    fn set(&mut self, (text, integer): (&str, Option<i64>)) {
        text.clone_into(&mut self.text);
        self.integer = integer;
    }

    /// How `(text, integer)` compares with this value in `order`.
    fn compared(&self, order: KeyOrder, (text, integer): (&str, Option<i64>)) -> Ordering {
        match (integer, self.integer) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => order.compare(text, &self.text),
        }
    }
}

impl KeySummary {
    fn new(key: KeyFields) -> Self {
        KeySummary {
            ranged: key.order.is_some(),
            key,
            hashes: Vec::new(),
            joined: Vec::new(),
            range: None,
            descents: 0,
            last: Leading::default(),
        }
    }

    fn add(&mut self, row: &[u8]) {
        if self.key.filtered {
            self.joined.clear();
            for (n, &field) in self.key.fields.iter().enumerate() {
                if n > 0 {
                    self.joined.push(b'\t');
                }
                self.joined
                    .extend_from_slice(copy_text::raw_fields(row).nth(field).unwrap_or_default());
            }
            self.hashes.push(key_summary::key_hash(&self.joined));
        }
        let (Some(&leading), Some(order)) = (self.key.fields.first(), self.key.order) else {
            return;
        };
        if !self.ranged {
            return;
        }
        let value = copy_text::raw_fields(row)
            .nth(leading)
            .and_then(|raw| std::str::from_utf8(raw).ok())
            .and_then(|value| Leading::of(order, value));
        let Some(value) = value else {
            self.ranged = false;
            self.range = None;
            return;
        };
        match &mut self.range {
            None => {
                let (mut min, mut max) = (Leading::default(), Leading::default());
                min.set(value);
                max.set(value);
                self.range = Some((min, max));
            }
            Some((min, max)) => {
                if min.compared(order, value).is_lt() {
                    min.set(value);
                } else if max.compared(order, value).is_gt() {
                    max.set(value);
                }
            }
        }
        if !self.last.text.is_empty() && self.last.compared(order, value).is_lt() {
            self.descents += 1;
        }
        self.last.set(value);
    }

    /// The chunk's range, and a filter over every row's whole key unless the rows' keys were in
    /// order; starts over for the next chunk.
    fn take(&mut self, rows: u64) -> (Option<(String, String)>, Option<Vec<u8>>) {
        let in_order = self.ranged && self.descents * 100 <= rows;
        let filter = (self.key.filtered && !in_order && !self.hashes.is_empty())
            .then(|| key_summary::build_filter(&self.hashes));
        let range = self.range.take().filter(|_| self.ranged);
        self.hashes.clear();
        self.ranged = self.key.order.is_some();
        self.descents = 0;
        self.last = Leading::default();
        (range.map(|(min, max)| (min.text, max.text)), filter)
    }
}

/// Checks and decompresses chunks. Holds a reusable zstd context.
pub struct ChunkDecoder {
    decompressor: zstd::bulk::Decompressor<'static>,
}

impl std::fmt::Debug for ChunkDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkDecoder").finish_non_exhaustive()
    }
}

impl ChunkDecoder {
    pub fn new() -> Result<Self, ArchiveError> {
        let decompressor = zstd::bulk::Decompressor::new().map_err(ArchiveError::Compress)?;
        Ok(ChunkDecoder { decompressor })
    }

    /// Verifies `stored` against the manifest entry (length, SHA-256), opens it when `sealed`
    /// gives the backup's key and the table's id, then decompresses it into `rows_text`, whose
    /// contents it replaces, and checks the decoded size and row count; returns `rows_text`.
    /// `table` and `index` only name the chunk in errors. A buffer used again keeps its memory,
    /// where a new one's pages are each mapped and zeroed by the kernel as they are first
    /// written (for every chunk a restore loads).
    pub fn decode(
        &mut self,
        stored: &[u8],
        entry: &ChunkEntry,
        sealed: Option<(&DataKey, u32)>,
        (table, index): (&str, usize),
        mut rows_text: Vec<u8>,
    ) -> Result<Vec<u8>, ArchiveError> {
        let of = format!("table {table}");
        self.decode_frame(stored, entry, sealed, (&of, index), &mut rows_text)?;
        let corrupt = |reason: String| corrupt(entry, &of, index, reason);
        let rows = count_rows(&rows_text);
        if rows != entry.rows {
            return Err(corrupt(format!(
                "holds {rows} rows, the manifest records {}",
                entry.rows
            )));
        }
        if rows_text.last().is_some_and(|&b| b != b'\n') {
            return Err(corrupt("does not end at a row boundary".to_owned()));
        }
        Ok(rows_text)
    }

    /// Like [`decode`](Self::decode) for a large-object chunk: checks the stored bytes, then
    /// that the payload is a whole record stream with as many records as the entry's `rows`.
    pub fn decode_large_objects(
        &mut self,
        stored: &[u8],
        entry: &ChunkEntry,
        key: Option<&DataKey>,
        index: usize,
    ) -> Result<(Vec<u8>, RecordTotals), ArchiveError> {
        let sealed = key.map(|key| (key, LARGE_OBJECTS_TABLE));
        let mut stream = Vec::new();
        self.decode_frame(stored, entry, sealed, (LARGE_OBJECTS, index), &mut stream)?;
        let corrupt = |reason: String| corrupt(entry, LARGE_OBJECTS, index, reason);
        let totals = large_objects::record_totals(&stream).map_err(corrupt)?;
        if totals.records != entry.rows {
            return Err(corrupt(format!(
                "holds {} records, the manifest records {}",
                totals.records, entry.rows
            )));
        }
        Ok((stream, totals))
    }

    /// The checks every chunk gets: stored length, SHA-256 (before decompressing anything),
    /// authenticity under the backup's key when it is sealed, a valid zstd frame, and the
    /// decoded length. `of` and `index` name the chunk in errors.
    fn decode_frame(
        &mut self,
        stored: &[u8],
        entry: &ChunkEntry,
        sealed: Option<(&DataKey, u32)>,
        (of, index): (&str, usize),
        decoded: &mut Vec<u8>,
    ) -> Result<(), ArchiveError> {
        let corrupt = |reason: String| corrupt(entry, of, index, reason);
        if stored.len() as u64 != entry.length {
            return Err(corrupt(format!(
                "read {} bytes, the manifest records {}",
                stored.len(),
                entry.length
            )));
        }
        let actual = sha256_hex(stored);
        if actual != entry.sha256 {
            return Err(ArchiveError::ChunkChecksumMismatch {
                of: of.to_owned(),
                object: entry.object.clone(),
                chunk: index,
                expected: entry.sha256.clone(),
                actual,
            });
        }
        let opened;
        let stored = match sealed {
            Some((key, table)) => {
                let piece = Piece::Chunk {
                    object: &entry.object,
                    offset: entry.offset,
                    table,
                };
                opened = key.open(piece, stored).map_err(|_| {
                    corrupt(
                        "does not authenticate under the backup's key: it was altered, or \
                         moved here from another place or another backup"
                            .to_owned(),
                    )
                })?;
                &opened[..]
            }
            None => stored,
        };
        let capacity = usize::try_from(entry.raw_length)
            .map_err(|_| corrupt(format!("raw length {} is too large", entry.raw_length)))?;
        decoded.clear();
        decoded.reserve(capacity);
        // Into the buffer's capacity, which is at least the recorded length: a frame that
        // decodes to more is an error, as it is for a buffer of that length.
        self.decompressor
            .decompress_to_buffer(stored, decoded)
            .map_err(|e| corrupt(format!("zstd: {e}")))?;
        if decoded.len() as u64 != entry.raw_length {
            return Err(corrupt(format!(
                "decoded to {} bytes, the manifest records {}",
                decoded.len(),
                entry.raw_length
            )));
        }
        Ok(())
    }
}

/// How errors name the chunks of large-object contents.
pub const LARGE_OBJECTS: &str = "the large objects";

/// The table id large-object chunks are sealed under (tables' ids start at 1).
pub const LARGE_OBJECTS_TABLE: u32 = 0;

fn corrupt(entry: &ChunkEntry, of: &str, index: usize, reason: String) -> ArchiveError {
    ArchiveError::ChunkCorrupt {
        of: of.to_owned(),
        object: entry.object.clone(),
        chunk: index,
        reason,
    }
}

/// Rows in COPY text: one per `\n` (newlines inside values are escaped as `\n` by COPY).
pub fn count_rows(rows_text: &[u8]) -> u64 {
    // Counting into a u8 over blocks short enough not to overflow it lets the compiler compare
    // and add 16 bytes at a time: 9 GB/s against 1.6 GB/s for a filtered count.
    rows_text
        .chunks(255)
        .map(|block| {
            let newlines = block
                .iter()
                .fold(0u8, |n, &b| n.wrapping_add(u8::from(b == b'\n')));
            u64::from(newlines)
        })
        .sum()
}

/// Lower-case hex SHA-256, the form `sha256sum` prints.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_rows_counts_every_newline() {
        // Block edges (255), a block made only of newlines (the counter's maximum), and text
        // without any.
        for len in [0usize, 1, 254, 255, 256, 509, 510, 511, 1000] {
            for every in [1usize, 2, 7, 300] {
                let text: Vec<u8> = (0..len)
                    .map(|i| if i % every == 0 { b'\n' } else { b'x' })
                    .collect();
                let expected = text.iter().filter(|&&b| b == b'\n').count() as u64;
                assert_eq!(count_rows(&text), expected, "len {len}, every {every}");
            }
        }
    }

    /// A buffer used again, longer or shorter than the chunk and holding other rows, ends up
    /// holding exactly the chunk's rows; a damaged chunk is refused into it as into a new one.
    #[test]
    fn decoding_into_a_used_buffer_replaces_its_contents() {
        let mut encoder = ChunkEncoder::new(1).expect("encoder");
        let mut decoder = ChunkDecoder::new().expect("decoder");
        let small = encoder.encode(b"1\ta\n2\tb\n", None).expect("encodes");
        let large_rows = "x".repeat(100_000) + "\n";
        let large = encoder
            .encode(large_rows.as_bytes(), None)
            .expect("encodes");
        let mut buffer = b"leftover rows\n".repeat(50_000);
        for (chunk, rows) in [
            (&small, &b"1\ta\n2\tb\n"[..]),
            (&large, large_rows.as_bytes()),
        ] {
            buffer = decoder
                .decode(&chunk.frame, &entry_for(chunk), None, ("t", 0), buffer)
                .expect("decodes");
            assert_eq!(buffer, rows);
        }
        let mut wrong_length = entry_for(&small);
        wrong_length.raw_length -= 1;
        let refused = decoder.decode(&small.frame, &wrong_length, None, ("t", 0), buffer);
        assert!(
            matches!(refused, Err(ArchiveError::ChunkCorrupt { .. })),
            "{refused:?}"
        );
    }

    fn entry_for(chunk: &EncodedChunk) -> ChunkEntry {
        ChunkEntry {
            object: "data/00001.0000.copy.zst".into(),
            offset: 0,
            length: chunk.frame.len() as u64,
            raw_length: chunk.raw_length,
            rows: chunk.rows,
            sha256: chunk.sha256.clone(),
            key_range: None,
            key_filter: None,
        }
    }

    #[test]
    fn chunks_round_trip_and_are_standard_zstd_frames() {
        let text = b"1\thello\n2\t\\N\n3\twith\\ttab\n".repeat(1000);
        let mut encoder = ChunkEncoder::new(3).expect("encoder");
        let chunk = encoder.encode(&text, None).expect("encodes");
        assert_eq!(chunk.rows, 3000);
        assert_eq!(chunk.raw_length, text.len() as u64);
        assert_eq!(
            zstd::decode_all(&chunk.frame[..]).expect("plain zstd decodes it"),
            text
        );
        // Rows given at once: the frame says how large it is, as `zstd -l` shows.
        assert_eq!(
            zstd_safe::get_frame_content_size(&chunk.frame)
                .ok()
                .flatten(),
            Some(text.len() as u64)
        );

        let mut decoder = ChunkDecoder::new().expect("decoder");
        let decoded = decoder
            .decode(
                &chunk.frame,
                &entry_for(&chunk),
                None,
                ("public.t", 0),
                Vec::new(),
            )
            .expect("decodes");
        assert_eq!(decoded, text);
    }

    #[test]
    fn concatenated_frames_decode_as_one_stream() {
        let mut encoder = ChunkEncoder::new(1).expect("encoder");
        let mut object = encoder.encode(b"a\n", None).expect("encodes").frame;
        object.extend(encoder.encode(b"b\nc\n", None).expect("encodes").frame);
        assert_eq!(
            zstd::decode_all(&object[..]).expect("decodes"),
            b"a\nb\nc\n"
        );
    }

    proptest::proptest! {
        /// An integer key's range is its least and greatest value as numbers, spelled as the
        /// rows spell them; a filter is built exactly when more than 1% of the rows descend.
        #[test]
        fn integer_key_ranges_are_numeric_and_filters_follow_descents(
            keys in proptest::collection::vec(-20_000i64..20_000, 1..400),
            padded in proptest::collection::vec(proptest::bool::ANY, 400),
        ) {
            // Some values spelled with a leading "+" or zeros: parsed as the same number.
            let spelled: Vec<String> = keys
                .iter()
                .zip(&padded)
                .map(|(k, &pad)| if pad && *k >= 0 { format!("+0{k}") } else { k.to_string() })
                .collect();
            let text: String = spelled.iter().map(|k| format!("{k}\tx\n")).collect();
            let key = KeyFields { fields: vec![0], order: Some(KeyOrder::Integer), filtered: true };
            let chunk = ChunkEncoder::new(1)
                .expect("encoder")
                .encode(text.as_bytes(), Some(&key))
                .expect("encodes");
            let (min, max) = chunk.key_range.expect("a range");
            proptest::prop_assert_eq!(min.parse::<i64>().ok(), keys.iter().min().copied());
            proptest::prop_assert_eq!(max.parse::<i64>().ok(), keys.iter().max().copied());
            proptest::prop_assert!(spelled.contains(&min) && spelled.contains(&max));
            let descents = keys.windows(2).filter(|w| w[1] < w[0]).count();
            proptest::prop_assert_eq!(chunk.key_filter.is_some(), descents * 100 > keys.len());
        }
    }

    proptest::proptest! {
        /// Rows compressed as they arrive, in pieces of any size (whole rows each), make the
        /// chunk the same rows make at once: the same rows, digest, range and filter, and a
        /// frame that decodes to the same text. The encoder is used again after each chunk, and
        /// after a chunk it dropped unfinished, as a reader uses it.
        #[test]
        fn chunks_built_in_pieces_are_the_chunks_of_their_rows(
            keys in proptest::collection::vec(0u32..5_000, 1..300),
            cuts in proptest::collection::vec(0usize..300, 0..12),
            abandoned in proptest::collection::vec(0u32..10, 0..5),
        ) {
            let row = |k: &u32| format!("{k}\tpayload {}\t\\N\n", k * 7);
            let rows: Vec<String> = keys.iter().map(row).collect();
            let text = rows.concat();
            let key = KeyFields { fields: vec![0], order: Some(KeyOrder::Integer), filtered: true };
            let whole = ChunkEncoder::new(1)
                .expect("encoder")
                .encode(text.as_bytes(), Some(&key))
                .expect("encodes");

            let mut encoder = ChunkEncoder::new(1).expect("encoder");
            for round in 0..2 {
                // Rows of a chunk that never finishes (its COPY failed, say), then a fresh one.
                encoder.begin(None).expect("begins");
                encoder.add_rows(abandoned.iter().map(row).collect::<String>().as_bytes()).expect("adds");
                encoder.begin(Some(&key)).expect("begins");
                let mut at = 0;
                let mut sorted = cuts.clone();
                sorted.sort_unstable();
                for cut in sorted.into_iter().map(|c| c.min(rows.len())) {
                    if cut > at {
                        encoder.add_rows(rows[at..cut].concat().as_bytes()).expect("adds");
                        at = cut;
                    }
                }
                encoder.add_rows(rows[at..].concat().as_bytes()).expect("adds");
                proptest::prop_assert_eq!(encoder.raw_length(), text.len() as u64);
                let pieces = encoder.finish().expect("finishes");
                proptest::prop_assert_eq!(pieces.rows, whole.rows, "round {}", round);
                proptest::prop_assert_eq!(pieces.raw_length, whole.raw_length);
                proptest::prop_assert_eq!(&pieces.content_digest, &whole.content_digest);
                proptest::prop_assert_eq!(&pieces.key_range, &whole.key_range);
                proptest::prop_assert_eq!(&pieces.key_filter, &whole.key_filter);
                proptest::prop_assert_eq!(&pieces.sha256, &sha256_hex(&pieces.frame));
                let decoded = ChunkDecoder::new()
                    .expect("decoder")
                    .decode(&pieces.frame, &entry_for(&pieces), None, ("t", 0), Vec::new())
                    .expect("decodes");
                proptest::prop_assert_eq!(&decoded, &text.as_bytes().to_vec());
                proptest::prop_assert_eq!(
                    zstd::decode_all(&pieces.frame[..]).expect("plain zstd decodes it"),
                    text.as_bytes().to_vec()
                );
            }
        }
    }

    #[test]
    fn key_ranges_cover_the_key_field_or_are_absent() {
        let mut encoder = ChunkEncoder::new(1).expect("encoder");
        let integer = |fields: Vec<usize>, filtered| KeyFields {
            fields,
            order: Some(KeyOrder::Integer),
            filtered,
        };
        let range = |min: &str, max: &str| Some((min.to_owned(), max.to_owned()));
        let chunk = encoder
            .encode(b"5\ta\n-3\tb\n12\tc\n", Some(&integer(vec![0], false)))
            .expect("encodes");
        assert_eq!(chunk.key_range, range("-3", "12"));
        assert_eq!(chunk.key_filter, None);
        let with_null = encoder
            .encode(b"5\ta\n\\N\tb\n", Some(&integer(vec![0], false)))
            .expect("encodes");
        assert_eq!(with_null.key_range, None);
        let text_key = encoder
            .encode(b"5\ta\n", Some(&integer(vec![1], false)))
            .expect("encodes");
        assert_eq!(text_key.key_range, None);
        assert_eq!(
            encoder
                .encode(b"", Some(&integer(vec![0], true)))
                .expect("encodes")
                .key_range,
            None
        );
        // A composite key: the range of its leading field, a filter over both.
        let composite = encoder
            .encode(b"2\tb\tx\n1\ta\ty\n", Some(&integer(vec![0, 1], true)))
            .expect("encodes");
        assert_eq!(composite.key_range, range("1", "2"));
        let frame = composite.key_filter.expect("a filter");
        let filter = crate::key_summary::KeyFilter::parse(&frame).expect("parses");
        assert!(filter.may_contain(b"2\tb") && filter.may_contain(b"1\ta"));
        // Rows sorted by key need no filter: their range prunes as well.
        let sorted = encoder
            .encode(
                b"1\ta\tx\n1\tb\tx\n3\ta\ty\n",
                Some(&integer(vec![0, 1], true)),
            )
            .expect("encodes");
        assert_eq!(sorted.key_range, range("1", "3"));
        assert_eq!(sorted.key_filter, None);
        // Text keys: byte order.
        let text = KeyFields {
            fields: vec![0],
            order: Some(KeyOrder::Text),
            filtered: false,
        };
        let words = encoder
            .encode(b"pear\nApple\nzoo\n", Some(&text))
            .expect("encodes");
        assert_eq!(words.key_range, range("Apple", "zoo"));
    }

    #[test]
    fn empty_chunk_round_trips() {
        let mut encoder = ChunkEncoder::new(3).expect("encoder");
        let chunk = encoder.encode(b"", None).expect("encodes");
        let mut decoder = ChunkDecoder::new().expect("decoder");
        assert!(
            decoder
                .decode(&chunk.frame, &entry_for(&chunk), None, ("t", 0), Vec::new())
                .expect("decodes")
                .is_empty()
        );
    }

    #[test]
    fn a_flipped_byte_is_caught_before_decompression_and_named() {
        let mut encoder = ChunkEncoder::new(3).expect("encoder");
        let chunk = encoder.encode(b"1\tx\n", None).expect("encodes");
        let entry = entry_for(&chunk);
        let mut damaged = chunk.frame.clone();
        damaged[5] ^= 0x01;
        let mut decoder = ChunkDecoder::new().expect("decoder");
        let err = decoder
            .decode(&damaged, &entry, None, ("public.t", 7), Vec::new())
            .expect_err("must fail");
        let message = err.to_string();
        assert!(
            matches!(err, ArchiveError::ChunkChecksumMismatch { chunk: 7, .. }),
            "{message}"
        );
        assert!(
            message.contains("public.t") && message.contains("data/00001.0000.copy.zst"),
            "{message}"
        );
    }

    #[test]
    fn a_manifest_entry_that_disagrees_with_the_data_is_reported() {
        let mut encoder = ChunkEncoder::new(3).expect("encoder");
        let chunk = encoder.encode(b"1\n2\n", None).expect("encodes");
        let mut decoder = ChunkDecoder::new().expect("decoder");

        let mut wrong_rows = entry_for(&chunk);
        wrong_rows.rows = 3;
        let err = decoder
            .decode(&chunk.frame, &wrong_rows, None, ("t", 0), Vec::new())
            .expect_err("must fail");
        assert!(
            err.to_string()
                .contains("holds 2 rows, the manifest records 3"),
            "{err}"
        );

        let mut truncated = entry_for(&chunk);
        truncated.length -= 1;
        let err = decoder
            .decode(
                &chunk.frame[..chunk.frame.len() - 1],
                &truncated,
                None,
                ("t", 0),
                Vec::new(),
            )
            .expect_err("must fail");
        assert!(
            matches!(err, ArchiveError::ChunkChecksumMismatch { .. }),
            "{err}"
        );
    }

    #[test]
    fn large_object_chunks_round_trip_and_damage_names_the_large_objects() {
        use crate::large_objects::{LargeObjectPiece, append_record};
        let mut stream = Vec::new();
        let data = vec![7u8; 1000];
        for (oid, offset) in [(5, 0), (5, 1000), (6, 0)] {
            assert!(append_record(
                &mut stream,
                &LargeObjectPiece {
                    oid,
                    offset,
                    data: &data
                }
            ));
        }
        let mut encoder = ChunkEncoder::new(3).expect("encoder");
        let chunk = encoder.encode_large_objects(&stream).expect("encodes");
        assert_eq!(chunk.rows, 3);
        let mut entry = entry_for(&chunk);
        entry.object = "data/lo.0000.bin.zst".into();
        let mut decoder = ChunkDecoder::new().expect("decoder");
        let (decoded, totals) = decoder
            .decode_large_objects(&chunk.frame, &entry, None, 0)
            .expect("decodes");
        assert_eq!(decoded, stream);
        assert_eq!(totals.content_bytes, 3000);
        assert_eq!(totals.digest, chunk.content_digest);

        let mut damaged = chunk.frame.clone();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 0x10;
        let err = decoder
            .decode_large_objects(&damaged, &entry, None, 4)
            .expect_err("damaged");
        assert!(
            matches!(err, ArchiveError::ChunkChecksumMismatch { chunk: 4, .. }),
            "{err}"
        );
        let message = err.to_string();
        assert!(
            message.contains("the large objects") && message.contains("data/lo.0000.bin.zst"),
            "{message}"
        );

        // A frame whose payload is not a record stream is refused even if its checksum matches.
        let not_records = encoder.encode(b"1\tx\n", None).expect("encodes");
        let err = decoder
            .decode_large_objects(&not_records.frame, &entry_for(&not_records), None, 0)
            .expect_err("not records");
        assert!(matches!(err, ArchiveError::ChunkCorrupt { .. }), "{err}");
        assert!(encoder.encode_large_objects(b"\x01\x02").is_err());
    }
}
