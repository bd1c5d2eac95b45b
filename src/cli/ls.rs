use std::time::Duration;

use clap::Args;
use pgark_archive::Timestamp;
use pgark_engine::inventory::{BackupListing, BackupState, list_backups, list_before_images};

use super::args::parse_duration;
use super::check::CheckFailed;
use super::output::{Output, age, bytes, describe_lock_record, thousands};

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Where the backups are: a directory (or s3://bucket/prefix).
    dest: String,
    #[command(flatten)]
    store: super::store_args::StoreArgs,
    /// One JSON array instead of a table.
    #[arg(long)]
    json: bool,
    /// Exit with code 3 and one line if the newest complete backup is older than this (e.g. 25h).
    #[arg(long, value_parser = parse_duration)]
    check_max_age: Option<Duration>,
    /// List the surgical restores' before-images kept under DEST/before-images, each with the
    /// backup it goes with (prune deletes them with it).
    #[arg(long, conflicts_with = "check_max_age")]
    before_images: bool,
}

pub async fn run(args: LsArgs, output: &Output) -> anyhow::Result<()> {
    let store = super::open_dest(&args.dest, &args.store)?;
    if args.before_images {
        let images = list_before_images(store.as_ref()).await?;
        if args.json {
            let items: Vec<serde_json::Value> = images
                .iter()
                .map(|i| {
                    serde_json::json!({
                        "path": i.path,
                        "of_backup": i.of_backup,
                        "stored_bytes": i.stored_bytes,
                    })
                })
                .collect();
            output.summary(&serde_json::to_string_pretty(&items)?);
        } else {
            let mut lines = vec![format!(
                "{:<36} {:<20} {:>10}",
                "BEFORE-IMAGE", "OF BACKUP", "STORED"
            )];
            for i in &images {
                lines.push(format!(
                    "{:<36} {:<20} {:>10}",
                    i.path,
                    i.of_backup.as_deref().unwrap_or("-"),
                    bytes(i.stored_bytes)
                ));
            }
            output.summary(&lines.join("\n"));
        }
        return Ok(());
    }
    let now = Timestamp::now();
    let layout = pgark_engine::instance::layout(store.as_ref()).await?;
    if !layout.is_instance() {
        let backups = list_backups(store.as_ref()).await?;
        if args.json {
            let items: Vec<serde_json::Value> =
                backups.iter().map(|b| listing_json(b, now)).collect();
            output.summary(&serde_json::to_string_pretty(&items)?);
        } else {
            output.summary(&table(&backups, now));
        }
        if let Some(max_age) = args.check_max_age
            && let Some(message) = stale(&backups, &store.location(), max_age, now)
        {
            return Err(CheckFailed(message).into());
        }
        return Ok(());
    }
    // A whole instance's destination (`dump --all`): each database's backups and the globals'.
    let mut sections = Vec::new();
    let mut json = Vec::new();
    let mut problems = Vec::new();
    for (label, location) in layout.destinations(&args.dest) {
        let (backups, location) = match super::open_instance_part(&location, &args.store)? {
            Some(part) => (list_backups(part.as_ref()).await?, part.location()),
            None => (Vec::new(), location),
        };
        if args.json {
            json.push(serde_json::json!({
                "database": label,
                "location": location,
                "backups": backups.iter().map(|b| listing_json(b, now)).collect::<Vec<_>>(),
            }));
        } else {
            sections.push(format!("{label} ({location}):\n{}", table(&backups, now)));
        }
        if let Some(max_age) = args.check_max_age
            && let Some(message) = stale(&backups, &location, max_age, now)
        {
            problems.push(message);
        }
    }
    if args.json {
        output.summary(&serde_json::to_string_pretty(&json)?);
    } else {
        output.summary(&sections.join("\n\n"));
    }
    if !problems.is_empty() {
        return Err(CheckFailed(problems.join("; ")).into());
    }
    Ok(())
}

/// Why the backups under `location` fail `--check-max-age`, if they do: none is complete, or
/// the newest complete one is older than `max_age`.
fn stale(
    backups: &[BackupListing],
    location: &str,
    max_age: Duration,
    now: Timestamp,
) -> Option<String> {
    let newest = backups
        .iter()
        .rev()
        .find(|b| b.state == BackupState::Complete);
    match newest {
        None => Some(format!("no complete backup under {location}")),
        Some(b) if age_of(b, now) > max_age => Some(format!(
            "the newest complete backup under {location} ({}) is {} old, older than the allowed {}",
            b.id,
            age(age_of(b, now)),
            age(max_age)
        )),
        Some(_) => None,
    }
}

/// Age from the start of the dump (the backup's id), which is when its snapshot was taken.
fn age_of(backup: &BackupListing, now: Timestamp) -> Duration {
    Duration::from_secs(u64::try_from(now.unix() - backup.started_at.unix()).unwrap_or(0))
}

fn table(backups: &[BackupListing], now: Timestamp) -> String {
    let mut rows = vec![
        [
            "ID", "STARTED", "AGE", "DATABASE", "SERVER", "STORED", "RAW", "TABLES", "ROWS",
            "STATE",
        ]
        .map(String::from),
    ];
    for b in backups {
        let dash = || "-".to_owned();
        rows.push([
            b.id.clone(),
            b.started_at.rfc3339(),
            age(age_of(b, now)),
            if b.is_encrypted() {
                "(encrypted)".to_owned()
            } else {
                b.database.clone().unwrap_or_else(dash)
            },
            b.server_version
                .as_deref()
                .and_then(|v| v.split_whitespace().next())
                .map_or_else(dash, str::to_owned),
            bytes(b.stored_bytes),
            b.raw_bytes.map_or_else(dash, bytes),
            b.tables.map_or_else(dash, |t| t.to_string()),
            b.rows.map_or_else(dash, thousands),
            match &b.object_lock {
                Some(lock) => format!("{} ({})", b.state.label(), describe_lock_record(lock)),
                None => b.state.label().to_owned(),
            },
        ]);
    }
    if backups.is_empty() {
        return "no backups".to_owned();
    }
    let widths: Vec<usize> = (0..10)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            r.iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn listing_json(b: &BackupListing, now: Timestamp) -> serde_json::Value {
    serde_json::json!({
        "id": b.id,
        "state": b.state.label(),
        "damage": match &b.state { BackupState::Damaged(reason) => Some(reason.as_str()), _ => None },
        "started_at": b.started_at.rfc3339(),
        "finished_at": b.finished_at.map(|t| t.rfc3339()),
        "age_seconds": age_of(b, now).as_secs(),
        "database": b.database.as_ref().filter(|_| !b.is_encrypted()),
        "encrypted": b.is_encrypted(),
        "recipients": b.recipients,
        "object_lock": b.object_lock,
        "server_version": b.server_version,
        "stored_bytes": b.stored_bytes,
        "raw_bytes": b.raw_bytes,
        "tables": b.tables,
        "rows": b.rows,
    })
}
