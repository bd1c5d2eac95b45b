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
mod plan;
mod prune;
mod referencing;
pub mod select;
mod stage;
mod undo;
mod write;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pgark_archive::Manifest;
use pgark_pg::{ConnConfig, Connection, quote};

pub use before_image::{BeforeImageDest, DEFAULT_FOLDER};
pub use select::{SelectedTable, TablePattern, TableSelection};

use crate::cpu::CpuPool;
use crate::key_lookup;
use crate::{BackupRef, Cancel, EngineError, session};
use plan::{describe, order_by_foreign_keys, prepare};
use referencing::Reach;
pub use undo::UndoRestore;
use undo::{undo_condition, undo_restore};
use write::{
    advance_sequences, delete_replaced, insert, key_list, key_tuple, lock, owned_sequences,
    sequence_values,
};

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
    /// The tables to write to (see [`TableSelection::select_tables`]).
    pub tables: Vec<SelectedTable>,
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
    /// Backup columns renamed in the target since, as `(backup's name, target's name)`; applies
    /// to every selected table that has the backup's column.
    pub column_map: Vec<(String, String)>,
    /// Where before-images go; `None` is `before-images/` beside the backup.
    pub before_image: Option<BeforeImageDest>,
    /// Also put back what deleting the selected rows did to the tables referencing them
    /// (cascaded deletes, cleared keys), transitively.
    pub with_referencing: bool,
}

/// How a column of the backup and the target's table were matched, where they differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnFate {
    /// Written into a column of another name (`--column-map`) or type (cast).
    Mapped {
        from: String,
        to: String,
        from_type: String,
        to_type: String,
    },
    /// Only the target has it: restored rows get its default.
    Defaulted { column: String },
    /// Only the backup has it: left out.
    Dropped { column: String },
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
    /// What let the restore read fewer chunks than the table has (besides partition bounds).
    pub pruned_by: Option<&'static str>,
    /// For a partitioned table whose partitions were pruned by `--where`: the partitions read,
    /// of those the backup has.
    pub partitions: Option<(usize, usize)>,
    /// The columns matched other than one to one by name and type.
    pub columns: Vec<ColumnFate>,
    /// Owned sequences moved forward (to the value shown), or that would be with `--dry-run`.
    pub sequences: Vec<(String, i64)>,
    /// For a table restored because it references restored rows: the foreign keys it was
    /// reached through, and whether its rows were inserted again (a cascaded delete) or its keys
    /// set back (`updated`; SET NULL / SET DEFAULT).
    pub referencing: Option<Referencing>,
}

/// How a referencing table's rows were put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referencing {
    /// `foreign key k to parent, ON DELETE ...`, one per foreign key followed.
    pub via: Vec<String>,
    /// Rows inserted again (CASCADE), or keys set back (SET NULL / SET DEFAULT).
    pub keys_set_back: bool,
}

#[derive(Debug, Clone)]
pub struct SurgicalReport {
    pub tables: Vec<TableReport>,
    pub dry_run: bool,
    /// The before-image's location, when one was written.
    pub before_image: Option<String>,
    /// How to undo the restore, one per table, when a before-image was written.
    pub undo: Vec<UndoRestore>,
    /// What `--with-referencing` could not follow.
    pub notes: Vec<String>,
    /// Foreign keys and views that dropping a re-created table had taken with it, added again.
    pub re_added: Vec<String>,
    /// Those that could not be added again (their other side is gone, or something of the same
    /// name exists), each with the reason.
    pub not_re_added: Vec<String>,
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
                .map(|t| plan::Source::new(&options.manifest, t).display_name())
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
        "setting the lock timeout".into(),
    )
    .await?;
    if options.disable_triggers {
        exec(
            "SET LOCAL session_replication_role = replica".into(),
            "disabling triggers (needs a superuser)".into(),
        )
        .await?;
    }

    let mut plans = Vec::new();
    for (n, selected) in options.tables.iter().enumerate() {
        plans.push(prepare(options, connection, selected, n).await?);
    }
    let mut notes = Vec::new();
    if options.with_referencing {
        if options.conflict == Conflict::Replace {
            return Err(EngineError::ReferencingWithReplace);
        }
        referencing::add_referencing(options, connection, &mut plans, &mut notes).await?;
        for plan in &mut plans {
            plan.report.referencing = match &plan.reach {
                Reach::Selected => None,
                Reach::Cascade { via } => Some(Referencing {
                    via: via.clone(),
                    keys_set_back: false,
                }),
                Reach::Relink { via, .. } => Some(Referencing {
                    via: via.clone(),
                    keys_set_back: true,
                }),
            };
        }
    }
    // Parents first: their rows are inserted, and their restored rows select their referencing
    // tables' rows, before those of the tables referencing them.
    order_by_foreign_keys(connection, &mut plans).await?;

    let cpu = CpuPool::shared()?;
    let mut printed = key_lookup::Printed::new();
    for plan in &mut plans {
        let (mut by_range, mut by_filter) = (false, false);
        let conditions = plan
            .condition
            .as_deref()
            .and_then(key_lookup::KeyConditions::parse);
        let definitions: Vec<String> = plan
            .source
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
                plan.source.display_name()
            ),
        )
        .await?;
        if let Some(predicate) = predicate.filter(|_| plan.reach == Reach::Selected) {
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
        // Partitions whose bounds cannot hold a row matching `--where` are not read at all.
        // A referencing table's condition names its parents' rows, which do not exist yet.
        let prunable = plan
            .condition
            .as_deref()
            .filter(|_| plan.reach == Reach::Selected);
        let partitions = match (plan.source.partitioned, prunable) {
            (Some(root), Some(predicate)) => {
                prune::partitions_to_read(connection, &options.manifest, root, predicate).await?
            }
            _ => None,
        };
        plan.chunks = Vec::with_capacity(plan.source.parts.len());
        for part in &plan.source.parts {
            let wanted = partitions
                .as_ref()
                .is_none_or(|p| p.contains(&(part.schema.as_str(), part.name.as_str())));
            let choice = match (&conditions, wanted) {
                (_, false) => Vec::new(),
                (None, true) => (0..part.chunks.len()).collect(),
                (Some(conditions), true) => {
                    let wanted = key_lookup::literals_wanted(part, conditions);
                    key_lookup::print_literals(connection, wanted, &mut printed).await?;
                    let choice =
                        key_lookup::choose_chunks(&options.backup, part, conditions, &printed)
                            .await?;
                    by_range |= choice.by_range;
                    by_filter |= choice.by_filter;
                    choice.chunks
                }
            };
            plan.chunks.push(choice);
        }
        plan.report.pruned_by = match (by_range, by_filter) {
            (true, true) => Some("key ranges and filters"),
            (true, false) => Some("key ranges"),
            (false, true) => Some("key filters"),
            (false, false) => None,
        };
        plan.report.chunks_read = plan.chunks.iter().map(Vec::len).sum();
        plan.report.chunks_total = plan.source.parts.iter().map(|t| t.chunks.len()).sum();
        plan.report.partitions = partitions
            .as_ref()
            .map(|p| (p.len(), plan.source.parts.len()));
        for (part, chunks) in plan.source.parts.iter().zip(&plan.chunks) {
            if chunks.is_empty() {
                continue;
            }
            // A partition's columns may stand in another order than its parent's.
            let copy_sql = format!(
                "COPY {} ({}) FROM STDIN",
                plan.staging,
                part.columns
                    .iter()
                    .map(|c| quote::ident(&c.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            stage::load(connection, &options.backup, &cpu, part, chunks, &copy_sql).await?;
        }
        tracing::info!(
            table = %plan.source.display_name(),
            chunks_read = plan.report.chunks_read,
            chunks_total = plan.report.chunks_total,
            "backup rows staged"
        );
    }

    lock(connection, options, &plans).await?;

    for plan in &mut plans {
        let casts: Vec<String> = plan
            .columns
            .iter()
            .map(|c| {
                let (from, to) = (quote::ident(&c.backup), quote::ident(&c.target));
                match (c.from_type == c.to_type, from == to) {
                    (true, true) => from,
                    (true, false) => format!("{from} AS {to}"),
                    (false, _) => format!("{from}::{} AS {to}", c.to_type),
                }
            })
            .collect();
        let filter = plan
            .condition
            .as_deref()
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
                table: plan.source.display_name(),
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
            &options.backup.id,
            cpu.clone(),
            chunk_size,
        )
        .await?;
        *written_image = Some(image.location());
        for plan in &plans {
            // The sequences the restore may move, as they are now: the undo puts them back.
            let owned = owned_sequences(connection, plan).await?;
            image.add_sequences(sequence_values(connection, &owned).await?);
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
                        partitioned: plan.target_partitioned,
                        condition: saved,
                    },
                )
                .await?;
        }
        let location = image.finish().await?;
        for plan in &plans {
            let condition = undo_condition(
                connection,
                options.conflict,
                plan.condition.as_deref(),
                plan,
            )
            .await?;
            undo.push(undo_restore(&location, options, plan, condition));
        }
    }

    if options.conflict == Conflict::Replace {
        for plan in plans.iter_mut().rev() {
            delete_replaced(connection, predicate, plan).await?;
        }
    }
    for plan in &mut plans {
        match &plan.reach {
            Reach::Relink {
                columns, to_null, ..
            } => {
                let (columns, to_null) = (columns.clone(), *to_null);
                referencing::relink(connection, plan, &columns, to_null).await?;
            }
            _ => insert(connection, options.conflict, plan).await?,
        }
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
    let (re_added, not_re_added) = re_add_dependents(connection, &plans).await?;
    for plan in &mut plans {
        let recorded = options
            .manifest
            .before_image
            .as_ref()
            .map_or(&[][..], |b| b.sequences.as_slice());
        plan.report.sequences =
            advance_sequences(connection, plan, recorded, options.dry_run).await?;
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
        notes,
        re_added,
        not_re_added,
        elapsed: Duration::ZERO,
    })
}

/// Runs the statements of what dropping the re-created tables had dropped elsewhere (foreign
/// keys to them, views over them), each under a savepoint: one that fails (its other side is
/// gone too, a new object has its name) is rolled back alone and listed with the reason.
async fn re_add_dependents(
    connection: &Connection,
    plans: &[plan::Plan<'_>],
) -> Result<(Vec<String>, Vec<String>), EngineError> {
    let (mut added, mut failed_items, mut not_added) = (Vec::new(), Vec::new(), Vec::new());
    let mut seen = std::collections::BTreeSet::new();
    for item in plans.iter().flat_map(|p| &p.dependents) {
        if !seen.insert(item.id) || item.deps.iter().any(|d| failed_items.contains(d)) {
            continue;
        }
        let listed = !matches!(
            item.kind,
            pgark_archive::ObjectKind::Comment
                | pgark_archive::ObjectKind::Owner
                | pgark_archive::ObjectKind::Acl
                | pgark_archive::ObjectKind::MaterializedViewData
        );
        let added_again = session::under_savepoint(
            connection,
            "re-adding foreign keys and views",
            connection.client().batch_execute(&item.sql),
        )
        .await?;
        match added_again {
            Ok(()) => {
                if listed {
                    added.push(describe(item));
                }
            }
            Err(e) => {
                failed_items.push(item.id);
                not_added.push(format!(
                    "{}: {}",
                    describe(item),
                    pgark_pg::ServerMessage(&e)
                ));
            }
        }
    }
    Ok((added, not_added))
}

/// Counts per table for messages: `3 inserted, 1 updated, 0 skipped, 0 deleted`.
pub fn describe_counts(report: &TableReport) -> String {
    format!(
        "{} inserted, {} updated, {} skipped, {} deleted",
        report.inserted, report.updated, report.skipped, report.deleted
    )
}
