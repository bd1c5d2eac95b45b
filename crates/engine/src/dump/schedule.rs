//! The dump's worker sessions: each imports the leader's snapshot and takes the largest job
//! left — a piece of a table, or the large objects' contents — within a memory budget for
//! pieces of long rows; a job whose session is lost (or whose upload fails) is read again by a
//! new session in the same snapshot.

use std::sync::Arc;
use std::time::Duration;

use pgark_archive::{LargeObjectsEntry, layout};
use pgark_pg::{TableData, copy_out_range_sql};
use tokio::sync::Mutex;
use tracing::warn;

use super::finish::table_id;
use super::{DumpOptions, TableKeys, plan, snapshot};
use crate::budget::{ByteBudget, Share};
use crate::writer::{BackupWriter, DataObject, WrittenObject};
use crate::{EngineError, Progress};

/// What the workers wrote: each piece's object by (table index, part), and the large objects'.
pub(super) type Written = (Vec<(usize, u32, WrittenObject)>, Option<LargeObjectsEntry>);

/// What one worker session dumps next.
enum Job {
    Piece(plan::Piece),
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
            Job::LargeObjects(_) => "large objects".to_owned(),
        }
    }
}

/// What a finished job stored.
enum Finished {
    Piece(WrittenObject),
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
    // Workers pop from the end, so the largest pieces go last in the vector.
    pieces.sort_by_key(|p| (p.estimated_bytes, std::cmp::Reverse((p.table, p.part))));
    let mut queue: Vec<Job> = pieces.into_iter().map(Job::Piece).collect();
    // Their size is unknown until read, so they start first.
    if large_objects > 0 {
        queue.push(Job::LargeObjects(large_objects));
    }
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
                            let table = &tables[piece.table];
                            let object =
                                layout::data_object_name(table_id(piece.table), piece.part);
                            writer
                                .copy_out(
                                    &session,
                                    &copy_out_range_sql(table, &piece.range),
                                    &format!("table {}.{}", table.schema, table.name),
                                    DataObject {
                                        name: &object,
                                        table: table_id(piece.table),
                                        expected_bytes: Some(piece.estimated_bytes),
                                    },
                                    &table.columns,
                                    keys.lookup.get(&table.oid),
                                )
                                .await
                                .map(Finished::Piece)
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
                let data = match (finished, job) {
                    (Finished::LargeObjects(entry), _) => {
                        large_objects = Some(entry);
                        continue;
                    }
                    (Finished::Piece(data), Job::Piece(piece)) => (piece, data),
                    (Finished::Piece(_), Job::LargeObjects(_)) => {
                        return Err(EngineError::bug(
                            "a large-object job produced a table piece",
                        ));
                    }
                };
                let (piece, data) = data;
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
                let reserve = match &queue[i] {
                    Job::Piece(piece) => piece.wide_reserve,
                    Job::LargeObjects(_) => None,
                };
                let Some(bytes) = reserve else {
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
