//! The end of a dump: the tables' entries assembled from the pieces written, and the new
//! backup's size compared with the previous one's.

use pgark_archive::{ContentDigest, TableEntry};
use pgark_pg::TableData;
use pgark_storage::ObjectStore;
use tracing::info;

use super::{DumpSummary, TableKeys};
use crate::EngineError;

/// Every table's entry: its pieces' chunks in order, their totals and combined digest.
pub(super) fn table_entries(
    tables: &[TableData],
    keys: &TableKeys,
    done: Vec<(usize, u32, crate::writer::WrittenObject)>,
) -> Vec<TableEntry> {
    let mut entries: Vec<TableEntry> = tables
        .iter()
        .enumerate()
        .map(|(index, table)| TableEntry {
            id: table_id(index),
            schema: table.schema.clone(),
            name: table.name.clone(),
            item: table.item,
            columns: table.columns.clone(),
            row_count: 0,
            raw_bytes: 0,
            stored_bytes: 0,
            content_digest: String::new(),
            key_column: keys
                .integer
                .get(&table.oid)
                .filter(|key| table.columns.iter().any(|c| &c.name == *key))
                .cloned(),
            lookup_key: keys
                .lookup
                .get(&table.oid)
                .filter(|key| key.fields(&table.columns).is_some())
                .cloned(),
            row_filter: table.row_filter.clone(),
            chunk_index: None,
            chunks: Vec::new(),
        })
        .collect();
    let mut digests = vec![ContentDigest::default(); entries.len()];
    for (index, _, data) in done {
        digests[index] = digests[index].combine(data.content_digest);
        entries[index].chunks.extend(data.chunks);
    }
    for (entry, digest) in entries.iter_mut().zip(digests) {
        entry.row_count = entry.chunks.iter().map(|c| c.rows).sum();
        entry.raw_bytes = entry.chunks.iter().map(|c| c.raw_length).sum();
        entry.stored_bytes = entry
            .chunks
            .iter()
            .map(|c| c.length + c.key_filter.as_ref().map_or(0, |f| f.length))
            .sum();
        entry.content_digest = digest.to_hex();
        info!(
            table = %format_args!("{}.{}", entry.schema, entry.name),
            rows = entry.row_count,
            raw_bytes = entry.raw_bytes,
            stored_bytes = entry.stored_bytes,
            chunks = entry.chunks.len(),
            "table dumped"
        );
    }
    entries
}

/// A table's id in the backup: its 1-based position in the schema's table list.
pub(super) fn table_id(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// This backup's raw size over that of the newest complete backup before it in the same store,
/// for spotting a backup that is suddenly much smaller (or larger) than usual.
pub async fn size_change_ratio(
    store: &dyn ObjectStore,
    summary: &DumpSummary,
) -> Result<Option<f64>, EngineError> {
    let backups = crate::inventory::list_backups(store).await?;
    let previous = backups
        .iter()
        .filter(|b| b.id < summary.backup_id && b.state == crate::inventory::BackupState::Complete)
        .filter_map(|b| b.raw_bytes)
        .next_back();
    Ok(previous
        .filter(|&raw| raw > 0)
        .map(|raw| summary.raw_bytes as f64 / raw as f64))
}
