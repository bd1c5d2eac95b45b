use std::time::Duration;

use clap::Args;
use pgark_archive::Timestamp;
use pgark_engine::inventory::list_backups;
use pgark_engine::prune::{
    CalendarRules, DEFAULT_INCOMPLETE_GRACE, RetentionPolicy, before_images_to_delete, execute,
    keep_locked, plan,
};

use super::args::{parse_duration, parse_time_zone, parse_timestamp};
use super::output::{Output, bytes, describe_lock};

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Where the backups are: a directory (or s3://bucket/prefix).
    dest: String,
    #[command(flatten)]
    store: super::store_args::StoreArgs,
    /// Keep complete backups younger than this many days.
    #[arg(long)]
    keep_days: Option<u64>,
    /// Always keep the newest this many complete backups (the newest one is always kept).
    #[arg(long)]
    keep_last: Option<usize>,
    /// Keep the newest backup of each of the last N days that have one.
    #[arg(long, value_name = "N")]
    keep_daily: Option<usize>,
    /// Keep the newest backup of each of the last N ISO weeks (Monday to Sunday) that have one.
    #[arg(long, value_name = "N")]
    keep_weekly: Option<usize>,
    /// Keep the newest backup of each of the last N months that have one.
    #[arg(long, value_name = "N")]
    keep_monthly: Option<usize>,
    /// Keep the newest backup of each of the last N years that have one.
    #[arg(long, value_name = "N")]
    keep_yearly: Option<usize>,
    /// The time zone whose calendar the --keep-daily/weekly/monthly/yearly periods follow: an
    /// IANA name such as Europe/Berlin.
    #[arg(long, value_name = "ZONE", default_value = "UTC", value_parser = parse_time_zone)]
    tz: jiff::tz::TimeZone,
    /// Delete incomplete backups older than this (default 24h; a younger one may be a running dump).
    #[arg(long, value_parser = parse_duration)]
    incomplete_grace: Option<Duration>,
    /// Show what would be deleted, delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Decide as if it were this time (RFC 3339, UTC): for testing retention.
    #[arg(long, hide = true, value_parser = parse_timestamp)]
    now: Option<Timestamp>,
}

pub async fn run(args: PruneArgs, output: &Output) -> anyhow::Result<()> {
    let calendar = CalendarRules {
        daily: args.keep_daily,
        weekly: args.keep_weekly,
        monthly: args.keep_monthly,
        yearly: args.keep_yearly,
    };
    if args.keep_days.is_none() && args.keep_last.is_none() && calendar == CalendarRules::default()
    {
        anyhow::bail!(
            "prune needs a retention policy: give --keep-days N, --keep-last K and/or \
             --keep-daily/--keep-weekly/--keep-monthly/--keep-yearly N"
        );
    }
    let store = super::open_dest(&args.dest, &args.store)?;
    let layout = pgark_engine::instance::layout(store.as_ref()).await?;
    if !layout.is_instance() {
        return prune_one(&args, store, calendar, output).await;
    }
    // A whole instance's destination: the policy applies to each database's backups and to the
    // globals', separately.
    for (label, location) in layout.destinations(&args.dest) {
        output.summary(&format!("{label}:"));
        match super::open_instance_part(&location, &args.store)? {
            Some(part) => prune_one(&args, part, calendar, output).await?,
            None => output.summary(&format!("no backups under {location}")),
        }
    }
    Ok(())
}

/// Prunes the backups of one destination.
async fn prune_one(
    args: &PruneArgs,
    store: std::sync::Arc<dyn pgark_storage::ObjectStore>,
    calendar: CalendarRules,
    output: &Output,
) -> anyhow::Result<()> {
    let policy = RetentionPolicy {
        keep_days: args.keep_days,
        keep_last: args.keep_last,
        calendar,
        time_zone: args.tz.clone(),
        incomplete_grace: args.incomplete_grace.unwrap_or(DEFAULT_INCOMPLETE_GRACE),
    };
    let backups = list_backups(store.as_ref()).await?;
    let now = args.now.unwrap_or_else(Timestamp::now);
    let mut decisions = plan(&backups, &policy, now);
    keep_locked(store.as_ref(), &mut decisions, now).await?;
    let verb = if args.dry_run {
        "would delete"
    } else {
        "delete"
    };
    let mut lines: Vec<String> = decisions
        .iter()
        .map(|d| match &d.retained {
            Some(lock) => format!(
                "{:<12} {}  {}  ({}; {})",
                "retained",
                d.id,
                bytes(d.stored_bytes),
                d.reason,
                describe_lock(lock)
            ),
            None => format!(
                "{:<12} {}  {}  ({})",
                if d.delete { verb } else { "keep" },
                d.id,
                bytes(d.stored_bytes),
                d.reason
            ),
        })
        .collect();
    let before_images = before_images_to_delete(store.as_ref(), &decisions).await?;
    for image in &before_images {
        lines.push(format!(
            "{:<12} {}  {}  (before-image of {}, deleted with it)",
            verb,
            image.path,
            bytes(image.stored_bytes),
            image.of_backup.as_deref().unwrap_or("?")
        ));
    }
    if !args.dry_run {
        execute(store.as_ref(), &decisions, &before_images).await?;
    }
    let deleted: Vec<_> = decisions.iter().filter(|d| d.delete).collect();
    lines.push(format!(
        "{} {} backup(s), {} of {}; kept {}",
        if args.dry_run {
            "would delete"
        } else {
            "deleted"
        },
        deleted.len(),
        bytes(deleted.iter().map(|d| d.stored_bytes).sum()),
        store.location(),
        decisions.len() - deleted.len()
    ));
    let retained = decisions.iter().filter(|d| d.retained.is_some()).count();
    if retained > 0 {
        lines.push(format!(
            "retained {retained} backup(s) that the policy deletes but an object lock still holds"
        ));
    }
    output.summary(&lines.join("\n"));
    Ok(())
}
