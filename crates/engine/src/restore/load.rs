//! Loading one table: fetch its chunks with ranged reads (a few ahead), check and decompress each
//! on the CPU pool, and send the rows with COPY FROM. A chunk's rows are sent only after its
//! SHA-256, size and row count have been checked.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use futures::SinkExt;
use pgark_archive::Manifest;
use pgark_pg::{Connection, PgError, copy_in_sql};
use tracing::info;

use crate::cpu::CpuPool;
use crate::{BackupRef, EngineError, Progress};

/// Chunks fetched and decoded ahead of the one being sent. Bounds a session's memory to about
/// `(PREFETCH + 1)` chunks, compressed and raw.
const PREFETCH: usize = 2;

pub(super) struct TableLoader {
    pub(super) backup: BackupRef,
    pub(super) cpu: Arc<CpuPool>,
    pub(super) progress: Arc<Progress>,
}

impl TableLoader {
    pub(super) async fn load(
        self: &Arc<Self>,
        session: &Connection,
        manifest: &Manifest,
        index: usize,
    ) -> Result<(), EngineError> {
        let table = &manifest.tables[index];
        let name = table.display_name();
        let sink = session
            .client()
            .copy_in::<_, Bytes>(&copy_in_sql(&table.schema, &table.name, &table.columns))
            .await
            .map_err(|e| PgError::query(format!("starting COPY into table {name}"), e))?;
        let mut sink = std::pin::pin!(sink);

        let mut fetching = VecDeque::new();
        let mut chunks = table.chunks.iter().enumerate();
        loop {
            while fetching.len() <= PREFETCH {
                let Some((i, chunk)) = chunks.next() else {
                    break;
                };
                fetching.push_back(self.fetch(manifest, index, i, chunk.clone()));
            }
            let Some(next) = fetching.pop_front() else {
                break;
            };
            let rows_text = match next.await {
                Ok(result) => result?,
                Err(e) => {
                    return Err(EngineError::Internal(format!(
                        "chunk fetch task failed: {e}"
                    )));
                }
            };
            sink.send(Bytes::from(rows_text))
                .await
                .map_err(|e| PgError::query(format!("loading table {name}"), e))?;
        }
        let rows = sink
            .as_mut()
            .finish()
            .await
            .map_err(|e| PgError::query(format!("loading table {name}"), e))?;
        if rows != table.row_count {
            return Err(EngineError::RowCountMismatch {
                table: name,
                expected: table.row_count,
                actual: rows,
            });
        }
        Progress::add(&self.progress.tables_done, 1);
        info!(table = %name, rows, raw_bytes = table.raw_bytes, "table restored");
        Ok(())
    }

    /// Starts fetching and checking one chunk in the background, so that it proceeds while the
    /// previous chunk is being sent.
    fn fetch(
        self: &Arc<Self>,
        manifest: &Manifest,
        table_index: usize,
        chunk_index: usize,
        chunk: pgark_archive::ChunkEntry,
    ) -> tokio::task::JoinHandle<Result<Vec<u8>, EngineError>> {
        let loader = self.clone();
        let table_name = manifest.tables[table_index].display_name();
        tokio::spawn(async move {
            let key = loader.backup.object_key(&chunk.object)?;
            let stored = loader
                .backup
                .store
                .get_range(&key, chunk.offset..chunk.offset + chunk.length)
                .await?;
            let raw_length = chunk.raw_length;
            let stored_length = chunk.length;
            let rows = chunk.rows;
            let rows_text = loader
                .cpu
                .decode(stored, chunk, table_name, chunk_index)
                .await?;
            Progress::add(&loader.progress.rows, rows);
            Progress::add(&loader.progress.raw_bytes, raw_length);
            Progress::add(&loader.progress.stored_bytes, stored_length);
            Ok(rows_text)
        })
    }
}
