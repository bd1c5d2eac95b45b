//! What backups a store holds and in what state — the one decision of whether a backup is usable
//! (`classify`), for `ls`, `--check-max-age`, `prune`, the dump's size check and `latest` — and
//! the one manifest reader.

use std::collections::BTreeMap;

use pgark_archive::seal::{DataKey, EncryptionInfo, KeyEnvelope};
use pgark_archive::{Manifest, ManifestHead, ObjectLockRecord, StartedMarker, Timestamp, layout};
use pgark_storage::{ObjectKey, ObjectStore};

use crate::EngineError;

/// A backup's state, decided the one way SPEC I1 allows: complete iff its manifest exists (and,
/// here, also reads back with a valid checksum).
#[derive(Debug, Clone, PartialEq)]
pub enum BackupState {
    Complete,
    /// Begun (objects exist) but no manifest: the dump failed, was killed, or is still running.
    Incomplete,
    /// A manifest exists but cannot be trusted; the reason says why.
    Damaged(String),
}

impl BackupState {
    pub fn label(&self) -> &'static str {
        match self {
            BackupState::Complete => "complete",
            BackupState::Incomplete => "incomplete",
            BackupState::Damaged(_) => "damaged",
        }
    }
}

/// One backup as `ls` shows it.
#[derive(Debug, Clone)]
pub struct BackupListing {
    pub id: String,
    pub state: BackupState,
    /// When the dump started (from the id).
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub database: Option<String>,
    pub server_version: Option<String>,
    /// Bytes of every object under the backup, manifest included.
    pub stored_bytes: u64,
    pub raw_bytes: Option<u64>,
    pub tables: Option<usize>,
    pub rows: Option<u64>,
    /// The recipients an encrypted backup's key is wrapped for; empty for a clear backup.
    pub recipients: Vec<String>,
    /// The Object Lock its objects were written with, as its manifest records it.
    pub object_lock: Option<ObjectLockRecord>,
}

impl BackupListing {
    /// Client-side encrypted (its head then does not name the database).
    pub fn is_encrypted(&self) -> bool {
        !self.recipients.is_empty()
    }
}

/// What a listing of the store shows of one backup id: its objects' bytes, whether it has a
/// manifest and a start marker, and the sizes of its other metadata objects (format 2).
#[derive(Debug, Default, Clone, Copy)]
struct BackupObjects {
    stored_bytes: u64,
    has_manifest: bool,
    has_marker: bool,
    catalog_bytes: Option<u64>,
    chunk_index_bytes: Option<u64>,
}

/// The backup ids under `store` (objects outside backup ids are ignored), oldest first.
async fn scan(store: &dyn ObjectStore) -> Result<BTreeMap<String, BackupObjects>, EngineError> {
    let mut ids: BTreeMap<String, BackupObjects> = BTreeMap::new();
    for object in store.list(None).await? {
        let mut segments = object.key.segments();
        let Some(id) = segments.next().filter(|id| layout::is_backup_id(id)) else {
            continue;
        };
        let rest: Vec<&str> = segments.collect();
        let entry = ids.entry(id.to_owned()).or_default();
        entry.stored_bytes += object.size;
        entry.has_manifest |= rest == [layout::MANIFEST_NAME];
        entry.has_marker |= rest == [layout::STARTED_NAME];
        if rest == [pgark_archive::CATALOG_NAME] {
            entry.catalog_bytes = Some(object.size);
        } else if rest == [pgark_archive::CHUNK_INDEX_NAME] {
            entry.chunk_index_bytes = Some(object.size);
        }
    }
    Ok(ids)
}

/// Whether backup `id` is usable: the one decision every command takes (SPEC I1: complete iff
/// its manifest exists; here also: its head reads back with a valid checksum, a known format
/// version and possible sizes, and the metadata objects it names are there with their recorded
/// sizes). Reads only the head (and, for format 1, the whole manifest, which is the head).
async fn classify(
    store: &dyn ObjectStore,
    id: &str,
    objects: BackupObjects,
) -> Result<(BackupState, Option<ManifestHead>), EngineError> {
    if !objects.has_manifest {
        return Ok((BackupState::Incomplete, None));
    }
    match read_head(store, id).await {
        Ok((head, _)) => {
            let listed = [
                (&head.catalog, objects.catalog_bytes),
                (&head.chunk_index, objects.chunk_index_bytes),
            ];
            for (recorded, size) in listed {
                if let Some(recorded) = recorded
                    && size != Some(recorded.length)
                {
                    let found = size.map_or_else(|| "missing".to_owned(), |s| format!("{s} bytes"));
                    return Ok((
                        BackupState::Damaged(format!(
                            "{} is {found}, its manifest records {} bytes",
                            recorded.object, recorded.length
                        )),
                        None,
                    ));
                }
            }
            Ok((BackupState::Complete, Some(head)))
        }
        // A store that cannot be read is not a verdict on the backup.
        Err(EngineError::Store(e)) if !matches!(e, pgark_storage::StoreError::NotFound { .. }) => {
            Err(EngineError::Store(e))
        }
        Err(e) => Ok((BackupState::Damaged(e.to_string()), None)),
    }
}

/// Every backup under `store`, oldest first.
pub async fn list_backups(store: &dyn ObjectStore) -> Result<Vec<BackupListing>, EngineError> {
    let ids = scan(store).await?;
    let mut listings = Vec::with_capacity(ids.len());
    for (id, objects) in ids {
        let Some(started_at) = layout::backup_started(&id) else {
            continue;
        };
        let (state, manifest) = classify(store, &id, objects).await?;
        let mut listing = BackupListing {
            id: id.clone(),
            state,
            started_at,
            finished_at: None,
            database: None,
            server_version: None,
            stored_bytes: objects.stored_bytes,
            raw_bytes: None,
            tables: None,
            rows: None,
            recipients: Vec::new(),
            object_lock: None,
        };
        if let Some(head) = manifest {
            listing.object_lock = head.settings.object_lock.clone();
            if let Some(info) = &head.encryption {
                listing.recipients = info.recipients.clone();
            }
            listing.finished_at = Timestamp::parse_rfc3339(&head.finished_at).ok();
            listing.database = Some(head.source.database.clone());
            listing.server_version = Some(head.source.server_version.clone());
            listing.raw_bytes = Some(head.totals.raw_bytes);
            listing.tables = usize::try_from(head.totals.tables).ok();
            listing.rows = Some(head.totals.rows);
        } else if objects.has_marker {
            let key = ObjectKey::new(layout::started_name(&id))?;
            if let Ok(bytes) = store.get(&key).await
                && let Ok(marker) = StartedMarker::from_bytes(key.as_str(), &bytes)
            {
                listing.database = Some(marker.database);
            }
        }
        listings.push(listing);
    }
    Ok(listings)
}

/// A backup newer than the one `latest` chose, and why it was passed over.
#[derive(Debug, Clone)]
pub struct SkippedBackup {
    pub id: String,
    pub state: BackupState,
}

/// The newest usable backup under `store` (what `latest` means): its id, and the newer backups
/// passed over because they are incomplete or damaged. Reads heads newest first and stops at the
/// first usable one.
pub(crate) async fn newest_usable(
    store: &dyn ObjectStore,
) -> Result<Option<(String, Vec<SkippedBackup>)>, EngineError> {
    let mut skipped = Vec::new();
    for (id, objects) in scan(store).await?.into_iter().rev() {
        match classify(store, &id, objects).await? {
            (BackupState::Complete, Some(_)) => return Ok(Some((id, skipped))),
            (state, _) => skipped.push(SkippedBackup { id, state }),
        }
    }
    Ok(None)
}

/// Reads and checks backup `id`'s manifest file: the head, and for a format 1 backup the whole
/// manifest it is. The one reader of manifest files.
pub(crate) async fn read_head(
    store: &dyn ObjectStore,
    id: &str,
) -> Result<(ManifestHead, Option<Manifest>), EngineError> {
    let key = ObjectKey::new(layout::manifest_name(id))?;
    let bytes = store.get(&key).await?;
    Ok(ManifestHead::from_bytes(
        &format!("{}/{key}", store.location().trim_end_matches('/')),
        &bytes,
    )?)
}

/// Backup `id`'s manifest from what [`read_head`] read: for format 2, the head and the catalog,
/// read and checked here. The tables' chunk lists of a format 2 backup are not loaded (see
/// `BackupRef::load_chunks`).
pub(crate) async fn read_catalog(
    store: &dyn ObjectStore,
    id: &str,
    (head, whole): (ManifestHead, Option<Manifest>),
    keys: &pgark_keys::Keyring,
) -> Result<Manifest, EngineError> {
    if let Some(manifest) = whole {
        return Ok(manifest);
    }
    let Some(catalog) = &head.catalog else {
        return Err(pgark_archive::ArchiveError::ManifestCorrupt {
            object: format!("{}/{id}", store.location().trim_end_matches('/')),
            reason: "it names no catalog".to_owned(),
        }
        .into());
    };
    let data_key = match &head.encryption {
        Some(info) => Some(std::sync::Arc::new(
            open_data_key(store, id, &head.backup_id, info, keys).await?,
        )),
        None => None,
    };
    let key = ObjectKey::new(layout::object_name(id, &catalog.object))?;
    let bytes = store.get(&key).await?;
    Ok(Manifest::from_catalog(
        head,
        &format!("{}/{key}", store.location().trim_end_matches('/')),
        &bytes,
        data_key,
    )?)
}

/// Reads the key envelope of the backup at `path` whose id is `backup_id` (checked against the
/// head's record `info`) and opens its data key with `keys`.
pub(crate) async fn open_data_key(
    store: &dyn ObjectStore,
    path: &str,
    backup_id: &str,
    info: &EncryptionInfo,
    keys: &pgark_keys::Keyring,
) -> Result<DataKey, EngineError> {
    let envelope = read_envelope(store, path, backup_id, info).await?;
    Ok(keys.open(&envelope, info).await?)
}

/// The key envelope of the backup at `path` (`ID`, or `before-images/ID`) whose id is
/// `backup_id`, as the head's record `info` names it, checked against it.
pub(crate) async fn read_envelope(
    store: &dyn ObjectStore,
    path: &str,
    backup_id: &str,
    info: &EncryptionInfo,
) -> Result<KeyEnvelope, EngineError> {
    let key = ObjectKey::new(layout::object_name(path, &info.envelope.object))?;
    let bytes = store.get(&key).await?;
    let object = format!("{}/{key}", store.location().trim_end_matches('/'));
    pgark_archive::check_object(&object, &info.envelope, &bytes)?;
    Ok(KeyEnvelope::from_bytes(
        &object,
        &bytes,
        backup_id,
        &info.key_check,
    )?)
}

/// Removes every object of backup `id`, the manifest first: if the removal is interrupted, what
/// is left is an incomplete backup, never one that looks complete but has lost data.
pub async fn delete_backup(store: &dyn ObjectStore, id: &str) -> Result<u64, EngineError> {
    let manifest = ObjectKey::new(layout::manifest_name(id))?;
    store.delete(&manifest).await?;
    let prefix = ObjectKey::new(id.to_owned())?;
    let mut removed = 0;
    for object in store.list(Some(&prefix)).await? {
        store.delete(&object.key).await?;
        removed += object.size;
    }
    Ok(removed)
}

/// A surgical restore's before-image beside the backups (under `before-images/`), with the id of
/// the backup whose rows it restored (`None` when its manifest is missing or unreadable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeforeImageListing {
    /// Its place in the store: `before-images/<id>`.
    pub path: String,
    pub of_backup: Option<String>,
    pub stored_bytes: u64,
}

/// The before-images under `before-images/` in `store`, oldest first.
pub async fn list_before_images(
    store: &dyn ObjectStore,
) -> Result<Vec<BeforeImageListing>, EngineError> {
    let folder = crate::surgical::DEFAULT_FOLDER;
    let prefix = ObjectKey::new(folder.to_owned())?;
    let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
    for object in store.list(Some(&prefix)).await? {
        let mut segments = object.key.segments();
        if segments.next() != Some(folder) {
            continue;
        }
        if let Some(id) = segments.next().filter(|id| layout::is_backup_id(id)) {
            *sizes.entry(id.to_owned()).or_default() += object.size;
        }
    }
    let mut listings = Vec::with_capacity(sizes.len());
    for (id, stored_bytes) in sizes {
        let path = format!("{folder}/{id}");
        let of_backup = match read_head(store, &path).await {
            Ok((head, _)) => head.before_image.map(|b| b.of_backup),
            Err(_) => None,
        };
        listings.push(BeforeImageListing {
            path,
            of_backup,
            stored_bytes,
        });
    }
    Ok(listings)
}
