use std::sync::Arc;

use clap::Args;
use pgark_engine::restore::RestoreOptions;
use pgark_engine::verify::{restore_check, verify, verify_metadata, verify_stored};
use pgark_engine::{BackupRef, Cancel, EngineError, Progress, open_backup_head};
use pgark_pg::ConnConfig;

use super::args::parse_jobs;
use super::check::CheckFailed;
use super::output::{Output, bytes, thousands};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The backup: DEST/<id> or DEST/latest.
    backup: String,
    #[command(flatten)]
    store: super::store_args::StoreArgs,
    #[command(flatten)]
    keys: super::key_args::KeyArgs,
    /// For an encrypted backup: also open every chunk with the backup's key (from --identity or
    /// KMS) and check its rows, as for a clear backup. Without it (and without --identity) an
    /// encrypted backup's stored bytes are checked with no key.
    #[arg(long)]
    decrypt: bool,
    /// Also restore into this new database (it must not exist) and compare every table with what
    /// the dump recorded; the database is dropped afterwards unless --keep.
    #[arg(long)]
    restore_into: Option<String>,
    /// Keep the --restore-into database.
    #[arg(long, requires = "restore_into")]
    keep: bool,
    /// Drop a --restore-into database that an interrupted restore left incomplete.
    #[arg(long, requires = "restore_into")]
    force: bool,
    /// Check only the metadata: the manifest, catalog and chunk index (checksums, sizes, counts)
    /// and that every data object ends where its chunks do, from one listing; no chunk is read.
    /// Seconds for a backup of any size: a cheap nightly check beside a full verify weekly.
    #[arg(long, conflicts_with = "restore_into")]
    metadata_only: bool,
    /// Parallel chunk reads (and restore sessions).
    #[arg(short, long, default_value = "2", value_parser = parse_jobs)]
    jobs: usize,
}

pub async fn run(args: VerifyArgs, output: &Output, cancel: Cancel) -> anyhow::Result<()> {
    let target = args
        .restore_into
        .as_deref()
        .map(ConnConfig::parse)
        .transpose()?;
    // A manifest that fails its checks is damage found, not a failure to run.
    let damage_found = |e: EngineError| -> anyhow::Error {
        match e {
            EngineError::Archive(e) => CheckFailed(e.to_string()).into(),
            e => e.into(),
        }
    };
    let (mut backup, head) = open_backup_head(&args.backup, &args.store.options()?)
        .await
        .map_err(damage_found)?;
    let keyless = head.encryption.is_some()
        && !args.decrypt
        && !args.keys.has_identity()
        && !args.metadata_only
        && target.is_none();
    if keyless {
        return verify_without_key(&args, &backup, &head, output).await;
    }
    let manifest = backup
        .read_manifest(&args.keys.keyring()?)
        .await
        .map_err(damage_found)?;
    let progress = Arc::new(Progress::default());
    let line = output.progress("verifying", progress.clone());
    // Chunk lists are read one table at a time.
    let report = if args.metadata_only {
        verify_metadata(&backup, &manifest).await
    } else {
        verify(&backup, &manifest, args.jobs, progress).await
    }
    .map_err(damage_found)?;
    drop(line);

    let mut lines = Vec::new();
    let mut problems = report.problems.clone();
    for table in &report.tables {
        match table.problems.first() {
            None => lines.push(format!(
                "ok      {}: {} chunks, {} rows",
                table.table,
                table.chunks,
                thousands(table.rows)
            )),
            Some(_) => {
                lines.push(format!(
                    "DAMAGED {}: {}",
                    table.table,
                    table.problems.join("; ")
                ));
                problems.extend(table.problems.iter().cloned());
            }
        }
    }
    // A partitioned table holds no rows itself: it is listed with its partitions' rows.
    for parent in &manifest.partitioned {
        let leaves = manifest
            .leaf_partitions(&parent.schema, &parent.name)
            .unwrap_or_default();
        let names: Vec<String> = leaves
            .iter()
            .map(|&i| manifest.tables[i].display_name())
            .collect();
        let verdicts: Vec<_> = report
            .tables
            .iter()
            .filter(|t| names.contains(&t.table))
            .collect();
        let damaged = verdicts.iter().filter(|t| !t.problems.is_empty()).count();
        let rows: u64 = verdicts.iter().map(|t| t.rows).sum();
        let name = format!("{}.{} (partitioned)", parent.schema, parent.name);
        lines.push(if damaged == 0 {
            format!(
                "ok      {name}: {} partitions, {} rows",
                leaves.len(),
                thousands(rows)
            )
        } else {
            format!(
                "DAMAGED {name}: {damaged} of {} partitions damaged",
                leaves.len()
            )
        });
    }
    if let Some(lo) = &report.large_objects {
        match lo.problems.first() {
            None => lines.push(format!(
                "ok      large objects: {} chunks, {} objects, {}",
                lo.chunks,
                thousands(lo.objects),
                bytes(lo.content_bytes)
            )),
            Some(_) => {
                lines.push(format!("DAMAGED large objects: {}", lo.problems.join("; ")));
                problems.extend(lo.problems.iter().cloned());
            }
        }
    }
    if args.metadata_only {
        // No chunk was read: the tables' lines would only repeat the manifest.
        lines.clear();
    }
    for problem in &report.problems {
        lines.push(format!("DAMAGED {problem}"));
    }
    if !lines.is_empty() {
        output.summary(&lines.join("\n"));
    }
    if !problems.is_empty() {
        return Err(CheckFailed(format!(
            "backup {} is damaged: {} problem(s); the first: {}",
            backup.location(),
            problems.len(),
            problems[0]
        ))
        .into());
    }
    let chunks: usize = report.tables.iter().map(|t| t.chunks).sum::<usize>()
        + report.large_objects.as_ref().map_or(0, |lo| lo.chunks);
    let large_objects = report
        .large_objects
        .as_ref()
        .map(|lo| format!(", {} large objects", thousands(lo.objects)))
        .unwrap_or_default();
    output.summary(&if args.metadata_only {
        format!(
            "backup {}: metadata intact and every data object whole ({} tables, {chunks} \
             chunks, {} rows{large_objects} recorded; no chunk read)",
            backup.location(),
            report.tables.len(),
            thousands(manifest.total_rows())
        )
    } else {
        format!(
            "backup {} is intact: {} tables, {chunks} chunks, {} rows{large_objects} checked",
            backup.location(),
            report.tables.len(),
            thousands(manifest.total_rows())
        )
    });

    let Some(target) = target else { return Ok(()) };
    let manifest = Arc::new(manifest);
    let progress = Arc::new(Progress::default());
    let line = output.progress("test restore", progress.clone());
    let options = RestoreOptions {
        backup: backup.clone(),
        manifest: manifest.clone(),
        target,
        create: true,
        force: args.force,
        jobs: args.jobs,
        parts: Default::default(),
        policy: Default::default(),
        text_copy: false,
    };
    let check = restore_check(options, args.keep, progress, cancel).await?;
    drop(line);
    let mut mismatched: Vec<String> = check
        .tables
        .iter()
        .filter(|t| !t.problems.is_empty())
        .map(|t| format!("{}: {}", t.table, t.problems.join("; ")))
        .collect();
    if let Some(lo) = check
        .large_objects
        .as_ref()
        .filter(|lo| !lo.problems.is_empty())
    {
        mismatched.push(format!("large objects: {}", lo.problems.join("; ")));
    }
    if let Some(first) = mismatched.first() {
        return Err(CheckFailed(format!(
            "test restore of {} into {:?} differs from the backup in {} table(s) or large objects; the first: {first}",
            backup.location(),
            check.database,
            mismatched.len()
        ))
        .into());
    }
    let large_objects = check
        .large_objects
        .as_ref()
        .map(|lo| format!(" and {} large objects", thousands(lo.objects)))
        .unwrap_or_default();
    output.summary(&format!(
        "test restore into {:?}: {} tables{large_objects} match the backup (rows and content digests); restore took {:.1}s{}",
        check.database,
        check.tables.len(),
        check.restore_elapsed.as_secs_f64(),
        if args.keep { "" } else { "; test database dropped" }
    ));
    Ok(())
}

/// An encrypted backup checked with no key: every stored byte against its recorded checksum.
async fn verify_without_key(
    args: &VerifyArgs,
    backup: &BackupRef,
    head: &pgark_archive::ManifestHead,
    output: &Output,
) -> anyhow::Result<()> {
    let progress = Arc::new(Progress::default());
    let line = output.progress("verifying", progress.clone());
    let report = verify_stored(backup, head, args.jobs, progress)
        .await
        .map_err(|e| match e {
            EngineError::Archive(e) => CheckFailed(e.to_string()).into(),
            e => anyhow::Error::from(e),
        })?;
    drop(line);
    if let Some(first) = report.problems.first() {
        let lines: Vec<String> = report
            .problems
            .iter()
            .map(|p| format!("DAMAGED {p}"))
            .collect();
        output.summary(&lines.join("\n"));
        return Err(CheckFailed(format!(
            "backup {} is damaged: {} problem(s); the first: {first}",
            backup.location(),
            report.problems.len()
        ))
        .into());
    }
    output.summary(&format!(
        "backup {} (encrypted) is intact as stored: {} chunks and filters in {} objects, {} \
         checked against their SHA-256 without a key (--decrypt or --identity also checks \
         their contents)",
        backup.location(),
        thousands(report.pieces),
        report.objects,
        bytes(report.stored_bytes)
    ));
    Ok(())
}
