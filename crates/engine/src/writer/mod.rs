//! The one backup writer: every backup — a dump, a surgical restore's before-image — is written
//! through a [`BackupWriter`]. It claims the backup's id (its start marker), writes data objects
//! from COPY streams (rows cut into chunks of whole rows, compressed and hashed on the CPU pool
//! within a memory budget, key ranges and filters recorded), writes the manifest last and only
//! over nothing (SPEC I1), and on failure aborts its uploads and removes what it wrote.

mod large_objects;
mod pieces;

pub(crate) use pieces::{MAX_COMPRESSING, ObjectWriter, WrittenObject};

use std::sync::Arc;
use std::time::Duration;

use pgark_archive::{Manifest, Timestamp, layout};
use pgark_storage::{ObjectKey, ObjectStore};

use crate::budget::ByteBudget;
use crate::cpu::CpuPool;
use crate::{EngineError, Progress};

/// How a writer cuts and compresses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriterSettings {
    pub(crate) chunk_size: u64,
    pub(crate) compress_level: i32,
    /// The source connection's [`pgark_pg::ConnConfig::stall_timeout`].
    pub(crate) stall_timeout: Option<Duration>,
}

#[derive(Debug)]
pub(crate) struct BackupWriter {
    store: Arc<dyn ObjectStore>,
    /// Where under the store the backup goes: `""`, or a folder such as `before-images/`.
    prefix: String,
    id: String,
    chunk_size: usize,
    compress_level: i32,
    cpu: Arc<CpuPool>,
    /// Shared by every session writing: raw chunks waiting for or in compression, and frames.
    budget: ByteBudget,
    pub(crate) progress: Arc<Progress>,
    stall_timeout: Option<Duration>,
}

impl BackupWriter {
    /// Starts a backup under `prefix` of `store`: claims the first free id for `started`
    /// (two backups started in the same second get distinct ids). Memory for chunks in flight
    /// is sized for `sessions` writing at once.
    pub(crate) async fn start(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        started: Timestamp,
        database: &str,
        settings: WriterSettings,
        cpu: Arc<CpuPool>,
        progress: Arc<Progress>,
    ) -> Result<BackupWriter, EngineError> {
        let id = crate::backup::claim_backup_id(store.as_ref(), prefix, started, database).await?;
        Ok(BackupWriter {
            store,
            prefix: prefix.to_owned(),
            id,
            chunk_size: usize::try_from(settings.chunk_size)
                .unwrap_or(usize::MAX)
                .max(1),
            compress_level: settings.compress_level,
            budget: ByteBudget::new((cpu.threads() as u64 + 2) * 2 * settings.chunk_size),
            cpu,
            progress,
            stall_timeout: settings.stall_timeout,
        })
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Where the backup is, as commands take it: `DEST/ID` or `DEST/before-images/ID`.
    pub(crate) fn location(&self) -> String {
        format!(
            "{}/{}{}",
            self.store.location().trim_end_matches('/'),
            self.prefix,
            self.id
        )
    }

    /// The key of one of the backup's objects.
    fn key(&self, object: &str) -> Result<ObjectKey, EngineError> {
        Ok(ObjectKey::new(format!(
            "{}{}",
            self.prefix,
            layout::object_name(&self.id, object)
        ))?)
    }

    /// Writes the metadata: the chunk index and the catalog, then the manifest's head, last and
    /// never over another: from now on the backup is complete.
    pub(crate) async fn finish(&self, manifest: &Manifest) -> Result<(), EngineError> {
        let encoded = manifest.encode()?;
        self.store
            .put(
                &self.key(pgark_archive::CHUNK_INDEX_NAME)?,
                encoded.chunk_index.into(),
            )
            .await?;
        self.store
            .put(
                &self.key(pgark_archive::CATALOG_NAME)?,
                encoded.catalog.into(),
            )
            .await?;
        let key = ObjectKey::new(format!(
            "{}{}",
            self.prefix,
            layout::manifest_name(&self.id)
        ))?;
        self.store.put_if_absent(&key, encoded.head.into()).await?;
        Ok(())
    }

    /// Abandons the backup: aborts the uploads still open (S3 multipart uploads would otherwise
    /// stay behind, invisible and billed) and removes what was stored, the manifest first.
    /// Best effort: what cannot be removed is logged.
    pub(crate) async fn abort(&self) {
        if let Err(e) = self.store.abort_pending_uploads().await {
            tracing::warn!("could not abort every upload of {}: {e}", self.location());
        }
        remove(self.store.as_ref(), &self.prefix, &self.id).await;
    }
}

/// Removes backup `id` under `prefix` of `store`, the manifest first, logging what cannot be
/// removed: for a backup whose writer is gone (a before-image whose restore did not commit).
pub(crate) async fn remove(store: &dyn ObjectStore, prefix: &str, id: &str) {
    let path = format!("{prefix}{id}");
    if let Err(e) = crate::inventory::delete_backup(store, &path).await {
        tracing::warn!(
            "could not remove {}/{path}: {e}",
            store.location().trim_end_matches('/')
        );
    }
}
