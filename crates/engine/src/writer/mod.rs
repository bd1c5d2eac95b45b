//! The one backup writer: every backup — a dump, a surgical restore's before-image — is written
//! through a [`BackupWriter`]. It claims the backup's id (its start marker), writes data objects
//! from COPY streams (rows cut into chunks of whole rows and compressed as they arrive, key ranges
//! and filters recorded), writes the manifest last and only
//! over nothing (SPEC I1), and on failure aborts its uploads and removes what it wrote.

mod large_objects;
mod pieces;

pub(crate) use pieces::{CopySource, DataObject, ObjectWriter, WrittenObject};

use std::sync::Arc;
use std::time::Duration;

use pgark_archive::seal::{CIPHER, DataKey, EncryptionInfo};
use pgark_archive::{Manifest, ObjectLockRecord, ObjectRef, Timestamp, layout};
use pgark_keys::{KmsAccess, Recipient};
use pgark_storage::{ObjectKey, ObjectLock, ObjectStore};

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

/// Client-side encryption asked of a new backup: who its data key is wrapped for.
#[derive(Debug, Clone)]
pub struct Encryption {
    pub recipients: Vec<Recipient>,
    pub kms: KmsAccess,
}

/// An encrypted backup's data key and the head's record of its encryption.
#[derive(Debug)]
pub(crate) struct Sealing {
    pub(crate) key: Arc<DataKey>,
    pub(crate) info: EncryptionInfo,
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
    pub(crate) progress: Arc<Progress>,
    stall_timeout: Option<Duration>,
    /// Set for an encrypted backup: every stored piece is sealed with its key.
    pub(crate) sealing: Option<Sealing>,
}

impl BackupWriter {
    /// Starts a backup under `prefix` of `store`: claims the first free id for `started`
    /// (two backups started in the same second get distinct ids) and, when `encryption` asks
    /// for it, makes the backup's data key and stores its key envelope. Memory for chunks in
    /// flight is sized for `sessions` writing at once.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn start(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        started: Timestamp,
        database: &str,
        settings: WriterSettings,
        cpu: Arc<CpuPool>,
        progress: Arc<Progress>,
        encryption: Option<&Encryption>,
    ) -> Result<BackupWriter, EngineError> {
        // Settings the store cannot honour fail here, before the backup exists.
        store.check_write_settings().await?;
        // An encrypted backup's start marker does not name the database either.
        let marker_database = if encryption.is_some() { "" } else { database };
        let id = crate::backup::claim_backup_id(store.as_ref(), prefix, started, marker_database)
            .await?;
        let mut writer = BackupWriter {
            store,
            prefix: prefix.to_owned(),
            id,
            chunk_size: usize::try_from(settings.chunk_size)
                .unwrap_or(usize::MAX)
                .max(1),
            compress_level: settings.compress_level,
            cpu,
            progress,
            stall_timeout: settings.stall_timeout,
            sealing: None,
        };
        if let Some(encryption) = encryption {
            match writer.seal_with_new_key(encryption).await {
                Ok(sealing) => writer.sealing = Some(sealing),
                Err(e) => {
                    writer.abort().await;
                    return Err(e);
                }
            }
        }
        Ok(writer)
    }

    /// Makes the backup's data key, wrapped for `encryption`'s recipients, and stores the first
    /// key envelope.
    async fn seal_with_new_key(&self, encryption: &Encryption) -> Result<Sealing, EngineError> {
        let (key, envelope) =
            pgark_keys::new_data_key(&self.id, &encryption.recipients, &encryption.kms).await?;
        let name = EncryptionInfo::envelope_name(1);
        let bytes = envelope.to_bytes()?;
        let envelope_ref = ObjectRef {
            object: name.clone(),
            length: bytes.len() as u64,
            sha256: pgark_archive::sha256_hex(&bytes),
        };
        self.store
            .put_if_absent(&self.key(&name)?, bytes.into())
            .await?;
        Ok(Sealing {
            info: EncryptionInfo {
                cipher: CIPHER.to_owned(),
                recipients: pgark_keys::distinct(&encryption.recipients)
                    .into_iter()
                    .map(Recipient::id)
                    .collect(),
                key_check: key.check(),
                envelope: envelope_ref,
                checksums: None,
            },
            key: Arc::new(key),
        })
    }

    /// The Object Lock the store puts on every object of this backup, for its manifest.
    pub(crate) fn object_lock_record(&self) -> Option<ObjectLockRecord> {
        self.store.object_lock().map(|lock| lock_record(&lock))
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
        let encoded = manifest.encode_sealed(
            self.sealing
                .as_ref()
                .map(|sealing| (sealing.key.as_ref(), &sealing.info)),
        )?;
        if let Some(checksums) = encoded.checksums {
            self.store
                .put(&self.key(pgark_archive::CHECKSUMS_NAME)?, checksums.into())
                .await?;
        }
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

/// How a backup records `lock` in its manifest.
pub fn lock_record(lock: &ObjectLock) -> ObjectLockRecord {
    ObjectLockRecord {
        mode: lock.retention.map(|(mode, _)| mode.to_string()),
        retain_until: lock
            .retention
            .map(|(_, until)| Timestamp::from_system_time(until).rfc3339()),
        legal_hold: lock.legal_hold,
    }
}
