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
//! Dependencies on items outside the graph (the pre-data section, run earlier) count as done.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use pgark_archive::{DdlItem, Manifest, ObjectKind};
use pgark_pg::Connection;

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

/// How many times a step is run again on a new session after its session was lost, where that
/// is safe (see [`retry_safe`]).
const STEP_RETRIES: u32 = 3;

/// Runs `loads`, the large-object chunks (index, stored bytes) and `items` on `sessions`, which
/// it hands back at the end. A step whose session is lost runs again on a session from `reopen`
/// when that is safe (see [`retry_safe`]).
pub(super) async fn run(
    sessions: Vec<Connection>,
    reopen: &impl AsyncFn() -> Result<Connection, EngineError>,
    loader: &TableLoader,
    loads: Vec<LoadUnit>,
    large_object_chunks: Vec<(usize, u64)>,
    items: &[&DdlItem],
) -> Result<Vec<Connection>, EngineError> {
    if sessions.is_empty() {
        return Err(EngineError::bug("no session to restore with"));
    }
    let graph = Graph::new(&loader.manifest, loads, large_object_chunks, items);
    let mut waiting_on = graph.waiting_on.clone();
    // Ready tasks by rank, highest last.
    let mut ready: BTreeSet<(u64, Reverse<usize>)> = BTreeSet::new();
    for (task, &waiting) in waiting_on.iter().enumerate() {
        if waiting == 0 {
            ready.insert((graph.rank[task], Reverse(task)));
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
            let work = &graph.tasks[task];
            running.push(async move {
                let mut connection = connection;
                let mut retries = 0;
                loop {
                    let failure = match run_task(&connection, loader, work).await {
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
        let Some(result) = running.next().await else {
            break;
        };
        let (task, connection) = result?;
        idle.push(connection);
        running_tasks.retain(|&t| t != task);
        finished += 1;
        Progress::add(&loader.progress.steps_done, 1);
        for &d in &graph.dependents[task] {
            waiting_on[d] -= 1;
            if waiting_on[d] == 0 {
                ready.insert((graph.rank[d], Reverse(d)));
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
/// just before the session was lost.
async fn run_task(
    connection: &Connection,
    loader: &TableLoader,
    work: &Task<'_>,
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
            run_item(connection, item, *step)
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

async fn run_item(connection: &Connection, item: &DdlItem, step: Step) -> Result<(), EngineError> {
    let (sql, doing) = match (step, &item.via_index) {
        (Step::BuildIndex, Some(split)) => (split.create_index.as_str(), "building the index of"),
        (Step::AddConstraint, Some(split)) => (split.add_constraint.as_str(), "running"),
        _ => (item.sql.as_str(), "running"),
    };
    session::execute(connection, sql, || {
        format!("{doing} {}", super::describe(item))
    })
    .await
}

struct Graph<'a> {
    tasks: Vec<Task<'a>>,
    /// The table locks each task takes, by the id of the item creating the table.
    locks: Vec<Vec<(u32, Lock)>>,
    /// Estimated cost of the task and of its most expensive chain of dependents.
    rank: Vec<u64>,
    waiting_on: Vec<usize>,
    dependents: Vec<Vec<usize>>,
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
        }
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
        Task::Item(_, Step::AddConstraint) => 0,
        Task::Item(item, _) => match item.kind {
            ObjectKind::Index | ObjectKind::Constraint => tables.raw_bytes(item.table) / 4,
            ObjectKind::ForeignKey => {
                let referenced: u64 = tables
                    .of(item)
                    .iter()
                    .filter(|&&t| Some(t) != item.table)
                    .map(|&t| tables.raw_bytes(Some(t)))
                    .sum();
                tables.raw_bytes(item.table) / 4 + referenced / 16
            }
            _ => 0,
        },
    }
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
    use super::{Graph, LoadUnit, Step, Task};

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

    /// Table `a` (item 1, 800 MB, two load units) has an index (10), a primary key built via
    /// its index (14) and two foreign keys (12, 13) to `b` (item 2, 100 MB), whose primary key
    /// (11) is built the same way.
    #[test]
    fn graph_orders_and_separates_conflicting_steps() {
        let manifest = manifest(&[(1, "a", 800 << 20), (2, "b", 100 << 20)]);
        let items = [
            item(10, ObjectKind::Index, 1, &[1], false),
            item(11, ObjectKind::Constraint, 2, &[2], true),
            item(12, ObjectKind::ForeignKey, 1, &[1, 2, 11], false),
            item(13, ObjectKind::ForeignKey, 1, &[1, 2, 11], false),
            item(14, ObjectKind::Constraint, 1, &[1], true),
        ];
        let refs: Vec<&DdlItem> = items.iter().collect();
        let loads = vec![
            unit(0, 1, 400 << 20),
            unit(0, 1, 400 << 20),
            unit(1, 2, 100 << 20),
        ];
        let graph = Graph::new(&manifest, loads, Vec::new(), &refs);
        let find = |id: u32, step: Step| {
            graph
                .tasks
                .iter()
                .position(|t| matches!(t, Task::Item(i, s) if i.id == id && *s == step))
                .unwrap_or_else(|| panic!("no task for item {id}"))
        };
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
}
