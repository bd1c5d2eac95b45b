//! Surgical restore: put back one table, or some rows of it, into a live database, in one
//! transaction that either puts back every row or changes nothing. `run` calls the phases in
//! order, each in its file; the statements they send are built in `pgark_pg::rows`.
//!
//! ```text
//! begin            BEGIN; SET LOCAL lock_timeout (and session_replication_role)
//! plan.rs          find (or re-create) each target table and match its columns; add the tables
//!                  referencing restored rows; parents first
//! stage.rs         CREATE TEMP TABLE staging (the backup's columns and types); COPY the chunks
//!                  (and partitions) that can hold matching rows
//! write.rs lock    LOCK the target tables IN SHARE ROW EXCLUSIVE MODE (readers go on)
//! (triggers)       without session_replication_role: ALTER TABLE ... DISABLE TRIGGER
//! convert.rs       CREATE TEMP TABLE rows AS SELECT columns cast to the target's types
//!                  FROM staging WHERE (condition)
//! before_image.rs  save the rows upsert/replace overwrite or delete, and the sequences
//! write.rs         DELETE (replace); INSERT ... ON CONFLICT ...; re-created tables' indexes and
//!                  what dropping them took; move owned sequences past the restored keys
//!                  (ALTER TABLE ... ENABLE TRIGGER); COMMIT (ROLLBACK for a dry run)
//! ```
//!
//! Columns are matched by name. A column present on one side only, or a type that does not cast,
//! is an error before anything is written. `--where` is SQL run as-is by the target server with
//! the restoring role's rights, as a condition on the staging table (and, for `replace`, on the
//! target table); it is sent as a single statement, so it cannot smuggle in another one.

mod before_image;
mod convert;
mod plan;
mod prune;
mod referencing;
pub mod select;
mod sequences;
mod stage;
mod undo;
mod write;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pgark_archive::Manifest;
use pgark_pg::{ConnConfig, Connection, rows};

pub use before_image::{BeforeImageDest, DEFAULT_FOLDER};
pub use select::{SelectedTable, TablePattern, TableSelection};

use crate::cpu::CpuPool;
use crate::{BackupRef, Cancel, EngineError, session};
use plan::{order_by_foreign_keys, prepare};
use referencing::Reach;
pub use undo::UndoRestore;

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
    /// How to reach KMS for a before-image of a backup encrypted to KMS keys.
    pub kms: pgark_keys::KmsAccess,
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
    Ok(!pgark_pg::user_objects(connection.client(), 1, &[])
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

/// The restore's phases, in one transaction on `connection` (see the module's outline).
async fn run(
    options: &SurgicalOptions,
    connection: &Connection,
    dest: &BeforeImageDest,
    written_image: &mut Option<String>,
) -> Result<SurgicalReport, EngineError> {
    let replica_role = begin(options, connection).await?;
    let (mut plans, mut notes) = plan_tables(options, connection).await?;
    let cpu = CpuPool::shared()?;
    stage::stage_rows(options, connection, &cpu, &mut plans).await?;
    write::lock(connection, options, &plans).await?;
    let switched_off = if options.disable_triggers && !replica_role {
        disable_user_triggers(connection, &plans, &mut notes).await?
    } else {
        Vec::new()
    };
    convert::convert_rows(options, connection, &mut plans).await?;
    let undo =
        if matches!(options.conflict, Conflict::Upsert | Conflict::Replace) && !options.dry_run {
            before_image::save(options, connection, dest, &cpu, &plans, written_image).await?
        } else {
            Vec::new()
        };
    let (re_added, not_re_added) = write::write_rows(options, connection, &mut plans).await?;
    for trigger in &switched_off {
        let sql = format!(
            "ALTER TABLE {} ENABLE TRIGGER {}",
            trigger.table,
            pgark_pg::quote::ident(&trigger.name)
        );
        session::execute(connection, &sql, || {
            format!(
                "switching trigger {} of {} back on",
                trigger.name, trigger.table
            )
        })
        .await?;
    }
    let (finish, context) = if options.dry_run {
        ("ROLLBACK", "ending the dry run")
    } else {
        ("COMMIT", "committing the restore")
    };
    session::execute(connection, finish, || context.into()).await?;
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

/// Starts the transaction, bounds its lock waits and, when asked, turns triggers off in it with
/// `session_replication_role`; `false` when that was asked for and the role may not set it
/// (see [`disable_user_triggers`]).
async fn begin(options: &SurgicalOptions, connection: &Connection) -> Result<bool, EngineError> {
    session::execute(connection, "BEGIN", || {
        "starting the restore transaction".into()
    })
    .await?;
    session::execute(
        connection,
        &rows::set_local_lock_timeout(options.lock_timeout),
        || "setting the lock timeout".into(),
    )
    .await?;
    if options.disable_triggers {
        return session::try_replica_role(connection, true).await;
    }
    Ok(true)
}

/// `--disable-triggers` for a role that may not set `session_replication_role` (as on most
/// managed services): the enabled user triggers of the target tables (and their partitions)
/// are disabled by name with `ALTER TABLE`, inside the restore's transaction, and switched back
/// on before it commits, so no other session ever sees them off. Foreign keys stay checked.
/// The role must own the tables; `ALTER TABLE` locks them against readers until the commit,
/// which `notes` says. Returns the triggers to switch back on.
async fn disable_user_triggers(
    connection: &Connection,
    plans: &[plan::Plan<'_>],
    notes: &mut Vec<String>,
) -> Result<Vec<pgark_pg::UserTrigger>, EngineError> {
    let tables: Vec<String> = plans.iter().map(plan::Plan::qualified).collect();
    let guards = pgark_pg::write_guards(connection.client(), &tables).await?;
    let mut not_owned: Vec<&str> = guards
        .triggers
        .iter()
        .filter(|t| !t.owned)
        .map(|t| t.table.as_str())
        .collect();
    not_owned.dedup();
    if !not_owned.is_empty() {
        return Err(EngineError::TriggersNotDisableable {
            role: session::current_role(connection).await?,
            tables: not_owned.join(", "),
        });
    }
    for trigger in &guards.triggers {
        let sql = format!(
            "ALTER TABLE {} DISABLE TRIGGER {}",
            trigger.table,
            pgark_pg::quote::ident(&trigger.name)
        );
        session::execute(connection, &sql, || {
            format!("disabling trigger {} of {}", trigger.name, trigger.table)
        })
        .await?;
    }
    if !guards.triggers.is_empty() {
        let mut tables: Vec<&str> = guards.triggers.iter().map(|t| t.table.as_str()).collect();
        tables.dedup();
        notes.push(format!(
            "triggers were switched off with ALTER TABLE (the role may not set \
             session_replication_role): foreign keys were checked, and readers of {} waited for \
             the commit",
            tables.join(", ")
        ));
    }
    Ok(guards.triggers)
}

/// A plan for each selected table and, with referencing rows, each table referencing them,
/// parents first: their rows are inserted, and their restored rows select their referencing
/// tables' rows, before those of the tables referencing them.
async fn plan_tables<'m>(
    options: &'m SurgicalOptions,
    connection: &Connection,
) -> Result<(Vec<plan::Plan<'m>>, Vec<String>), EngineError> {
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
    order_by_foreign_keys(connection, &mut plans).await?;
    Ok((plans, notes))
}

/// Counts per table for messages: `3 inserted, 1 updated, 0 skipped, 0 deleted`.
pub fn describe_counts(report: &TableReport) -> String {
    format!(
        "{} inserted, {} updated, {} skipped, {} deleted",
        report.inserted, report.updated, report.skipped, report.deleted
    )
}
