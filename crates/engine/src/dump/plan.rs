//! Which pieces the tables are read in. A table larger than [`CHUNKS_PER_PIECE`] chunks is split
//! so that all `--jobs` sessions can read it at once: by block ranges (TID range scans, 14+), by
//! ranges of its single-column integer key, or not at all.

use std::collections::HashMap;

use pgark_pg::{RowRange, TID_RANGE_SCAN_VERSION_NUM, TableData};
use tokio_postgres::Client;

use crate::EngineError;

/// A piece is about this many chunks: large enough that a piece's query costs nothing next to
/// its rows, small enough that the last pieces of a large table keep every session busy.
pub const CHUNKS_PER_PIECE: u64 = 8;
/// The most pieces one table is cut into (object names have four digits for the piece).
const MAX_PIECES: u64 = 1000;

/// How tables larger than a piece are split (`--split`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SplitMethod {
    /// Blocks on 14+, else keys where a table has one, else whole.
    #[default]
    Auto,
    /// Block ranges with TID range scans (needs PostgreSQL 14 or later).
    Blocks,
    /// Ranges of a single-column integer primary key; tables without one are read whole.
    Keys,
    /// Every table in one piece.
    Off,
}

/// One piece of one table.
#[derive(Debug, Clone)]
pub(super) struct Piece {
    /// Index into the dump's tables.
    pub table: usize,
    /// 0-based number of the piece within its table; names its data object.
    pub part: u32,
    pub range: RowRange,
    pub estimated_bytes: u64,
    /// For tables with long rows (see [`WIDE_ROW_BYTES`]), how much memory reading this piece
    /// may take: the connection reads a few rows ahead of the one being compressed.
    pub wide_reserve: Option<u64>,
}

/// Whole tables smaller than this on disk are read in batches (see [`Batch`]).
pub const SMALL_TABLE_BYTES: u64 = 1 << 20;

/// The most tables one batch reads: its query (a statement per table) stays a few hundred
/// kilobytes at most, and its tables' progress is reported often enough.
const MAX_BATCH_TABLES: usize = 256;

/// Small whole tables read by one query of COPYs (one round trip for them all) into one shared
/// data object, each table's rows in chunks of its own: a database of thousands of small tables
/// costs a few queries and objects, not thousands.
#[derive(Debug)]
pub(super) struct Batch {
    /// 0-based; names its data object.
    pub number: u32,
    /// Whole tables, in table order.
    pub pieces: Vec<Piece>,
    pub estimated_bytes: u64,
}

/// Takes the pieces of small whole tables (not wide ones: they reserve memory piece by piece)
/// out of `pieces` into batches of at most `chunk_size` bytes on disk, or fewer when that would
/// leave some of the `jobs` sessions without one, and at most [`MAX_BATCH_TABLES`] tables.
pub(super) fn batch_small_tables(
    pieces: &mut Vec<Piece>,
    jobs: usize,
    chunk_size: u64,
) -> Vec<Batch> {
    let small = |p: &Piece| {
        p.part == 0
            && matches!(p.range, RowRange::All)
            && p.wide_reserve.is_none()
            && p.estimated_bytes < SMALL_TABLE_BYTES
    };
    let (mut taken, kept): (Vec<Piece>, Vec<Piece>) = pieces.drain(..).partition(|p| small(p));
    *pieces = kept;
    taken.sort_by_key(|p| p.table);
    let total: u64 = taken.iter().map(|p| p.estimated_bytes).sum();
    let limit = (total / jobs.max(1) as u64)
        .min(chunk_size)
        .max(SMALL_TABLE_BYTES);
    let mut batches: Vec<Batch> = Vec::new();
    for piece in taken {
        let fits = batches.last().is_some_and(|b| {
            b.pieces.len() < MAX_BATCH_TABLES && b.estimated_bytes + piece.estimated_bytes <= limit
        });
        if !fits {
            batches.push(Batch {
                number: u32::try_from(batches.len()).unwrap_or(u32::MAX),
                pieces: Vec::new(),
                estimated_bytes: 0,
            });
        }
        if let Some(batch) = batches.last_mut() {
            batch.estimated_bytes += piece.estimated_bytes;
            batch.pieces.push(piece);
        }
    }
    batches
}

/// Rows at least this long (sampled) make a table's pieces "wide": they reserve memory from a
/// shared budget before they start, so that eight sessions do not each buffer several 20 MB rows.
pub const WIDE_ROW_BYTES: u64 = 1 << 20;
/// Row sizes reserved for a session reading a wide piece: the row arriving, whole, and the frames
/// of the ones before it (the one being compressed, the one handed over, the one being stored),
/// which come to three rows' worth only if rows compress to worse than two thirds of their size
/// (20 MB rows of text compress to a twentieth). The COPY tap reads no further ahead than that.
const ROWS_IN_FLIGHT: u64 = 3;

/// Cuts every table into its pieces, reading sizes and key bounds in the caller's snapshot.
pub(super) async fn plan(
    client: &Client,
    tables: &[TableData],
    keys: &HashMap<u32, String>,
    method: SplitMethod,
    server_version_num: u32,
    chunk_size: u64,
) -> Result<Vec<Piece>, EngineError> {
    let tid_ranges = server_version_num >= TID_RANGE_SCAN_VERSION_NUM;
    if method == SplitMethod::Blocks && !tid_ranges {
        return Err(EngineError::SplitUnsupported {
            major: server_version_num / 10_000,
        });
    }
    let piece_bytes = chunk_size.saturating_mul(CHUNKS_PER_PIECE).max(1);
    let wanted = |t: &TableData| -> u32 {
        let parts = t.estimated_bytes.div_ceil(piece_bytes).clamp(1, MAX_PIECES);
        // A filtered table (an extension's configuration) is read by one query with its filter.
        if method == SplitMethod::Off || t.row_filter.is_some() {
            1
        } else {
            u32::try_from(parts).unwrap_or(1)
        }
    };
    let by_blocks =
        matches!(method, SplitMethod::Blocks) || (method == SplitMethod::Auto && tid_ranges);
    let split_oids: Vec<u32> = tables
        .iter()
        .filter(|t| wanted(t) > 1)
        .map(|t| t.oid)
        .collect();
    let blocks = if by_blocks && !split_oids.is_empty() {
        pgark_pg::relation_blocks(client, &split_oids).await?
    } else {
        HashMap::new()
    };

    let row_bytes = pgark_pg::sampled_row_bytes(client, tables).await?;
    let mut pieces = Vec::new();
    for (index, table) in tables.iter().enumerate() {
        let wide_reserve = row_bytes
            .get(&table.oid)
            .filter(|&&bytes| bytes >= WIDE_ROW_BYTES)
            .map(|bytes| bytes * ROWS_IN_FLIGHT);
        let parts = wanted(table);
        let ranges = if parts <= 1 {
            vec![RowRange::All]
        } else if by_blocks {
            let table_blocks = blocks.get(&table.oid).copied().unwrap_or(0);
            RowRange::block_ranges(table_blocks, parts)
        } else if let Some(column) = keys.get(&table.oid) {
            match pgark_pg::key_bounds(client, table, column).await? {
                Some((min, max)) => RowRange::key_ranges(column, min, max, parts),
                None => vec![RowRange::All],
            }
        } else {
            vec![RowRange::All]
        };
        let count = ranges.len() as u64;
        pieces.extend(ranges.into_iter().enumerate().map(|(part, range)| Piece {
            table: index,
            part: u32::try_from(part).unwrap_or(u32::MAX),
            range,
            estimated_bytes: table.estimated_bytes / count,
            wide_reserve,
        }));
    }
    Ok(pieces)
}
