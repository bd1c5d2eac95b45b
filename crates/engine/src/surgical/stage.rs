//! Loading a table's backup rows into a temporary staging table: only the chunks that can hold
//! rows matching `--where` (see `key_lookup`), each checked (SHA-256, size, rows) before its rows are sent.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use pgark_archive::TableEntry;
use pgark_pg::{Connection, PgError};

use crate::cpu::CpuPool;
use crate::{BackupRef, EngineError};

/// Chunks fetched and decoded ahead of the one being sent.
const PREFETCH: usize = 2;

/// Sends chunks `wanted` of `table` with `copy_sql` (a `COPY ... FROM STDIN`); returns the rows
/// loaded, checked against what the manifest records for those chunks.
pub(super) async fn load(
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
                name.clone(),
                index,
            ));
        }
        let Some(next) = fetching.pop_front() else {
            break;
        };
        let rows_text = next.rows().await?;
        crate::restore::send_rows(sink.as_mut(), Bytes::from(rows_text))
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
