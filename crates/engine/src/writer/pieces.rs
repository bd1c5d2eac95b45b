//! Writing one data object from a COPY stream: rows cut into chunks of whole rows, compressed
//! and hashed on the CPU pool, the frames appended to the object.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use pgark_archive::key_summary::KeyFields;
use pgark_archive::seal::Piece;
use pgark_archive::{
    ArchiveError, ChunkEntry, ColumnEntry, ContentDigest, EncodedChunk, FilterEntry, KeyRange,
    LookupKey,
};
use pgark_pg::{Connection, PgError};
use pgark_storage::{ObjectKey, Upload};

use super::{BackupWriter, Sealing};
use crate::budget::Share;
use crate::{EngineError, Progress};

/// Chunks one piece may have compressing at once, so that one session keeps the CPU pool busy
/// while it reads on; the shared [`ByteBudget`] bounds them across sessions.
pub(crate) const MAX_COMPRESSING: usize = 2;

/// What an object writer stored: its chunks, in order, and their rows' digest.
#[derive(Debug)]
pub(crate) struct WrittenObject {
    pub(crate) chunks: Vec<ChunkEntry>,
    pub(crate) stored_bytes: u64,
    pub(crate) content_digest: ContentDigest,
}

type Compressing = VecDeque<(
    Share,
    std::pin::Pin<Box<dyn Future<Output = Result<EncodedChunk, EngineError>> + Send>>,
)>;

impl BackupWriter {
    /// Writes the rows `copy_sql` (a `COPY ... TO STDOUT`) sends on `session` into data object
    /// `object`, recording the ranges (and filters) of `key` over `columns`. `what` names the
    /// rows in messages (`table public.orders`). On failure the object's upload is aborted, so
    /// the object can be written again from nothing.
    pub(crate) async fn copy_out(
        &self,
        session: &Connection,
        copy_sql: &str,
        what: &str,
        object: DataObject<'_>,
        columns: &[ColumnEntry],
        key: Option<&LookupKey>,
    ) -> Result<WrittenObject, EngineError> {
        let key_fields = key.and_then(|k| k.fields(columns)).map(Arc::new);
        let key = key.filter(|_| key_fields.is_some());
        let name = object.name;
        let mut writer = ObjectWriter::new(self, object, key)?;
        let copied = self
            .copy_rows(session, copy_sql, what, key_fields, &mut writer)
            .await;
        if let Err(e) = copied {
            writer.abort().await;
            return Err(e);
        }
        let data = writer.complete().await?;
        tracing::debug!(%what, object = name, chunks = data.chunks.len(), "object written");
        Ok(data)
    }

    async fn copy_rows(
        &self,
        session: &Connection,
        copy_sql: &str,
        what: &str,
        key_fields: Option<Arc<KeyFields>>,
        writer: &mut ObjectWriter<'_>,
    ) -> Result<(), EngineError> {
        let copying = || format!("copying {what}");
        let mut buffers = crate::session::unless_stalled(
            self.stall_timeout,
            &copying,
            session.copy_out_buffers(copy_sql, self.chunk_size),
        )
        .await?
        .map_err(|e| PgError::query(format!("starting COPY of {what}"), e))?;

        // Each buffer is a chunk: whole rows, cut before they would pass the chunk size (a row
        // larger than a chunk is a chunk of its own).
        let mut compressing: Compressing = VecDeque::new();
        let reading = || format!("reading {what}");
        while let Some(rows) =
            crate::session::next_copy_buffer(self.stall_timeout, &copying, &reading, &mut buffers)
                .await?
        {
            self.compress(rows, key_fields.clone(), &mut compressing, writer)
                .await?;
        }
        while let Some((share, done)) = compressing.pop_front() {
            writer.append(done.await?).await?;
            drop(share);
        }
        Ok(())
    }

    /// Hands `rows` to the CPU pool once the budget has room, appending finished chunks (which
    /// frees their share) while it waits, so sessions never wait on each other in a circle.
    async fn compress(
        &self,
        rows: Bytes,
        key_fields: Option<Arc<KeyFields>>,
        compressing: &mut Compressing,
        writer: &mut ObjectWriter<'_>,
    ) -> Result<(), EngineError> {
        // Raw rows, then a frame of at most about the same size.
        let needed = 2 * rows.len() as u64;
        let share = loop {
            if compressing.len() < MAX_COMPRESSING
                && let Some(share) = self.budget.try_take(needed)
            {
                break share;
            }
            match compressing.pop_front() {
                Some((share, done)) => {
                    writer.append(done.await?).await?;
                    drop(share);
                }
                None => break self.budget.take(needed).await?,
            }
        };
        let encoding = self.cpu.encode(rows, self.compress_level, key_fields);
        compressing.push_back((share, Box::pin(encoding)));
        Ok(())
    }
}

/// One data object to write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DataObject<'a> {
    pub(crate) name: &'a str,
    /// The table's id (0 for large objects): sealed pieces are bound to it.
    pub(crate) table: u32,
    /// About how large it will be, when known (a table piece's size on disk): a store with a
    /// limit on parts sizes them from it.
    pub(crate) expected_bytes: Option<u64>,
}

/// Appends frames to one data object, opening the upload only when the first frame arrives so
/// that empty pieces leave no object behind.
pub(crate) struct ObjectWriter<'a> {
    dumper: &'a BackupWriter,
    object: &'a str,
    /// The table's id (0 for large objects): sealed pieces are bound to it.
    table: u32,
    expected_bytes: Option<u64>,
    key: ObjectKey,
    upload: Option<Box<dyn Upload>>,
    offset: u64,
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
    pub(crate) fn new(
        dumper: &'a BackupWriter,
        object: DataObject<'a>,
        lookup_key: Option<&'a LookupKey>,
    ) -> Result<Self, EngineError> {
        let key = dumper.key(object.name)?;
        Ok(ObjectWriter {
            dumper,
            object: object.name,
            table: object.table,
            expected_bytes: object.expected_bytes,
            key,
            upload: None,
            offset: 0,
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
            table: pgark_archive::LARGE_OBJECTS_TABLE,
            expected_bytes,
        };
        let mut writer = Self::new(dumper, object, None)?;
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
    /// the sealed bytes: on the CPU pool, as compression is, off the runtime's threads.
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

    /// Completes the object; the manifest may only record stored data.
    pub(crate) async fn complete(mut self) -> Result<WrittenObject, EngineError> {
        if let Some(frame) = self.held_filter.take() {
            let n = self.chunks.len() - 1;
            if self.overlaps(n, n.checked_sub(1)) {
                self.store_filter(n, frame).await?;
            }
        }
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
        Ok(WrittenObject {
            chunks: self.chunks,
            stored_bytes: self.offset,
            content_digest: self.content_digest,
        })
    }
}
