//! Surgical restore: put back one table, or some rows of it, into a live database, in one
//! transaction that either puts back every row or changes nothing.
//!
//! ```text
//! BEGIN; SET LOCAL lock_timeout
//! CREATE TEMP TABLE staging (the backup's columns and types); COPY the chunks that can match
//! LOCK the target tables IN SHARE ROW EXCLUSIVE MODE (readers go on, writers wait)
//! CREATE TEMP TABLE rows AS SELECT columns cast to the target's types FROM staging WHERE (--where)
//! save the before-image (upsert, replace); DELETE (replace); INSERT ... ON CONFLICT ...
//! move owned sequences past the restored keys; COMMIT (ROLLBACK for --dry-run)
//! ```
//!
//! Columns are matched by name. A column present on one side only, or a type that does not cast,
//! is an error before anything is written. `--where` is SQL run as-is by the target server with
//! the restoring role's rights, as a condition on the staging table (and, for `replace`, on the
//! target table); it is sent as a single statement, so it cannot smuggle in another one.

mod before_image;
pub mod select;
mod stage;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pgark_archive::{ColumnEntry, DdlItem, Manifest, ObjectKind, TableEntry};
use pgark_pg::{ConnConfig, Connection, PgError, quote};

pub use before_image::{BeforeImageDest, DEFAULT_FOLDER};
pub use select::{TablePattern, TableSelection};

use crate::cpu::CpuPool;
use crate::{BackupRef, Cancel, EngineError, session};

/// What happens when a restored row meets a row already in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Conflict {
    /// Plain INSERT: any conflict fails the restore.
    #[default]
    Error,
    /// `ON CONFLICT DO NOTHING`: existing rows win.
    Skip,
    /// Update the existing row, found by the target's primary key.
    Upsert,
    /// Delete the target's rows matching `--where` (all rows without one), then insert.
    Replace,
}

impl Conflict {
    pub fn as_str(self) -> &'static str {
        match self {
            Conflict::Error => "error",
            Conflict::Skip => "skip",
            Conflict::Upsert => "upsert",
            Conflict::Replace => "replace",
        }
    }
}

/// A surgical restore; built by the binary from validated arguments.
#[derive(Debug, Clone)]
pub struct SurgicalOptions {
    pub backup: BackupRef,
    pub manifest: Arc<Manifest>,
    pub target: ConnConfig,
    /// Indexes into `manifest.tables` (see [`TableSelection::select`]).
    pub tables: Vec<usize>,
    /// `--where`: an SQL condition on the table's columns.
    pub predicate: Option<String>,
    pub conflict: Conflict,
    pub into_schema: Option<String>,
    pub into_table: Option<String>,
    /// `SET LOCAL lock_timeout`; zero waits forever.
    pub lock_timeout: Duration,
    pub disable_triggers: bool,
    pub dry_run: bool,
    pub ignore_missing_columns: bool,
    /// Where before-images go; `None` is `before-images/` beside the backup.
    pub before_image: Option<BeforeImageDest>,
}

/// What happened to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableReport {
    /// The table written to.
    pub table: String,
    /// Created by this restore (`--into-schema`/`--into-table`).
    pub created: bool,
    /// Backup rows matching `--where`.
    pub rows: u64,
    pub inserted: u64,
    pub updated: u64,
    /// Rows left as they were: conflicts under `skip`, identical rows under `upsert`.
    pub skipped: u64,
    pub deleted: u64,
    pub chunks_read: usize,
    pub chunks_total: usize,
    /// Owned sequences moved forward (to the value shown), or that would be with `--dry-run`.
    pub sequences: Vec<(String, i64)>,
}

#[derive(Debug, Clone)]
pub struct SurgicalReport {
    pub tables: Vec<TableReport>,
    pub dry_run: bool,
    /// The before-image's location, when one was written.
    pub before_image: Option<String>,
    /// Commands that undo the restore, one per table, when a before-image was written.
    pub undo: Vec<String>,
    pub elapsed: Duration,
}

/// Whether the target database holds anything (tables, types, routines, schemas besides
/// `public`): a selection restored into it is surgical; into an empty one, a whole-database
/// restore of the selection.
pub async fn target_has_objects(target: &ConnConfig) -> Result<bool, EngineError> {
    let connection = session::open(target).await?;
    Ok(!pgark_pg::user_objects(connection.client(), 1)
        .await?
        .is_empty())
}

/// Runs a surgical restore. On any failure, or when cancelled, the transaction is rolled back
/// and the target is as it was.
pub async fn restore_rows(
    options: SurgicalOptions,
    mut cancel: Cancel,
) -> Result<SurgicalReport, EngineError> {
    let started = Instant::now();
    if options.into_table.is_some() && options.tables.len() != 1 {
        return Err(EngineError::IntoTableNeedsOneTable {
            count: options.tables.len(),
            tables: options
                .tables
                .iter()
                .map(|&i| options.manifest.tables[i].display_name())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let connection = session::open(&options.target).await?;
    let canceller = connection.canceller();
    let dest = match &options.before_image {
        Some(dest) => dest.clone(),
        None => BeforeImageDest {
            store: options.backup.store.clone(),
            prefix: format!("{DEFAULT_FOLDER}/"),
        },
    };
    let mut written_image: Option<String> = None;
    let result = tokio::select! {
        result = run(&options, &connection, &dest, &mut written_image) => result,
        () = cancel.cancelled() => Err(EngineError::Interrupted),
    };
    match result {
        Ok(mut report) => {
            report.elapsed = started.elapsed();
            Ok(report)
        }
        Err(cause) => {
            // The transaction dies with the session; make sure a statement still running on the
            // server stops too.
            let _ = canceller.cancel().await;
            drop(connection);
            if let Some(location) = written_image {
                before_image::BeforeImage::remove(&dest, &location).await;
            }
            Err(EngineError::RestoreFailed {
                cause: Box::new(cause),
                cleanup: "the transaction was rolled back, the target was not changed".into(),
            })
        }
    }
}

/// One table on its way in.
struct Plan<'m> {
    backup: &'m TableEntry,
    schema: String,
    name: String,
    oid: u32,
    /// Columns written: name, the backup's type, the target's type.
    columns: Vec<(String, String, String)>,
    /// Every column of the target that is not generated, with its type (for the before-image).
    target_columns: Vec<ColumnEntry>,
    identity_always: Vec<String>,
    key: Vec<String>,
    /// A single-column integer primary key, for the before-image's chunk key ranges.
    integer_key: Option<String>,
    chunks: Vec<usize>,
    /// A re-created table's indexes, constraints and triggers, run after its rows are in.
    post_data: Vec<&'m DdlItem>,
    staging: String,
    rows: String,
    report: TableReport,
}

impl Plan<'_> {
    fn qualified(&self) -> String {
        quote::qualified(&self.schema, &self.name)
    }
}

async fn run(
    options: &SurgicalOptions,
    connection: &Connection,
    dest: &BeforeImageDest,
    written_image: &mut Option<String>,
) -> Result<SurgicalReport, EngineError> {
    let predicate = options.predicate.as_deref();
    let exec = |sql: String, context: String| async move {
        session::execute(connection, &sql, || context).await
    };
    exec("BEGIN".into(), "starting the restore transaction".into()).await?;
    exec(
        format!(
            "SET LOCAL lock_timeout = '{}ms'",
            options.lock_timeout.as_millis()
        ),
        "setting --lock-timeout".into(),
    )
    .await?;
    if options.disable_triggers {
        exec(
            "SET LOCAL session_replication_role = replica".into(),
            "disabling triggers (--disable-triggers needs a superuser)".into(),
        )
        .await?;
    }

    let mut plans = Vec::new();
    for (n, &index) in options.tables.iter().enumerate() {
        plans.push(prepare(options, connection, index, n).await?);
    }
    order_by_foreign_keys(connection, &mut plans).await?;

    let cpu = Arc::new(CpuPool::for_machine()?);
    for plan in &mut plans {
        let definitions: Vec<String> = plan
            .backup
            .columns
            .iter()
            .map(|c| format!("{} {}", quote::ident(&c.name), c.type_name))
            .collect();
        exec(
            format!(
                "CREATE TEMP TABLE {} ({}) ON COMMIT DROP",
                plan.staging,
                definitions.join(", ")
            ),
            format!(
                "creating the staging table for {} (the backup's column types must exist in the target)",
                plan.backup.display_name()
            ),
        )
        .await?;
        if let Some(predicate) = predicate {
            // Checked on the empty staging table, before any chunk is fetched.
            connection
                .client()
                .execute(
                    &format!("SELECT 1 FROM {} WHERE ({predicate}) LIMIT 0", plan.staging),
                    &[],
                )
                .await
                .map_err(|e| EngineError::InvalidWhere {
                    predicate: predicate.to_owned(),
                    reason: pgark_pg::ServerMessage(&e).to_string(),
                })?;
        }
        plan.chunks = stage::chunks_to_read(plan.backup, predicate);
        plan.report.chunks_read = plan.chunks.len();
        plan.report.chunks_total = plan.backup.chunks.len();
        let copy_sql = format!(
            "COPY {} ({}) FROM STDIN",
            plan.staging,
            plan.backup
                .columns
                .iter()
                .map(|c| quote::ident(&c.name))
                .collect::<Vec<_>>()
                .join(", ")
        );
        stage::load(
            connection,
            &options.backup,
            &cpu,
            plan.backup,
            &plan.chunks,
            &copy_sql,
        )
        .await?;
        tracing::info!(
            table = %plan.backup.display_name(),
            chunks_read = plan.chunks.len(),
            chunks_total = plan.backup.chunks.len(),
            "backup rows staged"
        );
    }

    lock(connection, options, &plans).await?;

    for plan in &mut plans {
        let casts: Vec<String> = plan
            .columns
            .iter()
            .map(|(name, from, to)| {
                let column = quote::ident(name);
                if from == to {
                    column
                } else {
                    format!("{column}::{to} AS {column}")
                }
            })
            .collect();
        let filter = predicate
            .map(|p| format!(" WHERE ({p})"))
            .unwrap_or_default();
        let sql = format!(
            "CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {}{filter}",
            plan.rows,
            casts.join(", "),
            plan.staging
        );
        plan.report.rows = connection.client().execute(&sql, &[]).await.map_err(|e| {
            EngineError::RowsDoNotConvert {
                table: plan.backup.display_name(),
                reason: pgark_pg::ServerMessage(&e).to_string(),
            }
        })?;
        exec(
            format!("DROP TABLE {}", plan.staging),
            "dropping a staging table".into(),
        )
        .await?;
        if options.conflict == Conflict::Upsert && plan.key.is_empty() {
            return Err(EngineError::NoPrimaryKey {
                table: plan.qualified(),
            });
        }
    }

    let mut undo = Vec::new();
    if matches!(options.conflict, Conflict::Upsert | Conflict::Replace) && !options.dry_run {
        let chunk_size = options.manifest.settings.chunk_size;
        let mut image = before_image::BeforeImage::start(
            dest.clone(),
            connection,
            &options.target,
            cpu.clone(),
            chunk_size,
        )
        .await?;
        *written_image = Some(image.location());
        for plan in &plans {
            let saved = match options.conflict {
                Conflict::Upsert => Some(format!(
                    "{} IN (SELECT {} FROM {})",
                    key_tuple(&plan.key),
                    key_list(&plan.key),
                    plan.rows
                )),
                _ => predicate.map(str::to_owned),
            };
            image
                .add_table(
                    connection,
                    before_image::ImageTable {
                        schema: &plan.schema,
                        name: &plan.name,
                        columns: plan.target_columns.clone(),
                        key_column: plan.integer_key.clone(),
                        condition: saved,
                    },
                )
                .await?;
        }
        let location = image.finish().await?;
        for plan in &plans {
            let condition = undo_condition(connection, options.conflict, predicate, plan).await?;
            undo.push(undo_command(&location, options, plan, condition.as_deref()));
        }
    }

    if options.conflict == Conflict::Replace {
        for plan in plans.iter_mut().rev() {
            delete_replaced(connection, predicate, plan).await?;
        }
    }
    for plan in &mut plans {
        insert(connection, options.conflict, plan).await?;
    }
    for plan in &plans {
        for item in &plan.post_data {
            exec(
                item.sql.clone(),
                format!(
                    "re-creating {} of table {}",
                    describe(item),
                    plan.qualified()
                ),
            )
            .await?;
        }
    }
    for plan in &mut plans {
        plan.report.sequences = advance_sequences(connection, plan, options.dry_run).await?;
    }

    let finish = if options.dry_run {
        "ROLLBACK"
    } else {
        "COMMIT"
    };
    exec(finish.into(), "committing the restore".into()).await?;
    Ok(SurgicalReport {
        tables: plans.into_iter().map(|p| p.report).collect(),
        dry_run: options.dry_run,
        before_image: written_image.clone(),
        undo,
        elapsed: Duration::ZERO,
    })
}

/// Finds (or, beside the live table, creates) the table to write to and matches its columns with
/// the backup's.
async fn prepare<'m>(
    options: &'m SurgicalOptions,
    connection: &Connection,
    index: usize,
    n: usize,
) -> Result<Plan<'m>, EngineError> {
    let backup = &options.manifest.tables[index];
    let schema = options
        .into_schema
        .clone()
        .unwrap_or_else(|| backup.schema.clone());
    let name = options
        .into_table
        .clone()
        .unwrap_or_else(|| backup.name.clone());
    let beside = options.into_schema.is_some() || options.into_table.is_some();
    let mut created = false;
    let mut post_data = Vec::new();
    let oid = match relation_oid(connection, &schema, &name).await? {
        Some(oid) => oid,
        None if beside => {
            create_beside(connection, &options.manifest, backup, &schema, &name).await?;
            created = true;
            relation_oid(connection, &schema, &name)
                .await?
                .ok_or_else(|| {
                    EngineError::Internal(format!(
                        "table {schema}.{name} was created but is not there"
                    ))
                })?
        }
        None => {
            // Dropped from the target: created again from the backup's definition, inside the
            // transaction; its indexes, constraints and triggers come after the rows.
            let (now, later) = own_ddl(&options.manifest, backup);
            for item in now {
                session::execute(connection, &item.sql, || {
                    format!(
                        "re-creating table {} from the backup ({})",
                        backup.display_name(),
                        describe(item)
                    )
                })
                .await?;
            }
            post_data = later;
            created = true;
            relation_oid(connection, &schema, &name)
                .await?
                .ok_or_else(|| {
                    EngineError::Internal(format!(
                        "table {schema}.{name} was created but is not there"
                    ))
                })?
        }
    };
    let qualified = quote::qualified(&schema, &name);
    let rows = connection
        .client()
        .query(
            "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), \
                    a.attgenerated::text <> '', a.attidentity::text = 'a' \
             FROM pg_catalog.pg_attribute a \
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&oid],
        )
        .await
        .map_err(|e| PgError::query(format!("reading the columns of table {qualified}"), e))?;
    let target: Vec<(String, String, bool, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let writable = |column: &str| target.iter().find(|t| t.0 == column && !t.2);
    let only_backup: Vec<&str> = backup
        .columns
        .iter()
        .filter(|c| writable(&c.name).is_none())
        .map(|c| c.name.as_str())
        .collect();
    let only_target: Vec<&str> = target
        .iter()
        .filter(|t| !t.2 && !backup.columns.iter().any(|c| c.name == t.0))
        .map(|t| t.0.as_str())
        .collect();
    let differ = !only_backup.is_empty() || !only_target.is_empty();
    if differ && !options.ignore_missing_columns {
        let mut differences = Vec::new();
        if !only_backup.is_empty() {
            differences.push(format!("only in the backup: {}", only_backup.join(", ")));
        }
        if !only_target.is_empty() {
            differences.push(format!("only in the target: {}", only_target.join(", ")));
        }
        return Err(EngineError::ColumnMismatch {
            table: qualified,
            differences: differences.join("; "),
        });
    }
    let mut columns = Vec::new();
    for c in &backup.columns {
        let Some(t) = writable(&c.name) else { continue };
        if c.type_name != t.1 {
            // A parse-time check: does any cast from the backup's type to the target's exist?
            let check = format!("SELECT NULL::{}::{}", c.type_name, t.1);
            if let Err(e) = connection.client().execute(&check, &[]).await {
                return Err(EngineError::UncastableColumn {
                    table: qualified,
                    column: quote::ident(&c.name),
                    from: c.type_name.clone(),
                    to: t.1.clone(),
                    reason: pgark_pg::ServerMessage(&e).to_string(),
                });
            }
        }
        columns.push((c.name.clone(), c.type_name.clone(), t.1.clone()));
    }
    let key_rows = connection
        .client()
        .query(
            "SELECT a.attname::text, a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) \
             FROM pg_catalog.pg_index i \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
             WHERE i.indrelid = $1 AND i.indisprimary \
             ORDER BY pg_catalog.array_position(i.indkey::int2[], a.attnum)",
            &[&oid],
        )
        .await
        .map_err(|e| PgError::query(format!("reading the primary key of table {qualified}"), e))?;
    let mut key: Vec<String> = key_rows.iter().map(|r| r.get(0)).collect();
    if !key.iter().all(|k| columns.iter().any(|c| &c.0 == k)) {
        // The key is not among the restored columns; it cannot identify restored rows.
        key.clear();
    }
    let integer_key = match key_rows.as_slice() {
        [one] if one.get::<_, bool>(1) && !key.is_empty() => Some(one.get::<_, String>(0)),
        _ => None,
    };
    Ok(Plan {
        backup,
        report: TableReport {
            table: qualified,
            created,
            ..TableReport::default()
        },
        schema,
        name,
        oid,
        identity_always: target
            .iter()
            .filter(|t| t.3 && columns.iter().any(|c| c.0 == t.0))
            .map(|t| t.0.clone())
            .collect(),
        target_columns: target
            .iter()
            .filter(|t| !t.2)
            .map(|t| ColumnEntry {
                name: t.0.clone(),
                type_name: t.1.clone(),
            })
            .collect(),
        columns,
        key,
        integer_key,
        chunks: Vec::new(),
        post_data,
        staging: format!("pg_temp.pgark_staging_{n}"),
        rows: format!("pg_temp.pgark_rows_{n}"),
    })
}

async fn relation_oid(
    connection: &Connection,
    schema: &str,
    name: &str,
) -> Result<Option<u32>, EngineError> {
    let row = connection
        .client()
        .query_opt(
            "SELECT c.oid FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
            &[&schema, &name],
        )
        .await
        .map_err(|e| {
            PgError::query(
                format!("looking for table {schema}.{name} in the target"),
                e,
            )
        })?;
    Ok(row.map(|r| r.get(0)))
}

/// `--into-schema`/`--into-table`: creates the table from the backup's definition (its
/// `CREATE TABLE` and primary key, under the new name), or from its columns when the definition
/// cannot be moved safely.
async fn create_beside(
    connection: &Connection,
    manifest: &Manifest,
    backup: &TableEntry,
    schema: &str,
    name: &str,
) -> Result<(), EngineError> {
    let old = quote::qualified(&backup.schema, &backup.name);
    let new = quote::qualified(schema, name);
    let mut statements = vec![format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        quote::ident(schema)
    )];
    let item = manifest.schema.iter().find(|i| i.id == backup.item);
    match item.filter(|i| i.sql.matches(&old).count() == 1) {
        Some(item) => statements.push(item.sql.replacen(
            &format!("TABLE {old}"),
            &format!("TABLE {new}"),
            1,
        )),
        None => {
            let definitions: Vec<String> = backup
                .columns
                .iter()
                .map(|c| format!("{} {}", quote::ident(&c.name), c.type_name))
                .collect();
            statements.push(format!("CREATE TABLE {new} ({})", definitions.join(", ")));
        }
    }
    if let Some(key) = primary_key_item(manifest, backup) {
        let prefix = format!(
            "ALTER TABLE ONLY {old} ADD CONSTRAINT {} ",
            quote::ident(&key.name)
        );
        if let Some(definition) = key.sql.strip_prefix(&prefix)
            && !definition.contains(&old)
        {
            statements.push(format!("ALTER TABLE ONLY {new} ADD {definition}"));
        }
    }
    for statement in statements {
        session::execute(connection, &statement, || {
            format!("creating table {new} beside {old}")
        })
        .await?;
    }
    Ok(())
}

/// A table's own DDL, as a selective whole-database restore would run it: the table, the
/// sequences it owns, its defaults, options, indexes, constraints, foreign keys, triggers, rules
/// and policies, and the comments, owners and privileges of all of these. Split into what runs
/// before its rows (pre-data and data sections) and after them (post-data).
fn own_ddl<'m>(manifest: &'m Manifest, table: &TableEntry) -> (Vec<&'m DdlItem>, Vec<&'m DdlItem>) {
    let sequences: std::collections::BTreeSet<u32> = manifest
        .schema
        .iter()
        .filter(|i| i.kind == ObjectKind::SequenceOwnedBy && i.table == Some(table.item))
        .flat_map(|i| i.deps.iter().copied())
        .filter(|dep| {
            manifest
                .schema
                .iter()
                .any(|i| i.id == *dep && i.kind == ObjectKind::Sequence)
        })
        .collect();
    let mut included = std::collections::BTreeSet::new();
    let mut before = Vec::new();
    let mut after = Vec::new();
    for item in &manifest.schema {
        let attached = matches!(
            item.kind,
            ObjectKind::Comment | ObjectKind::SecurityLabel | ObjectKind::Owner | ObjectKind::Acl
        ) && item.deps.iter().any(|d| included.contains(d));
        let own = item.id == table.item
            || sequences.contains(&item.id)
            || item.table == Some(table.item)
            || attached;
        if !own || item.kind == ObjectKind::MaterializedViewData {
            continue;
        }
        included.insert(item.id);
        match item.section {
            pgark_archive::Section::PostData => after.push(item),
            _ => before.push(item),
        }
    }
    (before, after)
}

/// Names an item in messages, e.g. `index app.tasks_pkey`.
fn describe(item: &DdlItem) -> String {
    let kind = pgark_archive::kind_word(item.kind);
    match &item.schema {
        Some(schema) => format!("{kind} {schema}.{}", item.name),
        None => format!("{kind} {}", item.name),
    }
}

fn primary_key_item<'m>(manifest: &'m Manifest, table: &TableEntry) -> Option<&'m DdlItem> {
    manifest.schema.iter().find(|i| {
        i.kind == ObjectKind::Constraint
            && i.table == Some(table.item)
            && i.sql.contains(" PRIMARY KEY ")
    })
}

/// Puts tables that others among them reference first, so inserts meet their parents.
async fn order_by_foreign_keys(
    connection: &Connection,
    plans: &mut Vec<Plan<'_>>,
) -> Result<(), EngineError> {
    if plans.len() < 2 {
        return Ok(());
    }
    let oids: Vec<u32> = plans.iter().map(|p| p.oid).collect();
    let rows = connection
        .client()
        .query(
            "SELECT conrelid, confrelid FROM pg_catalog.pg_constraint \
             WHERE contype = 'f' AND conrelid = ANY ($1) AND confrelid = ANY ($1) \
             AND conrelid <> confrelid",
            &[&oids],
        )
        .await
        .map_err(|e| PgError::query("reading the foreign keys among the restored tables", e))?;
    let references: Vec<(u32, u32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut ordered = Vec::with_capacity(plans.len());
    while !plans.is_empty() {
        // A table whose referenced tables are all placed; with a cycle, the first remaining.
        let next = plans
            .iter()
            .position(|p| {
                references
                    .iter()
                    .filter(|(child, _)| *child == p.oid)
                    .all(|(_, parent)| !plans.iter().any(|q| q.oid == *parent))
            })
            .unwrap_or(0);
        ordered.push(plans.remove(next));
    }
    *plans = ordered;
    Ok(())
}

async fn lock(
    connection: &Connection,
    options: &SurgicalOptions,
    plans: &[Plan<'_>],
) -> Result<(), EngineError> {
    let tables: Vec<String> = plans.iter().map(Plan::qualified).collect();
    let sql = format!(
        "LOCK TABLE ONLY {} IN SHARE ROW EXCLUSIVE MODE",
        tables.join(", ")
    );
    match connection.client().batch_execute(&sql).await {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
            Err(EngineError::TargetLockTimeout {
                tables: tables.join(", "),
                timeout: format!("{:?}", options.lock_timeout),
            })
        }
        Err(e) => Err(PgError::query(format!("locking {}", tables.join(", ")), e).into()),
    }
}

fn key_tuple(key: &[String]) -> String {
    format!("({})", key_list(key))
}

fn key_list(key: &[String]) -> String {
    key.iter()
        .map(|k| quote::ident(k))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn insert(
    connection: &Connection,
    conflict: Conflict,
    plan: &mut Plan<'_>,
) -> Result<(), EngineError> {
    let table = plan.qualified();
    let columns: Vec<String> = plan.columns.iter().map(|c| quote::ident(&c.0)).collect();
    let list = columns.join(", ");
    let overriding = if plan.identity_always.is_empty() {
        ""
    } else {
        " OVERRIDING SYSTEM VALUE"
    };
    let insert = format!(
        "INSERT INTO {table} AS t ({list}){overriding} SELECT {list} FROM {}",
        plan.rows
    );
    let context = || format!("inserting the backup's rows into table {table}");
    // `replace` has deleted what goes; with a key, what stays is overwritten in place.
    match (conflict, plan.key.is_empty()) {
        (Conflict::Error, _) | (Conflict::Replace, true) => {
            plan.report.inserted =
                connection
                    .client()
                    .execute(&insert, &[])
                    .await
                    .map_err(|e| {
                        if conflict == Conflict::Error
                            && e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
                        {
                            EngineError::RowsExist {
                                table: table.clone(),
                                reason: pgark_pg::ServerMessage(&e).to_string(),
                            }
                        } else {
                            PgError::query(context(), e).into()
                        }
                    })?;
        }
        (Conflict::Skip, _) => {
            plan.report.inserted = connection
                .client()
                .execute(&format!("{insert} ON CONFLICT DO NOTHING"), &[])
                .await
                .map_err(|e| PgError::query(context(), e))?;
            plan.report.skipped = plan.report.rows - plan.report.inserted;
        }
        (Conflict::Upsert | Conflict::Replace, _) => {
            let updated: Vec<&String> = columns
                .iter()
                .zip(&plan.columns)
                .filter(|(_, c)| !plan.key.contains(&c.0) && !plan.identity_always.contains(&c.0))
                .map(|(quoted, _)| quoted)
                .collect();
            let action = if updated.is_empty() {
                "DO NOTHING".to_owned()
            } else {
                let set: Vec<String> = updated
                    .iter()
                    .map(|c| format!("{c} = EXCLUDED.{c}"))
                    .collect();
                let old: Vec<String> = updated.iter().map(|c| format!("t.{c}")).collect();
                let new: Vec<String> = updated.iter().map(|c| format!("EXCLUDED.{c}")).collect();
                // Compared as text, which every type has (json has no equality operator).
                format!(
                    "DO UPDATE SET {} WHERE ROW({})::text IS DISTINCT FROM ROW({})::text",
                    set.join(", "),
                    old.join(", "),
                    new.join(", ")
                )
            };
            let sql = format!(
                "WITH w AS ({insert} ON CONFLICT {} {action} RETURNING t.xmax::text = '0' AS inserted) \
                 SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM w",
                key_tuple(&plan.key)
            );
            let row = connection
                .client()
                .query_one(&sql, &[])
                .await
                .map_err(|e| PgError::query(context(), e))?;
            plan.report.inserted = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
            plan.report.updated = u64::try_from(row.get::<_, i64>(1)).unwrap_or(0);
            plan.report.skipped = plan.report.rows - plan.report.inserted - plan.report.updated;
        }
    }
    Ok(())
}

/// `replace`, first half: deletes the target's rows matching `--where` (all rows without one).
/// With a primary key, rows the backup has too are left for the upsert that follows, so they are
/// overwritten in place rather than deleted: foreign keys referencing them (`ON DELETE CASCADE`)
/// and delete triggers do not act on rows that are put back.
async fn delete_replaced(
    connection: &Connection,
    predicate: Option<&str>,
    plan: &mut Plan<'_>,
) -> Result<(), EngineError> {
    let mut conditions: Vec<String> = predicate.map(|p| format!("({p})")).into_iter().collect();
    if !plan.key.is_empty() {
        let same: Vec<String> = plan
            .key
            .iter()
            .map(|k| format!("r.{0} = t.{0}", quote::ident(k)))
            .collect();
        conditions.push(format!(
            "NOT EXISTS (SELECT 1 FROM {} r WHERE {})",
            plan.rows,
            same.join(" AND ")
        ));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let table = plan.qualified();
    plan.report.deleted = connection
        .client()
        .execute(&format!("DELETE FROM ONLY {table} t{filter}"), &[])
        .await
        .map_err(|e| {
            PgError::query(
                format!("deleting the rows of table {table} being replaced"),
                e,
            )
        })?;
    Ok(())
}

/// Moves sequences owned by the table's integer columns forward to the largest value in the
/// table, where they are behind it (never backward). Sequences are not transactional, so a dry
/// run only says what it would do.
async fn advance_sequences(
    connection: &Connection,
    plan: &Plan<'_>,
    dry_run: bool,
) -> Result<Vec<(String, i64)>, EngineError> {
    let table = plan.qualified();
    let owned = connection
        .client()
        .query(
            "SELECT s.oid::regclass::text, a.attname::text \
             FROM pg_catalog.pg_depend d \
             JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
             JOIN pg_catalog.pg_sequence q ON q.seqrelid = s.oid AND q.seqincrement > 0 \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid \
             WHERE d.classid = 'pg_catalog.pg_class'::regclass \
               AND d.refclassid = 'pg_catalog.pg_class'::regclass \
               AND d.refobjid = $1 AND d.deptype IN ('a', 'i') \
               AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) \
             ORDER BY 1",
            &[&plan.oid],
        )
        .await
        .map_err(|e| PgError::query(format!("reading the sequences table {table} owns"), e))?;
    let mut moved = Vec::new();
    for row in owned {
        let sequence: String = row.get(0);
        let column: String = row.get(1);
        let sql = format!(
            "SELECT m FROM (SELECT max({})::int8 AS m FROM ONLY {table}) x \
             WHERE m >= (SELECT last_value FROM {sequence})",
            quote::ident(&column)
        );
        let context = || format!("moving sequence {sequence} past the restored keys");
        let Some(row) = connection
            .client()
            .query_opt(&sql, &[])
            .await
            .map_err(|e| PgError::query(context(), e))?
        else {
            continue;
        };
        let value: i64 = row.get(0);
        if !dry_run {
            connection
                .client()
                .execute(
                    "SELECT pg_catalog.setval($1::text::regclass, $2)",
                    &[&sequence, &value],
                )
                .await
                .map_err(|e| PgError::query(context(), e))?;
        }
        moved.push((sequence, value));
    }
    Ok(moved)
}

/// The `--where` of the command that undoes this table's restore from the before-image: every
/// row the restore wrote (by key) and every row it saved. `None` for a whole-table replace.
async fn undo_condition(
    connection: &Connection,
    conflict: Conflict,
    predicate: Option<&str>,
    plan: &Plan<'_>,
) -> Result<Option<String>, EngineError> {
    if plan.key.is_empty() {
        return Ok(predicate.map(str::to_owned));
    }
    if conflict == Conflict::Replace && predicate.is_none() {
        return Ok(None);
    }
    let integer = plan.integer_key.is_some();
    let value = |k: &String| {
        if integer {
            format!("{}::text", quote::ident(k))
        } else {
            format!("pg_catalog.quote_literal({}::text)", quote::ident(k))
        }
    };
    let element = match plan.key.as_slice() {
        [one] => value(one),
        several => format!(
            "'(' || concat_ws(', ', {}) || ')'",
            several.iter().map(value).collect::<Vec<_>>().join(", ")
        ),
    };
    let sql = format!(
        "SELECT string_agg(e, ', ' ORDER BY e) FROM (SELECT DISTINCT {element} AS e FROM {}) s",
        plan.rows
    );
    let keys: Option<String> = connection
        .client()
        .query_one(&sql, &[])
        .await
        .map_err(|e| PgError::query("listing the restored keys for the undo command", e))?
        .get(0);
    let key_column = match plan.key.as_slice() {
        [one] => quote::ident(one),
        several => key_tuple(several),
    };
    let restored = match keys {
        Some(keys) => format!("{key_column} IN ({keys})"),
        None => "false".to_owned(),
    };
    Ok(Some(match (conflict, predicate) {
        (Conflict::Replace, Some(p)) => format!("({p}) OR {restored}"),
        _ => restored,
    }))
}

fn undo_command(
    location: &str,
    options: &SurgicalOptions,
    plan: &Plan<'_>,
    condition: Option<&str>,
) -> String {
    let mut words = vec![
        "pgark".to_owned(),
        "restore".to_owned(),
        shell_quote(location),
        "--target".to_owned(),
        shell_quote(&options.target.redacted()),
        "--table".to_owned(),
        shell_quote(&plan.qualified()),
        "--conflict".to_owned(),
        "replace".to_owned(),
    ];
    if let Some(condition) = condition {
        words.push("--where".to_owned());
        words.push(shell_quote(condition));
    }
    if options.disable_triggers {
        words.push("--disable-triggers".to_owned());
    }
    words.join(" ")
}

/// Quotes a word for a POSIX shell, leaving plain ones bare.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%_-+=:,./".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Counts per table for messages: `3 inserted, 1 updated, 0 skipped, 0 deleted`.
pub fn describe_counts(report: &TableReport) -> String {
    format!(
        "{} inserted, {} updated, {} skipped, {} deleted",
        report.inserted, report.updated, report.skipped, report.deleted
    )
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("/backups/x"), "/backups/x");
        assert_eq!(shell_quote("id IN (1, 2)"), "'id IN (1, 2)'");
        assert_eq!(shell_quote("name = 'o'"), "'name = '\\''o'\\'''");
        assert_eq!(shell_quote(""), "''");
    }
}
