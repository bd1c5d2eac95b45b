use clap::Args;
use pgark_archive::Timestamp;
use pgark_engine::open_backup_with;

use super::output::{Output, bytes, describe_lock_record, thousands};

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The backup: DEST/<id> or DEST/latest.
    backup: String,
    #[command(flatten)]
    store: super::store_args::StoreArgs,
    #[command(flatten)]
    keys: super::key_args::KeyArgs,
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: ShowArgs, output: &Output) -> anyhow::Result<()> {
    let (backup, manifest) =
        open_backup_with(&args.backup, &args.store.options()?, &args.keys.keyring()?).await?;
    let duration = match (
        Timestamp::parse_rfc3339(&manifest.started_at),
        Timestamp::parse_rfc3339(&manifest.finished_at),
    ) {
        (Ok(start), Ok(end)) => Some(end.unix() - start.unix()),
        _ => None,
    };
    if args.json {
        let tables: Vec<serde_json::Value> = manifest
            .tables
            .iter()
            .map(|t| {
                serde_json::json!({
                    "schema": t.schema, "name": t.name, "rows": t.row_count,
                    "raw_bytes": t.raw_bytes, "stored_bytes": t.stored_bytes,
                    "chunks": t.chunk_count(), "key_column": t.key_column,
                })
            })
            .collect();
        let value = serde_json::json!({
            "location": backup.location(),
            "id": manifest.backup_id,
            "state": "complete",
            "database": manifest.source.database,
            "server_version": manifest.source.server_version,
            "server_version_num": manifest.source.server_version_num,
            "encoding": manifest.source.encoding,
            "snapshot_id": manifest.source.snapshot_id,
            "snapshot_time": manifest.source.snapshot_time,
            "started_at": manifest.started_at,
            "finished_at": manifest.finished_at,
            "duration_seconds": duration,
            "pgark_version": manifest.pgark_version,
            "format_version": manifest.format_version,
            "schema_items": manifest.schema.len(),
            "rows": manifest.total_rows(),
            "raw_bytes": manifest.raw_bytes(),
            "stored_bytes": manifest.stored_bytes(),
            "tables": tables,
            "large_objects": manifest.large_objects.as_ref().map(|lo| serde_json::json!({
                "count": lo.count, "content_bytes": lo.content_bytes,
                "raw_bytes": lo.raw_bytes, "stored_bytes": lo.stored_bytes,
                "chunks": lo.chunks.len(),
            })),
            "warnings": manifest.warnings,
            "encryption": manifest.encryption.as_ref().map(|e| serde_json::json!({
                "cipher": e.cipher, "recipients": e.recipients, "key_check": e.key_check,
            })),
            "object_lock": manifest.settings.object_lock,
        });
        output.summary(&serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let mut text = format!(
        "backup      {}\nstate       complete\ndatabase    {} (encoding {})\nserver      PostgreSQL {}\n\
         snapshot    {} at {}\nstarted     {}\nfinished    {}{}\npgark       {} (format {})\n\
         contents    {} tables, {} rows, {} raw, {} stored, {} schema items\n\n",
        backup.location(),
        manifest.source.database,
        manifest.source.encoding,
        manifest.source.server_version,
        manifest.source.snapshot_id,
        manifest.source.snapshot_time,
        manifest.started_at,
        manifest.finished_at,
        duration.map(|d| format!(" ({d}s)")).unwrap_or_default(),
        manifest.pgark_version,
        manifest.format_version,
        manifest.tables.len(),
        thousands(manifest.total_rows()),
        bytes(manifest.raw_bytes()),
        bytes(manifest.stored_bytes()),
        manifest.schema.len(),
    );
    if let Some(encryption) = &manifest.encryption {
        text.push_str(&format!(
            "encryption  {} (key {}), for {}\n\n",
            encryption.cipher,
            encryption.key_check,
            encryption.recipients.join(", ")
        ));
    }
    if let Some(lock) = &manifest.settings.object_lock {
        text.push_str(&format!("retention   {}\n\n", describe_lock_record(lock)));
    }
    // What the dump completed despite (dependency loops broken at a guess): before the tables,
    // where whoever is about to restore reads it.
    for warning in &manifest.warnings {
        text.push_str(&format!("warning     {warning}\n"));
    }
    if !manifest.warnings.is_empty() {
        text.push('\n');
    }
    let name_width = manifest
        .tables
        .iter()
        .map(|t| t.display_name().chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    text.push_str(&format!(
        "{:<name_width$}  {:>14}  {:>10}  {:>10}  {:>6}\n",
        "TABLE", "ROWS", "RAW", "STORED", "CHUNKS"
    ));
    for t in &manifest.tables {
        text.push_str(&format!(
            "{:<name_width$}  {:>14}  {:>10}  {:>10}  {:>6}\n",
            t.display_name(),
            thousands(t.row_count),
            bytes(t.raw_bytes),
            bytes(t.stored_bytes),
            t.chunk_count()
        ));
    }
    if let Some(lo) = &manifest.large_objects {
        text.push_str(&format!(
            "\nlarge objects  {} objects, {} of contents, {} stored, {} chunks\n",
            thousands(lo.count),
            bytes(lo.content_bytes),
            bytes(lo.stored_bytes),
            lo.chunks.len()
        ));
    }
    output.summary(text.trim_end());
    Ok(())
}
