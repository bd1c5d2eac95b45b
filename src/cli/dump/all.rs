//! `pgark dump --all`: every database of a server, one backup each, and the globals.

use futures::StreamExt;
use pgark_engine::Cancel;
use pgark_engine::dump::DumpContents;
use pgark_engine::instance::{
    DATABASES_FOLDER, GLOBALS_FOLDER, GLOBALS_LABEL, database_folder, databases, record_databases,
};

use super::{DumpArgs, dump_and_report, run_metrics, run_report, write_metrics};
use crate::cli::output::Output;

pub(super) async fn run(args: &DumpArgs, output: &Output, cancel: Cancel) -> anyhow::Result<()> {
    let server = args.conn.config(&args.source)?;
    let names = databases(&server, &args.database, &args.exclude_database).await?;
    let root = args.dest.trim_end_matches('/');
    // Recorded first: a database whose dump fails (or never ends) still counts as one whose
    // backups `ls --check-max-age` expects.
    let store = pgark_storage::open_location_with(root, true, &args.store.options()?)?;
    record_databases(store.as_ref(), &names).await?;
    // (label, source, destination, contents): every database, then the globals.
    let mut runs: Vec<(String, pgark_pg::ConnConfig, String, DumpContents)> = names
        .iter()
        .map(|name| {
            (
                name.clone(),
                server.with_dbname(name),
                format!("{root}/{DATABASES_FOLDER}/{}", database_folder(name)),
                DumpContents::Database,
            )
        })
        .collect();
    runs.push((
        GLOBALS_LABEL.to_owned(),
        server.clone(),
        format!("{root}/{GLOBALS_FOLDER}"),
        DumpContents::Globals {
            password_hashes: args.include_password_hashes,
        },
    ));
    let outcomes: Vec<_> = futures::stream::iter(runs)
        .map(|(label, source, dest, contents)| {
            let cancel = cancel.clone();
            async move {
                let started = std::time::Instant::now();
                let result = dump_and_report(args, source, &dest, contents, output, cancel).await;
                (label, result, started.elapsed())
            }
        })
        .buffered(args.parallel_databases)
        .collect()
        .await;

    let reports = outcomes
        .iter()
        .map(|(label, result, elapsed)| run_report(label, result, *elapsed).document());
    futures::future::join_all(reports.map(|document| async move {
        args.notify.send(&document).await;
    }))
    .await;
    let metrics: Vec<_> = outcomes
        .iter()
        .map(|(label, result, elapsed)| run_metrics(label, result, *elapsed))
        .collect();
    let failed: Vec<&str> = outcomes
        .iter()
        .filter_map(|(label, result, _)| {
            let e = result.as_ref().err()?;
            tracing::error!("backing up {label} failed: {e:#}");
            Some(label.as_str())
        })
        .collect();
    write_metrics(args, &metrics, failed.is_empty())?;
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} backups failed ({}); the others completed (see the messages above)",
            failed.len(),
            outcomes.len(),
            failed.join(", ")
        );
    }
    output.summary(&format!(
        "{} databases and the globals backed up under {root}",
        names.len()
    ));
    Ok(())
}
