//! Restoring large objects' contents: each chunk is fetched with a ranged read, its SHA-256,
//! frame, size and records checked on the CPU pool before anything is written, then its pieces
//! are written into the objects (created by the pre-data `lo_create` items) with `lo_put`, a
//! batch of pieces per statement with binary parameters. Chunks are independent (each piece
//! says where it goes), so several sessions restore them at once.

use pgark_archive::large_objects::records;
use pgark_pg::{Connection, write_large_object_pieces};

use super::load::TableLoader;
use crate::{EngineError, Progress};

/// Content bytes written per statement: well below PostgreSQL's 1 GB parameter limit whatever
/// the chunk size, and large enough that round trips do not matter.
const WRITE_BATCH_BYTES: usize = 32 << 20;

impl TableLoader {
    /// Restores large-object chunk `index` of `manifest`.
    pub(super) async fn load_large_object_chunk(
        &self,
        session: &Connection,
        index: usize,
    ) -> Result<(), EngineError> {
        let Some(chunk) = self
            .manifest
            .large_objects
            .as_ref()
            .and_then(|lo| lo.chunks.get(index))
        else {
            return Err(EngineError::bug(format!(
                "no large-object chunk {index} in the manifest"
            )));
        };
        let stored = self.backup.read_chunk(chunk).await?;
        let (stream, _) = self
            .backup
            .decode_large_objects(&self.cpu, stored, chunk.clone(), index)
            .await?;
        // Checked whole above, so these parse; a failure here would be a bug, not damage.
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        for piece in records(&stream) {
            let piece = piece.map_err(EngineError::bug)?;
            if batch_bytes + piece.data.len() > WRITE_BATCH_BYTES && !batch.is_empty() {
                write_large_object_pieces(session.client(), &batch).await?;
                batch.clear();
                batch_bytes = 0;
            }
            batch_bytes += piece.data.len();
            batch.push((piece.oid, piece.offset, piece.data));
        }
        write_large_object_pieces(session.client(), &batch).await?;
        Progress::add(&self.progress.raw_bytes, chunk.raw_length);
        Progress::add(&self.progress.stored_bytes, chunk.length);
        Ok(())
    }
}
