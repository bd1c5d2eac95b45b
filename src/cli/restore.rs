use std::sync::Arc;

use clap::Args;
use pgark_engine::restore::{RestoreOptions, RestoreParts, restore};
use pgark_engine::{Cancel, Progress, open_backup_with};

use super::args::parse_jobs;
use super::conn_args::ConnArgs;
use super::output::{Output, bytes, rate, thousands};
use super::store_args::StoreArgs;

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup: DEST/<id>, or DEST/latest for the newest complete one.
    backup: String,
    /// Target database: a libpq connection string or URL. Must be empty, unless --create.
    #[arg(long)]
    target: String,
    /// Create the target database (it must not exist); it is dropped again if the restore fails.
    #[arg(long)]
    create: bool,
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
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    store: StoreArgs,
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
        }
    }
}

pub async fn run(args: RestoreArgs, output: &Output, cancel: Cancel) -> anyhow::Result<()> {
    let target = args.conn.config(&args.target)?;
    let (backup, manifest) = open_backup_with(&args.backup, &args.store.options()?).await?;
    let options = RestoreOptions {
        parts: args.parts(),
        backup,
        manifest: Arc::new(manifest),
        target,
        create: args.create,
        jobs: args.jobs,
    };
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
    Ok(())
}
