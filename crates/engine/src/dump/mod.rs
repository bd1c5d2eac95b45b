//! `pgark dump`: one consistent snapshot of one database, schema and data, into a new backup.
//!
//! A leader session exports a snapshot, locks every table `ACCESS SHARE` (as pg_dump does, so
//! that no table can be dropped or altered under the dump), reads the schema, and keeps its
//! transaction open until the end. `jobs` worker sessions import the snapshot and COPY tables out
//! in pieces, largest first, and one of them reads the large objects' contents. Rows are cut into
//! chunks and compressed as they arrive, on the thread that reads them (see `writer::pieces`), and
//! appended to one data object per piece
//! (large objects: one object of record chunks). The manifest is written last, only after every
//! object is stored.

mod finish;
mod plan;
mod schedule;
mod snapshot;

pub use finish::size_change_ratio;
pub use plan::{CHUNKS_PER_PIECE, SplitMethod};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgark_archive::{
    DumpSettings, LargeObjectsEntry, LookupKey, Manifest, ObjectKind, TableEntry, Timestamp,
};
use pgark_pg::{ConnConfig, TableData};
use pgark_storage::ObjectStore;
use tracing::{info, warn};

use crate::cpu::CpuPool;
pub use crate::writer::Encryption;
use crate::writer::{BackupWriter, WriterSettings};
use crate::{Cancel, EngineError, Progress};

/// Default target size of a chunk, uncompressed.
pub const DEFAULT_CHUNK_SIZE: u64 = 8 << 20;
/// Default zstd level. Compression is most of a dump's CPU time; on TPC-H, level 2 is within 1%
/// of level 3's size (and within 10% of pg_dump's gzip -6) for about 20% less CPU.
pub const DEFAULT_COMPRESS_LEVEL: i32 = 2;

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
    /// How tables larger than [`CHUNKS_PER_PIECE`] chunks are split across sessions.
    pub split: SplitMethod,
    /// Store key membership filters beside chunks (see `pgark_archive::key_summary`).
    pub key_filters: bool,
    /// Client-side encryption: the recipients the backup's data key is wrapped for.
    pub encryption: Option<Encryption>,
    /// The start time recorded (and in the backup's id) instead of the clock's: for building
    /// backups of chosen dates, as retention tests do.
    pub started_at: Option<Timestamp>,
    /// What the backup holds: the database, or the instance's globals.
    pub contents: DumpContents,
}

/// What a backup holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DumpContents {
    /// One database: schema, rows, large objects and the database's properties.
    #[default]
    Database,
    /// The instance's roles, memberships and tablespaces (`dump --all`), with the roles'
    /// password hashes if asked for.
    Globals { password_hashes: bool },
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
    /// Jobs tried again after a lost session or a failed upload.
    pub retries: u64,
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
    let started_at = options.started_at.unwrap_or_else(Timestamp::now);

    let leader = tokio::select! {
        leader = snapshot::Leader::start(&options) => leader?,
        () = cancel.cancelled() => return Err(EngineError::Interrupted),
    };
    // Only once the source has answered, so that a dump that cannot connect writes nothing.
    let cpu = CpuPool::shared()?;
    let settings = WriterSettings {
        chunk_size: options.chunk_size,
        compress_level: options.compress_level,
        stall_timeout: options.source.stall_timeout(),
    };
    let writer = BackupWriter::start(
        options.dest.clone(),
        "",
        started_at,
        &leader.source.database,
        settings,
        cpu,
        progress.clone(),
        options.encryption.as_ref(),
    )
    .await?;
    let backup_id = writer.id().to_owned();

    // From here on the id is ours: a failure removes what was written under it.
    let result = tokio::select! {
        result = write_backup(&options, leader, &writer, started_at) => result,
        () = cancel.cancelled() => Err(EngineError::Interrupted),
    };
    let manifest = match result {
        Ok(manifest) => manifest,
        Err(e) => {
            writer.abort().await;
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
        retries: Progress::get(&progress.retries),
        elapsed: started.elapsed(),
    })
}

/// Dumps the schema and every table, then writes the manifest (last, and never over another).
async fn write_backup(
    options: &DumpOptions,
    leader: snapshot::Leader,
    writer: &BackupWriter,
    started_at: Timestamp,
) -> Result<Manifest, EngineError> {
    if let DumpContents::Globals { password_hashes } = options.contents {
        return write_globals(leader, writer, started_at, password_hashes).await;
    }
    let reading = || "reading the schema".to_owned();
    let stall = options.source.stall_timeout();
    let schema = crate::session::unless_stalled(stall, &reading, leader.read_schema()).await??;
    info!(
        snapshot = %leader.source.snapshot_id,
        tables = schema.tables.len(),
        "snapshot exported, tables locked, schema read"
    );

    let mut manifest = Manifest::new(
        writer.id().to_owned(),
        started_at.rfc3339(),
        leader.source.clone(),
        DumpSettings {
            jobs: u32::try_from(options.jobs).unwrap_or(u32::MAX),
            chunk_size: options.chunk_size,
            compress_level: options.compress_level,
            object_lock: writer.object_lock_record(),
        },
    );
    for warning in &schema.warnings {
        warn!("{warning}");
    }
    manifest.schema = schema.items;
    manifest.roles = schema.roles;
    manifest.warnings = schema.warnings;
    manifest.partitioned = schema.partitioned;
    manifest.database = Some(pgark_pg::read_database(leader.client()).await?);
    let lookup = pgark_pg::lookup_keys(leader.client()).await?;
    let mut keys = TableKeys {
        integer: pgark_pg::integer_keys(&lookup),
        lookup,
    };
    if !options.key_filters {
        for key in keys.lookup.values_mut() {
            key.filtered = false;
        }
    }
    let large_objects = manifest
        .schema
        .iter()
        .filter(|item| item.kind == ObjectKind::LargeObject)
        .count() as u64;
    (manifest.tables, manifest.large_objects) = dump_data(
        options,
        &leader,
        writer,
        schema.tables,
        large_objects,
        &keys,
    )
    .await?;
    leader.finish().await?;

    manifest.finished_at = Timestamp::now().rfc3339();
    writer.finish(&manifest).await?;
    Ok(manifest)
}

/// A globals backup: the instance's roles, memberships and tablespaces, no schema or rows.
async fn write_globals(
    leader: snapshot::Leader,
    writer: &BackupWriter,
    started_at: Timestamp,
    password_hashes: bool,
) -> Result<Manifest, EngineError> {
    let mut manifest = Manifest::new(
        writer.id().to_owned(),
        started_at.rfc3339(),
        leader.source.clone(),
        DumpSettings {
            jobs: 1,
            chunk_size: DEFAULT_CHUNK_SIZE,
            compress_level: DEFAULT_COMPRESS_LEVEL,
            object_lock: writer.object_lock_record(),
        },
    );
    manifest.globals = Some(pgark_pg::read_globals(leader.client(), password_hashes).await?);
    leader.finish().await?;
    manifest.finished_at = Timestamp::now().rfc3339();
    writer.finish(&manifest).await?;
    Ok(manifest)
}

/// Tables' keys by table oid: single-column integer primary keys (for splitting tables into
/// pieces, and `key_column`), and primary keys as chunks summarise them.
struct TableKeys {
    integer: HashMap<u32, String>,
    lookup: HashMap<u32, LookupKey>,
}

/// Plans the tables' pieces, runs the worker sessions over them and the large objects'
/// contents (`schedule`), and assembles the tables' entries (`finish`).
async fn dump_data(
    options: &DumpOptions,
    leader: &snapshot::Leader,
    writer: &BackupWriter,
    tables: Vec<TableData>,
    large_objects: u64,
    keys: &TableKeys,
) -> Result<(Vec<TableEntry>, Option<LargeObjectsEntry>), EngineError> {
    let progress = &writer.progress;
    progress
        .tables_total
        .store(tables.len() as u64, std::sync::atomic::Ordering::Relaxed);
    progress.bytes_expected.store(
        tables.iter().map(|t| t.estimated_bytes).sum(),
        std::sync::atomic::Ordering::Relaxed,
    );
    let pieces = plan::plan(
        leader.client(),
        &tables,
        &keys.integer,
        options.split,
        leader.source.server_version_num,
        options.chunk_size,
    )
    .await?;
    let (done, large_objects) = schedule::run(
        options,
        leader,
        writer,
        &tables,
        pieces,
        large_objects,
        keys,
    )
    .await?;
    let entries = finish::table_entries(&tables, keys, done);
    Ok((entries, large_objects))
}
