//! `copy`: one backup into another store (another bucket, region, endpoint, or a directory),
//! streamed, with every stored piece checked on the way and the manifest written last (I1), so
//! a copy that fails or is killed is never taken for a backup at the destination.
//!
//! What is checked needs no key, so encrypted backups copy as they are: every data object must
//! be tiled exactly by the pieces the backup records (chunks and key filters, from the chunk
//! index, or for an encrypted backup from its clear checksum list), each piece's SHA-256 is
//! checked as it is read, and each metadata object against the head. A destination object that
//! is already there, of the right size and with every piece's checksum right, is not sent
//! again, so a rerun after a failure or a kill sends only what is missing.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use pgark_archive::{ManifestHead, ObjectRef, layout};
use pgark_storage::{ObjectKey, ObjectStore, StoreError};

use crate::backup::BackupRef;
use crate::{EngineError, Progress};

/// Data objects copied at once.
const OBJECTS_IN_FLIGHT: usize = 4;

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    pub backup_id: String,
    /// Objects sent to the destination.
    pub objects_sent: u64,
    /// Objects found at the destination already, whole, and not sent again.
    pub objects_present: u64,
    pub bytes_sent: u64,
    /// The destination had the backup's manifest already: nothing was done.
    pub already_complete: bool,
}

/// One stored piece of a data object and what it holds, for messages.
#[derive(Debug, Clone)]
struct StoredRange {
    offset: u64,
    length: u64,
    sha256: String,
    /// `table public.tasks`, `table public.tasks (its key filter)`, `the large objects`.
    of: String,
    /// Its number among `of`'s chunks.
    chunk: usize,
}

/// Copies backup `source` (complete) into `dest`, under the same id.
pub async fn copy_backup(
    source: &BackupRef,
    dest: &dyn ObjectStore,
    progress: &Progress,
) -> Result<CopyReport, EngineError> {
    let store = source.store.as_ref();
    let id = &source.id;
    let mut report = CopyReport {
        backup_id: id.clone(),
        ..CopyReport::default()
    };
    let manifest_key = ObjectKey::new(layout::manifest_name(id))?;
    let manifest_bytes = store.get(&manifest_key).await?;
    let (head, whole) = ManifestHead::from_bytes(
        &format!("{}/{manifest_key}", store.location().trim_end_matches('/')),
        &manifest_bytes,
    )?;
    dest.check_write_settings().await?;
    match dest.get(&manifest_key).await {
        Ok(existing) if existing == manifest_bytes => {
            report.already_complete = true;
            return Ok(report);
        }
        Ok(_) => {
            return Err(EngineError::CopyConflict {
                location: format!("{}/{id}", dest.location().trim_end_matches('/')),
            });
        }
        Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }

    let metadata = metadata_objects(&head);
    let pieces = match &head.encryption {
        Some(_) => encrypted_pieces(source, &head).await?,
        None => {
            let mut manifest = crate::inventory::read_catalog(
                store,
                id,
                (head.clone(), whole),
                &pgark_keys::Keyring::default(),
            )
            .await?;
            source.load_chunks(&mut manifest, None).await?;
            clear_pieces(&manifest)
        }
    };

    let prefix = ObjectKey::new(id.clone())?;
    let listed = store.list(Some(&prefix)).await?;
    let mut data = Vec::new();
    for object in &listed {
        let name = object
            .key
            .as_str()
            .strip_prefix(&format!("{id}/"))
            .unwrap_or(object.key.as_str());
        if name == layout::MANIFEST_NAME {
            continue;
        }
        if let Some(reference) = metadata.iter().find(|r| r.object == name) {
            let sent = copy_metadata(source, dest, &object.key, Some(reference)).await?;
            report.count(sent, reference.length);
        } else if name == layout::STARTED_NAME {
            let sent = copy_metadata(source, dest, &object.key, None).await?;
            report.count(sent, object.size);
        } else if let Some(ranges) = pieces.get(name) {
            data.push((object.key.clone(), object.size, ranges));
        } else {
            // A stale key envelope left by a killed rekey, say: not part of the backup.
            tracing::warn!(object = %object.key, "not part of the backup's records: not copied");
        }
    }
    for name in pieces.keys() {
        if !listed
            .iter()
            .any(|o| o.key.as_str() == format!("{id}/{name}"))
        {
            return Err(StoreError::NotFound {
                location: format!("{}/{id}/{name}", store.location().trim_end_matches('/')),
            }
            .into());
        }
    }
    let results: Vec<(bool, u64)> =
        futures::stream::iter(data.into_iter().map(|(key, size, ranges)| async move {
            let sent = copy_data_object(source, dest, &key, size, ranges).await?;
            if sent {
                Progress::add(&progress.stored_bytes, size);
            }
            Ok::<_, EngineError>((sent, size))
        }))
        .buffer_unordered(OBJECTS_IN_FLIGHT)
        .try_collect()
        .await?;
    for (sent, size) in results {
        report.count(sent, size);
    }
    // Last: only now is the copy a backup at the destination.
    dest.put_if_absent(&manifest_key, manifest_bytes.clone())
        .await?;
    report.objects_sent += 1;
    report.bytes_sent += manifest_bytes.len() as u64;
    Ok(report)
}

impl CopyReport {
    fn count(&mut self, sent: bool, size: u64) {
        if sent {
            self.objects_sent += 1;
            self.bytes_sent += size;
        } else {
            self.objects_present += 1;
        }
    }
}

/// The metadata objects the head checks: catalog, chunk index, key envelope, checksum list.
fn metadata_objects(head: &ManifestHead) -> Vec<ObjectRef> {
    let encryption = head.encryption.as_ref();
    [
        head.catalog.as_ref(),
        head.chunk_index.as_ref(),
        encryption.map(|e| &e.envelope),
        encryption.and_then(|e| e.checksums.as_ref()),
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect()
}

/// A clear backup's data objects and their pieces, from its chunk lists.
fn clear_pieces(manifest: &pgark_archive::Manifest) -> BTreeMap<String, Vec<StoredRange>> {
    let mut pieces: BTreeMap<String, Vec<StoredRange>> = BTreeMap::new();
    let lists = manifest
        .tables
        .iter()
        .map(|t| (format!("table {}.{}", t.schema, t.name), &t.chunks))
        .chain(
            manifest
                .large_objects
                .iter()
                .map(|lo| ("the large objects".to_owned(), &lo.chunks)),
        );
    for (of, chunks) in lists {
        for (n, chunk) in chunks.iter().enumerate() {
            let ranges = pieces.entry(chunk.object.clone()).or_default();
            ranges.push(StoredRange {
                offset: chunk.offset,
                length: chunk.length,
                sha256: chunk.sha256.clone(),
                of: of.clone(),
                chunk: n,
            });
            if let Some(filter) = &chunk.key_filter {
                ranges.push(StoredRange {
                    offset: filter.offset,
                    length: filter.length,
                    sha256: filter.sha256.clone(),
                    of: format!("{of} (its key filter)"),
                    chunk: n,
                });
            }
        }
    }
    for ranges in pieces.values_mut() {
        ranges.sort_by_key(|r| r.offset);
    }
    pieces
}

/// An encrypted backup's data objects and their pieces, from its clear checksum list (checked
/// against the head first): no key is needed to copy it.
async fn encrypted_pieces(
    source: &BackupRef,
    head: &ManifestHead,
) -> Result<BTreeMap<String, Vec<StoredRange>>, EngineError> {
    let checksums = head
        .encryption
        .as_ref()
        .and_then(|e| e.checksums.as_ref())
        .ok_or_else(|| pgark_archive::ArchiveError::ManifestCorrupt {
            object: source.location(),
            reason: "its head records no checksum list".to_owned(),
        })?;
    let bytes = source
        .store
        .get(&source.object_key(&checksums.object)?)
        .await?;
    let name = format!("{}/{}", source.location(), checksums.object);
    let mut pieces: BTreeMap<String, Vec<StoredRange>> = BTreeMap::new();
    for piece in pgark_archive::stored_pieces(&name, checksums, &bytes)? {
        let piece = piece?;
        let ranges = pieces.entry(piece.object.clone()).or_default();
        let chunk = ranges.len();
        ranges.push(StoredRange {
            offset: piece.offset,
            length: piece.length,
            sha256: piece.sha256,
            of: "the encrypted backup's data".to_owned(),
            chunk,
        });
    }
    for ranges in pieces.values_mut() {
        ranges.sort_by_key(|r| r.offset);
    }
    Ok(pieces)
}

/// Copies one metadata object (checked against `reference` when the head records it) unless
/// the destination has it with the same bytes; whether it was sent.
async fn copy_metadata(
    source: &BackupRef,
    dest: &dyn ObjectStore,
    key: &ObjectKey,
    reference: Option<&ObjectRef>,
) -> Result<bool, EngineError> {
    let bytes = source.store.get(key).await?;
    if let Some(reference) = reference {
        let name = format!("{}/{}", source.location(), reference.object);
        pgark_archive::check_object(&name, reference, &bytes)?;
    }
    match dest.get(key).await {
        Ok(there) if there == bytes => return Ok(false),
        Ok(_) | Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    dest.put(key, bytes).await?;
    Ok(true)
}

/// Copies data object `key` (`size` bytes, tiled by `ranges`), each piece checked as it is
/// read, unless the destination holds it whole already; whether it was sent.
async fn copy_data_object(
    source: &BackupRef,
    dest: &dyn ObjectStore,
    key: &ObjectKey,
    size: u64,
    ranges: &[StoredRange],
) -> Result<bool, EngineError> {
    let location =
        |store: &dyn ObjectStore| format!("{}/{key}", store.location().trim_end_matches('/'));
    // The pieces must account for every byte: nothing unchecked is copied.
    let mut end = 0;
    for range in ranges {
        if range.offset != end {
            return Err(not_tiled(
                &location(source.store.as_ref()),
                format!(
                    "bytes {end}..{} of it are in no recorded chunk",
                    range.offset
                ),
            ));
        }
        end = range.offset + range.length;
    }
    if end != size {
        return Err(not_tiled(
            &location(source.store.as_ref()),
            format!("it is {size} bytes long, but its recorded chunks end at byte {end}"),
        ));
    }
    if let Ok(there) = dest.head(key).await
        && there.size == size
        && check_ranges(dest, key, ranges).await.is_ok()
    {
        return Ok(false);
    }
    let mut upload = dest.start_upload_of_size(key, size).await?;
    for range in ranges {
        let read = read_checked(source.store.as_ref(), key, range).await;
        let written = match read {
            Ok(bytes) => upload.write(bytes).await.map_err(EngineError::from),
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            if let Err(abort) = upload.abort().await {
                tracing::warn!("could not abort the upload of {}: {abort}", location(dest));
            }
            return Err(e);
        }
    }
    upload.complete().await?;
    Ok(true)
}

/// Reads one piece of `key` from `store` and checks its SHA-256.
async fn read_checked(
    store: &dyn ObjectStore,
    key: &ObjectKey,
    range: &StoredRange,
) -> Result<bytes::Bytes, EngineError> {
    let bytes = store
        .get_range(key, range.offset..range.offset + range.length)
        .await?;
    let actual = pgark_archive::sha256_hex(&bytes);
    if actual != range.sha256 {
        return Err(pgark_archive::ArchiveError::ChunkChecksumMismatch {
            of: range.of.clone(),
            object: format!("{}/{key}", store.location().trim_end_matches('/')),
            chunk: range.chunk,
            expected: range.sha256.clone(),
            actual,
        }
        .into());
    }
    Ok(bytes)
}

/// Whether every piece of `key` in `store` has its recorded checksum.
async fn check_ranges(
    store: &dyn ObjectStore,
    key: &ObjectKey,
    ranges: &[StoredRange],
) -> Result<(), EngineError> {
    for range in ranges {
        read_checked(store, key, range).await?;
    }
    Ok(())
}

/// A data object whose recorded chunks and key filters do not cover it exactly.
fn not_tiled(object: &str, reason: String) -> EngineError {
    pgark_archive::ArchiveError::ManifestCorrupt {
        object: object.to_owned(),
        reason: format!("{reason}, so it cannot be checked: not copied"),
    }
    .into()
}
