//! `pgark dump`: one consistent snapshot of one database, schema and data, into a new backup.
//!
//! A leader session exports a snapshot, locks every table `ACCESS SHARE` (as pg_dump does, so
//! that no table can be dropped or altered under the dump), reads the schema, and keeps its
//! transaction open until the end. `jobs` worker sessions import the snapshot and COPY tables out,
//! largest first, and one of them reads the large objects' contents. Rows are cut into chunks,
//! compressed and hashed on the CPU pool, and appended to one data object per table (large
//! objects: one object of record chunks). The manifest is written last, only after every object
//! is stored.

mod large_objects;
mod snapshot;
mod table;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pgark_archive::{
    DumpSettings, LargeObjectsEntry, Manifest, ObjectKind, StartedMarker, TableEntry, Timestamp,
    layout,
};
use pgark_pg::{ConnConfig, TableData};
use pgark_storage::{ObjectKey, ObjectStore, StoreError};
use tokio::sync::Mutex;
use tracing::info;

use crate::cpu::CpuPool;
use crate::{Cancel, EngineError, Progress};

/// Default target size of a chunk, uncompressed.
pub const DEFAULT_CHUNK_SIZE: u64 = 8 << 20;
/// Default zstd level: fast, and about as small as gzip -6.
pub const DEFAULT_COMPRESS_LEVEL: i32 = 3;

/// What to dump and how; built by the binary from validated arguments.
#[derive(Debug, Clone)]
pub struct DumpOptions {
    pub source: ConnConfig,
    /// The store under which the new backup is created.
    pub dest: Arc<dyn ObjectStore>,
    pub jobs: usize,
    pub chunk_size: u64,
    pub compress_level: i32,
    /// How long to wait for each table's ACCESS SHARE lock; `None` waits forever.
    pub lock_wait_timeout: Option<Duration>,
}

/// What a finished dump reports.
#[derive(Debug, Clone)]
pub struct DumpSummary {
    pub backup_id: String,
    pub database: String,
    pub location: String,
    pub tables: usize,
    pub rows: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    pub elapsed: Duration,
}

/// Takes one backup. On failure or cancellation no manifest is written, so the partial backup
/// is never taken for a complete one; the objects already written are removed (best effort).
pub async fn dump(
    options: DumpOptions,
    progress: Arc<Progress>,
    mut cancel: Cancel,
) -> Result<DumpSummary, EngineError> {
    let started = Instant::now();
    let started_at = Timestamp::now();
    let backup_id = layout::backup_id(started_at);

    let leader = tokio::select! {
        leader = snapshot::Leader::start(&options) => leader?,
        () = cancel.cancelled() => return Err(EngineError::Interrupted),
    };
    claim_backup_id(
        options.dest.as_ref(),
        &backup_id,
        started_at,
        &leader.source,
    )
    .await?;

    // From here on the id is ours: a failure removes what was written under it.
    let result = tokio::select! {
        result = write_backup(&options, leader, &backup_id, started_at, progress) => result,
        () = cancel.cancelled() => Err(EngineError::Interrupted),
    };
    let manifest = match result {
        Ok(manifest) => manifest,
        Err(e) => {
            // Uploads dropped by the failed or cancelled tasks: abort them (S3 multipart uploads
            // would otherwise stay behind, invisible and billed) before removing what was stored.
            if let Err(abort) = options.dest.abort_pending_uploads().await {
                tracing::warn!("could not abort every upload of the failed backup: {abort}");
            }
            remove_partial_backup(options.dest.as_ref(), &backup_id).await;
            return Err(e);
        }
    };
    Ok(DumpSummary {
        database: manifest.source.database.clone(),
        location: format!(
            "{}/{backup_id}",
            options.dest.location().trim_end_matches('/')
        ),
        backup_id,
        tables: manifest.tables.len(),
        rows: manifest.total_rows(),
        raw_bytes: manifest.raw_bytes(),
        stored_bytes: manifest.stored_bytes(),
        elapsed: started.elapsed(),
    })
}

/// Dumps the schema and every table, then writes the manifest (last, and never over another).
async fn write_backup(
    options: &DumpOptions,
    leader: snapshot::Leader,
    backup_id: &str,
    started_at: Timestamp,
    progress: Arc<Progress>,
) -> Result<Manifest, EngineError> {
    let schema = leader.read_schema().await?;
    info!(
        snapshot = %leader.source.snapshot_id,
        tables = schema.tables.len(),
        "snapshot exported, tables locked, schema read"
    );

    let mut manifest = Manifest::new(
        backup_id.to_owned(),
        started_at.rfc3339(),
        leader.source.clone(),
        DumpSettings {
            jobs: u32::try_from(options.jobs).unwrap_or(u32::MAX),
            chunk_size: options.chunk_size,
            compress_level: options.compress_level,
        },
    );
    manifest.schema = schema.items;
    manifest.roles = schema.roles;
    let keys = pgark_pg::integer_keys(leader.client()).await?;
    let large_objects = manifest
        .schema
        .iter()
        .filter(|item| item.kind == ObjectKind::LargeObject)
        .count() as u64;
    (manifest.tables, manifest.large_objects) = dump_data(
        options,
        backup_id,
        &leader.source.snapshot_id,
        schema.tables,
        large_objects,
        &keys,
        progress,
    )
    .await?;
    leader.finish().await?;

    manifest.finished_at = Timestamp::now().rfc3339();
    let key = ObjectKey::new(layout::manifest_name(backup_id))?;
    options
        .dest
        .put_if_absent(&key, manifest.to_bytes()?.into())
        .await?;
    Ok(manifest)
}

/// What one worker session dumps next.
enum Job {
    Table(u32, TableData),
    /// Every large object's contents (`count` of them).
    LargeObjects(u64),
}

/// Runs the worker sessions over the tables, largest first, and the large objects' contents;
/// returns the tables' entries by id and the large objects' entry if there are any.
async fn dump_data(
    options: &DumpOptions,
    backup_id: &str,
    snapshot_id: &str,
    tables: Vec<TableData>,
    large_objects: u64,
    keys: &std::collections::HashMap<u32, String>,
    progress: Arc<Progress>,
) -> Result<(Vec<TableEntry>, Option<LargeObjectsEntry>), EngineError> {
    progress
        .tables_total
        .store(tables.len() as u64, std::sync::atomic::Ordering::Relaxed);
    let mut tables: Vec<(u32, TableData)> = tables
        .into_iter()
        .enumerate()
        .map(|(i, t)| (u32::try_from(i + 1).unwrap_or(u32::MAX), t))
        .collect();
    // Workers pop from the end, so the largest tables go last in the vector.
    tables.sort_by_key(|(id, t)| (t.estimated_bytes, std::cmp::Reverse(*id)));
    let mut queue: Vec<Job> = tables
        .into_iter()
        .map(|(id, t)| Job::Table(id, t))
        .collect();
    // Their size is unknown until read, so they start first.
    if large_objects > 0 {
        queue.push(Job::LargeObjects(large_objects));
    }
    let queue = Arc::new(Mutex::new(queue));

    let cpu = Arc::new(CpuPool::for_machine()?);
    let dumper = Arc::new(table::TableDumper {
        store: options.dest.clone(),
        backup_id: backup_id.to_owned(),
        chunk_size: usize::try_from(options.chunk_size).unwrap_or(usize::MAX),
        compress_level: options.compress_level,
        cpu,
        progress,
    });
    // No more sessions than tables: each idle one would only hold a snapshot open.
    let sessions = options.jobs.clamp(1, queue.lock().await.len().max(1));
    let workers = (0..sessions).map(|_| {
        let queue = queue.clone();
        let dumper = dumper.clone();
        async move {
            let session = snapshot::import(&options.source, snapshot_id).await?;
            let mut done = Vec::new();
            let mut large_objects = None;
            loop {
                let next = queue.lock().await.pop();
                match next {
                    None => break,
                    Some(Job::Table(id, table)) => {
                        let key = keys.get(&table.oid).map(String::as_str);
                        done.push(dumper.dump(&session, id, &table, key).await?);
                    }
                    Some(Job::LargeObjects(count)) => {
                        large_objects = Some(dumper.dump_large_objects(&session, count).await?);
                    }
                }
            }
            Ok::<_, EngineError>((done, large_objects))
        }
    });
    let mut entries = Vec::new();
    let mut large_objects = None;
    for (tables, lo) in futures::future::try_join_all(workers).await? {
        entries.extend(tables);
        large_objects = large_objects.or(lo);
    }
    entries.sort_by_key(|t| t.id);
    Ok((entries, large_objects))
}

/// This backup's raw size over that of the newest complete backup before it in the same store,
/// for spotting a backup that is suddenly much smaller (or larger) than usual.
pub async fn size_change_ratio(
    store: &dyn ObjectStore,
    summary: &DumpSummary,
) -> Result<Option<f64>, EngineError> {
    let backups = crate::inventory::list_backups(store).await?;
    let previous = backups
        .iter()
        .filter(|b| b.id < summary.backup_id && b.state == crate::inventory::BackupState::Complete)
        .filter_map(|b| b.raw_bytes)
        .next_back();
    Ok(previous
        .filter(|&raw| raw > 0)
        .map(|raw| summary.raw_bytes as f64 / raw as f64))
}

/// Writes the start marker, which fails if another dump already took this id. Done only once the
/// source has answered, so a dump that cannot connect writes nothing.
async fn claim_backup_id(
    store: &dyn ObjectStore,
    backup_id: &str,
    started_at: Timestamp,
    source: &pgark_archive::SourceInfo,
) -> Result<(), EngineError> {
    let key = ObjectKey::new(layout::started_name(backup_id))?;
    let marker = StartedMarker::new(
        backup_id.to_owned(),
        started_at.rfc3339(),
        source.database.clone(),
    );
    match store.put_if_absent(&key, marker.to_bytes().into()).await {
        Ok(()) => Ok(()),
        Err(StoreError::AlreadyExists { .. }) => Err(EngineError::BackupExists {
            location: format!("{}/{backup_id}", store.location().trim_end_matches('/')),
        }),
        Err(e) => Err(e.into()),
    }
}

async fn remove_partial_backup(store: &dyn ObjectStore, backup_id: &str) {
    let Ok(prefix) = ObjectKey::new(backup_id) else {
        return;
    };
    let objects = match store.list(Some(&prefix)).await {
        Ok(objects) => objects,
        Err(e) => {
            tracing::warn!("could not list the partial backup {prefix} to remove it: {e}");
            return;
        }
    };
    for object in objects {
        if let Err(e) = store.delete(&object.key).await {
            tracing::warn!("could not remove {} of the failed backup: {e}", object.key);
        }
    }
}
