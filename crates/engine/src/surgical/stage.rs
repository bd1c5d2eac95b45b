//! Loading a table's backup rows into a temporary staging table: only the chunks that can hold
//! rows matching the row condition (see `key_lookup`), and only the partitions whose bounds can,
//! each chunk checked (SHA-256, size, rows) before its rows are sent.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use pgark_archive::TableEntry;
use pgark_pg::{Connection, PgError, rows};

use super::plan::Plan;
use super::referencing::Reach;
use super::{SurgicalOptions, prune};
use crate::cpu::CpuPool;
use crate::{BackupRef, EngineError, key_lookup, session};

/// Creates each plan's staging table (the backup's columns and types), checks the row condition
/// on it, chooses the chunks to read, and loads them; the plans' reports say what was read.
pub(super) async fn stage_rows(
    options: &SurgicalOptions,
    connection: &Connection,
    cpu: &Arc<CpuPool>,
    plans: &mut [Plan<'_>],
) -> Result<(), EngineError> {
    let mut printed = key_lookup::Printed::new();
    for plan in plans {
        crate::backup::require_chunks(plan.source.parts.iter().copied())?;
        let columns: Vec<(&str, &str)> = plan
            .source
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.type_name.as_str()))
            .collect();
        session::execute(
            connection,
            &rows::create_temp_table(&plan.staging, &columns),
            || {
                format!(
                    "creating the staging table for {} (the backup's column types must exist in \
                     the target)",
                    plan.source.display_name()
                )
            },
        )
        .await?;
        // Only the rows of a table the user named are filtered by the user's condition; a
        // referencing table's condition names its parents' rows, which do not exist yet.
        let own_condition = options
            .predicate
            .as_deref()
            .filter(|_| plan.reach == Reach::Selected);
        if let Some(predicate) = own_condition {
            // Checked on the empty staging table, before any chunk is fetched.
            connection
                .client()
                .execute(&rows::probe_condition(&plan.staging, predicate), &[])
                .await
                .map_err(|e| EngineError::InvalidWhere {
                    predicate: predicate.to_owned(),
                    reason: pgark_pg::ServerMessage(&e).to_string(),
                })?;
        }
        choose_chunks(options, connection, plan, &mut printed).await?;
        for (part, chunks) in plan.source.parts.iter().zip(&plan.chunks) {
            if chunks.is_empty() {
                continue;
            }
            // A partition's columns may stand in another order than its parent's.
            let names: Vec<&str> = part.columns.iter().map(|c| c.name.as_str()).collect();
            let copy_sql = rows::copy_in(&plan.staging, &names);
            load(connection, &options.backup, cpu, part, chunks, &copy_sql).await?;
        }
        tracing::info!(
            table = %plan.source.display_name(),
            chunks_read = plan.report.chunks_read,
            chunks_total = plan.report.chunks_total,
            "backup rows staged"
        );
    }
    Ok(())
}

/// The chunks of each of the plan's parts that can hold rows it restores: none of a partition
/// whose bounds cannot hold a row matching the condition, and by the key ranges and filters of
/// the chunks for a condition on the key.
async fn choose_chunks(
    options: &SurgicalOptions,
    connection: &Connection,
    plan: &mut Plan<'_>,
    printed: &mut key_lookup::Printed,
) -> Result<(), EngineError> {
    let (mut by_range, mut by_filter) = (false, false);
    let conditions = plan
        .condition
        .as_deref()
        .and_then(key_lookup::KeyConditions::parse);
    let prunable = plan
        .condition
        .as_deref()
        .filter(|_| plan.reach == Reach::Selected);
    let partitions = match (plan.source.partitioned, prunable) {
        (Some(root), Some(predicate)) => {
            prune::partitions_to_read(connection, &options.manifest, root, predicate).await?
        }
        _ => None,
    };
    plan.chunks = Vec::with_capacity(plan.source.parts.len());
    for part in &plan.source.parts {
        let wanted = partitions
            .as_ref()
            .is_none_or(|p| p.contains(&(part.schema.as_str(), part.name.as_str())));
        let choice = match (&conditions, wanted) {
            (_, false) => Vec::new(),
            (None, true) => (0..part.chunks.len()).collect(),
            (Some(conditions), true) => {
                let wanted = key_lookup::literals_wanted(part, conditions);
                key_lookup::print_literals(connection, wanted, printed).await?;
                let choice =
                    key_lookup::choose_chunks(&options.backup, part, conditions, printed).await?;
                by_range |= choice.by_range;
                by_filter |= choice.by_filter;
                choice.chunks
            }
        };
        plan.chunks.push(choice);
    }
    plan.report.pruned_by = match (by_range, by_filter) {
        (true, true) => Some("key ranges and filters"),
        (true, false) => Some("key ranges"),
        (false, true) => Some("key filters"),
        (false, false) => None,
    };
    plan.report.chunks_read = plan.chunks.iter().map(Vec::len).sum();
    plan.report.chunks_total = plan.source.parts.iter().map(|t| t.chunks.len()).sum();
    plan.report.partitions = partitions
        .as_ref()
        .map(|p| (p.len(), plan.source.parts.len()));
    Ok(())
}

/// Chunks fetched and decoded ahead of the one being sent.
const PREFETCH: usize = 2;

/// Sends chunks `wanted` of `table` with `copy_sql` (a `COPY ... FROM STDIN`); returns the rows
/// loaded, checked against what the manifest records for those chunks.
async fn load(
    session: &Connection,
    backup: &BackupRef,
    cpu: &Arc<CpuPool>,
    table: &TableEntry,
    wanted: &[usize],
    copy_sql: &str,
) -> Result<u64, EngineError> {
    let name = table.display_name();
    let context = || format!("loading the backup's rows of table {name} into staging");
    let sink = session
        .client()
        .copy_in::<_, Bytes>(copy_sql)
        .await
        .map_err(|e| PgError::query(context(), e))?;
    let mut sink = std::pin::pin!(sink);
    let mut fetching = VecDeque::new();
    let mut pending = wanted.iter().copied();
    loop {
        while fetching.len() <= PREFETCH {
            let Some(index) = pending.next() else { break };
            fetching.push_back(backup.fetch_rows(
                cpu,
                table.chunks[index].clone(),
                (table.id, name.clone()),
                index,
                Vec::new(),
            ));
        }
        let Some(next) = fetching.pop_front() else {
            break;
        };
        let rows_text = Bytes::from(next.rows().await?);
        crate::restore::send_rows(sink.as_mut(), &rows_text)
            .await
            .map_err(|e| PgError::query(context(), e))?;
    }
    let rows = sink
        .as_mut()
        .finish()
        .await
        .map_err(|e| PgError::query(context(), e))?;
    let expected: u64 = wanted.iter().map(|&i| table.chunks[i].rows).sum();
    if rows != expected {
        return Err(EngineError::RowCountMismatch {
            table: name,
            expected,
            actual: rows,
        });
    }
    Ok(rows)
}
