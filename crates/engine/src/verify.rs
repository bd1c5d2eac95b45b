//! `verify`: prove that a backup is whole and readable — every chunk fetched (tables' and large
//! objects'), its SHA-256, zstd frame, size, row or record count and content digest checked,
//! every object's length matched against the chunks it holds — and, optionally, that it restores
//! to exactly what was dumped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use pgark_archive::large_objects::LargeObjectPiece;
use pgark_archive::{
    ChunkEntry, ContentDigest, LargeObjectsEntry, Manifest, ManifestHead, TableEntry,
};
use pgark_pg::{ConnConfig, LargeObjectReader, PgError, copy_out_columns_sql};

use crate::cpu::CpuPool;
use crate::restore::{RestoreOptions, restore};
use crate::{BackupRef, Cancel, EngineError, Progress, session};

/// What `verify` found for one table.
#[derive(Debug, Clone)]
pub struct TableVerdict {
    pub table: String,
    pub chunks: usize,
    pub rows: u64,
    /// Empty when the table is intact.
    pub problems: Vec<String>,
}

/// What `verify` found for the large objects' contents.
#[derive(Debug, Clone)]
pub struct LargeObjectVerdict {
    /// How many large objects (recorded in the manifest, or found in a test restore).
    pub objects: u64,
    pub chunks: usize,
    pub content_bytes: u64,
    /// Empty when the contents are intact.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub tables: Vec<TableVerdict>,
    /// Present when the backup holds large objects.
    pub large_objects: Option<LargeObjectVerdict>,
    /// Problems not tied to one table (object sizes).
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
            && self.tables.iter().all(|t| t.problems.is_empty())
            && self
                .large_objects
                .as_ref()
                .is_none_or(|lo| lo.problems.is_empty())
    }
}

/// Checks every chunk of every table, `jobs * 2` fetches in flight, one table's chunk list in
/// memory at a time. Damage is collected, not fatal, so that the report names all of it; only a
/// store that cannot be read at all (or a chunk index that fails its checksum) fails.
pub async fn verify(
    backup: &BackupRef,
    manifest: &Manifest,
    jobs: usize,
    progress: Arc<Progress>,
) -> Result<VerifyReport, EngineError> {
    let cpu = CpuPool::shared()?;
    progress.tables_total.store(
        manifest.tables.len() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    let lists = backup.chunk_lists(manifest).await?;
    let mut sizes = ObjectSizes::list(backup).await?;
    let mut tables = Vec::with_capacity(manifest.tables.len());
    for (index, table) in manifest.tables.iter().enumerate() {
        let verdict = match lists.table(manifest, index) {
            Ok(chunks) => {
                sizes.note(&chunks);
                verify_table(backup, table, &chunks, &cpu, jobs.max(1) * 2, &progress).await
            }
            Err(e) => damaged(table, e),
        };
        tables.push(verdict);
        Progress::add(&progress.tables_done, 1);
    }
    let large_objects = match &manifest.large_objects {
        Some(entry) => {
            sizes.note(&entry.chunks);
            Some(verify_large_objects(backup, entry, &cpu, jobs.max(1) * 2, &progress).await)
        }
        None => None,
    };
    Ok(VerifyReport {
        tables,
        large_objects,
        problems: sizes.problems(backup)?,
    })
}

/// The metadata pass alone: the manifest's head and catalog were checked when they were read;
/// this checks the chunk index (its checksum, each table's list: checksum, count, sizes, totals)
/// and that every data object is there and ends where its chunks do, from one listing of the
/// backup. No chunk is read, and one table's chunk list is in memory at a time.
pub async fn verify_metadata(
    backup: &BackupRef,
    manifest: &Manifest,
) -> Result<VerifyReport, EngineError> {
    let lists = backup.chunk_lists(manifest).await?;
    let mut sizes = ObjectSizes::list(backup).await?;
    let mut tables = Vec::with_capacity(manifest.tables.len());
    for (index, table) in manifest.tables.iter().enumerate() {
        tables.push(match lists.table(manifest, index) {
            Ok(chunks) => {
                sizes.note(&chunks);
                TableVerdict {
                    table: table.display_name(),
                    chunks: chunks.len(),
                    rows: table.row_count,
                    problems: Vec::new(),
                }
            }
            Err(e) => damaged(table, e),
        });
    }
    let large_objects = match &manifest.large_objects {
        Some(lo) => {
            sizes.note(&lo.chunks);
            Some(LargeObjectVerdict {
                objects: lo.count,
                chunks: lo.chunks.len(),
                content_bytes: lo.content_bytes,
                problems: Vec::new(),
            })
        }
        None => None,
    };
    Ok(VerifyReport {
        tables,
        large_objects,
        problems: sizes.problems(backup)?,
    })
}

/// A table whose chunk list cannot be read.
fn damaged(table: &TableEntry, error: EngineError) -> TableVerdict {
    TableVerdict {
        table: table.display_name(),
        chunks: usize::try_from(table.chunk_count()).unwrap_or(usize::MAX),
        rows: 0,
        problems: vec![error.to_string()],
    }
}

/// The sizes of a backup's objects, from one listing (not one request per object: a backup of
/// 100,000 tables has as many data objects), and what was found wrong with them.
struct ObjectSizes {
    listed: BTreeMap<String, u64>,
    /// Where the chunks noted so far end, by object (relative to the backup).
    ends: BTreeMap<String, u64>,
    problems: Vec<String>,
}

impl ObjectSizes {
    async fn list(backup: &BackupRef) -> Result<ObjectSizes, EngineError> {
        let prefix = pgark_storage::ObjectKey::new(backup.id.clone())?;
        let listed = backup
            .store
            .list(Some(&prefix))
            .await?
            .into_iter()
            .map(|object| (object.key.as_str().to_owned(), object.size))
            .collect();
        Ok(ObjectSizes {
            listed,
            ends: BTreeMap::new(),
            problems: Vec::new(),
        })
    }

    /// Notes where `chunks` (a table's, or the large objects') end in their objects.
    fn note(&mut self, chunks: &[ChunkEntry]) {
        for chunk in chunks {
            let end = self.ends.entry(chunk.object.clone()).or_default();
            *end = (*end).max(chunk.offset + chunk.length);
            if let Some(filter) = &chunk.key_filter {
                *end = (*end).max(filter.offset + filter.length);
            }
        }
    }

    /// What is wrong with the objects of every chunk noted: missing, or not ending exactly where
    /// their last chunk or key filter does (whichever tables' chunks they hold: small tables
    /// share objects).
    fn problems(mut self, backup: &BackupRef) -> Result<Vec<String>, EngineError> {
        for (object, length) in &self.ends {
            let key = backup.object_key(object)?;
            match self.listed.get(key.as_str()) {
                Some(&size) if size == *length => {}
                Some(&size) => self.problems.push(format!(
                    "{}/{object} is {size} bytes long, its chunks (and their key filters) end at byte {length}",
                    backup.location(),
                )),
                None => self
                    .problems
                    .push(format!("{}/{object} is missing", backup.location())),
            }
        }
        Ok(self.problems)
    }
}

/// Checks every large-object chunk (SHA-256, frame, size, records) and the totals and digest
/// of their records against the manifest.
async fn verify_large_objects(
    backup: &BackupRef,
    entry: &LargeObjectsEntry,
    cpu: &Arc<CpuPool>,
    in_flight: usize,
    progress: &Arc<Progress>,
) -> LargeObjectVerdict {
    let checks = futures::stream::iter(entry.chunks.iter().enumerate().map(|(index, chunk)| {
        let backup = backup.clone();
        let cpu = cpu.clone();
        let chunk = chunk.clone();
        async move {
            let stored = backup.read_chunk(&chunk).await?;
            let raw = chunk.raw_length;
            let (_, totals) = backup
                .decode_large_objects(&cpu, stored, chunk, index)
                .await?;
            Ok::<_, EngineError>((raw, totals))
        }
    }))
    .buffered(in_flight);
    let mut checks = std::pin::pin!(checks);

    let mut verdict = LargeObjectVerdict {
        objects: entry.count,
        chunks: entry.chunks.len(),
        content_bytes: 0,
        problems: Vec::new(),
    };
    let mut digest = ContentDigest::default();
    let mut raw_bytes = 0;
    while let Some(result) = checks.next().await {
        match result {
            Ok((raw, totals)) => {
                verdict.content_bytes += totals.content_bytes;
                digest = digest.combine(totals.digest);
                raw_bytes += raw;
                Progress::add(&progress.raw_bytes, raw);
            }
            Err(e) => verdict.problems.push(e.to_string()),
        }
    }
    if verdict.problems.is_empty() {
        if verdict.content_bytes != entry.content_bytes || raw_bytes != entry.raw_bytes {
            verdict.problems.push(format!(
                "large-object chunks hold {} bytes of contents ({raw_bytes} raw), the manifest \
                 records {} ({} raw)",
                verdict.content_bytes, entry.content_bytes, entry.raw_bytes
            ));
        }
        if digest.to_hex() != entry.content_digest {
            verdict.problems.push(format!(
                "large objects' content digest {} differs from the recorded {}",
                digest.to_hex(),
                entry.content_digest
            ));
        }
    }
    verdict
}

async fn verify_table(
    backup: &BackupRef,
    table: &TableEntry,
    chunks: &[ChunkEntry],
    cpu: &Arc<CpuPool>,
    in_flight: usize,
    progress: &Arc<Progress>,
) -> TableVerdict {
    let name = table.display_name();
    let checks = futures::stream::iter(chunks.iter().enumerate().map(|(index, chunk)| {
        let fetch = backup.fetch_rows(
            cpu,
            chunk.clone(),
            (table.id, name.clone()),
            index,
            Vec::new(),
        );
        let rows = chunk.rows;
        let (name, chunk) = (name.clone(), chunk.clone());
        let cpu = cpu.clone();
        async move {
            backup
                .read_key_filter(&chunk, (table.id, &name), index)
                .await?;
            let text = fetch.rows().await?;
            // Hashing a whole chunk is CPU work: on the pool, not on a runtime thread.
            let (raw, digest) = cpu
                .run(move || {
                    let mut digest = ContentDigest::default();
                    digest.add_rows(&text);
                    (text.len() as u64, digest)
                })
                .await?;
            Ok::<_, EngineError>((rows, raw, digest))
        }
    }))
    .buffered(in_flight);
    let mut checks = std::pin::pin!(checks);

    let mut verdict = TableVerdict {
        table: table.display_name(),
        chunks: chunks.len(),
        rows: 0,
        problems: Vec::new(),
    };
    let mut digest = ContentDigest::default();
    while let Some(result) = checks.next().await {
        match result {
            Ok((rows, raw, chunk_digest)) => {
                verdict.rows += rows;
                digest = digest.combine(chunk_digest);
                Progress::add(&progress.rows, rows);
                Progress::add(&progress.raw_bytes, raw);
            }
            Err(e) => verdict.problems.push(e.to_string()),
        }
    }
    if verdict.problems.is_empty() {
        if verdict.rows != table.row_count {
            verdict.problems.push(format!(
                "chunks hold {} rows, the manifest records {}",
                verdict.rows, table.row_count
            ));
        }
        if digest.to_hex() != table.content_digest {
            verdict.problems.push(format!(
                "content digest {} differs from the recorded {}",
                digest.to_hex(),
                table.content_digest
            ));
        }
    }
    verdict
}

/// The outcome of `verify --restore-into`.
#[derive(Debug, Clone)]
pub struct RestoreCheck {
    pub database: String,
    /// How long the restore took: the recovery time a runbook asks for.
    pub restore_elapsed: Duration,
    pub tables: Vec<TableVerdict>,
    /// Present when the backup holds large objects.
    pub large_objects: Option<LargeObjectVerdict>,
}

impl RestoreCheck {
    pub fn is_intact(&self) -> bool {
        self.tables.iter().all(|t| t.problems.is_empty())
            && self
                .large_objects
                .as_ref()
                .is_none_or(|lo| lo.problems.is_empty())
    }
}

/// Restores the backup into a new database (`options.target`, always created: `create` is
/// set here), then compares every table's row count and content digest with what the dump
/// recorded. The database is dropped afterwards unless `keep`.
pub async fn restore_check(
    options: RestoreOptions,
    keep: bool,
    progress: Arc<Progress>,
    cancel: Cancel,
) -> Result<RestoreCheck, EngineError> {
    let started = Instant::now();
    let manifest = options.manifest.clone();
    let target = options.target.clone();
    let options = RestoreOptions {
        create: true,
        ..options
    };
    let summary = restore(options, progress, cancel).await?;
    let restore_elapsed = started.elapsed();

    let compared = compare_tables(&target, &manifest).await;
    let compared_large_objects = match &manifest.large_objects {
        Some(entry) => compare_large_objects(&target, entry).await.map(Some),
        None => Ok(None),
    };
    let dropped = if keep {
        Ok(())
    } else {
        drop_database(&target).await
    };
    let tables = compared?;
    let large_objects = compared_large_objects?;
    dropped?;
    Ok(RestoreCheck {
        database: summary.database,
        restore_elapsed,
        tables,
        large_objects,
    })
}

/// Reads every restored large object piece by piece and compares their number, total size
/// and record digest (the same pieces the dump read) with what the dump recorded.
async fn compare_large_objects(
    target: &ConnConfig,
    entry: &LargeObjectsEntry,
) -> Result<LargeObjectVerdict, EngineError> {
    let connection = session::open(target).await?;
    session::execute(
        &connection,
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        || "reading the restored large objects".into(),
    )
    .await?;
    let memory = usize::try_from(crate::dump::DEFAULT_CHUNK_SIZE).unwrap_or(8 << 20);
    let mut reader = LargeObjectReader::open(connection.client(), memory).await?;
    let mut digest = ContentDigest::default();
    let mut content_bytes = 0u64;
    while let Some(piece) = reader.next().await? {
        content_bytes += piece.data.len() as u64;
        LargeObjectPiece {
            oid: piece.oid,
            offset: piece.offset,
            data: &piece.data,
        }
        .add_to(&mut digest);
    }
    let objects = reader.objects();
    session::execute(&connection, "COMMIT", || {
        "reading the restored large objects".into()
    })
    .await?;
    let mut problems = Vec::new();
    if objects != entry.count || content_bytes != entry.content_bytes {
        problems.push(format!(
            "restored {objects} large objects with {content_bytes} bytes, the backup recorded \
             {} with {}",
            entry.count, entry.content_bytes
        ));
    } else if digest.to_hex() != entry.content_digest {
        problems
            .push("restored large objects differ from the dumped ones (content digest)".to_owned());
    }
    Ok(LargeObjectVerdict {
        objects,
        chunks: entry.chunks.len(),
        content_bytes,
        problems,
    })
}

async fn compare_tables(
    target: &ConnConfig,
    manifest: &Manifest,
) -> Result<Vec<TableVerdict>, EngineError> {
    let connection = session::open(target).await?;
    let client = connection.client();
    let mut verdicts = Vec::with_capacity(manifest.tables.len());
    for table in &manifest.tables {
        let name = table.display_name();
        let stream = client
            .copy_out(&copy_out_columns_sql(
                &table.schema,
                &table.name,
                &table.columns,
                table.row_filter.as_deref(),
            ))
            .await
            .map_err(|e| PgError::query(format!("reading restored table {name}"), e))?;
        let mut stream = std::pin::pin!(stream);
        let mut digest = ContentDigest::default();
        let mut rows = 0u64;
        while let Some(row) = stream.next().await {
            let row =
                row.map_err(|e| PgError::query(format!("reading restored table {name}"), e))?;
            rows += 1;
            digest.add_rows(&row);
        }
        let mut problems = Vec::new();
        if rows != table.row_count {
            problems.push(format!(
                "restored {rows} rows, the backup recorded {}",
                table.row_count
            ));
        } else if digest.to_hex() != table.content_digest {
            problems.push("restored rows differ from the dumped rows (content digest)".to_owned());
        }
        verdicts.push(TableVerdict {
            table: name,
            chunks: table.chunks.len(),
            rows,
            problems,
        });
    }
    Ok(verdicts)
}

/// Drops the test database, connecting the way `--create` did.
async fn drop_database(target: &ConnConfig) -> Result<(), EngineError> {
    let maintenance = crate::restore::target::maintenance_config(target).await?;
    let connection = crate::session::open(&maintenance).await?;
    crate::restore::target::drop_database(&connection, target.dbname()).await
}

/// What [`verify_stored`] found.
#[derive(Debug, Clone, Default)]
pub struct StoredReport {
    /// Chunks and key filters checked.
    pub pieces: u64,
    pub stored_bytes: u64,
    pub objects: usize,
    pub problems: Vec<String>,
}

/// An encrypted backup checked without its key: its key envelope, catalog and chunk index
/// against the head's checksums, and every stored piece of every data object (each chunk and
/// key filter) read and checked against the clear checksum list, `jobs * 2` reads in flight;
/// the pieces must tile each object exactly and add up to the head's stored size. Nothing is
/// decrypted: what the key would add (authenticity, rows, digests) is `verify` with a key.
pub async fn verify_stored(
    backup: &BackupRef,
    head: &ManifestHead,
    jobs: usize,
    progress: Arc<Progress>,
) -> Result<StoredReport, EngineError> {
    let Some(info) = &head.encryption else {
        return Err(EngineError::bug(
            "verify_stored of a backup that is not encrypted",
        ));
    };
    let mut report = StoredReport::default();
    let checksums =
        info.checksums
            .as_ref()
            .ok_or_else(|| pgark_archive::ArchiveError::ManifestCorrupt {
                object: backup.location(),
                reason: "its head records no checksum list".to_owned(),
            })?;
    // The metadata objects, against the head.
    for object in [
        Some(&info.envelope),
        head.catalog.as_ref(),
        head.chunk_index.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        let bytes = backup
            .store
            .get(&backup.object_key(&object.object)?)
            .await?;
        let name = format!("{}/{}", backup.location(), object.object);
        if let Err(e) = pgark_archive::check_object(&name, object, &bytes) {
            report.problems.push(e.to_string());
        }
    }
    let list = backup
        .store
        .get(&backup.object_key(&checksums.object)?)
        .await?;
    let list_name = format!("{}/{}", backup.location(), checksums.object);
    let pieces = pgark_archive::stored_pieces(&list_name, checksums, &list)?;
    let sizes = ObjectSizes::list(backup).await?;
    // Per object: the bytes its pieces cover and where the last one ends.
    let mut covered: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let checks = futures::stream::iter(pieces.map(|piece| {
        let backup = backup.clone();
        async move {
            let piece = piece?;
            let key = backup.object_key(&piece.object)?;
            let stored = backup
                .store
                .get_range(&key, piece.offset..piece.offset + piece.length)
                .await;
            let problem = match stored {
                Ok(stored) if stored.len() as u64 != piece.length => Some(format!(
                    "read {} bytes, the checksum list records {}",
                    stored.len(),
                    piece.length
                )),
                Ok(stored) => {
                    let actual = pgark_archive::sha256_hex(&stored);
                    (actual != piece.sha256).then(|| {
                        format!(
                            "SHA-256 {actual}, the checksum list records {}",
                            piece.sha256
                        )
                    })
                }
                Err(e) => Some(e.to_string()),
            };
            Ok::<_, EngineError>((piece, problem))
        }
    }))
    .buffered(jobs.max(1) * 2);
    let mut checks = std::pin::pin!(checks);
    while let Some(checked) = checks.next().await {
        let (piece, problem) = checked?;
        report.pieces += 1;
        report.stored_bytes += piece.length;
        Progress::add(&progress.stored_bytes, piece.length);
        let (bytes, end) = covered.entry(piece.object.clone()).or_default();
        *bytes += piece.length;
        *end = (*end).max(piece.offset + piece.length);
        if let Some(problem) = problem {
            report.problems.push(format!(
                "{}/{} at offset {}: {problem}",
                backup.location(),
                piece.object,
                piece.offset
            ));
        }
    }
    report.objects = covered.len();
    for (object, (bytes, end)) in &covered {
        let key = format!("{}/{object}", backup.id);
        match sizes.listed.get(&key) {
            Some(&size) if size == *bytes && size == *end => {}
            Some(&size) => report.problems.push(format!(
                "{}/{object} is {size} bytes, its pieces cover {bytes} and end at {end}",
                backup.location()
            )),
            None => report
                .problems
                .push(format!("{}/{object} is missing", backup.location())),
        }
    }
    if report.problems.is_empty() && report.stored_bytes != head.totals.stored_bytes {
        report.problems.push(format!(
            "the checksum list covers {} stored bytes, the head records {}",
            report.stored_bytes, head.totals.stored_bytes
        ));
    }
    Ok(report)
}
