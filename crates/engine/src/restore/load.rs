//! Loading table data: a table's chunks are cut into load units of a few chunks each, so that
//! several sessions can load one large table at once. A unit fetches its chunks with ranged reads
//! (a few ahead, within a memory budget shared by all sessions), checks and decompresses each on
//! the CPU pool, and sends the rows with COPY FROM; a chunk's rows are sent only after its
//! SHA-256, size and row count have been checked. A table's row count is checked against the
//! manifest when its last unit is done.
//!
//! A table of a megabyte or more loaded in one unit, into a table this restore created (not an
//! extension's configuration table, which holds the extension's rows), is loaded with
//! `COPY FREEZE` after a `TRUNCATE` in the same transaction: its rows are written frozen and
//! all-visible, so neither the index builds that follow nor the first VACUUM rewrite its pages.
//!
//! Into tables this restore created, rows of tables whose columns are all of types with a simple
//! binary form (integers, numeric, floats, dates, timestamps, boolean, uuid, bytea, character
//! types) are converted on the CPU pool and sent with binary COPY: the server spends much of a load parsing text
//! (TPC-H SF1 with the server on one core: the COPYs took 10.6 s of its time instead of 15.0),
//! and the client's conversion runs beside it. See `pgark_archive::binary_copy`.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::SinkExt;
use pgark_archive::binary_copy::{self, BinaryRows};
use pgark_archive::{ChunkEntry, Manifest};
use pgark_pg::{Connection, PgError, copy_in_sql, quote};
use tracing::{debug, info};

use crate::backup::ChunkLists;
use crate::budget::{ByteBudget, Share};
use crate::cpu::CpuPool;
use crate::{BackupRef, EngineError, Progress, session};

/// A unit whose load failed.
#[derive(Debug)]
pub(super) struct LoadFailed {
    pub(super) error: EngineError,
    /// Nothing of the unit can have been committed: the failure came before its COMMIT, so the
    /// unit may run again.
    pub(super) uncommitted: bool,
    /// The failure came during the COMMIT: whether the unit's transaction committed is for the
    /// server to say (see [`TableLoader::settle`]).
    pub(super) in_doubt: Option<InDoubt>,
}

/// A unit's transaction whose COMMIT was sent but not answered.
#[derive(Debug, Clone)]
pub(super) struct InDoubt {
    /// The transaction's id (`pg_current_xact_id`), as text.
    transaction: String,
    /// The rows its COPY loaded.
    rows: u64,
}

/// How far a unit's load got, for deciding what a failure left behind.
#[derive(Debug, Default)]
struct UnitProgress {
    transaction: Option<String>,
    /// Set when the COMMIT is sent: the rows the COPY loaded.
    committing: Option<u64>,
}

/// Chunks fetched and decoded ahead of the one being sent, per session.
const PREFETCH: usize = 2;
/// Chunks per load unit: the same granularity as the dump's pieces.
const CHUNKS_PER_UNIT: usize = crate::dump::CHUNKS_PER_PIECE as usize;

/// Below this many bytes of rows a table is worth neither the TRUNCATE (a new file) that FREEZE
/// needs nor an ANALYZE: the planner's guesses for a table that small cost nothing.
const BULK_TABLE_BYTES: u64 = 1 << 20;

/// Some consecutive chunks of one table, loaded by one session in one COPY.
#[derive(Debug, Clone)]
pub(super) struct LoadUnit {
    /// Index into the manifest's tables.
    pub(super) table: usize,
    /// The id of the item that creates the table: what the table's indexes depend on.
    pub(super) table_item: u32,
    pub(super) chunks: Range<usize>,
    /// The rows' COPY text bytes: what the server has to parse.
    pub(super) raw_bytes: u64,
    /// TRUNCATE and COPY FREEZE in one transaction (the table's only unit, in a table this
    /// restore created).
    pub(super) freeze: bool,
    /// ANALYZE the table once all its units are in (tables of [`BULK_TABLE_BYTES`] or more).
    pub(super) analyze: bool,
}

/// Cuts every table's chunks into load units for `jobs` sessions. `created` says whether the
/// restore created the tables (and so may truncate them for `COPY FREEZE`). Needs only each
/// table's chunk count and size, not its chunk list: a unit's bytes (for ordering the work) are
/// its share of the table's.
///
/// A table this restore created is loaded whole, frozen, by one session unless it holds more
/// than one session's fair share of all the rows (then one session alone would make it the
/// restore's longest path, and it is cut into units loaded side by side). Frozen rows save the
/// server work it would do for every later reader of the table: measured on TPC-H (SF1, one
/// server core), the index builds and foreign key checks of a table loaded frozen took about a
/// fifth less time, and no VACUUM is needed to mark its pages all-visible.
pub(super) fn plan(manifest: &Manifest, created: bool, jobs: usize) -> Vec<LoadUnit> {
    let fair_share = manifest.raw_bytes() / jobs.max(1) as u64;
    let mut units = Vec::new();
    for (index, table) in manifest.tables.iter().enumerate() {
        let chunk_count = usize::try_from(table.chunk_count()).unwrap_or(usize::MAX);
        // An extension's configuration table holds the extension's own rows already.
        let freezable =
            created && table.row_filter.is_none() && table.raw_bytes >= BULK_TABLE_BYTES;
        let count = if freezable && table.raw_bytes <= fair_share {
            1
        } else {
            chunk_count.div_ceil(CHUNKS_PER_UNIT).max(1)
        };
        for u in 0..count {
            let chunks = (u * chunk_count / count)..((u + 1) * chunk_count / count);
            units.push(LoadUnit {
                table: index,
                table_item: table.item,
                raw_bytes: share(table.raw_bytes, chunks.len(), chunk_count),
                chunks,
                freeze: freezable && count == 1,
                analyze: table.raw_bytes >= BULK_TABLE_BYTES,
            });
        }
    }
    units
}

/// `part` of `whole` chunks' share of `bytes`.
fn share(bytes: u64, part: usize, whole: usize) -> u64 {
    if whole == 0 {
        return 0;
    }
    u64::try_from(u128::from(bytes) * part as u128 / whole as u128).unwrap_or(u64::MAX)
}

pub(super) struct TableLoader {
    pub(super) backup: BackupRef,
    pub(super) manifest: Arc<Manifest>,
    pub(super) cpu: Arc<CpuPool>,
    /// Shared by every session: chunks fetched, decoded and not yet sent.
    pub(super) budget: ByteBudget,
    pub(super) progress: Arc<Progress>,
    /// Per table: rows loaded so far, and units not yet done.
    rows_loaded: Vec<AtomicU64>,
    units_left: Vec<AtomicUsize>,
    /// The target connection's [`pgark_pg::ConnConfig::stall_timeout`].
    stall_timeout: Option<std::time::Duration>,
    /// Where the tables' chunk lists come from.
    lists: ChunkLists,
    /// The chunk lists of the tables being loaded, each decoded when its first unit starts and
    /// let go when its last is done: memory for chunk lists is that of the tables in progress,
    /// not of the whole backup.
    in_progress: Mutex<HashMap<usize, Arc<Vec<ChunkEntry>>>>,
    buffers: Arc<RowBuffers>,
    /// Per table: the converter of its rows to binary COPY, if its columns' types have one.
    binary: Vec<Option<Arc<BinaryRows>>>,
    /// Per table: chunks sent as text although the table's rows go in binary.
    text_chunks: Vec<AtomicU64>,
    /// First chunks of units about to start, fetched ahead (see [`TableLoader::prefetch`]).
    prefetched: Mutex<Prefetched>,
}

/// A chunk's rows as they are sent: COPY text, or binary COPY tuples.
enum LoadRows {
    Text(Vec<u8>),
    Binary(Vec<u8>),
}

/// A chunk being fetched, checked, decoded and, for a table loaded in binary, converted (all
/// off the session's task, so that it overlaps the sending of the chunk before).
struct LoadFetch(tokio::task::JoinHandle<Result<LoadRows, EngineError>>);

impl LoadFetch {
    async fn rows(self) -> Result<LoadRows, EngineError> {
        self.0.await.map_err(|e| EngineError::TaskFailed {
            task: "fetching a chunk",
            source: Some(e),
        })?
    }
}

/// Chunks fetched for units no session has started yet, by table and chunk index, with the
/// bytes of budget each holds.
type Prefetched = HashMap<(usize, usize), (Share, LoadFetch, u64)>;

/// The share of the memory budget chunks fetched ahead may hold: the sessions' own reads keep
/// the rest.
const PREFETCH_SHARE: u64 = 4;

/// Chunks read ahead take at most this share of the memory budget each (1.5 MiB of the 96 MiB
/// of 8 MiB chunks on two CPU threads): the chunks of tables under a megabyte, which share
/// objects and are restored in hundreds.
const SMALL_CHUNK_SHARE: u64 = 64;

/// The buffers of chunks whose rows were sent, kept to decode the next chunks into: a new
/// buffer's pages are each mapped and zeroed by the kernel as they are first written (restoring
/// 960 MB of 20 MB rows took 248,000 page faults, most of a second of system time, on cores the
/// server needed). At most `limit` bytes of them are kept — the memory budget's size, so that
/// decoded rows, in flight or kept, stay within twice the budget.
struct RowBuffers {
    /// The buffers kept, and their capacity in bytes.
    kept: Mutex<(Vec<Vec<u8>>, u64)>,
    limit: u64,
}

impl RowBuffers {
    fn new(limit: u64) -> Self {
        RowBuffers {
            kept: Mutex::new((Vec::new(), 0)),
            limit,
        }
    }

    /// A kept buffer, or a new (empty) one.
    fn take(&self) -> Vec<u8> {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let buffer = kept.0.pop().unwrap_or_default();
        kept.1 -= buffer.capacity() as u64;
        buffer
    }

    /// Keeps the memory of rows that were sent, unless the connection still holds some of it (a
    /// slice it is copying into its write buffer: then the memory is freed when it lets go).
    fn reclaim(&self, sent: Bytes) {
        if let Ok(buffer) = sent.try_into_mut() {
            self.give_back(buffer.into());
        }
    }

    /// Keeps `buffer` for a later chunk, unless that would exceed the limit.
    fn give_back(&self, buffer: Vec<u8>) {
        let capacity = buffer.capacity() as u64;
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if capacity > 0 && kept.1 + capacity <= self.limit {
            kept.1 += capacity;
            kept.0.push(buffer);
        }
    }
}

impl TableLoader {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        backup: BackupRef,
        manifest: Arc<Manifest>,
        lists: ChunkLists,
        cpu: Arc<CpuPool>,
        budget: ByteBudget,
        progress: Arc<Progress>,
        units: &[LoadUnit],
        stall_timeout: Option<std::time::Duration>,
        binary_allowed: bool,
    ) -> Self {
        let tables = manifest.tables.len();
        let units_left: Vec<AtomicUsize> = (0..tables).map(|_| AtomicUsize::new(0)).collect();
        for unit in units {
            units_left[unit.table].fetch_add(1, Ordering::Relaxed);
        }
        // Rows may go in binary where `binary_allowed` says so, but not into an extension's
        // configuration table, whose definition is the installed extension's, not the backup's.
        let binary = manifest
            .tables
            .iter()
            .map(|table| {
                let types = table.columns.iter().map(|c| c.type_name.as_str());
                (binary_allowed && table.row_filter.is_none())
                    .then(|| BinaryRows::for_types(types).map(Arc::new))
                    .flatten()
            })
            .collect();
        TableLoader {
            backup,
            manifest,
            cpu,
            progress,
            rows_loaded: (0..tables).map(|_| AtomicU64::new(0)).collect(),
            units_left,
            stall_timeout,
            lists,
            in_progress: Mutex::new(HashMap::new()),
            buffers: Arc::new(RowBuffers::new(budget.bytes())),
            text_chunks: (0..tables).map(|_| AtomicU64::new(0)).collect(),
            binary,
            budget,
            prefetched: Mutex::new(Prefetched::default()),
        }
    }

    /// Starts fetching the first chunk of `unit`, which a session will start soon, if the
    /// budget has room for it now. A unit otherwise reads its first chunk only once a session
    /// has started it: restoring many small tables from a remote store (S3: a read takes tens of
    /// milliseconds to start), each table would cost each session that wait.
    pub(super) fn prefetch(&self, unit: &LoadUnit) {
        let Some(i) = unit.chunks.clone().next() else {
            return;
        };
        if self.prefetched().contains_key(&(unit.table, i)) {
            return;
        }
        // A table whose chunk list cannot be read fails when its unit runs, with the error.
        let Ok(table_chunks) = self.chunks_of(unit.table) else {
            return;
        };
        let Some(chunk) = table_chunks.get(i) else {
            return;
        };
        // Only small chunks: a unit of large ones hides the wait for its first behind eight
        // chunks' work, and a large chunk read ahead would be decoded for nothing if the budget
        // ran short before its unit started (see `copy_unit`).
        let needed = self.chunk_memory(unit.table, chunk);
        let held: u64 = self.prefetched().values().map(|(_, _, bytes)| bytes).sum();
        if needed > self.budget.bytes() / SMALL_CHUNK_SHARE
            || held + needed > self.budget.bytes() / PREFETCH_SHARE
        {
            return;
        }
        let Some(share) = self.budget.try_take(needed) else {
            return;
        };
        let fetch = self.fetch(unit.table, chunk.clone(), i);
        self.prefetched()
            .insert((unit.table, i), (share, fetch, needed));
    }

    fn prefetched(&self) -> std::sync::MutexGuard<'_, Prefetched> {
        self.prefetched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The fetch of chunk `i` of table `table` started ahead, if one was.
    fn take_prefetched(&self, table: usize, i: usize) -> Option<(Share, LoadFetch)> {
        let (share, fetch, _) = self.prefetched().remove(&(table, i))?;
        Some((share, fetch))
    }

    /// Starts fetching chunk `index` of table `table`: read, checked and decoded, then
    /// converted to binary COPY on the CPU pool if the table's rows are sent so. Rows the
    /// conversion does not take (not in the form the server writes) are sent as text.
    fn fetch(&self, table: usize, chunk: ChunkEntry, index: usize) -> LoadFetch {
        let entry = &self.manifest.tables[table];
        let text = self.backup.fetch_rows(
            &self.cpu,
            chunk,
            (entry.id, entry.display_name()),
            index,
            self.buffers.take(),
        );
        let binary = self.binary[table].clone();
        let cpu = self.cpu.clone();
        let buffers = self.buffers.clone();
        let name = entry.display_name();
        LoadFetch(tokio::spawn(async move {
            let text = text.rows().await?;
            let Some(binary) = binary else {
                return Ok(LoadRows::Text(text));
            };
            let mut tuples = buffers.take();
            cpu.run(move || {
                tuples.clear();
                match binary.convert(&text, &mut tuples) {
                    Ok(()) => {
                        buffers.give_back(text);
                        LoadRows::Binary(tuples)
                    }
                    Err(reason) => {
                        debug!(table = %name, chunk = index, %reason, "chunk sent as text");
                        buffers.give_back(tuples);
                        LoadRows::Text(text)
                    }
                }
            })
            .await
        }))
    }

    /// What a chunk of table `table` occupies while in flight: its stored bytes and its rows;
    /// for a table whose rows are converted, the text and the binary tuples both for a moment
    /// (binary numerics take more room than their text: 1.4 times the text for TPC-H's
    /// `lineitem`).
    fn chunk_memory(&self, table: usize, chunk: &ChunkEntry) -> u64 {
        let rows = if self.binary[table].is_some() {
            chunk.raw_length.saturating_mul(5) / 2
        } else {
            chunk.raw_length
        };
        chunk.length.saturating_add(rows)
    }

    /// Table `table`'s chunk list, decoded once while the table is being loaded.
    fn chunks_of(&self, table: usize) -> Result<Arc<Vec<ChunkEntry>>, EngineError> {
        let held = |map: &mut HashMap<usize, Arc<Vec<ChunkEntry>>>| map.get(&table).cloned();
        if let Some(chunks) = held(
            &mut self
                .in_progress
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        ) {
            return Ok(chunks);
        }
        // Decoded outside the lock: another session may decode it too, and one copy is kept.
        let chunks = Arc::new(self.lists.table(&self.manifest, table)?);
        let mut map = self
            .in_progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(map.entry(table).or_insert(chunks).clone())
    }

    /// Loads one unit. On failure, says whether the unit's rows can have been committed: if
    /// not, it may run again on another session.
    pub(super) async fn load(
        &self,
        session: &Connection,
        unit: &LoadUnit,
    ) -> Result<(), LoadFailed> {
        let mut progress = UnitProgress::default();
        let rows = match self.copy_unit(session, unit, &mut progress).await {
            Ok(rows) => rows,
            Err(error) => {
                let in_doubt = match (progress.transaction, progress.committing) {
                    (Some(transaction), Some(rows)) => Some(InDoubt { transaction, rows }),
                    _ => None,
                };
                return Err(LoadFailed {
                    error,
                    uncommitted: progress.committing.is_none(),
                    in_doubt,
                });
            }
        };
        self.unit_loaded(unit, rows).map_err(|error| LoadFailed {
            error,
            uncommitted: false,
            in_doubt: None,
        })
    }

    /// Decides, on a new session, a unit whose COMMIT went unanswered: `Ok(true)` if its
    /// transaction committed (the unit is loaded and counted), `Ok(false)` if it was rolled back
    /// (the unit may run again); an error if the server cannot say.
    pub(super) async fn settle(
        &self,
        session: &Connection,
        unit: &LoadUnit,
        in_doubt: &InDoubt,
    ) -> Result<bool, EngineError> {
        let name = self.manifest.tables[unit.table].display_name();
        let status: Option<String> = session
            .client()
            .query_one(
                "SELECT pg_catalog.pg_xact_status($1::text::pg_catalog.xid8)",
                &[&in_doubt.transaction],
            )
            .await
            .map_err(|e| {
                PgError::query(format!("asking whether table {name}'s load committed"), e)
            })?
            .get(0);
        match status.as_deref() {
            Some("committed") => {
                self.unit_loaded(unit, in_doubt.rows)?;
                Ok(true)
            }
            Some("aborted") => Ok(false),
            other => Err(EngineError::bug(format!(
                "the server says the transaction loading table {name} is {}",
                other.unwrap_or("unknown")
            ))),
        }
    }

    /// Counts a loaded unit's rows; when it was its table's last, checks the table's count.
    fn unit_loaded(&self, unit: &LoadUnit, rows: u64) -> Result<(), EngineError> {
        let table = &self.manifest.tables[unit.table];
        let name = table.display_name();
        let loaded = self.rows_loaded[unit.table].fetch_add(rows, Ordering::Relaxed) + rows;
        if self.units_left[unit.table].fetch_sub(1, Ordering::AcqRel) == 1 {
            self.in_progress
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&unit.table);
            if loaded != table.row_count {
                return Err(EngineError::RowCountMismatch {
                    table: name,
                    expected: table.row_count,
                    actual: loaded,
                });
            }
            Progress::add(&self.progress.tables_done, 1);
            // How the rows went: text, or binary (and the chunks whose values the conversion
            // refused, sent as text).
            let format = match (
                self.binary[unit.table].is_some(),
                self.text_chunks[unit.table].load(Ordering::Relaxed),
            ) {
                (false, _) => "text".to_owned(),
                (true, 0) => "binary".to_owned(),
                (true, 1) => "binary, 1 chunk in text".to_owned(),
                (true, n) => format!("binary, {n} chunks in text"),
            };
            info!(
                table = %name,
                rows = loaded,
                raw_bytes = table.raw_bytes,
                copy = %format,
                "table restored"
            );
        }
        Ok(())
    }

    /// Sends the unit's rows with one COPY (in a transaction with a TRUNCATE for a frozen load);
    /// returns the rows the server took. `progress` says how far it got.
    async fn copy_unit(
        &self,
        session: &Connection,
        unit: &LoadUnit,
        progress: &mut UnitProgress,
    ) -> Result<u64, EngineError> {
        let table = &self.manifest.tables[unit.table];
        let name = table.display_name();
        // Every unit in a transaction of its own, so that only its COMMIT commits: a session
        // lost before that (during the rows or the COPY's end) leaves nothing of the unit.
        // The transaction's id answers, should the COMMIT go unanswered, whether it committed.
        let sql = if unit.freeze {
            format!(
                "BEGIN; TRUNCATE ONLY {}; SELECT pg_catalog.pg_current_xact_id()::text",
                quote::qualified(&table.schema, &table.name)
            )
        } else {
            "BEGIN; SELECT pg_catalog.pg_current_xact_id()::text".to_owned()
        };
        // Rows go in binary when the table's columns have a converter (see `UnitCopy`).
        let statement = copy_in_sql(&table.schema, &table.name, &table.columns);
        let binary = self.binary[unit.table].is_some();
        let first_copy = UnitCopy::sql(&statement, binary, unit.freeze);
        // The BEGIN and the COPY go out together (the session sends requests in order): one
        // round trip fewer per unit, which is what a restore of many small tables pays for.
        let (began, sink) = tokio::join!(
            session.client().simple_query(&sql),
            session.client().copy_in::<_, Bytes>(&first_copy)
        );
        let began =
            began.map_err(|e| PgError::query(format!("preparing to load table {name}"), e))?;
        progress.transaction = began.iter().find_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        });
        let loading = || format!("loading table {name}");
        let sink =
            sink.map_err(|e| PgError::query(format!("starting COPY into table {name}"), e))?;
        let mut copy = UnitCopy::started(session, statement, unit.freeze, binary, sink)
            .await
            .map_err(|e| PgError::query(loading(), e))?;

        let table_chunks = self.chunks_of(unit.table)?;
        let mut fetching: VecDeque<(Share, usize, LoadFetch)> = VecDeque::new();
        let mut chunks = unit.chunks.clone();
        loop {
            // The next chunk waits for room in the budget only when nothing is in flight, so
            // that no session waits for room another waiting session holds.
            while fetching.len() <= PREFETCH {
                if chunks.is_empty() {
                    break;
                }
                let i = chunks.start;
                if let Some((share, fetch)) = self.take_prefetched(unit.table, i) {
                    chunks.start += 1;
                    fetching.push_back((share, i, fetch));
                    continue;
                }
                let needed = self.chunk_memory(unit.table, &table_chunks[i]);
                let share = match self.budget.try_take(needed) {
                    Some(share) => share,
                    None if fetching.is_empty() => {
                        // Chunks fetched ahead for units not started yet give way: their
                        // units may be waiting for this session.
                        self.prefetched().clear();
                        self.budget.take(needed).await?
                    }
                    None => break,
                };
                chunks.start += 1;
                let fetch = self.fetch(unit.table, table_chunks[i].clone(), i);
                fetching.push_back((share, i, fetch));
            }
            let Some((share, i, next)) = fetching.pop_front() else {
                break;
            };
            let (rows, in_binary) = match next.rows().await? {
                LoadRows::Text(text) => (text, false),
                LoadRows::Binary(tuples) => (tuples, true),
            };
            let rows = Bytes::from(rows);
            let sent = copy.send(&rows, in_binary);
            session::unless_stalled(self.stall_timeout, &loading, sent)
                .await?
                .map_err(|e| PgError::query(loading(), e))?;
            if in_binary != binary {
                self.text_chunks[unit.table].fetch_add(1, Ordering::Relaxed);
            }
            self.buffers.reclaim(rows);
            let chunk = &table_chunks[i];
            Progress::add(&self.progress.rows, chunk.rows);
            Progress::add(&self.progress.raw_bytes, chunk.raw_length);
            Progress::add(&self.progress.stored_bytes, chunk.length);
            drop(share);
        }
        // The COPY's end and the COMMIT go out together, one round trip for both: the COMMIT
        // commits only what a COPY that succeeded loaded (after a failed one the transaction is
        // aborted, and COMMIT ends it as a rollback). Should the answers be lost, whether the
        // unit is in is for the server to say, and if it is, the COPY took every row sent.
        let sent_rows = table_chunks[unit.chunks.clone()]
            .iter()
            .map(|chunk| chunk.rows)
            .sum();
        progress.committing = Some(sent_rows);
        let ending = async {
            tokio::join!(
                copy.end(),
                session::execute(session, "COMMIT", || format!("committing table {name}"))
            )
        };
        let (finished, committed) =
            session::unless_stalled(self.stall_timeout, &loading, ending).await?;
        let rows = match finished {
            Ok(rows) => rows,
            Err(e) => {
                if e.as_db_error().is_some() {
                    // The server refused the rows: the COMMIT rolled the unit back.
                    progress.committing = None;
                }
                return Err(PgError::query(loading(), e).into());
            }
        };
        progress.committing = Some(rows);
        committed?;
        Ok(rows)
    }

    /// Gathers the planner's statistics on a loaded table, after a VACUUM that marks its pages
    /// all-visible when `vacuum` (see `schedule`).
    pub(super) async fn maintain(
        &self,
        session: &Connection,
        table: usize,
        vacuum: bool,
    ) -> Result<(), EngineError> {
        let table = &self.manifest.tables[table];
        let name = quote::qualified(&table.schema, &table.name);
        let sql = if vacuum {
            format!("VACUUM (ANALYZE) {name}")
        } else {
            format!("ANALYZE {name}")
        };
        session::execute(session, &sql, || {
            format!("gathering statistics on table {}", table.display_name())
        })
        .await
    }
}

/// The most COPY data handed to the connection at once. The connection copies what it is given
/// into its write buffer, which keeps its largest size: sending a chunk of one 20 MB row whole
/// would leave every session holding 20 MB more for the rest of the restore.
const SEND_SLICE: usize = 1 << 20;

/// Slices at the end of a chunk's rows that are sent as copies. The connection's channel holds
/// one slice besides the one it is copying into its write buffer, and `send` returns once it has
/// taken the slice before: with the last two sent as copies it holds none of the chunk's memory
/// when [`send_rows`] returns, which can therefore decode the next chunk (tokio-postgres 0.7's
/// copy-in channel; if that changed, buffers would merely be reclaimed less often).
const COPIED_SLICES: usize = 2;

/// Sends COPY text in slices of at most [`SEND_SLICE`] bytes (COPY data need not end at rows), so
/// the connection's buffer stays small whatever the chunk and row sizes. The slices share `rows`'
/// memory (no copy: the connection copies them into its write buffer anyway), but for the last
/// [`COPIED_SLICES`], so that `rows` is free again when this returns (see
/// [`RowBuffers::reclaim`]).
pub(crate) async fn send_rows(
    mut sink: std::pin::Pin<&mut tokio_postgres::CopyInSink<Bytes>>,
    rows: &Bytes,
) -> Result<(), tokio_postgres::Error> {
    let slices = rows.len().div_ceil(SEND_SLICE);
    for n in 0..slices {
        let range = n * SEND_SLICE..rows.len().min((n + 1) * SEND_SLICE);
        let slice = if n + COPIED_SLICES >= slices {
            Bytes::copy_from_slice(&rows[range])
        } else {
            rows.slice(range)
        };
        sink.send(slice).await?;
    }
    Ok(())
}

/// The COPY statements of one load unit, all in the unit's transaction. Rows go in binary COPY
/// while they come converted; a chunk that comes as text (the conversion refused a value) ends
/// the binary COPY and goes in a text COPY of its own, and so back (each switch costs a round
/// trip; with rows the server wrote, the conversion refuses none).
struct UnitCopy<'a> {
    session: &'a Connection,
    /// `COPY table (columns) FROM STDIN`, without options.
    statement: String,
    freeze: bool,
    sink: std::pin::Pin<Box<tokio_postgres::CopyInSink<Bytes>>>,
    binary: bool,
    /// Rows loaded by the unit's COPYs that ended before the current one.
    rows_before: u64,
}

impl<'a> UnitCopy<'a> {
    /// The COPY statement in one format.
    fn sql(statement: &str, binary: bool, freeze: bool) -> String {
        let options = match (binary, freeze) {
            (true, true) => " (FORMAT binary, FREEZE)",
            (true, false) => " (FORMAT binary)",
            (false, true) => " (FREEZE)",
            (false, false) => "",
        };
        format!("{statement}{options}")
    }

    /// Takes over a COPY started with [`UnitCopy::sql`]`(statement, binary, freeze)`.
    async fn started(
        session: &'a Connection,
        statement: String,
        freeze: bool,
        binary: bool,
        sink: tokio_postgres::CopyInSink<Bytes>,
    ) -> Result<UnitCopy<'a>, tokio_postgres::Error> {
        let mut copy = UnitCopy {
            session,
            statement,
            freeze,
            sink: Box::pin(sink),
            binary,
            rows_before: 0,
        };
        copy.begin_current().await?;
        Ok(copy)
    }

    /// Sends one chunk's rows: binary tuples if `binary`, else COPY text.
    async fn send(&mut self, rows: &Bytes, binary: bool) -> Result<(), tokio_postgres::Error> {
        if binary != self.binary {
            self.rows_before += self.end_current().await?;
            let sql = Self::sql(&self.statement, binary, self.freeze);
            self.sink = Box::pin(self.session.client().copy_in::<_, Bytes>(&sql).await?);
            self.binary = binary;
            self.begin_current().await?;
        }
        send_rows(self.sink.as_mut(), rows).await
    }

    /// Ends the unit's last COPY; returns the rows all its COPYs loaded.
    async fn end(&mut self) -> Result<u64, tokio_postgres::Error> {
        Ok(self.rows_before + self.end_current().await?)
    }

    /// Starts the current COPY's data: the binary format's header, if binary.
    async fn begin_current(&mut self) -> Result<(), tokio_postgres::Error> {
        if self.binary {
            self.sink
                .send(Bytes::from_static(binary_copy::HEADER))
                .await?;
        }
        Ok(())
    }

    async fn end_current(&mut self) -> Result<u64, tokio_postgres::Error> {
        if self.binary {
            self.sink
                .send(Bytes::from_static(binary_copy::TRAILER))
                .await?;
        }
        self.sink.as_mut().finish().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit whose chunks come binary, then as text (a value the conversion refused), then
    /// binary again loads every row through three COPYs in one transaction, `FREEZE` and all.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_unit_goes_on_in_text_where_a_chunk_was_not_converted() {
        let db = pgark_testkit::server().create_database("unit_copy").await;
        db.execute("CREATE TABLE t (id integer, amount numeric(6,2), day date)")
            .await;
        let config = pgark_pg::ConnConfig::parse(&db.url()).expect("the test database's URL");
        let session = pgark_pg::connect(&config).await.expect("connects");
        let columns: Vec<pgark_archive::ColumnEntry> = [
            ("id", "integer"),
            ("amount", "numeric(6,2)"),
            ("day", "date"),
        ]
        .into_iter()
        .map(|(name, type_name)| pgark_archive::ColumnEntry {
            name: name.into(),
            type_name: type_name.into(),
        })
        .collect();
        let converter = BinaryRows::for_types(columns.iter().map(|c| c.type_name.as_str()))
            .expect("converted types");
        let as_binary = |text: &[u8]| {
            let mut tuples = Vec::new();
            converter.convert(text, &mut tuples).map(|()| tuples)
        };
        let first = as_binary(b"1\t1.50\t2024-02-29\n2\t\\N\t0044-03-15 BC\n").expect("converts");
        // The server takes `+7` for a numeric; the conversion takes only what it writes.
        let refused = b"3\t+7\t2000-01-01\n";
        assert!(as_binary(refused).is_err());
        let last = as_binary(b"4\t-0.25\tinfinity\n").expect("converts");

        session
            .client()
            .batch_execute("BEGIN; TRUNCATE t")
            .await
            .expect("begins");
        let statement = copy_in_sql("public", "t", &columns);
        let sink = session
            .client()
            .copy_in::<_, Bytes>(&UnitCopy::sql(&statement, true, true))
            .await
            .expect("COPY starts");
        let mut copy = UnitCopy::started(&session, statement, true, true, sink)
            .await
            .expect("header sent");
        for (rows, binary) in [(first, true), (refused.to_vec(), false), (last, true)] {
            copy.send(&Bytes::from(rows), binary)
                .await
                .expect("rows sent");
        }
        assert_eq!(copy.end().await.expect("COPYs end"), 4);
        session
            .client()
            .batch_execute("COMMIT")
            .await
            .expect("commits");
        let rows = session
            .client()
            .query_one(
                "SELECT string_agg(format('%s|%s|%s', id, amount, day), ',' ORDER BY id) FROM t",
                &[],
            )
            .await
            .expect("reads back");
        assert_eq!(
            rows.get::<_, String>(0),
            "1|1.50|2024-02-29,2||0044-03-15 BC,3|7.00|2000-01-01,4|-0.25|infinity"
        );
    }

    #[test]
    fn sent_rows_are_kept_only_once_nothing_else_holds_them() {
        let buffers = RowBuffers::new(64 << 20);
        let chunk = || {
            let mut rows = Vec::with_capacity(4 << 20);
            rows.extend_from_slice(b"1\tone\n2\ttwo\n");
            rows
        };

        // A slice still held (by the connection, not yet copied out): the memory is not kept.
        let sent = Bytes::from(chunk());
        let held = sent.slice(0..6);
        buffers.reclaim(sent);
        assert_eq!(buffers.take().capacity(), 0, "a new, empty buffer");
        assert_eq!(&held[..], b"1\tone\n", "the slice is intact");

        // Once nothing else holds it, the same memory, whole, decodes the next chunk.
        let rows = chunk();
        let address = rows.as_ptr();
        let sent = Bytes::from(rows);
        drop(sent.slice(0..6));
        buffers.reclaim(sent);
        let reused = buffers.take();
        assert_eq!(reused.as_ptr(), address);
        assert!(reused.capacity() >= 4 << 20, "{}", reused.capacity());
    }

    #[test]
    fn buffers_beyond_the_limit_are_let_go() {
        let buffers = RowBuffers::new(3 << 20);
        buffers.give_back(Vec::with_capacity(2 << 20));
        buffers.give_back(Vec::with_capacity(2 << 20));
        assert!(buffers.take().capacity() >= 2 << 20);
        assert_eq!(
            buffers.take().capacity(),
            0,
            "the second was over the limit"
        );
    }
}
