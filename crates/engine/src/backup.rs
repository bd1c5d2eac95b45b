//! Finding a backup from what a user typed (`DIR/ID`, `DIR/latest`), reading its manifest and
//! chunks, and claiming ids for new backups. Whether a backup is usable is decided in one place,
//! `inventory::classify`; manifest files are read by `inventory::read_head`.

use std::sync::Arc;

use pgark_archive::seal::DataKey;
use pgark_archive::{ChunkEntry, Manifest, ManifestHead, layout};
use pgark_keys::Keyring;
use pgark_storage::{ObjectKey, ObjectStore, StoreError, StoreOptions, open_location_with};

use crate::EngineError;
use crate::cpu::CpuPool;

/// A backup inside a store: the store holding it (rooted at the backup's parent) and its id.
#[derive(Debug, Clone)]
pub struct BackupRef {
    pub store: Arc<dyn ObjectStore>,
    pub id: String,
    /// An encrypted backup's data key, once its manifest was read with a key that opens it.
    pub(crate) data_key: Option<Arc<DataKey>>,
}

/// A chunk being fetched and checked; see [`BackupRef::fetch_rows`].
#[derive(Debug)]
pub(crate) struct ChunkFetch(tokio::task::JoinHandle<Result<Vec<u8>, EngineError>>);

impl ChunkFetch {
    /// The chunk's rows (COPY text), once fetched and checked.
    pub(crate) async fn rows(self) -> Result<Vec<u8>, EngineError> {
        self.0.await.map_err(|e| EngineError::TaskFailed {
            task: "fetching a chunk",
            source: Some(e),
        })?
    }
}

impl BackupRef {
    /// Backup `id` of `store`, its manifest not read yet.
    pub fn new(store: Arc<dyn ObjectStore>, id: String) -> BackupRef {
        BackupRef {
            store,
            id,
            data_key: None,
        }
    }

    /// Where the backup is, for messages.
    pub fn location(&self) -> String {
        format!(
            "{}/{}",
            self.store.location().trim_end_matches('/'),
            self.id
        )
    }

    /// The key of an object named in the manifest.
    pub fn object_key(&self, object: &str) -> Result<ObjectKey, EngineError> {
        Ok(ObjectKey::new(layout::object_name(&self.id, object))?)
    }

    /// Starts fetching chunk `index` of table `table` (its id and its name for messages) in the
    /// background: a ranged read, then its SHA-256, authenticity (encrypted backups), frame,
    /// size and row count checked and its rows decompressed on the CPU pool, into `buffer` (an
    /// empty one, or one a finished chunk used).
    pub(crate) fn fetch_rows(
        &self,
        cpu: &Arc<CpuPool>,
        chunk: ChunkEntry,
        table: (u32, String),
        index: usize,
        buffer: Vec<u8>,
    ) -> ChunkFetch {
        let backup = self.clone();
        let cpu = cpu.clone();
        ChunkFetch(tokio::spawn(async move {
            let stored = match backup.read_chunk(&chunk).await {
                // An object cut short is damage to this chunk: say which.
                Err(EngineError::Store(StoreError::RangeNotSatisfiable { size, .. })) => {
                    return Err(pgark_archive::ArchiveError::ChunkCorrupt {
                        of: format!("table {}", table.1),
                        object: format!("{}/{}", backup.location(), chunk.object),
                        chunk: index,
                        reason: format!(
                            "its object ends at byte {size}, before the chunk's end at {}: \
                             the object was truncated",
                            chunk.offset + chunk.length
                        ),
                    }
                    .into());
                }
                read => read?,
            };
            cpu.decode(stored, chunk, backup.data_key.clone(), table, index, buffer)
                .await
        }))
    }

    /// Checks and decodes a stored large-object chunk (see [`CpuPool::decode_large_objects`]).
    pub(crate) async fn decode_large_objects(
        &self,
        cpu: &CpuPool,
        stored: bytes::Bytes,
        chunk: ChunkEntry,
        index: usize,
    ) -> Result<(Vec<u8>, pgark_archive::large_objects::RecordTotals), EngineError> {
        cpu.decode_large_objects(stored, chunk, self.data_key.clone(), index)
            .await
    }

    /// The stored bytes of one chunk (a ranged read), not yet checked.
    pub(crate) async fn read_chunk(&self, chunk: &ChunkEntry) -> Result<bytes::Bytes, EngineError> {
        let key = self.object_key(&chunk.object)?;
        Ok(self
            .store
            .get_range(&key, chunk.offset..chunk.offset + chunk.length)
            .await?)
    }

    /// The key filter stored after a chunk of table `table` (its id and name), checked against
    /// its recorded SHA-256, opened (encrypted backups) and parsed before any use; `None` when
    /// the chunk has none.
    pub(crate) async fn read_key_filter(
        &self,
        chunk: &ChunkEntry,
        (table_id, table): (u32, &str),
        index: usize,
    ) -> Result<Option<bytes::Bytes>, EngineError> {
        let Some(filter) = &chunk.key_filter else {
            return Ok(None);
        };
        let key = self.object_key(&chunk.object)?;
        let stored = self
            .store
            .get_range(&key, filter.offset..filter.offset + filter.length)
            .await?;
        let actual = pgark_archive::sha256_hex(&stored);
        if actual != filter.sha256 {
            return Err(pgark_archive::ArchiveError::ChunkChecksumMismatch {
                of: format!("table {table} (its key filter)"),
                object: chunk.object.clone(),
                chunk: index,
                expected: filter.sha256.clone(),
                actual,
            }
            .into());
        }
        let stored = match &self.data_key {
            Some(key) => {
                let piece = pgark_archive::seal::Piece::KeyFilter {
                    object: &chunk.object,
                    offset: filter.offset,
                    table: table_id,
                };
                let opened = key.open(piece, &stored).map_err(|_| {
                    pgark_archive::ArchiveError::ChunkCorrupt {
                        of: format!("table {table} (its key filter)"),
                        object: chunk.object.clone(),
                        chunk: index,
                        reason: "does not authenticate under the backup's key".to_owned(),
                    }
                })?;
                bytes::Bytes::from(opened)
            }
            None => stored,
        };
        pgark_archive::key_summary::KeyFilter::parse(&stored)?;
        Ok(Some(stored))
    }

    /// Reads and checks the manifest (head and catalog; the chunk lists are loaded by
    /// [`BackupRef::load_chunks`]): missing means incomplete (or no backup at all). An encrypted
    /// backup's key is opened with `keys`, and kept for reading its chunks.
    pub async fn read_manifest(&mut self, keys: &Keyring) -> Result<Manifest, EngineError> {
        let head = self.read_head().await?;
        let manifest =
            crate::inventory::read_catalog(self.store.as_ref(), &self.id, head, keys).await?;
        self.data_key = manifest.data_key.clone();
        Ok(manifest)
    }

    /// Loads the chunk lists of the tables `tables` (indexes into `manifest.tables`; `None`: every
    /// table) that are not loaded yet: each with one ranged read of its frame of the chunk index,
    /// or every one with one read of the whole index. Each frame is checked against the catalog.
    pub async fn load_chunks(
        &self,
        manifest: &mut Manifest,
        tables: Option<&[usize]>,
    ) -> Result<(), EngineError> {
        let Some(index) = manifest.chunk_index.clone() else {
            return Ok(());
        };
        let key = ObjectKey::new(layout::object_name(&self.id, &index.object))?;
        let object = format!("{}/{}", self.location(), index.object);
        match tables {
            None => {
                if !manifest.all_chunks_loaded() {
                    let bytes = self.store.get(&key).await?;
                    manifest.load_all_chunks(&object, &bytes)?;
                }
            }
            Some(tables) => {
                for &table in tables {
                    let Some(entry) = manifest.tables.get(table) else {
                        continue;
                    };
                    let Some(at) = entry.chunk_index.clone().filter(|_| !entry.chunks_loaded())
                    else {
                        continue;
                    };
                    let frame = self
                        .store
                        .get_range(&key, at.offset..at.offset.saturating_add(at.length))
                        .await?;
                    manifest.load_chunks(table, &object, &frame)?;
                }
            }
        }
        Ok(())
    }

    /// Every table's chunk list, to be read one table at a time ([`ChunkLists::table`]): the
    /// chunk index is fetched whole (compressed) and checked once, and no more than one table's
    /// list is decoded at a time.
    pub(crate) async fn chunk_lists(&self, manifest: &Manifest) -> Result<ChunkLists, EngineError> {
        let location = self.location();
        let index = match &manifest.chunk_index {
            Some(index) if !manifest.all_chunks_loaded() => {
                let key = ObjectKey::new(layout::object_name(&self.id, &index.object))?;
                let object = format!("{location}/{}", index.object);
                let bytes = self.store.get(&key).await?;
                manifest.check_chunk_index(&object, &bytes)?;
                Some((object, bytes))
            }
            _ => None,
        };
        Ok(ChunkLists { index })
    }

    /// Reads and checks the manifest file (see `inventory::read_head`): missing means incomplete
    /// (or no backup at all).
    async fn read_head(&self) -> Result<(ManifestHead, Option<Manifest>), EngineError> {
        match crate::inventory::read_head(self.store.as_ref(), &self.id).await {
            Err(EngineError::Store(StoreError::NotFound { .. })) => {
                let prefix = ObjectKey::new(self.id.clone())?;
                if self.store.list(Some(&prefix)).await?.is_empty() {
                    Err(EngineError::BackupNotFound {
                        location: self.location(),
                    })
                } else {
                    Err(EngineError::IncompleteBackup {
                        location: self.location(),
                    })
                }
            }
            other => other,
        }
    }
}

/// A backup's chunk lists, read one table at a time (see [`BackupRef::chunk_lists`]). The
/// default has no index: every list read must be loaded in the manifest.
#[derive(Default)]
pub(crate) struct ChunkLists {
    /// The chunk index object's name and bytes, when the lists are not loaded in the manifest.
    index: Option<(String, bytes::Bytes)>,
}

impl ChunkLists {
    /// Table `table`'s chunk list, checked on its own (a list loaded in the manifest is copied;
    /// one neither loaded nor in an index read is an error, never an empty list).
    pub(crate) fn table(
        &self,
        manifest: &Manifest,
        table: usize,
    ) -> Result<Vec<ChunkEntry>, EngineError> {
        let (object, index) = match &self.index {
            Some((object, index)) => (object.as_str(), &index[..]),
            None => ("the chunk index (not read)", &[][..]),
        };
        Ok(manifest.table_chunks(table, object, index)?)
    }
}

/// Fails unless the chunk lists of `tables` are loaded: every reader of chunks checks this first,
/// so that a table whose list was never loaded is an error rather than a table with no rows.
pub(crate) fn require_chunks<'t>(
    tables: impl IntoIterator<Item = &'t pgark_archive::TableEntry>,
) -> Result<(), EngineError> {
    match tables.into_iter().find(|t| !t.chunks_loaded()) {
        Some(table) => Err(EngineError::bug(format!(
            "the chunk list of table {} was not loaded before its rows were read",
            table.display_name()
        ))),
        None => Ok(()),
    }
}

/// Claims an id for a new backup started at `started`, under `prefix` (empty, or a folder such
/// as `before-images/`) of `store`, by writing its start marker where none exists: the first of
/// [`layout::backup_id_candidates`] no other backup has taken. Two backups started in the same
/// second get distinct ids.
pub(crate) async fn claim_backup_id(
    store: &dyn ObjectStore,
    prefix: &str,
    started: pgark_archive::Timestamp,
    database: &str,
) -> Result<String, EngineError> {
    for id in layout::backup_id_candidates(started) {
        let key = ObjectKey::new(format!("{prefix}{}", layout::started_name(&id)))?;
        let marker =
            pgark_archive::StartedMarker::new(id.clone(), started.rfc3339(), database.to_owned());
        match store.put_if_absent(&key, marker.to_bytes().into()).await {
            Ok(()) => return Ok(id),
            Err(StoreError::AlreadyExists { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(EngineError::BackupExists {
        location: format!(
            "{}/{prefix}{}",
            store.location().trim_end_matches('/'),
            layout::backup_id(started)
        ),
    })
}

/// Opens the backup at `location` (`PARENT/ID` or `PARENT/latest`) and reads its manifest.
pub async fn open_backup(location: &str) -> Result<(BackupRef, Manifest), EngineError> {
    open_backup_with(location, &StoreOptions::default(), &Keyring::default()).await
}

/// [`open_backup`] with store options (S3 endpoint, …) for the parent location, and the keys
/// that open it if it is encrypted.
pub async fn open_backup_with(
    location: &str,
    options: &StoreOptions,
    keys: &Keyring,
) -> Result<(BackupRef, Manifest), EngineError> {
    let mut backup = find_backup(location, options).await?;
    let manifest = backup.read_manifest(keys).await?;
    Ok((backup, manifest))
}

/// The backup at `location` and its head alone: what needs no key even when the backup is
/// encrypted (its listing, its stored pieces' checksums).
pub async fn open_backup_head(
    location: &str,
    options: &StoreOptions,
) -> Result<(BackupRef, ManifestHead), EngineError> {
    let backup = find_backup(location, options).await?;
    let (head, _) = backup.read_head().await?;
    Ok((backup, head))
}

/// The backup `location` names (`PARENT/ID` or `PARENT/latest`), its manifest not read yet.
async fn find_backup(location: &str, options: &StoreOptions) -> Result<BackupRef, EngineError> {
    let trimmed = location.trim_end_matches('/');
    let (parent, id) = match trimmed.rsplit_once('/') {
        Some((parent, id)) if !parent.is_empty() && !parent.ends_with(':') => (parent, id),
        Some(("", id)) => ("/", id),
        _ => (".", trimmed),
    };
    let store = open_location_with(parent, false, options).map_err(|e| match e {
        StoreError::NotFound { .. } => EngineError::BackupNotFound {
            location: location.to_owned(),
        },
        other => other.into(),
    })?;
    if id == "latest" {
        return newest_usable(store, location).await;
    }
    // Validate the id as a key segment before using it.
    ObjectKey::new(id.to_owned())?;
    Ok(BackupRef::new(store, id.to_owned()))
}

/// `PARENT/latest`: the newest usable backup, saying which newer ones it passed over and why.
async fn newest_usable(
    store: Arc<dyn ObjectStore>,
    location: &str,
) -> Result<BackupRef, EngineError> {
    let Some((id, skipped)) = crate::inventory::newest_usable(store.as_ref()).await? else {
        return Err(EngineError::NoCompleteBackup {
            location: store.location(),
        });
    };
    for newer in skipped {
        let why = match &newer.state {
            crate::inventory::BackupState::Damaged(reason) => format!("it is damaged: {reason}"),
            _ => "it is incomplete (no manifest: its dump failed, was killed or still runs)"
                .to_owned(),
        };
        tracing::warn!(
            "{location} is backup {id}: the newer backup {} was skipped, as {why}",
            newer.id
        );
    }
    Ok(BackupRef::new(store, id))
}
