//! Dumping one piece of a table: COPY out, cut into chunks of whole rows, compress and hash on the
//! CPU pool, append the frames to the piece's data object.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use pgark_archive::key_summary::KeyFields;
use pgark_archive::{
    ChunkEntry, ContentDigest, EncodedChunk, FilterEntry, KeyRange, LookupKey, layout,
};
use pgark_pg::{Connection, PgError, TableData, copy_out_range_sql};
use pgark_storage::{ObjectKey, ObjectStore, Upload};

use super::plan::Piece;
use crate::budget::{ByteBudget, Share};
use crate::cpu::CpuPool;
use crate::{EngineError, Progress};

/// Chunks one piece may have compressing at once, so that one session keeps the CPU pool busy
/// while it reads on; the shared [`ByteBudget`] bounds them across sessions.
pub(super) const MAX_COMPRESSING: usize = 2;

pub(super) struct TableDumper {
    pub(super) store: Arc<dyn ObjectStore>,
    pub(super) backup_id: String,
    pub(super) chunk_size: usize,
    pub(super) compress_level: i32,
    pub(super) cpu: Arc<CpuPool>,
    /// Shared by every session: raw chunks waiting for or in compression, and their frames.
    pub(super) budget: ByteBudget,
    pub(super) progress: Arc<Progress>,
    /// The source connection's [`pgark_pg::ConnConfig::stall_timeout`].
    pub(super) stall_timeout: Option<std::time::Duration>,
}

/// What an object writer stored: its chunks, in order, and their rows' digest.
#[derive(Debug)]
pub(super) struct WrittenObject {
    pub(super) chunks: Vec<ChunkEntry>,
    pub(super) stored_bytes: u64,
    pub(super) content_digest: ContentDigest,
}

type Compressing = VecDeque<(
    Share,
    std::pin::Pin<Box<dyn Future<Output = Result<EncodedChunk, EngineError>> + Send>>,
)>;

impl TableDumper {
    /// Dumps one piece into its data object. On failure the object's upload is aborted, so a
    /// retry of the piece starts from nothing.
    pub(super) async fn dump(
        &self,
        session: &Connection,
        id: u32,
        table: &TableData,
        piece: &Piece,
        key: Option<&LookupKey>,
    ) -> Result<WrittenObject, EngineError> {
        let key_fields = key.and_then(|k| k.fields(&table.columns)).map(Arc::new);
        let object = layout::data_object_name(id, piece.part);
        let key = key.filter(|_| key_fields.is_some());
        let mut writer = ObjectWriter::new(self, &object, key)?;
        let copied = self
            .copy_piece(session, table, piece, key_fields, &mut writer)
            .await;
        if let Err(e) = copied {
            writer.abort().await;
            return Err(e);
        }
        let data = writer.complete().await?;
        tracing::debug!(
            table = %format_args!("{}.{}", table.schema, table.name),
            piece = piece.part,
            chunks = data.chunks.len(),
            "piece dumped"
        );
        Ok(data)
    }

    async fn copy_piece(
        &self,
        session: &Connection,
        table: &TableData,
        piece: &Piece,
        key_fields: Option<Arc<KeyFields>>,
        writer: &mut ObjectWriter<'_>,
    ) -> Result<(), EngineError> {
        let name = format!("{}.{}", table.schema, table.name);
        let copying = || format!("copying table {name}");
        let stream = crate::session::unless_stalled(
            self.stall_timeout,
            &copying,
            session
                .client()
                .copy_out(&copy_out_range_sql(table, &piece.range)),
        )
        .await?
        .map_err(|e| PgError::query(format!("starting COPY of table {name}"), e))?;
        let mut stream = std::pin::pin!(stream);

        let mut buffer = BytesMut::new();
        let mut compressing: Compressing = VecDeque::new();
        while let Some(row) =
            crate::session::unless_stalled(self.stall_timeout, &copying, stream.next()).await?
        {
            let row = row.map_err(|e| PgError::query(format!("reading table {name}"), e))?;
            // Rows arrive one per message, so cutting between messages cuts between rows. A
            // chunk is cut before it would pass the chunk size; a row larger than a chunk is a
            // chunk of its own, sent without copying it.
            if !buffer.is_empty() && buffer.len() + row.len() > self.chunk_size {
                let full = std::mem::take(&mut buffer).freeze();
                self.compress(full, key_fields.clone(), &mut compressing, writer)
                    .await?;
            }
            if buffer.is_empty() && row.len() >= self.chunk_size {
                self.compress(row, key_fields.clone(), &mut compressing, writer)
                    .await?;
            } else {
                if buffer.capacity() == 0 {
                    buffer.reserve(self.chunk_size);
                }
                buffer.extend_from_slice(&row);
            }
        }
        if !buffer.is_empty() {
            self.compress(
                buffer.freeze(),
                key_fields.clone(),
                &mut compressing,
                writer,
            )
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

/// Appends frames to one data object, opening the upload only when the first frame arrives so
/// that empty pieces leave no object behind.
pub(super) struct ObjectWriter<'a> {
    dumper: &'a TableDumper,
    object: &'a str,
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
    pub(super) fn new(
        dumper: &'a TableDumper,
        object: &'a str,
        lookup_key: Option<&'a LookupKey>,
    ) -> Result<Self, EngineError> {
        let key = ObjectKey::new(layout::object_name(&dumper.backup_id, object))?;
        Ok(ObjectWriter {
            dumper,
            object,
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
    pub(super) fn for_large_objects(
        dumper: &'a TableDumper,
        object: &'a str,
    ) -> Result<Self, EngineError> {
        let mut writer = Self::new(dumper, object, None)?;
        writer.counts_rows = false;
        Ok(writer)
    }

    pub(super) async fn append(&mut self, chunk: EncodedChunk) -> Result<(), EngineError> {
        let upload = match &mut self.upload {
            Some(upload) => upload,
            None => self
                .upload
                .insert(self.dumper.store.start_upload(&self.key).await?),
        };
        let length = chunk.frame.len() as u64;
        upload.write(Bytes::from(chunk.frame)).await?;
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
            sha256: chunk.sha256,
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
        let length = frame.len() as u64;
        self.chunks[n].key_filter = Some(FilterEntry {
            offset: self.offset,
            length,
            sha256: pgark_archive::sha256_hex(&frame),
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
    pub(super) async fn abort(self) {
        if let Some(upload) = self.upload
            && let Err(e) = upload.abort().await
        {
            tracing::warn!("could not abort the upload of {}: {e}", self.key);
        }
    }

    /// Completes the object; the manifest may only record stored data.
    pub(super) async fn complete(mut self) -> Result<WrittenObject, EngineError> {
        if let Some(frame) = self.held_filter.take() {
            let n = self.chunks.len() - 1;
            if self.overlaps(n, n.checked_sub(1)) {
                self.store_filter(n, frame).await?;
            }
        }
        if let Some(upload) = self.upload {
            let size = upload.complete().await?;
            if size != self.offset {
                return Err(EngineError::Internal(format!(
                    "{} was stored with {size} bytes, {} were written",
                    self.key, self.offset
                )));
            }
        }
        Ok(WrittenObject {
            chunks: self.chunks,
            stored_bytes: self.offset,
            content_digest: self.content_digest,
        })
    }
}
