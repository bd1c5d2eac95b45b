use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use std::path::PathBuf;

use pgark_archive::Timestamp;
use pgark_engine::dump::{
    DEFAULT_CHUNK_SIZE, DEFAULT_COMPRESS_LEVEL, DumpContents, DumpOptions, DumpSummary,
    SplitMethod, dump, size_change_ratio,
};
use pgark_engine::metrics::{
    DumpMetrics, SIZE_ANOMALY_FACTOR, is_size_anomaly, previous_success, write_atomically,
};
use pgark_engine::{Cancel, Progress};
use pgark_pg::ConnConfig;

mod all;

use super::args::{parse_duration, parse_jobs, parse_size, parse_timestamp};
use super::conn_args::ConnArgs;
use super::output::{Output, bytes, rate, thousands};
use super::store_args::{LockArgs, StoreArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Split {
    Auto,
    Blocks,
    Keys,
    Off,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Source database: a libpq connection string or URL (PG* variables fill in what it leaves
    /// out). With --all, any database of the server, to connect to first.
    source: String,
    /// Where to create the backup: a directory (created if missing) or s3://bucket/prefix. The
    /// backup is DEST/<id>; with --all, DEST/db/<database>/<id> and DEST/globals/<id>.
    dest: String,
    /// Back up every database of the server (those that accept connections, not templates),
    /// each into DEST/db/<database>, and the roles, memberships and tablespaces into
    /// DEST/globals. A database that fails fails the run; the others still complete.
    #[arg(long)]
    all: bool,
    /// With --all: only the databases matching this pattern (* and ? as wildcards); repeatable.
    #[arg(long, value_name = "PATTERN", requires = "all")]
    database: Vec<String>,
    /// With --all: leave out the databases matching this pattern; repeatable.
    #[arg(long, value_name = "PATTERN", requires = "all")]
    exclude_database: Vec<String>,
    /// With --all: how many databases are dumped at once (each with --jobs sessions).
    #[arg(long, value_name = "N", default_value = "1", value_parser = parse_jobs)]
    parallel_databases: usize,
    /// With --all: record the roles' password hashes too. Only a superuser may read them
    /// (managed services expose them to nobody); the backup then holds secrets, so encrypt it.
    #[arg(long, requires = "all")]
    include_password_hashes: bool,
    /// Parallel sessions reading tables.
    #[arg(short, long, default_value = "2", value_parser = parse_jobs)]
    jobs: usize,
    /// Uncompressed size at which a chunk is cut (at the next row boundary).
    #[arg(long, default_value_t = DEFAULT_CHUNK_SIZE, value_parser = parse_size)]
    chunk_size: u64,
    /// zstd level, 1 (fastest) to 19 (smallest).
    #[arg(long, default_value_t = DEFAULT_COMPRESS_LEVEL, value_parser = clap::value_parser!(i32).range(1..=19))]
    compress_level: i32,
    /// How tables larger than 8 chunks are split so that every session can read them:
    /// auto (blocks on PostgreSQL 14+, else integer key ranges), blocks, keys, or off.
    #[arg(long, value_enum, default_value_t = Split::Auto)]
    split: Split,
    /// Encrypt the backup (client-side, AES-256-GCM under a fresh data key) for this recipient:
    /// an age public key (age1...), kms:KEY (a KMS key id, ARN or alias), or a file listing
    /// them one per line. Repeatable; any one recipient's key opens the backup. PGARK_ENCRYPT_TO
    /// takes a comma-separated list.
    #[arg(
        long,
        value_name = "RECIPIENT",
        env = "PGARK_ENCRYPT_TO",
        value_delimiter = ','
    )]
    encrypt_to: Vec<String>,
    #[command(flatten)]
    kms: super::key_args::KmsArgs,
    /// Do not store key membership filters beside chunks whose primary key values are not
    /// clustered (they let a lookup by a random uuid or a composite key skip chunks; about 1.2
    /// bytes per row).
    #[arg(long)]
    no_key_filters: bool,
    /// Give up if a table's ACCESS SHARE lock is not granted in this time (a migration holding
    /// an exclusive lock); 0 waits forever.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    lock_wait_timeout: Duration,
    /// Write Prometheus metrics (outcome, times, sizes, rows) to this file, atomically, on success
    /// and on failure — for node_exporter's textfile collector.
    #[arg(long)]
    metrics_file: Option<PathBuf>,
    /// Record this start time (RFC 3339, UTC) instead of the clock's: for building backups of
    /// chosen dates when testing retention.
    #[arg(long, hide = true, value_parser = parse_timestamp)]
    now: Option<Timestamp>,
    #[command(flatten)]
    notify: super::notify::NotifyArgs,
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    lock: LockArgs,
}

pub async fn run(args: DumpArgs, output: &Output, cancel: Cancel) -> anyhow::Result<()> {
    if args.chunk_size < 64 << 10 || args.chunk_size > 1 << 30 {
        anyhow::bail!(
            "--chunk-size {} is out of range: use between 64KiB and 1GiB",
            bytes(args.chunk_size)
        );
    }
    if args.parallel_databases != 1 && !args.all {
        anyhow::bail!("--parallel-databases needs --all: it is how many databases run at once");
    }
    if args.all {
        return all::run(&args, output, cancel).await;
    }
    let source = args.conn.config(&args.source)?;
    let database = source.dbname().to_owned();
    let started = std::time::Instant::now();
    let result = dump_and_report(
        &args,
        source,
        &args.dest,
        DumpContents::Database,
        output,
        cancel,
    )
    .await;
    let metrics = run_metrics(&database, &result, started.elapsed());
    let report = run_report(&database, &result, started.elapsed());
    args.notify.send(&report.document()).await;
    write_metrics(&args, &[metrics], result.is_ok())?;
    result.map(|_| ())
}

/// What the webhooks are told of one dump.
fn run_report(
    database: &str,
    result: &anyhow::Result<(DumpSummary, Option<f64>)>,
    elapsed: Duration,
) -> super::notify::RunReport {
    let mut report = super::notify::RunReport {
        command: "dump",
        database: database.to_owned(),
        duration: elapsed,
        ..Default::default()
    };
    match result {
        Ok((summary, _)) => {
            report.backup_id = Some(summary.backup_id.clone());
            report.location = Some(summary.location.clone());
            report.duration = summary.elapsed;
            report.raw_bytes = Some(summary.raw_bytes);
            report.stored_bytes = Some(summary.stored_bytes);
            report.tables = Some(summary.tables as u64);
            report.rows = Some(summary.rows);
        }
        Err(e) => report.error = Some(super::output::render_error(e)),
    }
    report
}

/// What one dump reports to the metrics file, `database` naming it when it failed.
fn run_metrics(
    database: &str,
    result: &anyhow::Result<(DumpSummary, Option<f64>)>,
    elapsed: Duration,
) -> DumpMetrics {
    match result {
        Ok((summary, ratio)) => DumpMetrics {
            database: database.to_owned(),
            success: true,
            finished_at: Timestamp::now(),
            duration: summary.elapsed,
            raw_bytes: summary.raw_bytes,
            stored_bytes: summary.stored_bytes,
            rows: summary.rows,
            tables: summary.tables as u64,
            retries: summary.retries,
            size_change_ratio: *ratio,
        },
        Err(_) => DumpMetrics {
            database: database.to_owned(),
            success: false,
            finished_at: Timestamp::now(),
            duration: elapsed,
            raw_bytes: 0,
            stored_bytes: 0,
            rows: 0,
            tables: 0,
            retries: 0,
            size_change_ratio: None,
        },
    }
}

/// Writes the metrics file (if asked for) with one series per run. When the runs succeeded,
/// failing to write it fails the command; otherwise the dump's own failure matters more.
fn write_metrics(args: &DumpArgs, runs: &[DumpMetrics], succeeded: bool) -> anyhow::Result<()> {
    let Some(path) = &args.metrics_file else {
        return Ok(());
    };
    let text = pgark_engine::metrics::render_runs(runs, |db| {
        previous_success(path, args.all.then_some(db))
    });
    if let Err(e) = write_atomically(path, &text) {
        tracing::error!("could not write the metrics file {}: {e}", path.display());
        if succeeded {
            anyhow::bail!("could not write the metrics file {}: {e}", path.display());
        }
    }
    Ok(())
}

/// Dumps `source` (its database, or the instance's globals) into a new backup under `dest`
/// and prints the summary line.
async fn dump_and_report(
    args: &DumpArgs,
    source: ConnConfig,
    dest: &str,
    contents: DumpContents,
    output: &Output,
    cancel: Cancel,
) -> anyhow::Result<(DumpSummary, Option<f64>)> {
    let mut recipients = Vec::new();
    for spec in &args.encrypt_to {
        recipients.extend(pgark_engine::recipients_from(spec)?);
    }
    let encryption = (!recipients.is_empty()).then(|| pgark_engine::dump::Encryption {
        recipients,
        kms: args.kms.access(),
    });
    let lock = args.lock.lock(std::time::SystemTime::now());
    if lock.is_some() && !dest.starts_with("s3://") {
        anyhow::bail!(
            "--object-lock and --legal-hold need an S3 destination (s3://bucket/prefix): a \
             directory cannot protect its files from deletion"
        );
    }
    let dest = pgark_storage::open_location_with(dest, true, &args.store.options_locking(lock)?)
        .with_context(|| "cannot use the backup destination".to_owned())?;
    let options = DumpOptions {
        source,
        dest,
        jobs: args.jobs,
        chunk_size: args.chunk_size,
        compress_level: args.compress_level,
        lock_wait_timeout: Some(args.lock_wait_timeout).filter(|t| !t.is_zero()),
        key_filters: !args.no_key_filters,
        split: match args.split {
            Split::Auto => SplitMethod::Auto,
            Split::Blocks => SplitMethod::Blocks,
            Split::Keys => SplitMethod::Keys,
            Split::Off => SplitMethod::Off,
        },
        encryption,
        started_at: args.now,
        contents,
    };
    let progress = Arc::new(Progress::default());
    let line = output.progress("dumping", progress.clone());
    let summary = dump(options.clone(), progress, cancel).await?;
    drop(line);
    // A backup suddenly much smaller (or larger) than the previous one is worth a look.
    let ratio = match size_change_ratio(options.dest.as_ref(), &summary).await {
        Ok(ratio) => ratio,
        Err(e) => {
            tracing::warn!("could not compare the backup's size with the previous one: {e}");
            None
        }
    };
    if let Some(ratio) = ratio.filter(|r| is_size_anomaly(*r)) {
        tracing::warn!(
            ratio = format!("{ratio:.2}"),
            "backup size changed by more than a factor of {SIZE_ANOMALY_FACTOR} since the previous backup: check that the source is what you expect"
        );
    }
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
    Ok((summary, ratio))
}
