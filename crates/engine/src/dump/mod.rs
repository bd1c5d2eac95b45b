//! `pgark dump`: one consistent snapshot of one database, schema and data, into a new backup.
//!
//! A leader session exports a snapshot, locks every table `ACCESS SHARE` (as pg_dump does, so
//! that no table can be dropped or altered under the dump), reads the schema, and keeps its
//! transaction open until the end. `jobs` worker sessions import the snapshot and COPY tables out
//! in pieces, largest first, and one of them reads the large objects' contents. Rows are cut into
//! chunks, compressed and hashed on the CPU pool, and appended to one data object per piece
//! (large objects: one object of record chunks). The manifest is written last, only after every
//! object is stored.

mod plan;
mod snapshot;

pub use plan::{CHUNKS_PER_PIECE, SplitMethod};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgark_archive::{
    ContentDigest, DumpSettings, LargeObjectsEntry, LookupKey, Manifest, ObjectKind, TableEntry,
    Timestamp, layout,
};
use pgark_pg::{ConnConfig, TableData, copy_out_range_sql};
use pgark_storage::ObjectStore;
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::budget::{ByteBudget, Share};
use crate::cpu::CpuPool;
use crate::writer::{BackupWriter, WriterSettings, WrittenObject};
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
    let started_at = Timestamp::now();

    let leader = tokio::select! {
        leader = snapshot::Leader::start(&options) => leader?,
        () = cancel.cancelled() => return Err(EngineError::Interrupted),
    };
    // Only once the source has answered, so that a dump that cannot connect writes nothing.
    let cpu = Arc::new(CpuPool::for_machine()?);
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
        },
    );
    for warning in &schema.warnings {
        warn!("{warning}");
    }
    manifest.schema = schema.items;
    manifest.roles = schema.roles;
    manifest.warnings = schema.warnings;
    manifest.partitioned = schema.partitioned;
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

/// What one worker session dumps next.
enum Job {
    Piece(plan::Piece),
    /// Every large object's contents (`count` of them).
    LargeObjects(u64),
}

impl Job {
    /// Names the job in messages: `table public.orders, piece 3`.
    fn describe(&self, tables: &[TableData]) -> String {
        match self {
            Job::Piece(piece) => {
                let table = &tables[piece.table];
                format!(
                    "table {}.{}, piece {}",
                    table.schema, table.name, piece.part
                )
            }
            Job::LargeObjects(_) => "large objects".to_owned(),
        }
    }
}

/// What a finished job stored.
enum Finished {
    Piece(WrittenObject),
    LargeObjects(LargeObjectsEntry),
}

/// How many times a job is tried again after its session was lost or the store failed.
const PIECE_RETRIES: u32 = 3;

/// The pause before a job's retry, times the retry's number: a restarting server or a throttling
/// store gets a moment.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Runs the worker sessions over the tables' pieces, largest first, and the large objects'
/// contents; returns the tables' entries by id and the large objects' entry if there are any.
/// Tables' keys by table oid: single-column integer primary keys (for splitting tables into
/// pieces, and `key_column`), and primary keys as chunks summarise them.
struct TableKeys {
    integer: HashMap<u32, String>,
    lookup: HashMap<u32, LookupKey>,
}

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
    let pieces = plan::plan(
        leader.client(),
        &tables,
        &keys.integer,
        options.split,
        leader.source.server_version_num,
        options.chunk_size,
    )
    .await?;
    let mut pieces_left = vec![0usize; tables.len()];
    for piece in &pieces {
        pieces_left[piece.table] += 1;
    }
    let pieces_left = Arc::new(std::sync::Mutex::new(pieces_left));
    let mut pieces = pieces;
    // Workers pop from the end, so the largest pieces go last in the vector.
    pieces.sort_by_key(|p| (p.estimated_bytes, std::cmp::Reverse((p.table, p.part))));
    let mut queue: Vec<Job> = pieces.into_iter().map(Job::Piece).collect();
    // Their size is unknown until read, so they start first.
    if large_objects > 0 {
        queue.push(Job::LargeObjects(large_objects));
    }
    let sessions = options.jobs.clamp(1, queue.len().max(1));
    let queue = Arc::new(Mutex::new(queue));

    let snapshot_id = &leader.source.snapshot_id;
    let tables = &tables;
    let wide_budget = &ByteBudget::new(WIDE_BUDGET);
    // No more sessions than pieces: each idle one would only hold a snapshot open.
    let workers = (0..sessions).map(|_| {
        let queue = queue.clone();
        let pieces_left = pieces_left.clone();
        async move {
            let mut session = snapshot::import(&options.source, snapshot_id).await?;
            let mut done = Vec::new();
            let mut large_objects = None;
            while let Some((job, _reserved)) = next_job(&queue, wide_budget).await? {
                let mut retries = 0;
                // A piece runs in a transaction of its own on its session: if the session is
                // lost or the store fails, a new session importing the same snapshot reads the
                // very same rows again.
                let finished = loop {
                    let attempt = match &job {
                        Job::Piece(piece) => {
                            let table = &tables[piece.table];
                            let object =
                                layout::data_object_name(table_id(piece.table), piece.part);
                            writer
                                .copy_out(
                                    &session,
                                    &copy_out_range_sql(table, &piece.range),
                                    &format!("table {}.{}", table.schema, table.name),
                                    &object,
                                    &table.columns,
                                    keys.lookup.get(&table.oid),
                                )
                                .await
                                .map(Finished::Piece)
                        }
                        Job::LargeObjects(count) => writer
                            .dump_large_objects(&session, *count)
                            .await
                            .map(Finished::LargeObjects),
                    };
                    match attempt {
                        Err(e) if e.is_retryable() && retries < PIECE_RETRIES => {
                            retries += 1;
                            Progress::add(&progress.retries, 1);
                            warn!(
                                "{}: {e}; trying again on a new session in the same snapshot \
                                 ({retries} of {PIECE_RETRIES})",
                                job.describe(tables)
                            );
                            tokio::time::sleep(RETRY_PAUSE * retries).await;
                            session = snapshot::import(&options.source, snapshot_id).await?;
                        }
                        other => break other?,
                    }
                };
                let data = match (finished, job) {
                    (Finished::LargeObjects(entry), _) => {
                        large_objects = Some(entry);
                        continue;
                    }
                    (Finished::Piece(data), Job::Piece(piece)) => (piece, data),
                    (Finished::Piece(_), Job::LargeObjects(_)) => {
                        return Err(EngineError::Internal(
                            "a large-object job produced a table piece".into(),
                        ));
                    }
                };
                let (piece, data) = data;
                let table_done = {
                    let mut left = pieces_left
                        .lock()
                        .map_err(|_| EngineError::Internal("a dump worker panicked".into()))?;
                    left[piece.table] -= 1;
                    left[piece.table] == 0
                };
                if table_done {
                    Progress::add(&progress.tables_done, 1);
                }
                done.push((piece.table, piece.part, data));
            }
            Ok::<_, EngineError>((done, large_objects))
        }
    });
    let mut done = Vec::new();
    let mut large_objects = None;
    for (pieces, lo) in futures::future::try_join_all(workers).await? {
        done.extend(pieces);
        large_objects = large_objects.or(lo);
    }
    done.sort_by_key(|(table, part, _)| (*table, *part));

    let mut entries: Vec<TableEntry> = tables
        .iter()
        .enumerate()
        .map(|(index, table)| TableEntry {
            id: table_id(index),
            schema: table.schema.clone(),
            name: table.name.clone(),
            item: table.item,
            columns: table.columns.clone(),
            row_count: 0,
            raw_bytes: 0,
            stored_bytes: 0,
            content_digest: String::new(),
            key_column: keys
                .integer
                .get(&table.oid)
                .filter(|key| table.columns.iter().any(|c| &c.name == *key))
                .cloned(),
            lookup_key: keys
                .lookup
                .get(&table.oid)
                .filter(|key| key.fields(&table.columns).is_some())
                .cloned(),
            row_filter: table.row_filter.clone(),
            chunks: Vec::new(),
        })
        .collect();
    let mut digests = vec![ContentDigest::default(); entries.len()];
    for (index, _, data) in done {
        digests[index] = digests[index].combine(data.content_digest);
        entries[index].chunks.extend(data.chunks);
    }
    for (entry, digest) in entries.iter_mut().zip(digests) {
        entry.row_count = entry.chunks.iter().map(|c| c.rows).sum();
        entry.raw_bytes = entry.chunks.iter().map(|c| c.raw_length).sum();
        entry.stored_bytes = entry
            .chunks
            .iter()
            .map(|c| c.length + c.key_filter.as_ref().map_or(0, |f| f.length))
            .sum();
        entry.content_digest = digest.to_hex();
        info!(
            table = %format_args!("{}.{}", entry.schema, entry.name),
            rows = entry.row_count,
            raw_bytes = entry.raw_bytes,
            stored_bytes = entry.stored_bytes,
            chunks = entry.chunks.len(),
            "table dumped"
        );
    }
    Ok((entries, large_objects))
}

/// Memory for reading pieces of tables with long rows at once (see [`plan::WIDE_ROW_BYTES`]): a
/// session reading 20 MB rows holds several of them, so few such pieces run at a time.
const WIDE_BUDGET: u64 = 128 << 20;

/// The largest job that may start now: one that is not wide, or a wide one whose memory can be
/// reserved. When only wide ones are left and the budget is taken, waits for room and keeps it
/// for the piece it then takes (giving it back to look again would hand it on to the next waiter
/// and leave every waiter looking forever).
async fn next_job(
    queue: &Mutex<Vec<Job>>,
    wide_budget: &ByteBudget,
) -> Result<Option<(Job, Option<Share>)>, EngineError> {
    let mut held: Option<(u64, Share)> = None;
    loop {
        let wanted = {
            let mut queue = queue.lock().await;
            let mut wanted = None;
            for i in (0..queue.len()).rev() {
                let reserve = match &queue[i] {
                    Job::Piece(piece) => piece.wide_reserve,
                    Job::LargeObjects(_) => None,
                };
                let Some(bytes) = reserve else {
                    return Ok(Some((queue.remove(i), None)));
                };
                if let Some((held_bytes, _)) = &held
                    && *held_bytes >= bytes
                {
                    return Ok(Some((queue.remove(i), held.map(|(_, share)| share))));
                }
                if let Some(share) = wide_budget.try_take(bytes) {
                    return Ok(Some((queue.remove(i), Some(share))));
                }
                wanted = wanted.or(Some(bytes));
            }
            wanted
        };
        let Some(bytes) = wanted else {
            return Ok(None);
        };
        // Give back what is held before waiting for more.
        drop(held.take());
        held = Some((bytes, wide_budget.take(bytes).await?));
    }
}

/// A table's id in the backup: its 1-based position in the schema's table list.
fn table_id(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
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
