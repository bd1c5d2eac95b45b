use clap::{Args, ValueEnum};
use pgark_engine::cat::{CatFormat, KeyFilter, cat, find_table};
use pgark_engine::{EngineError, open_backup_with};

use super::output::Output;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// As `COPY ... TO STDOUT (FORMAT csv)` prints it.
    Csv,
    /// PostgreSQL COPY text, as stored.
    Copy,
    /// One JSON object per row; numbers, booleans and json typed, NULL as null.
    Jsonl,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    /// The backup: DEST/<id> or DEST/latest.
    backup: String,
    #[command(flatten)]
    store: super::store_args::StoreArgs,
    #[command(flatten)]
    keys: super::key_args::KeyArgs,
    /// The table: schema.name, or name when unambiguous (SQL quoting: "Odd Schema"."Table").
    table: String,
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    format: Format,
    /// Only rows whose integer key matches, e.g. "id BETWEEN 1000 AND 2000"; only the chunks that
    /// can hold them are read.
    #[arg(long)]
    where_key: Option<String>,
}

pub async fn run(args: CatArgs, _output: &Output) -> anyhow::Result<()> {
    let filter = args
        .where_key
        .as_deref()
        .map(KeyFilter::parse)
        .transpose()?;
    let (backup, mut manifest) =
        open_backup_with(&args.backup, &args.store.options()?, &args.keys.keyring()?).await?;
    // Only the table's own chunk lists are read.
    let parts = find_table(&manifest, &args.table)?.part_indexes(&manifest);
    backup.load_chunks(&mut manifest, Some(&parts)).await?;
    let table = find_table(&manifest, &args.table)?;
    let format = match args.format {
        Format::Csv => CatFormat::Csv,
        Format::Copy => CatFormat::Copy,
        Format::Jsonl => CatFormat::Jsonl,
    };
    let mut stdout = tokio::io::stdout();
    match cat(&backup, &table, format, filter.as_ref(), &mut stdout).await {
        Ok(summary) => {
            tracing::info!(
                table = %table.display_name(),
                rows = summary.rows,
                chunks_read = summary.chunks_read,
                chunks_total = summary.chunks_total,
                "table written"
            );
            Ok(())
        }
        // A reader that stops early (`| head`) is not an error.
        Err(EngineError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e.into()),
    }
}
