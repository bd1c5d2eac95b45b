//! The dump's worker sessions: each imports the leader's snapshot and takes the largest job
//! left — a piece of a table, a batch of small tables, or the large objects' contents — within a
//! memory budget for pieces of long rows; a job whose session is lost (or whose upload fails) is
//! read again by a new session in the same snapshot.

use std::sync::Arc;
use std::time::Duration;

use pgark_archive::{LargeObjectsEntry, layout};
use pgark_pg::{TableData, copy_out_range_sql};
use tokio::sync::Mutex;
use tracing::warn;

use super::finish::table_id;
use super::{DumpOptions, TableKeys, plan, snapshot};
use crate::budget::{ByteBudget, Share};
use crate::writer::{BackupWriter, CopySource, DataObject, WrittenObject};
use crate::{EngineError, Progress};

/// What the workers wrote: each piece's object by (table index, part), and the large objects'.
pub(super) type Written = (Vec<(usize, u32, WrittenObject)>, Option<LargeObjectsEntry>);

/// What one worker session dumps next.
enum Job {
    Piece(plan::Piece),
    Batch(plan::Batch),
    /// Every large object's contents (`count` of them).
    LargeObjects(u64),
}

impl Job {
    /// Names the job in messages: `table public.orders, piece 3`.
    fn describe(&self, tables: &[TableData]) -> String {
        match self {
            Job::Piece(piece) => {
                let table = &tables[piece.table];
                format!(
                    "table {}.{}, piece {}",
                    table.schema, table.name, piece.part
                )
            }
            Job::Batch(batch) => format!(
                "{} small tables (batch {})",
                batch.pieces.len(),
                batch.number
            ),
            Job::LargeObjects(_) => "large objects".to_owned(),
        }
    }

    fn estimated_bytes(&self) -> u64 {
        match self {
            Job::Piece(piece) => piece.estimated_bytes,
            Job::Batch(batch) => batch.estimated_bytes,
            // Their size is unknown until read, so they start first.
            Job::LargeObjects(_) => u64::MAX,
        }
    }

    /// Memory the job reserves before it starts (pieces of wide tables).
    fn wide_reserve(&self) -> Option<u64> {
        match self {
            Job::Piece(piece) => piece.wide_reserve,
            Job::Batch(_) | Job::LargeObjects(_) => None,
        }
    }
}

/// What a finished job stored: table pieces' objects (a batch's tables share one), or the large
/// objects' entry.
enum Finished {
    Pieces(Vec<(plan::Piece, WrittenObject)>),
    LargeObjects(LargeObjectsEntry),
}

/// How many times a job is tried again after its session was lost or the store failed.
const PIECE_RETRIES: u32 = 3;

/// The pause before a job's retry, times the retry's number: a restarting server or a throttling
/// store gets a moment.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Runs the worker sessions over `pieces`, largest first, and the large objects' contents (of
/// `large_objects` objects); no more sessions than jobs, as each idle one would only hold a
/// snapshot open.
pub(super) async fn run(
    options: &DumpOptions,
    leader: &snapshot::Leader,
    writer: &BackupWriter,
    tables: &[TableData],
    pieces: Vec<plan::Piece>,
    large_objects: u64,
    keys: &TableKeys,
) -> Result<Written, EngineError> {
    let progress = &writer.progress;
    let mut pieces_left = vec![0usize; tables.len()];
    for piece in &pieces {
        pieces_left[piece.table] += 1;
    }
    let pieces_left = Arc::new(std::sync::Mutex::new(pieces_left));
    let mut pieces = pieces;
    let batches = plan::batch_small_tables(&mut pieces, options.jobs, options.chunk_size);
    let mut queue: Vec<Job> = pieces.into_iter().map(Job::Piece).collect();
    queue.extend(batches.into_iter().map(Job::Batch));
    if large_objects > 0 {
        queue.push(Job::LargeObjects(large_objects));
    }
    // Workers pop from the end, so the largest jobs go last in the vector (ties: in table
    // order).
    queue.sort_by_key(|job| {
        let first = match job {
            Job::Piece(piece) => (piece.table, piece.part),
            Job::Batch(batch) => batch.pieces.first().map_or((0, 0), |p| (p.table, p.part)),
            Job::LargeObjects(_) => (0, 0),
        };
        (job.estimated_bytes(), std::cmp::Reverse(first))
    });
    let sessions = options.jobs.clamp(1, queue.len().max(1));
    let queue = Arc::new(Mutex::new(queue));

    let snapshot_id = &leader.source.snapshot_id;
    let wide_budget = &ByteBudget::new(WIDE_BUDGET);
    // No more sessions than pieces: each idle one would only hold a snapshot open.
    let workers = (0..sessions).map(|_| {
        let queue = queue.clone();
        let pieces_left = pieces_left.clone();
        async move {
            let mut session = snapshot::import(&options.source, snapshot_id).await?;
            let mut done = Vec::new();
            let mut large_objects = None;
            while let Some((job, _reserved)) = next_job(&queue, wide_budget).await? {
                let mut retries = 0;
                // A piece runs in a transaction of its own on its session: if the session is
                // lost or the store fails, a new session importing the same snapshot reads the
                // very same rows again.
                let finished = loop {
                    let attempt = match &job {
                        Job::Piece(piece) => {
                            let object =
                                layout::data_object_name(table_id(piece.table), piece.part);
                            writer
                                .copy_out(
                                    &session,
                                    copy_source(tables, keys, piece),
                                    DataObject {
                                        name: &object,
                                        expected_bytes: Some(piece.estimated_bytes),
                                    },
                                )
                                .await
                                .map(|data| Finished::Pieces(vec![(piece.clone(), data)]))
                        }
                        Job::Batch(batch) => {
                            let object = layout::shared_data_object_name(batch.number);
                            let sources: Vec<CopySource> = batch
                                .pieces
                                .iter()
                                .map(|piece| copy_source(tables, keys, piece))
                                .collect();
                            writer
                                .copy_out_shared(
                                    &session,
                                    &sources,
                                    DataObject {
                                        name: &object,
                                        expected_bytes: Some(batch.estimated_bytes),
                                    },
                                )
                                .await
                                .map(|written| {
                                    Finished::Pieces(
                                        batch.pieces.iter().cloned().zip(written).collect(),
                                    )
                                })
                        }
                        Job::LargeObjects(count) => writer
                            .dump_large_objects(&session, *count)
                            .await
                            .map(Finished::LargeObjects),
                    };
                    match attempt {
                        Err(e) if e.is_retryable() && retries < PIECE_RETRIES => {
                            retries += 1;
                            Progress::add(&progress.retries, 1);
                            warn!(
                                "{}: {e}; trying again on a new session in the same snapshot \
                                 ({retries} of {PIECE_RETRIES})",
                                job.describe(tables)
                            );
                            tokio::time::sleep(RETRY_PAUSE * retries).await;
                            session = snapshot::import(&options.source, snapshot_id).await?;
                        }
                        other => break other?,
                    }
                };
                let written = match finished {
                    Finished::LargeObjects(entry) => {
                        large_objects = Some(entry);
                        continue;
                    }
                    Finished::Pieces(written) => written,
                };
                for (piece, data) in written {
                    let table_done = {
                        let mut left = pieces_left.lock().map_err(|_| EngineError::TaskFailed {
                            task: "a dump worker",
                            source: None,
                        })?;
                        left[piece.table] -= 1;
                        left[piece.table] == 0
                    };
                    if table_done {
                        Progress::add(&progress.tables_done, 1);
                    }
                    done.push((piece.table, piece.part, data));
                }
            }
            Ok::<_, EngineError>((done, large_objects))
        }
    });
    let mut done = Vec::new();
    let mut large_objects = None;
    for (pieces, lo) in futures::future::try_join_all(workers).await? {
        done.extend(pieces);
        large_objects = large_objects.or(lo);
    }
    done.sort_by_key(|(table, part, _)| (*table, *part));

    Ok((done, large_objects))
}

/// What a worker COPYs for `piece`.
fn copy_source<'a>(
    tables: &'a [TableData],
    keys: &'a TableKeys,
    piece: &plan::Piece,
) -> CopySource<'a> {
    let table = &tables[piece.table];
    CopySource {
        sql: copy_out_range_sql(table, &piece.range),
        what: format!("table {}.{}", table.schema, table.name),
        table: table_id(piece.table),
        columns: &table.columns,
        key: keys.lookup.get(&table.oid),
    }
}

/// Memory for reading pieces of tables with long rows at once (see [`plan::WIDE_ROW_BYTES`]): a
/// session reading 20 MB rows holds several of them, so few such pieces run at a time.
const WIDE_BUDGET: u64 = 192 << 20;

/// The largest job that may start now: one that is not wide, or a wide one whose memory can be
/// reserved. When only wide ones are left and the budget is taken, waits for room and keeps it
/// for the piece it then takes (giving it back to look again would hand it on to the next waiter
/// and leave every waiter looking forever).
async fn next_job(
    queue: &Mutex<Vec<Job>>,
    wide_budget: &ByteBudget,
) -> Result<Option<(Job, Option<Share>)>, EngineError> {
    let mut held: Option<(u64, Share)> = None;
    loop {
        let wanted = {
            let mut queue = queue.lock().await;
            let mut wanted = None;
            for i in (0..queue.len()).rev() {
                let Some(bytes) = queue[i].wide_reserve() else {
                    return Ok(Some((queue.remove(i), None)));
                };
                if let Some((held_bytes, _)) = &held
                    && *held_bytes >= bytes
                {
                    return Ok(Some((queue.remove(i), held.map(|(_, share)| share))));
                }
                if let Some(share) = wide_budget.try_take(bytes) {
                    return Ok(Some((queue.remove(i), Some(share))));
                }
                wanted = wanted.or(Some(bytes));
            }
            wanted
        };
        let Some(bytes) = wanted else {
            return Ok(None);
        };
        // Give back what is held before waiting for more.
        drop(held.take());
        held = Some((bytes, wide_budget.take(bytes).await?));
    }
}
