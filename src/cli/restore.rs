use std::sync::Arc;

use clap::Args;
use pgark_engine::restore::{PreflightPolicy, RestoreOptions, RestoreParts, check, restore};
use pgark_engine::surgical::{
    BeforeImageDest, ColumnFate, Conflict, SelectedTable, SurgicalOptions, TableSelection,
    UndoRestore, describe_counts, restore_rows, target_has_objects,
};
use pgark_engine::{Cancel, Progress, open_backup_with};
use pgark_storage::open_location_with;

use super::args::{parse_duration, parse_jobs};
use super::conn_args::ConnArgs;
use super::output::{Output, bytes, rate, thousands};
use super::store_args::StoreArgs;

/// Options that make a restore surgical; they need --table or --schema and exclude the
/// whole-database options.
const WHOLE_DATABASE: [&str; 4] = ["create", "schema_only", "data_only", "section"];

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("selection").multiple(true).args(["table", "schema"])))]
pub struct RestoreArgs {
    /// The backup: DEST/<id>, or DEST/latest for the newest complete one.
    backup: String,
    /// Target database: a libpq connection string or URL. Must be empty, unless --create.
    #[arg(long)]
    target: String,
    /// Create the target database (it must not exist). It is built under a temporary name and
    /// renamed last, so an interrupted restore never leaves a database under this name.
    #[arg(long)]
    create: bool,
    /// Go on although the target carries the mark of an interrupted restore: with --create a
    /// marked database of that name is dropped; otherwise what a restore of the same backup
    /// created there is removed first.
    #[arg(long)]
    force: bool,
    /// Parallel sessions loading tables and building indexes.
    #[arg(short, long, default_value = "2", value_parser = parse_jobs)]
    jobs: usize,
    /// Restore only the schema (pre-data and post-data sections), no rows.
    #[arg(long, conflicts_with_all = ["data_only", "section"])]
    schema_only: bool,
    /// Restore only the rows (data section) into existing, empty tables.
    #[arg(long, conflicts_with = "section")]
    data_only: bool,
    /// Restore only the named sections; repeatable.
    #[arg(long, value_enum)]
    section: Vec<SectionArg>,
    /// Do not set owners: the restoring role owns everything it creates.
    #[arg(long)]
    no_owner: bool,
    /// Do not restore privileges (GRANT/REVOKE, default privileges).
    #[arg(long)]
    no_acl: bool,
    /// Create the roles the target lacks (no passwords), instead of stopping.
    #[arg(long)]
    create_roles: bool,
    /// Check, without changing the target, what this restore would leave out and what would
    /// stop it (missing roles and extensions, objects only a superuser creates, owners the role
    /// may not set), then exit: non-zero if it would fail.
    #[arg(long, conflicts_with_all = ["force"])]
    check: bool,
    /// Fail on objects only a superuser can create (event triggers, C functions, ...), instead
    /// of leaving them out with a warning when the restoring role is no superuser.
    #[arg(long)]
    strict: bool,
    /// Send rows as COPY text, never in binary COPY: for a slow network link, where binary
    /// COPY's larger numerics may cost more than the server saves by not parsing text.
    #[arg(long)]
    text_copy: bool,
    /// Where the restoring role may not give an object to its recorded owner, leave it owning
    /// the object (with a warning) instead of refusing the restore.
    #[arg(long, conflicts_with = "no_owner")]
    skip_unsettable_owners: bool,
    /// Restore only matching tables: name or schema.name, * and ? as wildcards; repeatable.
    #[arg(long, value_name = "PATTERN")]
    table: Vec<String>,
    /// Restore only the tables in matching schemas; repeatable.
    #[arg(long, value_name = "PATTERN")]
    schema: Vec<String>,
    /// Leave out matching tables; repeatable.
    #[arg(long, value_name = "PATTERN")]
    exclude_table: Vec<String>,
    /// Restore only the backup's rows for which this SQL condition holds (run as-is by the
    /// target server, with the restoring role's rights).
    #[arg(long = "where", value_name = "SQL", requires = "selection", conflicts_with_all = WHOLE_DATABASE)]
    where_: Option<String>,
    /// What a restored row meeting an existing one does: fail (error), keep the existing row
    /// (skip), update it by primary key (upsert), or delete the rows matching --where first
    /// (replace).
    #[arg(long, value_enum, requires = "selection", conflicts_with_all = WHOLE_DATABASE)]
    conflict: Option<ConflictArg>,
    /// Restore into a table of this name in schema NAME (created from the backup's definition if
    /// missing), beside the live one.
    #[arg(long, value_name = "NAME", requires = "selection", conflicts_with_all = WHOLE_DATABASE)]
    into_schema: Option<String>,
    /// Restore the one selected table into a table of this name (created if missing).
    #[arg(long, value_name = "NAME", requires = "selection", conflicts_with_all = WHOLE_DATABASE)]
    into_table: Option<String>,
    /// Give up if the tables cannot be locked in time (surgical restore; default 10s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "selection", conflicts_with_all = WHOLE_DATABASE)]
    lock_timeout: Option<std::time::Duration>,
    /// Do not fire triggers (nor foreign-key checks) while writing rows; needs a superuser.
    #[arg(long, requires = "selection", conflicts_with_all = WHOLE_DATABASE)]
    disable_triggers: bool,
    /// Run everything in the transaction, print the report, then roll back (surgical
    /// restore); of a globals backup, print the statements it would run.
    #[arg(long, conflicts_with_all = WHOLE_DATABASE)]
    dry_run: bool,
    /// Restore the columns both sides have; a target-only column gets its default.
    #[arg(long, requires = "selection", conflicts_with_all = WHOLE_DATABASE)]
    ignore_missing_columns: bool,
    /// A column renamed in the target since the backup: the backup's column OLD is written into
    /// the target's column NEW (repeatable; names as the catalog spells them).
    #[arg(long, value_name = "OLD=NEW", value_parser = parse_column_map, requires = "selection", conflicts_with_all = WHOLE_DATABASE)]
    column_map: Vec<(String, String)>,
    /// Also put back what deleting the selected rows did through foreign keys, transitively:
    /// rows ON DELETE CASCADE removed are inserted again, keys ON DELETE SET NULL / SET DEFAULT
    /// cleared are set back (not with --conflict replace).
    #[arg(long, requires = "selection", conflicts_with_all = WHOLE_DATABASE)]
    with_referencing: bool,
    /// Where to save the rows upsert or replace overwrite (default: before-images/ beside the
    /// backup).
    #[arg(long, value_name = "DEST", requires = "selection", conflicts_with_all = WHOLE_DATABASE)]
    before_image: Option<String>,
    #[command(flatten)]
    notify: super::notify::NotifyArgs,
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    keys: super::key_args::KeyArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ConflictArg {
    Error,
    Skip,
    Upsert,
    Replace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SectionArg {
    PreData,
    Data,
    PostData,
}

impl RestoreArgs {
    fn parts(&self) -> RestoreParts {
        let (pre_data, data, post_data) = if self.schema_only {
            (true, false, true)
        } else if self.data_only {
            (false, true, false)
        } else if self.section.is_empty() {
            (true, true, true)
        } else {
            (
                self.section.contains(&SectionArg::PreData),
                self.section.contains(&SectionArg::Data),
                self.section.contains(&SectionArg::PostData),
            )
        };
        RestoreParts {
            pre_data,
            data,
            post_data,
            no_owner: self.no_owner,
            no_acl: self.no_acl,
            create_roles: self.create_roles,
            ..RestoreParts::default()
        }
    }

    fn policy(&self) -> PreflightPolicy {
        PreflightPolicy {
            strict: self.strict,
            skip_unsettable_owners: self.skip_unsettable_owners,
        }
    }
}

impl RestoreArgs {
    /// Whether any option that only a surgical restore has was given.
    fn surgical_options(&self) -> bool {
        self.where_.is_some()
            || self.conflict.is_some()
            || self.into_schema.is_some()
            || self.into_table.is_some()
            || self.lock_timeout.is_some()
            || self.disable_triggers
            || self.dry_run
            || self.ignore_missing_columns
            || !self.column_map.is_empty()
            || self.with_referencing
            || self.before_image.is_some()
    }
}

pub async fn run(args: RestoreArgs, output: &Output, cancel: Cancel) -> anyhow::Result<()> {
    let notify = args.notify.clone();
    let started = std::time::Instant::now();
    let mut report = super::notify::RunReport {
        command: "restore",
        database: args
            .conn
            .config(&args.target)
            .map(|c| c.dbname().to_owned())
            .unwrap_or_default(),
        location: Some(args.backup.clone()),
        ..Default::default()
    };
    let result = restore_command(args, output, cancel).await;
    report.duration = started.elapsed();
    match &result {
        Ok(Some(summary)) => {
            report.raw_bytes = Some(summary.raw_bytes);
            report.tables = Some(summary.tables as u64);
            report.rows = Some(summary.rows);
        }
        Ok(None) => {}
        Err(e) => report.error = Some(super::output::render_error(e)),
    }
    notify.send(&report.document()).await;
    result.map(|_| ())
}

/// Runs the restore the arguments ask for; a whole restore's summary for the webhooks.
async fn restore_command(
    args: RestoreArgs,
    output: &Output,
    cancel: Cancel,
) -> anyhow::Result<Option<pgark_engine::restore::RestoreSummary>> {
    let target = args.conn.config(&args.target)?;
    let store_options = args.store.options()?;
    let (backup, manifest) =
        open_backup_with(&args.backup, &store_options, &args.keys.keyring()?).await?;
    if let Some(globals) = &manifest.globals {
        return run_globals(&args, output, &target, globals)
            .await
            .map(|()| None);
    }
    let selection = TableSelection::parse(&args.table, &args.schema, &args.exclude_table)?;
    if args.dry_run && args.table.is_empty() && args.schema.is_empty() {
        anyhow::bail!(
            "--dry-run previews a surgical restore (with --table or --schema) or a globals \
             backup's statements; a whole restore is previewed with --check"
        );
    }
    let mut manifest = manifest;
    if selection.is_active() {
        // Into a database where the selected tables exist (or with a surgical option) rows go in
        // through one transaction; otherwise the selection is a whole-database restore's subset.
        let selected = selection.select_tables(&manifest)?;
        let names_tables = !(args.table.is_empty() && args.schema.is_empty());
        let whole_database = args.schema_only || args.data_only || !args.section.is_empty();
        let surgical = names_tables
            && !whole_database
            && (args.surgical_options() || (!args.create && target_has_objects(&target).await?));
        if surgical {
            // The selected tables' chunk lists, or every table's when referencing rows (in
            // tables found later) come back too.
            let parts: Vec<usize> = selected.iter().flat_map(|t| t.parts.clone()).collect();
            let wanted = (!args.with_referencing).then_some(parts.as_slice());
            backup.load_chunks(&mut manifest, wanted).await?;
            return run_surgical(args, output, cancel, target, backup, manifest, selected)
                .await
                .map(|()| None);
        }
        manifest = selection.apply(&manifest)?;
        // The selection's chunk lists, one ranged read each; a whole restore reads the index
        // once and decodes a table's list while the table loads.
        let every: Vec<usize> = (0..manifest.tables.len()).collect();
        backup.load_chunks(&mut manifest, Some(&every)).await?;
    }
    let options = RestoreOptions {
        parts: args.parts(),
        policy: args.policy(),
        backup,
        manifest: Arc::new(manifest),
        target,
        create: args.create,
        force: args.force,
        jobs: args.jobs,
        text_copy: args.text_copy,
    };
    if args.check {
        return report_check(&options, output).await.map(|()| None);
    }
    let progress = Arc::new(Progress::default());
    let line = output.progress("restoring", progress.clone());
    let summary = restore(options, progress, cancel).await?;
    drop(line);
    output.summary(&format!(
        "restored {} tables, {} rows ({}) into {:?} in {:.1}s ({}/s)",
        summary.tables,
        thousands(summary.rows),
        bytes(summary.raw_bytes),
        summary.database,
        summary.elapsed.as_secs_f64(),
        bytes(rate(summary.raw_bytes, summary.elapsed)),
    ));
    Ok(Some(summary))
}

/// Restores a globals backup (`dump --all`'s roles, memberships and tablespaces) into the
/// server of `target`, or prints its statements (`--dry-run`).
async fn run_globals(
    args: &RestoreArgs,
    output: &Output,
    target: &pgark_pg::ConnConfig,
    globals: &pgark_archive::GlobalsEntry,
) -> anyhow::Result<()> {
    let selective =
        !(args.table.is_empty() && args.schema.is_empty() && args.exclude_table.is_empty());
    if selective
        || args.create
        || args.schema_only
        || args.data_only
        || !args.section.is_empty()
        || args.check
    {
        anyhow::bail!(
            "{} is a globals backup (roles, memberships, tablespaces): it is restored whole \
             into a server, with --target and optionally --dry-run or --strict; restore the \
             databases from their own backups (DEST/db/<database>/latest)",
            args.backup
        );
    }
    let report = pgark_engine::globals::apply(target, globals, args.strict, args.dry_run).await?;
    if args.dry_run {
        for statement in &report.statements {
            output.summary(&format!("{statement};"));
        }
        output.summary(&format!(
            "dry run: {} statements as role {}, nothing was changed",
            report.statements.len(),
            report.role
        ));
        return Ok(());
    }
    output.summary(&format!(
        "restored {} roles, {} memberships and {} tablespaces as role {}: {} statements, {} left \
         out (see the warnings)",
        globals.roles.len(),
        globals.memberships.len(),
        globals.tablespaces.len(),
        report.role,
        report.statements.len() - report.refused.len(),
        report.refused.len()
    ));
    Ok(())
}

/// `restore --check`: what the restore would leave out, and whether it would go ahead.
async fn report_check(options: &RestoreOptions, output: &Output) -> anyhow::Result<()> {
    let found = check(options).await?;
    let kind = if found.superuser {
        "a superuser"
    } else {
        "not a superuser"
    };
    output.summary(&format!("restoring as role {} ({kind})", found.role));
    for extension in &found.installed_extensions {
        output.summary(&format!(
            "extension {extension} is installed in the target already: kept as it is"
        ));
    }
    for warning in &found.warnings {
        output.summary(&format!("warning: {warning}"));
    }
    if let Some(refusal) = found.refusal() {
        return Err(refusal.into());
    }
    output.summary(&format!(
        "check passed: nothing stops this restore into {:?} (nothing was changed)",
        options.target.dbname()
    ));
    Ok(())
}

async fn run_surgical(
    args: RestoreArgs,
    output: &Output,
    cancel: Cancel,
    target: pgark_pg::ConnConfig,
    backup: pgark_engine::BackupRef,
    manifest: pgark_archive::Manifest,
    tables: Vec<SelectedTable>,
) -> anyhow::Result<()> {
    let before_image = match &args.before_image {
        Some(location) => Some(BeforeImageDest {
            store: open_location_with(location, true, &args.store.options()?)?,
            prefix: String::new(),
        }),
        None => None,
    };
    for (old, _) in &args.column_map {
        let has = |t: &SelectedTable| {
            t.parts
                .iter()
                .any(|&i| manifest.tables[i].columns.iter().any(|c| &c.name == old))
        };
        if !tables.iter().any(has) {
            anyhow::bail!(
                "--column-map {old}=...: no selected table of the backup has a column {old:?}; \
                 name the backup's column first, as `pgark show` lists it"
            );
        }
    }
    let options = SurgicalOptions {
        backup,
        manifest: Arc::new(manifest),
        target,
        tables,
        predicate: args.where_.clone(),
        conflict: match args.conflict {
            None | Some(ConflictArg::Error) => Conflict::Error,
            Some(ConflictArg::Skip) => Conflict::Skip,
            Some(ConflictArg::Upsert) => Conflict::Upsert,
            Some(ConflictArg::Replace) => Conflict::Replace,
        },
        into_schema: args.into_schema.clone(),
        into_table: args.into_table.clone(),
        lock_timeout: args
            .lock_timeout
            .unwrap_or(std::time::Duration::from_secs(10)),
        disable_triggers: args.disable_triggers,
        dry_run: args.dry_run,
        ignore_missing_columns: args.ignore_missing_columns,
        column_map: args.column_map.clone(),
        with_referencing: args.with_referencing,
        before_image,
        kms: args.keys.kms(),
    };
    let database = options.target.dbname().to_owned();
    let report = restore_rows(options, cancel).await?;
    for table in &report.tables {
        let created = if table.created { " (created)" } else { "" };
        let partitions = table
            .partitions
            .map(|(read, total)| format!(" (partitions read {read} of {total})"))
            .unwrap_or_default();
        let pruned = table
            .pruned_by
            .map(|by| format!(" (pruned by {by})"))
            .unwrap_or_default();
        output.summary(&format!(
            "{}{created}: {} backup rows selected, {}; chunks read {} of {}{pruned}{partitions}",
            table.table,
            thousands(table.rows),
            describe_counts(table),
            table.chunks_read,
            table.chunks_total,
        ));
        for fate in &table.columns {
            output.summary(&match fate {
                ColumnFate::Mapped {
                    from,
                    to,
                    from_type,
                    to_type,
                } if from == to => format!("  column {from}: cast from {from_type} to {to_type}"),
                ColumnFate::Mapped {
                    from,
                    to,
                    from_type,
                    to_type,
                } if from_type == to_type => format!("  column {from}: written into column {to}"),
                ColumnFate::Mapped {
                    from,
                    to,
                    from_type,
                    to_type,
                } => format!(
                    "  column {from}: written into column {to}, cast from {from_type} to {to_type}"
                ),
                ColumnFate::Defaulted { column } => {
                    format!("  column {column}: not in the backup, restored rows get its default")
                }
                ColumnFate::Dropped { column } => {
                    format!("  column {column}: not in the target, left out")
                }
            });
        }
        if let Some(referencing) = &table.referencing {
            let what = if referencing.keys_set_back {
                "keys ON DELETE cleared, set back in the rows updated"
            } else {
                "rows ON DELETE removed, inserted again"
            };
            output.summary(&format!("  referencing restored rows: {what}"));
            for via in &referencing.via {
                output.summary(&format!("    through {via}"));
            }
        }
        for (sequence, value) in &table.sequences {
            let verb = if report.dry_run {
                "would be moved"
            } else {
                "moved"
            };
            output.summary(&format!("  sequence {sequence} {verb} to {value}"));
        }
    }
    for note in &report.notes {
        output.summary(&format!("not followed: {note}"));
    }
    for item in &report.re_added {
        output.summary(&format!("re-added {item}, dropped with the table"));
    }
    for item in &report.not_re_added {
        output.summary(&format!("not re-added: {item}"));
    }
    if let Some(location) = &report.before_image {
        output.summary(&format!(
            "before-image saved to {location}; to undo this restore run:"
        ));
        for undo in &report.undo {
            output.summary(&format!("  {}", undo_command(undo)));
        }
    }
    if report.dry_run {
        output.summary(&format!(
            "dry run: rolled back, nothing in {database:?} was changed ({:.1}s)",
            report.elapsed.as_secs_f64()
        ));
    } else {
        output.summary(&format!(
            "committed into {database:?} in {:.1}s",
            report.elapsed.as_secs_f64()
        ));
    }
    Ok(())
}

/// `OLD=NEW` of `--column-map`.
fn parse_column_map(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((old, new)) if !old.is_empty() && !new.is_empty() && !new.contains('=') => {
            Ok((old.to_owned(), new.to_owned()))
        }
        _ => Err(format!(
            "{text:?} is not OLD=NEW: the backup's column name, '=', the target's column name"
        )),
    }
}

/// The command that undoes one table of a surgical restore.
fn undo_command(undo: &UndoRestore) -> String {
    let mut words = vec![
        "pgark".to_owned(),
        "restore".to_owned(),
        shell_quote(&undo.before_image),
        "--target".to_owned(),
        shell_quote(&undo.target),
        "--table".to_owned(),
        shell_quote(&undo.table),
        "--conflict".to_owned(),
        "replace".to_owned(),
    ];
    if let Some(condition) = &undo.condition {
        words.push("--where".to_owned());
        words.push(shell_quote(condition));
    }
    if undo.disable_triggers {
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
