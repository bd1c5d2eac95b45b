use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use pgark_engine::dump::{DEFAULT_CHUNK_SIZE, DEFAULT_COMPRESS_LEVEL, DumpOptions, dump};
use pgark_engine::{Cancel, Progress};
use pgark_pg::ConnConfig;

use super::args::{parse_duration, parse_jobs, parse_size};
use super::output::{Output, bytes, rate, thousands};

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Source database: a libpq connection string or URL (PG* variables fill in what it leaves out).
    source: String,
    /// Where to create the backup: a directory (created if missing). The backup is DEST/<id>.
    dest: String,
    /// Parallel sessions reading tables.
    #[arg(short, long, default_value = "2", value_parser = parse_jobs)]
    jobs: usize,
    /// Uncompressed size at which a chunk is cut (at the next row boundary).
    #[arg(long, default_value_t = DEFAULT_CHUNK_SIZE, value_parser = parse_size)]
    chunk_size: u64,
    /// zstd level, 1 (fastest) to 19 (smallest).
    #[arg(long, default_value_t = DEFAULT_COMPRESS_LEVEL, value_parser = clap::value_parser!(i32).range(1..=19))]
    compress_level: i32,
    /// Give up if a table's ACCESS SHARE lock is not granted in this time (e.g. 30s); waits forever by default.
    #[arg(long, value_parser = parse_duration)]
    lock_wait_timeout: Option<Duration>,
}

pub async fn run(args: DumpArgs, output: &Output, cancel: Cancel) -> anyhow::Result<()> {
    if args.chunk_size < 64 << 10 || args.chunk_size > 1 << 30 {
        anyhow::bail!(
            "--chunk-size {} is out of range: use between 64KiB and 1GiB",
            bytes(args.chunk_size)
        );
    }
    let source = ConnConfig::parse(&args.source)?;
    let dest = pgark_storage::open_location(&args.dest, true)
        .with_context(|| "cannot use the backup destination".to_owned())?;
    let options = DumpOptions {
        source,
        dest,
        jobs: args.jobs,
        chunk_size: args.chunk_size,
        compress_level: args.compress_level,
        lock_wait_timeout: args.lock_wait_timeout,
    };
    let progress = Arc::new(Progress::default());
    let line = output.progress("dumping", progress.clone());
    let summary = dump(options, progress, cancel).await?;
    drop(line);
    output.summary(&format!(
        "backup {} complete: {} tables, {} rows, {} → {} stored in {:.1}s ({}/s)",
        summary.location,
        summary.tables,
        thousands(summary.rows),
        bytes(summary.raw_bytes),
        bytes(summary.stored_bytes),
        summary.elapsed.as_secs_f64(),
        bytes(rate(summary.raw_bytes, summary.elapsed)),
    ));
    Ok(())
}
