//! Dumping one table: COPY out, cut into chunks of whole rows, compress and hash on the CPU pool,
//! append the frames to the table's data object.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use pgark_archive::{ChunkEntry, ContentDigest, EncodedChunk, KeyRange, TableEntry, layout};
use pgark_pg::{Connection, PgError, TableData, copy_out_sql};
use pgark_storage::{ObjectKey, ObjectStore, Upload};
use tracing::info;

use crate::cpu::CpuPool;
use crate::{EngineError, Progress};

/// Chunks a table may have compressing at once. Together with the chunk being filled this bounds
/// a worker's memory to about `(MAX_COMPRESSING + 1) * chunk_size` of raw rows plus their frames.
pub(super) const MAX_COMPRESSING: usize = 2;

pub(super) struct TableDumper {
    pub(super) store: Arc<dyn ObjectStore>,
    pub(super) backup_id: String,
    pub(super) chunk_size: usize,
    pub(super) compress_level: i32,
    pub(super) cpu: Arc<CpuPool>,
    pub(super) progress: Arc<Progress>,
}

impl TableDumper {
    pub(super) async fn dump(
        &self,
        session: &Connection,
        id: u32,
        table: &TableData,
        key_column: Option<&str>,
    ) -> Result<TableEntry, EngineError> {
        let name = format!("{}.{}", table.schema, table.name);
        let key_field = key_column.and_then(|key| table.columns.iter().position(|c| c.name == key));
        let stream = session
            .client()
            .copy_out(&copy_out_sql(table))
            .await
            .map_err(|e| PgError::query(format!("starting COPY of table {name}"), e))?;
        let mut stream = std::pin::pin!(stream);

        let object = layout::data_object_name(id, 0);
        let key_column = key_field.and(key_column);
        let mut writer = ObjectWriter::new(self, &object, key_column)?;
        let mut buffer = BytesMut::with_capacity(self.chunk_size);
        let mut compressing = VecDeque::new();
        while let Some(row) = stream.next().await {
            let row = row.map_err(|e| PgError::query(format!("reading table {name}"), e))?;
            buffer.extend_from_slice(&row);
            if buffer.len() >= self.chunk_size {
                // Rows arrive one per message, so the buffer ends at a row boundary.
                let raw = std::mem::replace(&mut buffer, BytesMut::with_capacity(self.chunk_size));
                compressing.push_back(self.cpu.encode(
                    raw.freeze(),
                    self.compress_level,
                    key_field,
                ));
                if compressing.len() >= MAX_COMPRESSING
                    && let Some(done) = compressing.pop_front()
                {
                    writer.append(done.await?).await?;
                }
            }
        }
        if !buffer.is_empty() {
            compressing.push_back(
                self.cpu
                    .encode(buffer.freeze(), self.compress_level, key_field),
            );
        }
        while let Some(done) = compressing.pop_front() {
            writer.append(done.await?).await?;
        }
        let entry = writer.finish(id, table).await?;
        Progress::add(&self.progress.tables_done, 1);
        info!(
            table = %name,
            rows = entry.row_count,
            raw_bytes = entry.raw_bytes,
            stored_bytes = entry.stored_bytes,
            chunks = entry.chunks.len(),
            "table dumped"
        );
        Ok(entry)
    }
}

/// Appends frames to one data object, opening the upload only when the first frame arrives so
/// that empty tables leave no object behind.
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

/// What an object writer stored.
pub(super) struct WrittenObject {
    pub(super) chunks: Vec<ChunkEntry>,
    pub(super) stored_bytes: u64,
    pub(super) content_digest: ContentDigest,
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

    /// Completes the object; manifest entries may only be built from stored data.
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

    async fn finish(self, id: u32, table: &TableData) -> Result<TableEntry, EngineError> {
        let key_column = self.key_column.map(str::to_owned);
        let written = self.complete().await?;
        Ok(TableEntry {
            id,
            schema: table.schema.clone(),
            name: table.name.clone(),
            item: table.item,
            columns: table.columns.clone(),
            row_count: written.chunks.iter().map(|c| c.rows).sum(),
            raw_bytes: written.chunks.iter().map(|c| c.raw_length).sum(),
            stored_bytes: written.stored_bytes,
            content_digest: written.content_digest.to_hex(),
            key_column,
            chunks: written.chunks,
        })
    }
}
