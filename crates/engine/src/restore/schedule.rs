//! The data and post-data phases as one dependency graph run on all sessions at once: pieces of
//! table data (several per large table), chunks of large-object contents, statistics, and DDL
//! items — each as soon as what it needs is done. An index is built as soon as its table's rows
//! are in, while other tables still load; a foreign key is validated as soon as both of its
//! tables are loaded, analyzed and indexed.
//!
//! Which ready task a free session takes:
//! - the one on the longest remaining path to the end (its estimated cost plus its most
//!   expensive chain of dependents), so that a big table's load, indexes and foreign keys start
//!   early and small work fills the gaps, rather than a long task starting last;
//! - never one whose table locks conflict with a running task's: it would only wait for that
//!   lock while it holds a session (two foreign keys on one table, an `ANALYZE` and an index
//!   build). A primary key or unique constraint is built as `CREATE UNIQUE INDEX` (SHARE, like
//!   other index builds on the table) and then attached with `ADD CONSTRAINT ... USING INDEX`
//!   (ACCESS EXCLUSIVE, but brief) when the archive records that form.
//!
//! A table on either side of a foreign key, unless it was loaded frozen, is vacuumed along with
//! its `ANALYZE`: with its pages marked all-visible the key's check can read indexes alone
//! (TPC-H's composite key: 0.8 s instead of 2.5 s), and so can the restored database's queries.
//!
//! A statement that sorts or hashes a whole table (an index build, a foreign key's check) runs
//! with memory sized to its table (see [`index_build_memory`], [`foreign_key_check_memory`]).
//!
//! Dependencies on items outside the graph (the pre-data section) count as done: the graph
//! starts once the schema is complete or, with several sessions, while it is still being created
//! on one of them, each table's load once the part of the schema it needs has committed (see
//! [`super::gates`]).

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use pgark_archive::{DdlItem, Manifest, ObjectKind};
use pgark_pg::Connection;

use super::gates::LoadGates;
use super::load::{LoadUnit, TableLoader};
use crate::{EngineError, Progress, session};

enum Task<'a> {
    Load(LoadUnit),
    /// Statistics on a table once all its rows are in (manifest table index), after a VACUUM
    /// when `vacuum`: the foreign keys validated next are checked with a join the planner can
    /// only choose well with statistics (on TPC-H, 2 s instead of 13 s), and the restored
    /// database is ready for queries.
    Maintain {
        table: usize,
        vacuum: bool,
    },
    /// One chunk of large-object contents (by index), of this many stored bytes.
    LargeObjects(usize, u64),
    Item(&'a DdlItem, Step),
}

/// Which statement of an item a task runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Whole,
    /// `via_index.create_index` of a constraint.
    BuildIndex,
    /// `via_index.add_constraint`, after `BuildIndex`.
    AddConstraint,
}

/// Tables with at least this many bytes of rows build a primary key or unique constraint as
/// its index first, then the constraint on it (see `ConstraintViaIndex`); smaller ones run the
/// constraint's one statement.
const SPLIT_KEY_BYTES: u64 = 1 << 20;

/// The table lock modes restore work takes (PostgreSQL's names, weakest first).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Lock {
    /// COPY FROM.
    RowExclusive,
    /// VACUUM, ANALYZE.
    ShareUpdateExclusive,
    /// CREATE INDEX.
    Share,
    /// ADD FOREIGN KEY (both tables), CREATE TRIGGER.
    ShareRowExclusive,
    /// Most other ALTER TABLE; TRUNCATE before COPY FREEZE.
    AccessExclusive,
}

impl Lock {
    /// PostgreSQL's lock conflict table, for these modes.
    fn conflicts_with(self, other: Lock) -> bool {
        use Lock::*;
        let (weak, strong) = if self <= other {
            (self, other)
        } else {
            (other, self)
        };
        match weak {
            RowExclusive => strong >= Share,
            ShareUpdateExclusive => true,
            Share => strong >= ShareRowExclusive,
            ShareRowExclusive | AccessExclusive => true,
        }
    }
}

/// Load units next in line per session whose first chunk is fetched ahead (within a quarter
/// of the memory budget): enough to hide a read that takes a few times as long to start as a
/// small table takes to load (S3 from another region: tens of milliseconds, against a few for a
/// table of a few hundred rows).
const PREFETCH_UNITS_PER_SESSION: usize = 4;

/// How many times a step is run again on a new session after its session was lost, where that
/// is safe (see [`retry_safe`]).
const STEP_RETRIES: u32 = 3;

/// The schema being created on a session of its own while loads start (see
/// [`super::gates`]).
pub(super) struct SchemaInProgress<'a> {
    pub(super) gates: &'a LoadGates,
    /// How many pre-data statements have committed.
    pub(super) committed: tokio::sync::watch::Receiver<usize>,
    /// Runs the rest of the schema; then its session joins the others.
    pub(super) session: BoxFuture<'a, Result<Connection, EngineError>>,
}

/// Runs `loads`, the large-object chunks (index, stored bytes) and `items` on `sessions`, which
/// it hands back at the end. A step whose session is lost runs again on a session from `reopen`
/// when that is safe (see [`retry_safe`]). With `schema`, a load starts once the part of the
/// schema it needs has committed, and every other step once all of it has.
pub(super) async fn run(
    sessions: Vec<Connection>,
    reopen: &impl AsyncFn() -> Result<Connection, EngineError>,
    loader: &TableLoader,
    loads: Vec<LoadUnit>,
    large_object_chunks: Vec<(usize, u64)>,
    items: &[&DdlItem],
    mut schema: Option<SchemaInProgress<'_>>,
) -> Result<Vec<Connection>, EngineError> {
    let Some(first) = sessions.first() else {
        return Err(EngineError::bug("no session to restore with"));
    };
    let max_parallel_workers = session::parallel_maintenance_workers(first).await?;
    let graph = Graph::new(&loader.manifest, loads, large_object_chunks, items);
    let mut waiting_on = graph.waiting_on.clone();
    // Pre-data statements committed (all of them without a schema in progress), and the tasks
    // ready but for that.
    let mut committed = if schema.is_some() { 0 } else { usize::MAX };
    let gate = |task: usize| match (&graph.tasks[task], &schema) {
        (_, None) => 0,
        (Task::Load(unit), Some(schema)) => schema.gates.of(unit.table_item),
        _ => usize::MAX,
    };
    let gates: Vec<usize> = (0..graph.tasks.len()).map(gate).collect();
    let mut gated: Vec<usize> = Vec::new();
    let mut loads_done = 0;
    // Ready tasks by rank, highest last.
    let mut ready: BTreeSet<(u64, Reverse<usize>)> = BTreeSet::new();
    let make_ready = |task: usize,
                      committed: usize,
                      ready: &mut BTreeSet<(u64, Reverse<usize>)>,
                      gated: &mut Vec<usize>| {
        if gates[task] <= committed {
            ready.insert((graph.rank[task], Reverse(task)));
        } else {
            gated.push(task);
        }
    };
    for (task, &waiting) in waiting_on.iter().enumerate() {
        if waiting == 0 {
            make_ready(task, committed, &mut ready, &mut gated);
        }
    }
    loader.progress.steps_total.store(
        graph.tasks.len() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    let mut idle = sessions;
    let mut running_tasks: Vec<usize> = Vec::new();
    let mut running = FuturesUnordered::new();
    let mut finished = 0;

    loop {
        // The tasks this round starts, each on a session.
        let mut starting = Vec::new();
        while !idle.is_empty() {
            let Some(&entry) = ready.iter().rev().find(|(_, Reverse(task))| {
                running_tasks
                    .iter()
                    .all(|&other| !graph.conflict(*task, other))
            }) else {
                break;
            };
            let Some(connection) = idle.pop() else {
                break;
            };
            ready.remove(&entry);
            let task = entry.1.0;
            running_tasks.push(task);
            starting.push((task, connection));
        }
        // The loads next in line read their first chunk while these run.
        let sessions = idle.len() + running_tasks.len();
        for (_, Reverse(next)) in ready
            .iter()
            .rev()
            .take(PREFETCH_UNITS_PER_SESSION * sessions)
        {
            if let Task::Load(unit) = &graph.tasks[*next] {
                loader.prefetch(unit);
            }
        }
        let builds = starting
            .iter()
            .filter(|&&(task, _)| builds_index(&graph.tasks[task]))
            .count();
        let parallel_workers = lent_workers(idle.len(), builds, max_parallel_workers);
        for (task, connection) in starting {
            let work = &graph.tasks[task];
            let memory = graph.statement_memory(task, parallel_workers);
            running.push(async move {
                let mut connection = connection;
                let mut retries = 0;
                loop {
                    let failure = match run_task(&connection, loader, work, memory).await {
                        Ok(()) => return Ok((task, connection)),
                        Err(failure) => failure,
                    };
                    if retries == STEP_RETRIES {
                        return Err(failure.error);
                    }
                    let mut fresh = None;
                    if let (Some(in_doubt), Task::Load(unit)) = (&failure.in_doubt, work) {
                        // The session was lost with the COMMIT unanswered: the server knows
                        // whether the unit is in.
                        let reopened = reopen().await?;
                        let committed = loader.settle(&reopened, unit, in_doubt).await?;
                        if committed {
                            tracing::warn!(
                                "{}: {}; its transaction had committed",
                                work.describe(&loader.manifest),
                                failure.error
                            );
                            return Ok((task, reopened));
                        }
                        fresh = Some(reopened);
                    } else if !failure.safe_to_retry {
                        return Err(failure.error);
                    }
                    retries += 1;
                    Progress::add(&loader.progress.retries, 1);
                    tracing::warn!(
                        "{}: {}; running it again on a new session ({retries} of {STEP_RETRIES})",
                        work.describe(&loader.manifest),
                        failure.error
                    );
                    connection = match fresh {
                        Some(connection) => connection,
                        None => reopen().await?,
                    };
                }
            });
        }
        let event = match schema.as_mut() {
            Some(in_progress) => tokio::select! {
                Some(result) = running.next() => Event::Finished(result),
                Ok(()) = in_progress.committed.changed() => {
                    Event::Committed(*in_progress.committed.borrow_and_update())
                }
                session = &mut in_progress.session => Event::SchemaDone(session),
            },
            None => match running.next().await {
                Some(result) => Event::Finished(result),
                None => break,
            },
        };
        let finished_task = match event {
            Event::Finished(result) => result?,
            Event::Committed(now) => {
                committed = now;
                for task in std::mem::take(&mut gated) {
                    make_ready(task, committed, &mut ready, &mut gated);
                }
                continue;
            }
            Event::SchemaDone(session) => {
                idle.push(session?);
                let loads = graph
                    .tasks
                    .iter()
                    .filter(|t| matches!(t, Task::Load(_)))
                    .count();
                tracing::info!(
                    "schema created; {loads_done} of {loads} load units were done by then"
                );
                schema = None;
                committed = usize::MAX;
                for task in std::mem::take(&mut gated) {
                    make_ready(task, committed, &mut ready, &mut gated);
                }
                continue;
            }
        };
        let (task, connection) = finished_task;
        if matches!(graph.tasks[task], Task::Load(_)) {
            loads_done += 1;
        }
        idle.push(connection);
        running_tasks.retain(|&t| t != task);
        finished += 1;
        Progress::add(&loader.progress.steps_done, 1);
        for &d in &graph.dependents[task] {
            waiting_on[d] -= 1;
            if waiting_on[d] == 0 {
                make_ready(d, committed, &mut ready, &mut gated);
            }
        }
    }
    if finished != graph.tasks.len() {
        return Err(EngineError::bug(format!(
            "{} restore steps could not run because their dependencies form a cycle",
            graph.tasks.len() - finished
        )));
    }
    Ok(idle)
}

/// What the scheduler waits for.
enum Event {
    /// A step ended: its task and session, or its failure.
    Finished(Result<(usize, Connection), EngineError>),
    /// More of the schema committed: this many statements.
    Committed(usize),
    /// The schema is complete, and its session free.
    SchemaDone(Result<Connection, EngineError>),
}

/// How many steps the graph of these loads and items has (see `restore::plan`).
pub(super) fn steps(
    manifest: &Manifest,
    loads: Vec<LoadUnit>,
    large_object_chunks: Vec<(usize, u64)>,
    items: &[&DdlItem],
) -> usize {
    Graph::new(manifest, loads, large_object_chunks, items)
        .tasks
        .len()
}

/// A step that failed, and whether running it again on a new session is safe.
struct StepFailed {
    error: EngineError,
    safe_to_retry: bool,
    /// A load unit whose COMMIT went unanswered: a new session asks the server how it ended.
    in_doubt: Option<super::load::InDoubt>,
}

/// Runs one step. Safe to run again after the session was lost ([`EngineError::is_retryable`]):
/// a table's load unit that failed before its commit (nothing of it is in the table), statistics
/// (`VACUUM`/`ANALYZE` change no data) and a chunk of large-object contents (it writes the same
/// bytes at the same offsets). Not an index or constraint, whose statement may have committed
/// just before the session was lost. `memory` is what its statement runs with, if it sorts or
/// hashes a table.
async fn run_task(
    connection: &Connection,
    loader: &TableLoader,
    work: &Task<'_>,
    memory: Option<StatementMemory>,
) -> Result<(), StepFailed> {
    let repeatable = |error: EngineError| StepFailed {
        safe_to_retry: error.is_retryable(),
        error,
        in_doubt: None,
    };
    match work {
        Task::Load(unit) => loader
            .load(connection, unit)
            .await
            .map_err(|failed| StepFailed {
                safe_to_retry: failed.uncommitted && failed.error.is_retryable(),
                in_doubt: failed.in_doubt.filter(|_| failed.error.is_retryable()),
                error: failed.error,
            }),
        Task::Maintain { table, vacuum } => loader
            .maintain(connection, *table, *vacuum)
            .await
            .map_err(repeatable),
        Task::LargeObjects(index, _) => loader
            .load_large_object_chunk(connection, *index)
            .await
            .map_err(repeatable),
        Task::Item(item, step) => {
            run_item(connection, item, *step, memory)
                .await
                .map_err(|error| StepFailed {
                    error,
                    safe_to_retry: false,
                    in_doubt: None,
                })
        }
    }
}

impl Task<'_> {
    /// Names the step in messages.
    fn describe(&self, manifest: &Manifest) -> String {
        let table = |index: usize| {
            manifest.tables.get(index).map_or_else(
                || format!("table #{index}"),
                |t| format!("table {}", t.display_name()),
            )
        };
        match self {
            Task::Load(unit) => format!("loading {}, chunks {:?}", table(unit.table), unit.chunks),
            Task::Maintain { table: index, .. } => {
                format!("gathering statistics on {}", table(*index))
            }
            Task::LargeObjects(index, _) => format!("loading large-object chunk {index}"),
            Task::Item(item, _) => super::describe(item),
        }
    }
}

async fn run_item(
    connection: &Connection,
    item: &DdlItem,
    step: Step,
    memory: Option<StatementMemory>,
) -> Result<(), EngineError> {
    let (sql, doing) = match (step, &item.via_index) {
        (Step::BuildIndex, Some(split)) => (split.create_index.as_str(), "building the index of"),
        (Step::AddConstraint, Some(split)) => (split.add_constraint.as_str(), "running"),
        _ => (item.sql.as_str(), "running"),
    };
    let describe = || format!("{doing} {}", super::describe(item));
    match memory {
        // In the statement's own query: no round trip of its own.
        Some(memory) => {
            let sql = format!("{}{sql}", memory.settings());
            session::execute(connection, &sql, describe).await
        }
        None => session::execute(connection, sql, describe).await,
    }
}

/// How many parallel workers each of `builds` index builds starting together may use: sessions
/// left without work (`spare`) lend their share of the server to them, up to the server's
/// `max_parallel_maintenance_workers`. Only they: with every session busy, workers would compete
/// with the other sessions for the server's cores (TPC-H SF 1 on two cores, two sessions:
/// 12.9 s with serial builds, 14.1 s with two workers each; one build alone, 2.3 s serial,
/// 1.8 s with two workers).
fn lent_workers(spare: usize, builds: usize, max_parallel_workers: u64) -> u64 {
    (spare as u64)
        .checked_div(builds as u64)
        .unwrap_or(0)
        .min(max_parallel_workers)
}

/// The memory, and for an index build the parallel workers, a statement that sorts or hashes a
/// whole table runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StatementMemory {
    /// `maintenance_work_mem`, KiB. A foreign key's check runs with it as its work_mem
    /// (PostgreSQL's RI_Initial_Check).
    kib: u64,
    /// `max_parallel_maintenance_workers`, for an index build.
    parallel_workers: Option<u64>,
}

impl StatementMemory {
    /// The SET statements to run before the statement, in its query.
    fn settings(&self) -> String {
        let mut sql = format!("SET maintenance_work_mem = '{}kB'; ", self.kib);
        if let Some(workers) = self.parallel_workers {
            sql.push_str(&format!(
                "SET max_parallel_maintenance_workers = {workers}; "
            ));
        }
        sql
    }
}

/// KiB in a MiB, for the memory sizes below (PostgreSQL's unit for them is the KiB).
const MIB: u64 = 1024;

/// The `maintenance_work_mem` (KiB) for building an index on a table of `table_bytes` of rows,
/// when the server may add `parallel_workers` to the build: for each participant, the least
/// memory whose sorted runs still merge in one pass (PostgreSQL reads each run 256 KiB at a
/// time, so M of memory merges M / 256 KiB runs of M: M² ≥ table × 256 KiB), and at least the
/// 32 MiB per participant without which PostgreSQL plans no parallel build. More is slower, not
/// faster: a sort far larger than the CPU's caches loses more to cache misses than a merge
/// costs. TPC-H SF 1's `lineitem (l_shipdate)`, one process: 2.3 s with 4 MiB, 2.8 s with 32 MiB,
/// 3.7 s with 512 MiB; with two workers and 32 MiB each, 1.8 s.
fn index_build_memory(table_bytes: u64, parallel_workers: u64) -> u64 {
    let per_participant = table_bytes.saturating_mul(256 * 1024).isqrt() / 1024;
    per_participant.clamp(32 * MIB, 256 * MIB) * (1 + parallel_workers)
}

/// The `maintenance_work_mem` (KiB) for validating a foreign key whose referenced table has
/// `referenced_bytes` of rows; PostgreSQL checks it with a join that uses this as its work_mem.
/// The least memory whose hash join, in batches, keeps its batch files' buffers (16 KiB per
/// batch, one batch per M of the referenced table: M² ≥ referenced × 16 KiB) within it, and at
/// least PostgreSQL's default work_mem, 4 MiB. More makes the planner choose one hash table of
/// the whole referenced key, far larger than the CPU's caches, over a merge join of two index
/// scans or a batched hash join: TPC-H SF 1's `lineitem → orders` checked in 0.5 s with 4 MiB
/// against 1.35 s with 512 MiB, the composite `lineitem → partsupp` in 1.5 s against 2.2 s.
fn foreign_key_check_memory(referenced_bytes: u64) -> u64 {
    (referenced_bytes.saturating_mul(16 * 1024).isqrt() / 1024).clamp(4 * MIB, 1024 * MIB)
}

struct Graph<'a> {
    tasks: Vec<Task<'a>>,
    /// The table locks each task takes, by the id of the item creating the table.
    locks: Vec<Vec<(u32, Lock)>>,
    /// Estimated cost of the task and of its most expensive chain of dependents.
    rank: Vec<u64>,
    waiting_on: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    tables: Tables<'a>,
}

impl<'a> Graph<'a> {
    fn new(
        manifest: &Manifest,
        loads: Vec<LoadUnit>,
        large_object_chunks: Vec<(usize, u64)>,
        items: &[&'a DdlItem],
    ) -> Self {
        let tables = Tables::new(manifest, items);
        let layout = Layout::new(&tables, loads, large_object_chunks, items);
        let (waiting_on, dependents) = layout.dependencies(manifest, &tables);
        let locks: Vec<Vec<(u32, Lock)>> = layout
            .tasks
            .iter()
            .map(|task| task_locks(manifest, &tables, task))
            .collect();
        let cost: Vec<u64> = layout
            .tasks
            .iter()
            .map(|task| task_cost(manifest, &tables, task))
            .collect();
        let rank = ranks(&cost, &waiting_on, &dependents);
        Graph {
            tasks: layout.tasks,
            locks,
            rank,
            waiting_on,
            dependents,
            tables,
        }
    }

    /// What a task's statement runs with, if it sorts or hashes a table: an index build, with
    /// up to `parallel_workers`, or a foreign key's check.
    fn statement_memory(&self, task: usize, parallel_workers: u64) -> Option<StatementMemory> {
        let work = &self.tasks[task];
        let Task::Item(item, _) = work else {
            return None;
        };
        if builds_index(work) {
            return Some(StatementMemory {
                kib: index_build_memory(self.tables.raw_bytes(item.table), parallel_workers),
                parallel_workers: Some(parallel_workers),
            });
        }
        (item.kind == ObjectKind::ForeignKey).then(|| StatementMemory {
            kib: foreign_key_check_memory(self.tables.referenced_bytes(item)),
            parallel_workers: None,
        })
    }

    /// Whether tasks `a` and `b` take conflicting locks on some table.
    fn conflict(&self, a: usize, b: usize) -> bool {
        self.locks[a].iter().any(|&(table, mode)| {
            self.locks[b]
                .iter()
                .any(|&(other, other_mode)| table == other && mode.conflicts_with(other_mode))
        })
    }
}

/// What the graph needs to know of the tables: sizes, and the tables each foreign key joins.
struct Tables<'i> {
    /// Raw bytes by the id of the item creating the table.
    bytes: HashMap<u32, u64>,
    item_by_id: HashMap<u32, &'i DdlItem>,
    /// Each foreign key's tables (its own and the referenced one), by item id.
    fk_tables: HashMap<u32, Vec<u32>>,
}

impl<'i> Tables<'i> {
    fn new(manifest: &Manifest, items: &[&'i DdlItem]) -> Self {
        let bytes: HashMap<u32, u64> = manifest
            .tables
            .iter()
            .map(|t| (t.item, t.raw_bytes))
            .collect();
        let item_by_id: HashMap<u32, &DdlItem> = items.iter().map(|i| (i.id, *i)).collect();
        let fk_tables = items
            .iter()
            .filter(|i| i.kind == ObjectKind::ForeignKey)
            .map(|item| {
                let mut tables: Vec<u32> = item
                    .table
                    .into_iter()
                    .chain(item.deps.iter().filter_map(|d| {
                        if bytes.contains_key(d) {
                            Some(*d)
                        } else {
                            // The referenced key: its table is the referenced one.
                            item_by_id.get(d).and_then(|c| c.table)
                        }
                    }))
                    .collect();
                tables.sort_unstable();
                tables.dedup();
                (item.id, tables)
            })
            .collect();
        Tables {
            bytes,
            item_by_id,
            fk_tables,
        }
    }

    /// The tables a foreign key joins; none for other items.
    fn of(&self, item: &DdlItem) -> &[u32] {
        self.fk_tables.get(&item.id).map_or(&[][..], Vec::as_slice)
    }

    /// The bytes of rows of the table a foreign key references (its own, for a key referencing
    /// its own table; none for other items).
    fn referenced_bytes(&self, item: &DdlItem) -> u64 {
        let tables = self.of(item);
        match tables.iter().find(|&&t| Some(t) != item.table) {
            Some(&other) => self.raw_bytes(Some(other)),
            None if tables.is_empty() => 0,
            None => self.raw_bytes(item.table),
        }
    }

    fn raw_bytes(&self, table_item: Option<u32>) -> u64 {
        table_item
            .and_then(|t| self.bytes.get(&t))
            .map_or(0, |b| *b)
    }
}

/// The tasks, and which task does what for each table and item.
struct Layout<'a> {
    tasks: Vec<Task<'a>>,
    /// Each table's load units, by the id of the item that creates the table.
    loads_of: HashMap<u32, Vec<usize>>,
    /// Every load task (table rows and large objects).
    all_loads: Vec<usize>,
    /// Each table's statistics task, by the id of the item creating it.
    maintain_of: HashMap<u32, usize>,
    /// The task others wait for, by item id (a split constraint's attach).
    done_by: HashMap<u32, usize>,
    /// The task that takes over each item's own dependencies (its index build).
    starts: Vec<(usize, &'a DdlItem)>,
    /// A split constraint's attach and its index build.
    attaches: Vec<(usize, usize)>,
    /// Index builds per table (a split constraint's attach), which a foreign key on the table
    /// waits for.
    index_builds: HashMap<u32, Vec<usize>>,
}

impl<'a> Layout<'a> {
    fn new(
        tables: &Tables<'_>,
        loads: Vec<LoadUnit>,
        large_object_chunks: Vec<(usize, u64)>,
        items: &[&'a DdlItem],
    ) -> Self {
        let keyed_tables: HashSet<u32> = tables.fk_tables.values().flatten().copied().collect();
        let mut loads_of: HashMap<u32, Vec<usize>> = HashMap::new();
        let mut maintained: HashMap<u32, (usize, bool)> = HashMap::new();
        let mut tasks: Vec<Task<'a>> = Vec::with_capacity(loads.len() + items.len());
        for unit in loads {
            loads_of
                .entry(unit.table_item)
                .or_default()
                .push(tasks.len());
            if unit.analyze {
                // Pages loaded frozen are all-visible already.
                let vacuum = keyed_tables.contains(&unit.table_item) && !unit.freeze;
                maintained.insert(unit.table_item, (unit.table, vacuum));
            }
            tasks.push(Task::Load(unit));
        }
        tasks.extend(
            large_object_chunks
                .into_iter()
                .map(|(index, bytes)| Task::LargeObjects(index, bytes)),
        );
        let all_loads: Vec<usize> = (0..tasks.len()).collect();
        let mut maintain_of: HashMap<u32, usize> = HashMap::new();
        let mut sorted: Vec<_> = maintained.into_iter().collect();
        sorted.sort_unstable();
        for (item, (table, vacuum)) in sorted {
            maintain_of.insert(item, tasks.len());
            tasks.push(Task::Maintain { table, vacuum });
        }
        let mut done_by: HashMap<u32, usize> = HashMap::new();
        let mut starts: Vec<(usize, &DdlItem)> = Vec::new();
        let mut attaches: Vec<(usize, usize)> = Vec::new();
        let mut index_builds: HashMap<u32, Vec<usize>> = HashMap::new();
        for item in items {
            // Building a key's index apart from its constraint lets the build share the table
            // with other work; for a small table that saves nothing and costs a statement.
            let split = item.kind == ObjectKind::Constraint
                && item.via_index.is_some()
                && tables.raw_bytes(item.table) >= SPLIT_KEY_BYTES;
            let first = tasks.len();
            if split {
                tasks.push(Task::Item(item, Step::BuildIndex));
                tasks.push(Task::Item(item, Step::AddConstraint));
                attaches.push((first + 1, first));
            } else {
                tasks.push(Task::Item(item, Step::Whole));
            }
            done_by.insert(item.id, tasks.len() - 1);
            starts.push((first, item));
            if matches!(item.kind, ObjectKind::Index | ObjectKind::Constraint)
                && let Some(table) = item.table
            {
                index_builds.entry(table).or_default().push(tasks.len() - 1);
            }
        }
        Layout {
            tasks,
            loads_of,
            all_loads,
            maintain_of,
            done_by,
            starts,
            attaches,
            index_builds,
        }
    }

    /// For each task, how many tasks it waits for, and which tasks wait for it.
    fn dependencies(
        &self,
        manifest: &Manifest,
        tables: &Tables<'_>,
    ) -> (Vec<usize>, Vec<Vec<usize>>) {
        let mut waiting_on = vec![0usize; self.tasks.len()];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); self.tasks.len()];
        let mut depend = |task: usize, on: usize| {
            waiting_on[task] += 1;
            dependents[on].push(task);
        };
        // An extension's configuration tables keep the foreign keys CREATE EXTENSION gave them:
        // a table's rows wait for those of the configuration tables its item depends on.
        for table in manifest.tables.iter().filter(|t| t.row_filter.is_some()) {
            let item = manifest.schema.iter().find(|i| i.id == table.item);
            let (Some(item), Some(units)) = (item, self.loads_of.get(&table.item)) else {
                continue;
            };
            for referenced in item.deps.iter().filter_map(|d| self.loads_of.get(d)) {
                for &unit in units {
                    for &on in referenced {
                        depend(unit, on);
                    }
                }
            }
        }
        for (item, &maintain) in &self.maintain_of {
            for &unit in self.loads_of.get(item).map_or(&[][..], Vec::as_slice) {
                depend(maintain, unit);
            }
        }
        for &(attach, build) in &self.attaches {
            depend(attach, build);
        }
        for &(task, item) in &self.starts {
            // A refresh reads other tables and an event trigger would fire on the restore's own
            // work: both wait for every table's rows.
            if matches!(
                item.kind,
                ObjectKind::MaterializedViewData | ObjectKind::EventTrigger
            ) {
                for &load in &self.all_loads {
                    depend(task, load);
                }
            }
            let mut on: Vec<u32> = item.deps.iter().copied().chain(item.table).collect();
            on.extend(tables.of(item));
            on.sort_unstable();
            on.dedup();
            for dep in on {
                if let Some(&d) = self.done_by.get(&dep) {
                    depend(task, d);
                } else if item.kind == ObjectKind::ForeignKey
                    && let Some(&maintain) = self.maintain_of.get(&dep)
                {
                    depend(task, maintain);
                } else if let Some(units) = self.loads_of.get(&dep) {
                    for &unit in units {
                        depend(task, unit);
                    }
                }
            }
            // The check can then read the new indexes (and they conflict on locks anyway).
            if item.kind == ObjectKind::ForeignKey
                && let Some(builds) = item.table.and_then(|t| self.index_builds.get(&t))
            {
                for &build in builds {
                    if !builds_on_foreign_key(&self.tasks[build], &tables.item_by_id) {
                        depend(task, build);
                    }
                }
            }
        }
        (waiting_on, dependents)
    }
}

/// The table locks a task takes, by the id of the item creating the table.
fn task_locks(manifest: &Manifest, tables: &Tables<'_>, task: &Task<'_>) -> Vec<(u32, Lock)> {
    match task {
        Task::Load(unit) if unit.freeze => vec![(unit.table_item, Lock::AccessExclusive)],
        Task::Load(unit) => vec![(unit.table_item, Lock::RowExclusive)],
        Task::Maintain { table, .. } => {
            vec![(manifest.tables[*table].item, Lock::ShareUpdateExclusive)]
        }
        Task::LargeObjects(..) => Vec::new(),
        Task::Item(item, step) => item_locks(item, *step, tables.of(item)),
    }
}

/// A task's estimated cost, in bytes of rows it reads or writes (index builds and foreign-key
/// checks weighed by how much of their tables they read).
fn task_cost(manifest: &Manifest, tables: &Tables<'_>, task: &Task<'_>) -> u64 {
    match task {
        Task::Load(unit) => unit.raw_bytes,
        Task::LargeObjects(_, bytes) => *bytes,
        Task::Maintain { table, vacuum } => {
            manifest.tables[*table].raw_bytes / if *vacuum { 8 } else { 16 }
        }
        Task::Item(item, _) if builds_index(task) => tables.raw_bytes(item.table) / 4,
        Task::Item(item, _) if item.kind == ObjectKind::ForeignKey => {
            tables.raw_bytes(item.table) / 4 + tables.referenced_bytes(item) / 16
        }
        Task::Item(..) => 0,
    }
}

/// Whether a task builds an index: an index, or a constraint built as one or with one (a
/// constraint's attach to its built index does not).
fn builds_index(task: &Task<'_>) -> bool {
    matches!(
        task,
        Task::Item(item, step) if *step != Step::AddConstraint
            && matches!(item.kind, ObjectKind::Index | ObjectKind::Constraint)
    )
}

/// An index build that itself waits for a foreign key (an odd schema) must not be waited for
/// by one, or the two would wait for each other.
fn builds_on_foreign_key(task: &Task<'_>, item_by_id: &HashMap<u32, &DdlItem>) -> bool {
    let Task::Item(item, _) = task else {
        return false;
    };
    item.deps.iter().any(|d| {
        item_by_id
            .get(d)
            .is_some_and(|dep| dep.kind == ObjectKind::ForeignKey)
    })
}

/// The table locks a DDL statement takes (only those the restore's other work could conflict
/// with: locks on the restored tables).
fn item_locks(item: &DdlItem, step: Step, fk_tables: &[u32]) -> Vec<(u32, Lock)> {
    let Some(table) = item.table else {
        return Vec::new();
    };
    let mode = match (item.kind, step) {
        (_, Step::BuildIndex) | (ObjectKind::Index, _) => Lock::Share,
        (ObjectKind::ForeignKey, _) => {
            return fk_tables
                .iter()
                .map(|&t| (t, Lock::ShareRowExclusive))
                .collect();
        }
        (ObjectKind::Trigger, _) => Lock::ShareRowExclusive,
        _ => Lock::AccessExclusive,
    };
    vec![(table, mode)]
}

/// Each task's cost plus the largest rank among its dependents (computed in reverse
/// topological order; tasks on a cycle keep their own cost — the run reports the cycle).
fn ranks(cost: &[u64], waiting_on: &[usize], dependents: &[Vec<usize>]) -> Vec<u64> {
    let mut waiting = waiting_on.to_vec();
    let mut order: Vec<usize> = (0..cost.len()).filter(|&t| waiting[t] == 0).collect();
    let mut next = 0;
    while next < order.len() {
        let task = order[next];
        next += 1;
        for &d in &dependents[task] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                order.push(d);
            }
        }
    }
    let mut rank = cost.to_vec();
    for &task in order.iter().rev() {
        let after = dependents[task].iter().map(|&d| rank[d]).max().unwrap_or(0);
        rank[task] = cost[task].saturating_add(after);
    }
    rank
}

#[cfg(test)]
mod tests {
    use pgark_archive::{
        ConstraintViaIndex, DdlItem, DumpSettings, Manifest, ObjectKind, Section, SourceInfo,
        TableEntry,
    };

    use super::Lock::{self, *};
    use super::{
        Graph, LoadUnit, MIB, StatementMemory, Step, Task, foreign_key_check_memory,
        index_build_memory, lent_workers,
    };

    fn manifest(tables: &[(u32, &str, u64)]) -> Manifest {
        let source = SourceInfo {
            connection: String::new(),
            database: "db".into(),
            server_version: "15".into(),
            server_version_num: 150_000,
            encoding: "UTF8".into(),
            snapshot_id: String::new(),
            snapshot_time: String::new(),
        };
        let settings = DumpSettings {
            jobs: 2,
            chunk_size: 1 << 20,
            compress_level: 2,
            object_lock: None,
        };
        let mut manifest = Manifest::new(String::new(), String::new(), source, settings);
        for &(item, name, raw_bytes) in tables {
            manifest.tables.push(TableEntry {
                id: item,
                schema: "public".into(),
                name: name.into(),
                item,
                columns: Vec::new(),
                row_count: 0,
                raw_bytes,
                stored_bytes: 0,
                content_digest: String::new(),
                key_column: None,
                lookup_key: None,
                row_filter: None,
                chunk_index: None,
                chunks: Vec::new(),
            });
        }
        manifest
    }

    fn item(id: u32, kind: ObjectKind, table: u32, deps: &[u32], split: bool) -> DdlItem {
        DdlItem {
            id,
            kind,
            section: Section::PostData,
            schema: Some("public".into()),
            name: format!("item{id}"),
            table: Some(table),
            sql: format!("-- {id}"),
            deps: deps.to_vec(),
            roles: Vec::new(),
            via_index: split.then(|| ConstraintViaIndex {
                create_index: format!("-- build {id}"),
                add_constraint: format!("-- attach {id}"),
            }),
        }
    }

    fn unit(table: usize, table_item: u32, raw_bytes: u64) -> LoadUnit {
        LoadUnit {
            table,
            table_item,
            chunks: 0..1,
            raw_bytes,
            freeze: false,
            analyze: true,
        }
    }

    /// Table `a` (item 1) has an index (10), a primary key built via its index (14) and two
    /// foreign keys (12, 13) to `b` (item 2), whose primary key (11) is built the same way.
    fn keyed_items() -> [DdlItem; 5] {
        [
            item(10, ObjectKind::Index, 1, &[1], false),
            item(11, ObjectKind::Constraint, 2, &[2], true),
            item(12, ObjectKind::ForeignKey, 1, &[1, 2, 11], false),
            item(13, ObjectKind::ForeignKey, 1, &[1, 2, 11], false),
            item(14, ObjectKind::Constraint, 1, &[1], true),
        ]
    }

    /// The task running `step` of item `id`.
    fn task_of(graph: &Graph<'_>, id: u32, step: Step) -> usize {
        graph
            .tasks
            .iter()
            .position(|t| matches!(t, Task::Item(i, s) if i.id == id && *s == step))
            .unwrap_or_else(|| panic!("no task for item {id}"))
    }

    /// [`keyed_items`], `a` 800 MB in two load units, `b` 100 MB.
    #[test]
    fn graph_orders_and_separates_conflicting_steps() {
        let manifest = manifest(&[(1, "a", 800 << 20), (2, "b", 100 << 20)]);
        let items = keyed_items();
        let refs: Vec<&DdlItem> = items.iter().collect();
        let loads = vec![
            unit(0, 1, 400 << 20),
            unit(0, 1, 400 << 20),
            unit(1, 2, 100 << 20),
        ];
        let graph = Graph::new(&manifest, loads, Vec::new(), &refs);
        let find = |id: u32, step: Step| task_of(&graph, id, step);
        let maintain = |table: usize| {
            graph
                .tasks
                .iter()
                .position(|t| matches!(t, Task::Maintain { table: t, vacuum: true } if *t == table))
                .unwrap_or_else(|| panic!("table {table} is not vacuumed"))
        };
        let (index, fk1, fk2) = (
            find(10, Step::Whole),
            find(12, Step::Whole),
            find(13, Step::Whole),
        );
        let (build_a, attach_a) = (find(14, Step::BuildIndex), find(14, Step::AddConstraint));
        let attach_b = find(11, Step::AddConstraint);
        let (load_a, load_b) = (0, 2);

        // Index builds on one table share it; the attach, the keys and statistics do not.
        assert!(!graph.conflict(index, build_a));
        assert!(graph.conflict(index, attach_a));
        assert!(graph.conflict(fk1, fk2));
        assert!(graph.conflict(fk1, index));
        assert!(graph.conflict(maintain(0), index));
        assert!(!graph.conflict(load_a, 1));
        // A key on `a` locks `b` too.
        assert!(graph.conflict(fk1, find(11, Step::BuildIndex)));
        assert!(!graph.conflict(load_a, load_b));

        // A foreign key waits for both tables' statistics, its table's index builds, and the
        // referenced key's attach.
        let before = |first: usize, then: usize| {
            let mut stack = vec![first];
            let mut seen = vec![false; graph.tasks.len()];
            while let Some(t) = stack.pop() {
                if t == then {
                    return true;
                }
                if !std::mem::replace(&mut seen[t], true) {
                    stack.extend(&graph.dependents[t]);
                }
            }
            false
        };
        for on in [maintain(0), maintain(1), index, build_a, attach_a, attach_b] {
            assert!(before(on, fk1), "{on} before {fk1}");
        }
        assert!(graph.dependents[build_a].contains(&attach_a));
        assert!(!before(fk1, fk2) && !before(fk2, fk1));
        // The big table's loads come first, then its indexes, then its keys.
        assert!(graph.rank[load_a] > graph.rank[load_b]);
        assert!(graph.rank[load_a] > graph.rank[index]);
        assert!(graph.rank[index] > graph.rank[fk1]);
    }

    #[test]
    fn lock_conflicts_follow_postgresql() {
        // PostgreSQL's table, for the modes used: (a, b, conflict).
        let expected = [
            (RowExclusive, RowExclusive, false),
            (RowExclusive, ShareUpdateExclusive, false),
            (RowExclusive, Share, true),
            (RowExclusive, ShareRowExclusive, true),
            (RowExclusive, AccessExclusive, true),
            (ShareUpdateExclusive, ShareUpdateExclusive, true),
            (ShareUpdateExclusive, Share, true),
            (ShareUpdateExclusive, ShareRowExclusive, true),
            (ShareUpdateExclusive, AccessExclusive, true),
            (Share, Share, false),
            (Share, ShareRowExclusive, true),
            (Share, AccessExclusive, true),
            (ShareRowExclusive, ShareRowExclusive, true),
            (ShareRowExclusive, AccessExclusive, true),
            (AccessExclusive, AccessExclusive, true),
        ];
        for (a, b, conflict) in expected {
            assert_eq!(Lock::conflicts_with(a, b), conflict, "{a:?} vs {b:?}");
            assert_eq!(Lock::conflicts_with(b, a), conflict, "{b:?} vs {a:?}");
        }
    }

    #[test]
    fn rank_is_the_most_expensive_chain() {
        // 0 → 1 → 3, 0 → 2 → 3; costs 1, 10, 5, 2.
        let cost = [1, 10, 5, 2];
        let waiting_on = [0, 1, 1, 2];
        let dependents = vec![vec![1, 2], vec![3], vec![3], vec![]];
        assert_eq!(
            super::ranks(&cost, &waiting_on, &dependents),
            [13, 12, 7, 2]
        );
    }

    /// Index builds get the least memory that merges their sorted runs in one pass, at least
    /// 32 MiB per participant; foreign keys' checks the least that keeps a batched hash join's
    /// buffers within it, at least 4 MiB; neither grows without bound.
    #[test]
    fn statement_memory_grows_with_the_square_root_of_the_table() {
        // A table of 1 GiB: 1 GiB × 256 KiB = (16 MiB)², under the floor.
        assert_eq!(index_build_memory(1 << 30, 0), 32 * MIB);
        assert_eq!(index_build_memory(0, 2), 3 * 32 * MIB);
        // 64 GiB: (128 MiB)², each of three participants gets it.
        assert_eq!(index_build_memory(64 << 30, 0), 128 * MIB);
        assert_eq!(index_build_memory(64 << 30, 2), 3 * 128 * MIB);
        assert_eq!(index_build_memory(u64::MAX, 0), 256 * MIB);
        // Referenced tables: 1 GiB × 16 KiB = (4 MiB)²; 1 TiB: (128 MiB)².
        assert_eq!(foreign_key_check_memory(0), 4 * MIB);
        assert_eq!(foreign_key_check_memory(1 << 30), 4 * MIB);
        assert_eq!(foreign_key_check_memory(1 << 40), 128 * MIB);
        assert_eq!(foreign_key_check_memory(u64::MAX), 1024 * MIB);
        for bytes in [1u64 << 20, 1 << 33, 1 << 37, 1 << 45] {
            assert!(index_build_memory(bytes, 0) <= index_build_memory(bytes * 2, 0));
            assert!(foreign_key_check_memory(bytes) <= foreign_key_check_memory(bytes * 2));
        }
    }

    /// Idle sessions' share goes to the builds starting with them, split evenly, within the
    /// server's limit; busy sessions lend nothing.
    #[test]
    fn only_idle_sessions_lend_parallel_workers() {
        assert_eq!(lent_workers(0, 2, 2), 0);
        assert_eq!(lent_workers(3, 0, 2), 0);
        assert_eq!(lent_workers(1, 1, 2), 1);
        assert_eq!(lent_workers(7, 1, 2), 2);
        assert_eq!(lent_workers(7, 1, 0), 0);
        assert_eq!(lent_workers(5, 2, 8), 2);
    }

    /// What each statement of [`keyed_items`] runs with, `a` 64 GiB and `b` 1 TiB: index
    /// builds (an index, a key's index) sized by their own table, with the lent workers; the
    /// key's check by the referenced table (its own, for a key on `b` referencing `b`); a
    /// constraint's attach, loads and statistics with the session's settings.
    #[test]
    fn statements_that_sort_or_hash_a_table_set_their_memory() {
        let manifest = manifest(&[(1, "a", 64 << 30), (2, "b", 1 << 40)]);
        let self_referencing = item(15, ObjectKind::ForeignKey, 2, &[2, 11], false);
        let items = keyed_items();
        let refs: Vec<&DdlItem> = items.iter().chain([&self_referencing]).collect();
        let loads = vec![unit(0, 1, 64 << 30), unit(1, 2, 1 << 40)];
        let graph = Graph::new(&manifest, loads, Vec::new(), &refs);
        let find = |id: u32, step: Step| task_of(&graph, id, step);
        assert_eq!(
            graph.statement_memory(find(10, Step::Whole), 1),
            Some(StatementMemory {
                kib: 2 * 128 * MIB,
                parallel_workers: Some(1)
            })
        );
        assert_eq!(
            graph.statement_memory(find(11, Step::BuildIndex), 0),
            Some(StatementMemory {
                kib: 256 * MIB,
                parallel_workers: Some(0)
            })
        );
        assert_eq!(
            graph.statement_memory(find(11, Step::AddConstraint), 2),
            None
        );
        assert_eq!(
            graph.statement_memory(find(12, Step::Whole), 2),
            Some(StatementMemory {
                kib: 128 * MIB,
                parallel_workers: None
            })
        );
        assert_eq!(
            graph.statement_memory(find(15, Step::Whole), 0),
            Some(StatementMemory {
                kib: 128 * MIB,
                parallel_workers: None
            })
        );
        assert_eq!(graph.statement_memory(0, 2), None);
        let settings = graph
            .statement_memory(find(10, Step::Whole), 1)
            .map(|m| m.settings());
        assert_eq!(
            settings.as_deref(),
            Some(
                "SET maintenance_work_mem = '262144kB'; SET max_parallel_maintenance_workers = 1; "
            )
        );
    }
}
