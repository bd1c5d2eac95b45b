//! `pgark restore`: a whole backup into an empty (or newly created) database.
//!
//! Phases: pre-data DDL on one session, committed every few hundred statements; then table
//! data, large objects' contents, sequence values, indexes and constraints as one dependency graph
//! on `jobs` sessions (`schedule`), whose loads start while the schema is still being created
//! when there are sessions to spare (`gates`): rows
//! with COPY, each chunk's SHA-256 checked before any of its rows are sent and every table's row
//! count checked against the manifest; each index as soon as its table is loaded. If anything
//! fails or the restore is cancelled, the target is put back as it was: a database the restore
//! created is dropped, otherwise everything it created is. If it is killed where nothing can
//! clean up, what it leaves is marked as such (`leftover`).

mod database;
mod gates;
mod large_objects;
mod leftover;
mod load;
mod preflight;
mod schedule;
mod select;
pub(crate) mod target;

pub use database::set_clause;
pub(crate) use load::send_rows;
pub(crate) use preflight::server_message;
pub use preflight::{Preflight, PreflightPolicy};
pub use select::RestoreParts;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pgark_archive::{DdlItem, Manifest, Section};
use pgark_pg::{ConnConfig, Connection};

use crate::budget::ByteBudget;
use crate::cpu::CpuPool;
use crate::{BackupRef, Cancel, EngineError, Progress, session};

/// The size of a restore's plan: what the scheduler orders before any session starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestorePlan {
    /// Load units (runs of chunks of one table, one COPY each).
    pub load_units: usize,
    /// Every step of the data and post-data sections: load units, large-object chunks,
    /// statistics, index builds, constraints and the other post-data statements.
    pub steps: usize,
}

/// Plans a restore of `parts` of `manifest` without a target: the same load units and step
/// graph a restore builds before its sessions start (for measuring planning at scale).
pub fn plan(
    manifest: &Manifest,
    parts: &RestoreParts,
    jobs: usize,
) -> Result<RestorePlan, EngineError> {
    let units = if parts.data {
        load::plan(manifest, parts.pre_data, jobs)
    } else {
        Vec::new()
    };
    let large_object_chunks = match &manifest.large_objects {
        Some(lo) if parts.data => lo.chunks.iter().map(|c| c.length).enumerate().collect(),
        _ => Vec::new(),
    };
    let items: Vec<&DdlItem> = manifest
        .schema
        .iter()
        .filter(|item| item.section != Section::PreData && parts.includes(item))
        .collect();
    let load_units = units.len();
    let steps = schedule::steps(manifest, units, large_object_chunks, &items);
    Ok(RestorePlan { load_units, steps })
}

/// What to restore and where; built by the binary from validated arguments.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub backup: BackupRef,
    pub manifest: Arc<Manifest>,
    /// The target database (created when `create` is set).
    pub target: ConnConfig,
    pub create: bool,
    /// Restore although the target carries the mark of an interrupted restore (see `leftover`).
    pub force: bool,
    pub jobs: usize,
    /// Sections, owners, privileges and roles.
    pub parts: RestoreParts,
    /// What to do about what the restoring role may not do.
    pub policy: PreflightPolicy,
    /// Send rows as COPY text only, never in binary COPY (which sends numerics in more bytes
    /// than their text: on a slow network link that can cost more than the server saves).
    pub text_copy: bool,
}

#[derive(Debug, Clone)]
pub struct RestoreSummary {
    pub database: String,
    pub tables: usize,
    pub rows: u64,
    pub raw_bytes: u64,
    pub elapsed: Duration,
}

pub async fn restore(
    options: RestoreOptions,
    progress: Arc<Progress>,
    mut cancel: Cancel,
) -> Result<RestoreSummary, EngineError> {
    let started = Instant::now();
    // Read (and checked) before the target is touched: a damaged index changes nothing there.
    let lists = if options.parts.data {
        Some(options.backup.chunk_lists(&options.manifest).await?)
    } else {
        None
    };
    let target = tokio::select! {
        target = target::Target::prepare(&options) => target?,
        () = cancel.cancelled() => return Err(EngineError::Interrupted),
    };
    let sessions = Arc::new(target::SessionRegistry::default());
    let result = tokio::select! {
        result = run(&options, &target, &sessions, lists, progress) => result,
        () = cancel.cancelled() => Err(EngineError::Interrupted),
    };
    // Not cancellable: once renamed, the database is the restored one and must not be undone.
    let result = match result {
        Ok(()) => target.finish().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(RestoreSummary {
            database: target.database().to_owned(),
            tables: options.manifest.tables.len(),
            rows: options.manifest.total_rows(),
            raw_bytes: options.manifest.raw_bytes(),
            elapsed: started.elapsed(),
        }),
        Err(cause) => {
            sessions.cancel_all().await;
            let cleanup = target.undo(&options.manifest).await;
            Err(EngineError::RestoreFailed {
                cause: Box::new(cause),
                cleanup,
            })
        }
    }
}

async fn run(
    options: &RestoreOptions,
    target: &target::Target,
    sessions: &Arc<target::SessionRegistry>,
    lists: Option<crate::backup::ChunkLists>,
    progress: Arc<Progress>,
) -> Result<(), EngineError> {
    let manifest = &options.manifest;
    let parts = target.parts();
    let in_section = |section: Section| -> Vec<&DdlItem> {
        manifest
            .schema
            .iter()
            .filter(|item| item.section == section && parts.includes(item))
            .collect()
    };

    let first = sessions.open(target.config()).await?;
    // Every restore session is tuned for bulk work; into an existing schema (`--data-only`) the
    // tables' triggers and foreign keys are live: replica mode keeps them from firing while rows
    // that were consistent in the source arrive in parallel (as pg_restore's
    // --disable-triggers). A role that may not set it can still load tables without either.
    let replica_role =
        parts.data && !parts.pre_data && needs_replica_role(&first, manifest).await?;
    let tune = async |connection: Connection| -> Result<Connection, EngineError> {
        session::execute(&connection, BULK_SESSION_SETTINGS, || {
            "tuning a restore session".to_owned()
        })
        .await?;
        if replica_role {
            session::execute(
                &connection,
                "SET session_replication_role = replica",
                || "switching triggers off for a data-only restore".to_owned(),
            )
            .await?;
        }
        Ok(connection)
    };
    let reopen = async || tune(sessions.open(target.config()).await?).await;
    let first = tune(first).await?;
    let jobs = options.jobs.max(1);
    let pre_data = if parts.pre_data || parts.create_roles {
        gates::decorations_first(&in_section(Section::PreData))
    } else {
        Vec::new()
    };

    progress.tables_total.store(
        manifest.tables.len() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    if parts.data {
        progress
            .bytes_expected
            .store(manifest.raw_bytes(), std::sync::atomic::Ordering::Relaxed);
    }
    let units = if parts.data {
        // Tables this restore created may be truncated and loaded frozen.
        load::plan(manifest, parts.pre_data, jobs)
    } else {
        Vec::new()
    };
    let cpu = CpuPool::shared()?;
    // Enough for every decompressing thread and a few chunks waiting to be sent, whatever
    // `--jobs` is: more sessions share it rather than each adding their own.
    let budget = ByteBudget::new((cpu.threads() as u64 + 4) * 2 * manifest.settings.chunk_size);
    let loader = load::TableLoader::new(
        options.backup.clone(),
        options.manifest.clone(),
        lists.unwrap_or_default(),
        cpu,
        budget,
        progress,
        &units,
        options.target.stall_timeout(),
        // Binary values must be of the column's very type (text is parsed into whatever type
        // the column has): only into tables this restore created from the backup's definitions.
        parts.pre_data && !options.text_copy,
    );
    // Large-object chunks are independent units of work, loaded like pieces of a table.
    let large_object_chunks = match &manifest.large_objects {
        Some(lo) if parts.data => lo.chunks.iter().map(|c| c.length).enumerate().collect(),
        _ => Vec::new(),
    };
    let mut items = in_section(Section::Data);
    items.extend(in_section(Section::PostData));

    // With sessions to spare, tables start loading while the schema is still being created.
    let overlap = jobs > 1 && !units.is_empty() && parts.pre_data;
    let gates = overlap.then(|| gates::LoadGates::new(&pre_data));
    let commits = gates
        .as_ref()
        .map(|gates| target::SchemaCommits::new(gates.positions()));
    let mut pool = Vec::with_capacity(jobs);
    let schema = match (&gates, commits) {
        (Some(gates), Some((commits, committed))) => Some(schedule::SchemaInProgress {
            gates,
            committed,
            session: Box::pin(async move {
                target
                    .run_pre_data(&first, &pre_data, Some(&commits))
                    .await?;
                Ok(first)
            }),
        }),
        _ => {
            if parts.pre_data || parts.create_roles {
                target.run_pre_data(&first, &pre_data, None).await?;
            }
            pool.push(first);
            None
        }
    };
    while pool.len() + usize::from(schema.is_some()) < jobs {
        pool.push(reopen().await?);
    }
    let pool = schedule::run(
        pool,
        &reopen,
        &loader,
        units,
        large_object_chunks,
        &items,
        schema,
    )
    .await?;
    // The temporary database can only be renamed once nobody is connected to it.
    for connection in pool {
        connection.close().await?;
    }
    Ok(())
}

/// Checks, without changing the target, what a restore with `options` would leave out and
/// what would stop it (`restore --check`): missing roles, a target that is not empty or a
/// database that exists, and what the role may not do (see [`Preflight`]). With `create`, the
/// role's rights are tried in a scratch database, dropped again.
pub async fn check(options: &RestoreOptions) -> Result<Preflight, EngineError> {
    let mut problems = Vec::new();
    let created_roles = match target::check_roles(options).await {
        Ok(roles) => roles.into_iter().map(|r| r.name).collect(),
        Err(EngineError::MissingRoles { roles }) => {
            problems.push(format!("roles missing in the target: {roles}"));
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    let database_owner = options
        .manifest
        .database
        .as_ref()
        .filter(|_| options.create)
        .map(|d| d.owner.as_str());
    let inspect = async |connection: &Connection| {
        preflight::inspect(
            connection,
            &options.manifest,
            &options.parts,
            options.policy,
            &created_roles,
            database_owner,
        )
        .await
    };
    let mut found = if options.create {
        let maintenance =
            session::open(&target::maintenance_config(&options.target).await?).await?;
        let database = options.target.dbname();
        if target::database_exists(&maintenance, database).await? {
            problems.push(format!("database {database:?} already exists"));
        }
        let scratch = format!("pgark_check_{}", std::process::id());
        target::create_database_like(&maintenance, &scratch, &options.manifest).await?;
        let found = async {
            let connection = session::open(&options.target.with_dbname(&scratch)).await?;
            let found = inspect(&connection).await;
            connection.close().await?;
            found
        }
        .await;
        target::drop_database(&maintenance, &scratch).await?;
        found?
    } else {
        let connection = session::open(&options.target).await?;
        let found = inspect(&connection).await?;
        if let Err(e) = target::check_empty(
            &connection,
            &options.target,
            &options.manifest,
            &options.parts,
            &found.installed_extensions,
        )
        .await
        {
            match e {
                EngineError::TargetNotEmpty { .. } => problems.push(e.to_string()),
                e => return Err(e),
            }
        }
        found
    };
    problems.append(&mut found.problems);
    found.problems = problems;
    Ok(found)
}

/// Whether the sessions of a data-only restore switch triggers off: when the role may
/// (checked on `connection`), always; when it may not, only if nothing would fire — else the
/// restore stops here, before any row is loaded, naming the tables' triggers and foreign keys.
async fn needs_replica_role(
    connection: &Connection,
    manifest: &Manifest,
) -> Result<bool, EngineError> {
    if session::try_replica_role(connection, false).await? {
        session::execute(connection, "RESET session_replication_role", || {
            "checking the role's settings".to_owned()
        })
        .await?;
        return Ok(true);
    }
    let tables: Vec<String> = manifest
        .tables
        .iter()
        .map(|t| pgark_pg::quote::qualified(&t.schema, &t.name))
        .collect();
    let guards = pgark_pg::write_guards(connection.client(), &tables).await?;
    let mut found = Vec::new();
    if !guards.triggers.is_empty() {
        let triggers: Vec<String> = guards
            .triggers
            .iter()
            .map(|t| format!("{} on {}", pgark_pg::quote::ident(&t.name), t.table))
            .collect();
        found.push(format!("triggers {}", triggers.join(", ")));
    }
    if !guards.foreign_keys.is_empty() {
        found.push(format!(
            "foreign keys of {}",
            guards.foreign_keys.join(", ")
        ));
    }
    if found.is_empty() {
        return Ok(false);
    }
    Err(EngineError::DataOnlyNeedsReplicaRole {
        role: session::current_role(connection).await?,
        guards: found.join("; "),
    })
}

/// Settings of every restore session, for bulk work: commits need not wait for the WAL flush
/// (the restore is all or nothing anyway), and no time goes into JIT-compiling queries that
/// each run once. Index builds and foreign keys' checks set their memory each (`schedule`).
const BULK_SESSION_SETTINGS: &str = "SET synchronous_commit = off; SET jit = off";

/// Names an item in messages, e.g. `index public.tasks_pkey`.
fn describe(item: &DdlItem) -> String {
    let kind = pgark_archive::kind_word(item.kind);
    match &item.schema {
        Some(schema) => format!("{kind} {schema}.{}", item.name),
        None => format!("{kind} {}", item.name),
    }
}
