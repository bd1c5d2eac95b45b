//! Dumping one piece of a table: COPY out, cut into chunks of whole rows, compress and hash on the
//! CPU pool, append the frames to the piece's data object.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use pgark_archive::{ChunkEntry, ContentDigest, EncodedChunk, KeyRange, layout};
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
    pub(super) async fn dump(
        &self,
        session: &Connection,
        id: u32,
        table: &TableData,
        piece: &Piece,
        key_column: Option<&str>,
    ) -> Result<WrittenObject, EngineError> {
        let name = format!("{}.{}", table.schema, table.name);
        let key_field = key_column.and_then(|key| table.columns.iter().position(|c| c.name == key));
        let stream = session
            .client()
            .copy_out(&copy_out_range_sql(table, &piece.range))
            .await
            .map_err(|e| PgError::query(format!("starting COPY of table {name}"), e))?;
        let mut stream = std::pin::pin!(stream);

        let object = layout::data_object_name(id, piece.part);
        let key_column = key_field.and(key_column);
        let mut writer = ObjectWriter::new(self, &object, key_column)?;
        let mut buffer = BytesMut::new();
        let mut compressing: Compressing = VecDeque::new();
        while let Some(row) = stream.next().await {
            let row = row.map_err(|e| PgError::query(format!("reading table {name}"), e))?;
            // Rows arrive one per message, so cutting between messages cuts between rows. A
            // chunk is cut before it would pass the chunk size; a row larger than a chunk is a
            // chunk of its own, sent without copying it.
            if !buffer.is_empty() && buffer.len() + row.len() > self.chunk_size {
                let full = std::mem::take(&mut buffer).freeze();
                self.compress(full, key_field, &mut compressing, &mut writer)
                    .await?;
            }
            if buffer.is_empty() && row.len() >= self.chunk_size {
                self.compress(row, key_field, &mut compressing, &mut writer)
                    .await?;
            } else {
                if buffer.capacity() == 0 {
                    buffer.reserve(self.chunk_size);
                }
                buffer.extend_from_slice(&row);
            }
        }
        if !buffer.is_empty() {
            self.compress(buffer.freeze(), key_field, &mut compressing, &mut writer)
                .await?;
        }
        while let Some((share, done)) = compressing.pop_front() {
            writer.append(done.await?).await?;
            drop(share);
        }
        let data = writer.complete().await?;
        tracing::debug!(
            table = %name,
            piece = piece.part,
            chunks = data.chunks.len(),
            "piece dumped"
        );
        Ok(data)
    }

    /// Hands `rows` to the CPU pool once the budget has room, appending finished chunks (which
    /// frees their share) while it waits, so sessions never wait on each other in a circle.
    async fn compress(
        &self,
        rows: Bytes,
        key_field: Option<usize>,
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
        let encoding = self.cpu.encode(rows, self.compress_level, key_field);
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
    key_column: Option<&'a str>,
    content_digest: ContentDigest,
    /// Whether the chunks' `rows` are table rows (for progress), not large-object records.
    counts_rows: bool,
}

impl<'a> ObjectWriter<'a> {
    pub(super) fn new(
        dumper: &'a TableDumper,
        object: &'a str,
        key_column: Option<&'a str>,
    ) -> Result<Self, EngineError> {
        let key = ObjectKey::new(layout::object_name(&dumper.backup_id, object))?;
        Ok(ObjectWriter {
            dumper,
            object,
            key,
            upload: None,
            offset: 0,
            chunks: Vec::new(),
            key_column,
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
                .key_column
                .zip(chunk.key_range)
                .map(|(column, (min, max))| KeyRange {
                    column: column.to_owned(),
                    min: min.to_string(),
                    max: max.to_string(),
                }),
        });
        self.content_digest = self.content_digest.combine(chunk.content_digest);
        self.offset += length;
        tracing::debug!(object = %self.key, chunk = self.chunks.len() - 1, "chunk stored");
        Ok(())
    }

    /// Completes the object; the manifest may only record stored data.
    pub(super) async fn complete(self) -> Result<WrittenObject, EngineError> {
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
