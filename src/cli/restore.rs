use std::sync::Arc;

use clap::Args;
use pgark_engine::restore::{RestoreOptions, restore};
use pgark_engine::{Cancel, Progress, open_backup};
use pgark_pg::ConnConfig;

use super::args::parse_jobs;
use super::output::{Output, bytes, rate, thousands};

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
}

pub async fn run(args: RestoreArgs, output: &Output, cancel: Cancel) -> anyhow::Result<()> {
    let target = ConnConfig::parse(&args.target)?;
    let (backup, manifest) = open_backup(&args.backup).await?;
    let options = RestoreOptions {
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
