use clap::Args;
use pgark_archive::{Timestamp, layout};
use pgark_engine::copy::copy_backup;
use pgark_engine::inventory::{BackupState, list_backups};
use pgark_engine::{BackupRef, Progress, open_backup_head};

use super::args::parse_duration;
use super::output::{Output, bytes};
use super::store_args::{LockArgs, StoreArgs};

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The backup to copy (SRC/<id>, SRC/latest), or SRC itself with --since.
    source: String,
    /// Where the copy goes: a directory or s3://bucket/prefix; it is DEST/<id>, the same id.
    dest: String,
    /// With SRC: copy every complete backup under it started at or after this time (RFC 3339,
    /// UTC, e.g. 2026-12-01T00:00:00Z) or within this long before now (e.g. 7d).
    #[arg(long, value_name = "TIME|DURATION")]
    since: Option<String>,
    /// SSE, storage class, part size and the other S3 settings apply to the destination's
    /// writes (and the endpoint to both sides).
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    lock: LockArgs,
}

pub async fn run(args: CopyArgs, output: &Output) -> anyhow::Result<()> {
    let lock = args.lock.lock(std::time::SystemTime::now());
    if lock.is_some() && !args.dest.starts_with("s3://") {
        anyhow::bail!(
            "--object-lock and --legal-hold need an S3 destination (s3://bucket/prefix): a \
             directory cannot protect its files from deletion"
        );
    }
    let last = args
        .source
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    let one_backup = last == "latest" || layout::is_backup_id(last);
    let backups = match (&args.since, one_backup) {
        (None, true) => {
            let (backup, _) = open_backup_head(&args.source, &args.store.options()?).await?;
            vec![backup]
        }
        (Some(_), true) => {
            anyhow::bail!("--since goes with a folder of backups, not with one backup")
        }
        (None, false) => anyhow::bail!(
            "{} is a folder of backups: name one backup (SRC/<id> or SRC/latest), or copy every \
             backup since a time with --since",
            args.source
        ),
        (Some(since), false) => {
            let since = parse_since(since)?;
            let store = super::open_dest(&args.source, &args.store)?;
            list_backups(store.as_ref())
                .await?
                .into_iter()
                .filter(|b| b.state == BackupState::Complete && b.started_at >= since)
                .map(|b| BackupRef::new(store.clone(), b.id))
                .collect()
        }
    };
    let dest =
        pgark_storage::open_location_with(&args.dest, true, &args.store.options_locking(lock)?)?;
    let progress = Progress::default();
    let mut lines = Vec::new();
    for backup in &backups {
        let report = copy_backup(backup, dest.as_ref(), &progress).await?;
        lines.push(if report.already_complete {
            format!(
                "{}: already complete at {}",
                report.backup_id,
                dest.location()
            )
        } else {
            format!(
                "copied {} to {}: {} objects sent ({}), {} already there",
                report.backup_id,
                dest.location(),
                report.objects_sent,
                bytes(report.bytes_sent),
                report.objects_present
            )
        });
    }
    if backups.is_empty() {
        lines.push(format!("no complete backup under {} to copy", args.source));
    }
    output.summary(&lines.join("\n"));
    Ok(())
}

/// `--since`: a time, or a duration back from now.
fn parse_since(input: &str) -> anyhow::Result<Timestamp> {
    if let Ok(at) = Timestamp::parse_rfc3339(input.trim()) {
        return Ok(at);
    }
    let back = parse_duration(input).map_err(|_| {
        anyhow::anyhow!(
            "--since {input:?} is neither a time (2026-12-01T00:00:00Z) nor a duration (7d)"
        )
    })?;
    let now = Timestamp::now();
    Ok(Timestamp::from_unix(
        now.unix() - i64::try_from(back.as_secs()).unwrap_or(i64::MAX),
    ))
}
