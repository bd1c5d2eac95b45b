//! Writing one data object from a COPY stream: rows cut into chunks of whole rows, compressed as
//! they arrive, the frames appended to the object.
//!
//! Compression happens in the session's COPY tap ([`pgark_pg::RowSink`]), a piece of rows at a
//! time, on the thread that has just read them, not on the CPU pool. Handing rows to another
//! thread left the reading thread asleep between the server's 8 kB sends, and every send then
//! woke it: with the client on one core of its own, 175,000 context switches and a third more
//! CPU per TPC-H dump than compressing where the rows are read (23,000), and the server's core
//! spent waking it. Each piece's work is short (128 kB), so the runtime's other tasks still get
//! their turn; a session holds the chunk it is building, one handed over, and one being
//! appended.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use pgark_archive::ChunkEncoder;
use pgark_archive::key_summary::KeyFields;
use pgark_archive::seal::Piece;
use pgark_archive::{
    ArchiveError, ChunkEntry, ColumnEntry, ContentDigest, EncodedChunk, FilterEntry, KeyRange,
    LookupKey,
};
use pgark_pg::{Connection, CopyOutItem, PgError, RowSink};
use pgark_storage::{ObjectKey, Upload};

use super::{BackupWriter, Sealing};
use crate::{EngineError, Progress};

/// What an object writer stored: its chunks, in order, and their rows' digest.
#[derive(Debug)]
pub(crate) struct WrittenObject {
    pub(crate) chunks: Vec<ChunkEntry>,
    pub(crate) stored_bytes: u64,
    pub(crate) content_digest: ContentDigest,
}

/// One `COPY ... TO STDOUT` whose rows are written as one table's (or one piece's) chunks.
#[derive(Debug, Clone)]
pub(crate) struct CopySource<'a> {
    pub(crate) sql: String,
    /// Names the rows in messages (`table public.orders`).
    pub(crate) what: String,
    /// The table's id: its chunks are bound to it when sealed.
    pub(crate) table: u32,
    pub(crate) columns: &'a [ColumnEntry],
    /// The key whose ranges (and filters) the chunks record.
    pub(crate) key: Option<&'a LookupKey>,
}

impl CopySource<'_> {
    /// The key's fields in the rows, and the key itself when the rows have them all.
    fn key_fields(&self) -> (Option<Arc<KeyFields>>, Option<&LookupKey>) {
        let fields = self.key.and_then(|k| k.fields(self.columns)).map(Arc::new);
        let key = self.key.filter(|_| fields.is_some());
        (fields, key)
    }
}

impl BackupWriter {
    /// Writes the rows `source`'s COPY sends on `session` into data object `object`. On failure
    /// the object's upload is aborted, so the object can be written again from nothing.
    pub(crate) async fn copy_out(
        &self,
        session: &Connection,
        source: CopySource<'_>,
        object: DataObject<'_>,
    ) -> Result<WrittenObject, EngineError> {
        let mut written = self
            .copy_out_shared(session, std::slice::from_ref(&source), object)
            .await?;
        written
            .pop()
            .ok_or_else(|| EngineError::bug("a COPY wrote no object"))
    }

    /// Writes the rows of each of `sources` (sent as one query: one round trip for them all)
    /// into data object `object`, one after the other, and returns what each wrote there, in
    /// order. On failure the object's upload is aborted, so the object can be written again
    /// from nothing.
    pub(crate) async fn copy_out_shared<'a>(
        &'a self,
        session: &Connection,
        sources: &'a [CopySource<'a>],
        object: DataObject<'a>,
    ) -> Result<Vec<WrittenObject>, EngineError> {
        let Some(first) = sources.first() else {
            return Ok(Vec::new());
        };
        let name = object.name;
        let mut writer = ObjectWriter::new(self, object, first.table, first.key_fields().1)?;
        let mut written = match self.copy_rows(session, sources, &mut writer).await {
            Ok(written) => written,
            Err(e) => {
                writer.abort().await;
                return Err(e);
            }
        };
        written.push(writer.complete().await?);
        tracing::debug!(object = name, tables = sources.len(), "object written");
        Ok(written)
    }

    /// Copies each source's rows into `writer`, switching it to the next source at each COPY's
    /// end; what each source but the last wrote (the writer's completion gives the last's).
    async fn copy_rows<'a>(
        &self,
        session: &Connection,
        sources: &'a [CopySource<'a>],
        writer: &mut ObjectWriter<'a>,
    ) -> Result<Vec<WrittenObject>, EngineError> {
        let statements: Vec<String> = sources.iter().map(|s| s.sql.clone()).collect();
        let copying = |n: usize| {
            let what = sources.get(n).map_or("", |s| s.what.as_str());
            move || format!("copying {what}")
        };
        let sink = ChunkSink::new(
            self.compress_level,
            self.chunk_size,
            sources.iter().map(|s| s.key_fields().0).collect(),
        )?;
        let mut chunks = crate::session::unless_stalled(
            self.stall_timeout,
            &copying(0),
            session.copy_out_into(&statements, sink),
        )
        .await?
        .map_err(|e| PgError::query(format!("starting COPY of {}", sources[0].what), e))?;

        // Each item is a chunk of one source's whole rows, compressed as they arrived; the
        // session's reader holds at most the one it is building and one for this loop.
        let mut current = 0;
        let mut written = Vec::with_capacity(sources.len().saturating_sub(1));
        loop {
            let what = sources.get(current).map_or("", |s| s.what.as_str());
            let reading = || format!("reading {what}");
            let item = crate::session::next_copy_item(
                self.stall_timeout,
                &copying(current),
                &reading,
                &mut chunks,
            )
            .await?;
            match item {
                Some(CopyOutItem::Rows(chunk)) => writer.append(chunk?).await?,
                Some(CopyOutItem::Done) => {
                    current += 1;
                    if let Some(next) = sources.get(current) {
                        written.push(writer.next_source(next.table, next.key_fields().1).await?);
                    }
                }
                None => break,
            }
        }
        if current != sources.len() {
            return Err(EngineError::bug(
                "a query of COPYs ended before all of them completed",
            ));
        }
        Ok(written)
    }
}

/// A query's COPY rows compressed into chunks as they arrive, on the thread that reads them off
/// the session's socket (see [`RowSink`]): chunks of whole rows cut before they would pass the
/// chunk size (a row larger than a chunk is a chunk of its own), each with its source's key range
/// and filter.
struct ChunkSink {
    encoder: ChunkEncoder,
    chunk_size: usize,
    /// The key fields of each source whose COPY has not completed, the current one's first.
    keys: VecDeque<Option<Arc<KeyFields>>>,
    /// Why the current chunk cannot be encoded: its item says so.
    failed: Option<ArchiveError>,
}

impl ChunkSink {
    fn new(
        level: i32,
        chunk_size: usize,
        keys: VecDeque<Option<Arc<KeyFields>>>,
    ) -> Result<Self, ArchiveError> {
        let mut encoder = ChunkEncoder::new(level)?;
        encoder.begin(keys.front().cloned().flatten().as_deref())?;
        Ok(ChunkSink {
            encoder,
            chunk_size,
            keys,
            failed: None,
        })
    }
}

impl RowSink for ChunkSink {
    type Item = Result<EncodedChunk, ArchiveError>;

    fn room(&self) -> usize {
        let taken = usize::try_from(self.encoder.raw_length()).unwrap_or(usize::MAX);
        self.chunk_size.saturating_sub(taken)
    }

    fn is_empty(&self) -> bool {
        self.encoder.raw_length() == 0 && self.failed.is_none()
    }

    fn add(&mut self, rows: &[u8]) {
        if self.failed.is_none()
            && let Err(e) = self.encoder.add_rows(rows)
        {
            self.failed = Some(e);
        }
    }

    fn finish(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.failed.take() {
            return Some(Err(e));
        }
        (!self.is_empty()).then(|| self.encoder.finish())
    }

    fn copy_done(&mut self) -> Option<Self::Item> {
        let last = self.finish();
        self.keys.pop_front();
        let next = self.keys.front().cloned().flatten();
        if let Err(e) = self.encoder.begin(next.as_deref()) {
            self.failed = Some(e);
        }
        last
    }
}

/// One data object to write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DataObject<'a> {
    pub(crate) name: &'a str,
    /// About how large it will be, when known (a table piece's size on disk): a store with a
    /// limit on parts sizes them from it.
    pub(crate) expected_bytes: Option<u64>,
}

/// Appends frames to one data object, opening the upload only when the first frame arrives so
/// that empty pieces leave no object behind. The chunks of several tables may follow each other
/// in one object (small tables share objects): what the writer records is the current one's.
pub(crate) struct ObjectWriter<'a> {
    dumper: &'a BackupWriter,
    object: &'a str,
    /// The current table's id (0 for large objects): sealed pieces are bound to it.
    table: u32,
    expected_bytes: Option<u64>,
    key: ObjectKey,
    upload: Option<Box<dyn Upload>>,
    offset: u64,
    /// Where the current table's chunks start.
    table_start: u64,
    chunks: Vec<ChunkEntry>,
    lookup_key: Option<&'a LookupKey>,
    /// The last chunk's key filter, held until the next chunk shows whether it is needed: only a
    /// chunk whose key range overlaps each neighbour's (keys spread over the data: random ids,
    /// interleaved tenants) keeps it; where ranges overlap at most on one side (keys in order,
    /// give or take stray rows) the range prunes to one or two chunks by itself. A held filter
    /// is stored after the next chunk's frame.
    held_filter: Option<Vec<u8>>,
    content_digest: ContentDigest,
    /// Whether the chunks' `rows` are table rows (for progress), not large-object records.
    counts_rows: bool,
}

impl<'a> ObjectWriter<'a> {
    /// A writer whose first chunks are table `table`'s.
    pub(crate) fn new(
        dumper: &'a BackupWriter,
        object: DataObject<'a>,
        table: u32,
        lookup_key: Option<&'a LookupKey>,
    ) -> Result<Self, EngineError> {
        let key = dumper.key(object.name)?;
        Ok(ObjectWriter {
            dumper,
            object: object.name,
            table,
            expected_bytes: object.expected_bytes,
            key,
            upload: None,
            offset: 0,
            table_start: 0,
            chunks: Vec::new(),
            lookup_key,
            held_filter: None,
            content_digest: ContentDigest::default(),
            counts_rows: true,
        })
    }

    /// A writer for large-object chunks, whose `rows` count records.
    pub(crate) fn for_large_objects(
        dumper: &'a BackupWriter,
        object: &'a str,
        expected_bytes: Option<u64>,
    ) -> Result<Self, EngineError> {
        let object = DataObject {
            name: object,
            expected_bytes,
        };
        let mut writer = Self::new(dumper, object, pgark_archive::LARGE_OBJECTS_TABLE, None)?;
        writer.counts_rows = false;
        Ok(writer)
    }

    pub(crate) async fn append(&mut self, chunk: EncodedChunk) -> Result<(), EngineError> {
        // An encrypted backup's chunk is sealed where it is stored (its offset is part of what
        // authenticates it), and its checksum covers what is stored.
        let (frame, sha256) = match &self.dumper.sealing {
            Some(sealing) => {
                self.seal(
                    sealing,
                    |object, offset, table| Piece::Chunk {
                        object,
                        offset,
                        table,
                    },
                    chunk.frame,
                )
                .await?
            }
            None => (chunk.frame, chunk.sha256),
        };
        let length = frame.len() as u64;
        let upload = match &mut self.upload {
            Some(upload) => upload,
            None => {
                let store = &self.dumper.store;
                let started = match self.expected_bytes {
                    Some(expected) => store.start_upload_of_size(&self.key, expected).await?,
                    None => store.start_upload(&self.key).await?,
                };
                self.upload.insert(started)
            }
        };
        upload.write(Bytes::from(frame)).await?;
        let progress = &self.dumper.progress;
        if self.counts_rows {
            Progress::add(&progress.rows, chunk.rows);
        }
        Progress::add(&progress.raw_bytes, chunk.raw_length);
        Progress::add(&progress.stored_bytes, length);
        self.chunks.push(ChunkEntry {
            object: self.object.to_owned(),
            offset: self.offset,
            length,
            raw_length: chunk.raw_length,
            rows: chunk.rows,
            sha256,
            key_range: self
                .lookup_key
                .and_then(|k| k.columns.first())
                .zip(chunk.key_range)
                .map(|(column, (min, max))| KeyRange {
                    column: column.clone(),
                    min,
                    max,
                }),
            key_filter: None,
        });
        self.offset += length;
        // The previous chunk's filter, now that both its neighbours are known.
        if let Some(frame) = self.held_filter.take() {
            let n = self.chunks.len() - 2;
            let previous = n.checked_sub(1);
            if self.overlaps(n, Some(n + 1)) && (previous.is_none() || self.overlaps(n, previous)) {
                self.store_filter(n, frame).await?;
            }
        }
        self.held_filter = chunk.key_filter;
        self.content_digest = self.content_digest.combine(chunk.content_digest);
        tracing::debug!(object = %self.key, chunk = self.chunks.len() - 1, "chunk stored");
        Ok(())
    }

    /// Seals `frame` as the piece `piece_at` names at this object's current offset, and hashes
    /// the sealed bytes: on the CPU pool, off the runtime's threads.
    async fn seal(
        &self,
        sealing: &Sealing,
        piece_at: for<'p> fn(&'p str, u64, u32) -> Piece<'p>,
        frame: Vec<u8>,
    ) -> Result<(Vec<u8>, String), EngineError> {
        let key = sealing.key.clone();
        let (object, offset, table) = (self.object.to_owned(), self.offset, self.table);
        let sealed = self.dumper.cpu.run(move || {
            let sealed = key.seal(piece_at(&object, offset, table), frame)?;
            let sha256 = pgark_archive::sha256_hex(&sealed);
            Ok::<_, ArchiveError>((sealed, sha256))
        });
        Ok(sealed.await??)
    }

    /// Whether chunk `n`'s key range overlaps chunk `other`'s, so that the range alone cannot
    /// tell them apart (sharing an end value does not count: a key split between two chunks);
    /// a chunk without a range always counts as overlapping.
    fn overlaps(&self, n: usize, other: Option<usize>) -> bool {
        let Some(other) = other.and_then(|o| self.chunks.get(o)) else {
            return false;
        };
        let order = self.lookup_key.and_then(|k| k.order);
        match (order, &self.chunks[n].key_range, &other.key_range) {
            (Some(order), Some(a), Some(b)) => {
                order.compare(&a.min, &b.max).is_lt() && order.compare(&b.min, &a.max).is_lt()
            }
            _ => true,
        }
    }

    /// Stores chunk `n`'s key filter at the end of the object written so far.
    async fn store_filter(&mut self, n: usize, frame: Vec<u8>) -> Result<(), EngineError> {
        let (frame, sha256) = match &self.dumper.sealing {
            Some(sealing) => {
                self.seal(
                    sealing,
                    |object, offset, table| Piece::KeyFilter {
                        object,
                        offset,
                        table,
                    },
                    frame,
                )
                .await?
            }
            None => {
                let sha256 = pgark_archive::sha256_hex(&frame);
                (frame, sha256)
            }
        };
        let length = frame.len() as u64;
        self.chunks[n].key_filter = Some(FilterEntry {
            offset: self.offset,
            length,
            sha256,
        });
        if let Some(upload) = &mut self.upload {
            upload.write(Bytes::from(frame)).await?;
        }
        Progress::add(&self.dumper.progress.stored_bytes, length);
        self.offset += length;
        Ok(())
    }

    /// Abandons the object: its upload (if one was started) is aborted, so that no part of it
    /// stays behind, billed and invisible.
    pub(crate) async fn abort(self) {
        if let Some(upload) = self.upload
            && let Err(e) = upload.abort().await
        {
            tracing::warn!("could not abort the upload of {}: {e}", self.key);
        }
    }

    /// Ends the current table's chunks (storing its last key filter, if needed) and what they
    /// hold.
    async fn finish_table(&mut self) -> Result<WrittenObject, EngineError> {
        if let Some(frame) = self.held_filter.take() {
            let n = self.chunks.len() - 1;
            if self.overlaps(n, n.checked_sub(1)) {
                self.store_filter(n, frame).await?;
            }
        }
        let written = WrittenObject {
            chunks: std::mem::take(&mut self.chunks),
            stored_bytes: self.offset - self.table_start,
            content_digest: std::mem::take(&mut self.content_digest),
        };
        self.table_start = self.offset;
        Ok(written)
    }

    /// Ends the current table's chunks, as [`Self::finish_table`], and makes the chunks that
    /// follow table `table`'s, with `lookup_key`'s ranges.
    async fn next_source(
        &mut self,
        table: u32,
        lookup_key: Option<&'a LookupKey>,
    ) -> Result<WrittenObject, EngineError> {
        let written = self.finish_table().await?;
        self.table = table;
        self.lookup_key = lookup_key;
        Ok(written)
    }

    /// Completes the object; the manifest may only record stored data. What the last table's
    /// chunks hold.
    pub(crate) async fn complete(mut self) -> Result<WrittenObject, EngineError> {
        let written = self.finish_table().await?;
        if let Some(upload) = self.upload {
            let size = upload.complete().await?;
            if size != self.offset {
                return Err(EngineError::StoredSizeMismatch {
                    object: self.key.to_string(),
                    stored: size,
                    written: self.offset,
                });
            }
        }
        Ok(written)
    }
}
