//! What backups a store holds, and in what state, for `ls`, `prune` and the dump's size check.

use std::collections::BTreeMap;

use pgark_archive::{Manifest, StartedMarker, Timestamp, layout};
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
}

/// Every backup under `store`, oldest first. Objects outside backup ids are ignored.
pub async fn list_backups(store: &dyn ObjectStore) -> Result<Vec<BackupListing>, EngineError> {
    let mut sizes: BTreeMap<String, (u64, bool, bool)> = BTreeMap::new();
    for object in store.list(None).await? {
        let mut segments = object.key.segments();
        let Some(id) = segments.next().filter(|id| layout::is_backup_id(id)) else {
            continue;
        };
        let rest: Vec<&str> = segments.collect();
        let entry = sizes.entry(id.to_owned()).or_default();
        entry.0 += object.size;
        entry.1 |= rest == [layout::MANIFEST_NAME];
        entry.2 |= rest == [layout::STARTED_NAME];
    }
    let mut listings = Vec::with_capacity(sizes.len());
    for (id, (stored_bytes, has_manifest, has_marker)) in sizes {
        let Some(started_at) = layout::backup_started(&id) else {
            continue;
        };
        let mut listing = BackupListing {
            id: id.clone(),
            state: BackupState::Incomplete,
            started_at,
            finished_at: None,
            database: None,
            server_version: None,
            stored_bytes,
            raw_bytes: None,
            tables: None,
            rows: None,
        };
        if has_manifest {
            match read_manifest(store, &id).await {
                Ok(manifest) => {
                    listing.state = BackupState::Complete;
                    listing.finished_at = Timestamp::parse_rfc3339(&manifest.finished_at).ok();
                    listing.database = Some(manifest.source.database.clone());
                    listing.server_version = Some(manifest.source.server_version.clone());
                    listing.raw_bytes = Some(manifest.raw_bytes());
                    listing.tables = Some(manifest.tables.len());
                    listing.rows = Some(manifest.total_rows());
                }
                Err(e) => listing.state = BackupState::Damaged(e.to_string()),
            }
        } else if has_marker {
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

async fn read_manifest(store: &dyn ObjectStore, id: &str) -> Result<Manifest, EngineError> {
    let key = ObjectKey::new(layout::manifest_name(id))?;
    let bytes = store.get(&key).await?;
    Ok(Manifest::from_bytes(
        &format!("{}/{key}", store.location().trim_end_matches('/')),
        &bytes,
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
        let of_backup = match read_manifest(store, &path).await {
            Ok(manifest) => manifest.before_image.map(|b| b.of_backup),
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
