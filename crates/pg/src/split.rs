//! Splitting a table into pieces that several sessions read at once: by block ranges with TID
//! range scans (PostgreSQL 14 and later), or by ranges of a single-column integer key. Each piece
//! is one `COPY (SELECT ... WHERE range) TO STDOUT`; together the pieces return every row of the
//! table exactly once, because the ranges are half-open, adjacent, and the first and last are
//! unbounded below and above.

use std::collections::HashMap;

use tokio_postgres::Client;

use crate::PgError;
use crate::ddl::TableData;
use crate::quote::{ident, qualified};

/// The first server version with TID range scans, which make block ranges cheap.
pub const TID_RANGE_SCAN_VERSION_NUM: u32 = 140_000;

/// Which rows of a table one piece reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowRange {
    /// Every row (the table is one piece).
    All,
    /// Rows whose tuple lies in blocks `start..end` (`end` open: to the end of the table, so rows
    /// in blocks added after the size was read are still covered).
    Blocks { start: u32, end: Option<u32> },
    /// Rows whose integer key is in `start..end`; a missing bound is unbounded.
    Keys {
        column: String,
        start: Option<i64>,
        end: Option<i64>,
    },
}

impl RowRange {
    /// Cuts `0..blocks` into `parts` adjacent ranges, the last open-ended.
    pub fn block_ranges(blocks: u32, parts: u32) -> Vec<RowRange> {
        let parts = parts.clamp(1, blocks.max(1));
        (0..parts)
            .map(|i| RowRange::Blocks {
                start: bound(u64::from(blocks), i, parts) as u32,
                end: (i + 1 < parts).then(|| bound(u64::from(blocks), i + 1, parts) as u32),
            })
            .collect()
    }

    /// Cuts the keys `min..=max` into `parts` adjacent ranges, the first unbounded below and the
    /// last unbounded above.
    pub fn key_ranges(column: &str, min: i64, max: i64, parts: u32) -> Vec<RowRange> {
        let span = (i128::from(max) - i128::from(min) + 1).max(1);
        let parts = i128::from(parts.max(1)).min(span);
        let boundary = |i: i128| -> i64 {
            // Within min..=max by construction, so the conversion cannot fail.
            i64::try_from(i128::from(min) + span * i / parts).unwrap_or(max)
        };
        (0..parts)
            .map(|i| RowRange::Keys {
                column: column.to_owned(),
                start: (i > 0).then(|| boundary(i)),
                end: (i + 1 < parts).then(|| boundary(i + 1)),
            })
            .collect()
    }

    /// The SQL condition selecting the range's rows; `None` for every row.
    fn condition(&self) -> Option<String> {
        let mut conditions = Vec::new();
        match self {
            RowRange::All => {}
            RowRange::Blocks { start, end } => {
                if *start > 0 {
                    conditions.push(format!("ctid >= '({start},0)'::pg_catalog.tid"));
                }
                if let Some(end) = end {
                    conditions.push(format!("ctid < '({end},0)'::pg_catalog.tid"));
                }
            }
            RowRange::Keys { column, start, end } => {
                if let Some(start) = start {
                    conditions.push(format!("{} >= {start}", ident(column)));
                }
                if let Some(end) = end {
                    conditions.push(format!("{} < {end}", ident(column)));
                }
            }
        }
        (!conditions.is_empty()).then(|| conditions.join(" AND "))
    }
}

fn bound(total: u64, i: u32, parts: u32) -> u64 {
    total * u64::from(i) / u64::from(parts)
}

/// The COPY statement reading one piece of `t`: the plain `COPY table TO STDOUT` for every row,
/// otherwise a query over the table alone (`ONLY`: an inheritance parent's own rows, as COPY).
pub fn copy_out_range_sql(t: &TableData, range: &RowRange) -> String {
    let Some(condition) = range.condition() else {
        return crate::copy_out_sql(t);
    };
    let columns: Vec<String> = t.columns.iter().map(|c| ident(&c.name)).collect();
    format!(
        "COPY (SELECT {} FROM ONLY {} WHERE {condition}) TO STDOUT",
        columns.join(", "),
        qualified(&t.schema, &t.name)
    )
}

/// The number of blocks in each table's main fork, in the caller's transaction.
pub async fn relation_blocks(client: &Client, oids: &[u32]) -> Result<HashMap<u32, u32>, PgError> {
    let rows = client
        .query(
            "SELECT t.oid, (pg_catalog.pg_relation_size(t.oid::pg_catalog.regclass) \
                     / pg_catalog.current_setting('block_size')::int8)::int8 \
             FROM pg_catalog.unnest($1::pg_catalog.oid[]) AS t(oid)",
            &[&oids],
        )
        .await
        .map_err(|e| PgError::query("reading table sizes in blocks", e))?;
    rows.iter()
        .map(|row| {
            let oid: u32 = row
                .try_get(0)
                .map_err(|e| PgError::query("reading a table size", e))?;
            let blocks: i64 = row
                .try_get(1)
                .map_err(|e| PgError::query("reading a table size", e))?;
            Ok((oid, u32::try_from(blocks).unwrap_or(u32::MAX)))
        })
        .collect()
}

/// The size on disk of every large object's contents (`pg_largeobject`), in the caller's
/// transaction: what their dump is expected to take, at most.
pub async fn large_objects_bytes(client: &Client) -> Result<u64, PgError> {
    let row = client
        .query_one(
            "SELECT pg_catalog.pg_table_size('pg_catalog.pg_largeobject'::pg_catalog.regclass)",
            &[],
        )
        .await
        .map_err(|e| PgError::query("reading the size of the large objects", e))?;
    let bytes: i64 = row
        .try_get(0)
        .map_err(|e| PgError::query("reading the size of the large objects", e))?;
    Ok(u64::try_from(bytes).unwrap_or(0))
}

/// For the tables among `tables` that keep values out of line (a non-empty TOAST table), the
/// longest row among their first rows, as a guess at how long their COPY lines are: a reader of
/// 20 MB rows holds several of them at once, and the dump plans its memory by it.
///
/// No value is fetched or decompressed for this (which for tables of 20 MB values took longer
/// than dumping them): text and bytea values count their uncompressed length, which the server
/// reads from the value's header (bytea twice over, as COPY prints it in hex); values of other
/// types count their stored size, which underestimates those stored compressed.
pub async fn sampled_row_bytes(
    client: &Client,
    tables: &[TableData],
) -> Result<HashMap<u32, u64>, PgError> {
    const SAMPLE_ROWS: u32 = 16;
    let by_oid: HashMap<u32, &TableData> = tables.iter().map(|t| (t.oid, t)).collect();
    let oids: Vec<u32> = by_oid.keys().copied().collect();
    let rows = client
        .query(
            "SELECT c.oid FROM pg_catalog.pg_class c \
             WHERE c.oid = ANY($1::pg_catalog.oid[]) AND c.reltoastrelid <> 0 \
               AND pg_catalog.pg_relation_size(c.reltoastrelid) > 0",
            &[&oids],
        )
        .await
        .map_err(|e| PgError::query("finding tables with out-of-line values", e))?;
    let mut sampled = HashMap::new();
    for row in rows {
        let oid: u32 = row
            .try_get(0)
            .map_err(|e| PgError::query("reading a table oid", e))?;
        let Some(&t) = by_oid.get(&oid) else {
            continue;
        };
        if t.columns.is_empty() {
            continue;
        }
        let lengths: Vec<String> = t
            .columns
            .iter()
            .map(|c| {
                let column = ident(&c.name);
                let name = c.type_name.as_str();
                let textual = name == "text"
                    || name == "bytea"
                    || (name.starts_with("character") && !name.ends_with("[]"));
                let size = if textual {
                    format!("pg_catalog.octet_length({column})")
                } else {
                    format!("pg_catalog.pg_column_size({column})")
                };
                let factor = if c.type_name == "bytea" { 2 } else { 1 };
                format!("COALESCE({size}, 0)::int8 * {factor}")
            })
            .collect();
        let sql = format!(
            "SELECT pg_catalog.max(n) FROM (SELECT {} AS n FROM ONLY {} LIMIT {SAMPLE_ROWS}) s",
            lengths.join(" + "),
            qualified(&t.schema, &t.name)
        );
        let row = client.query_one(&sql, &[]).await.map_err(|e| {
            PgError::query(format!("sampling the rows of {}.{}", t.schema, t.name), e)
        })?;
        let longest: Option<i64> = row
            .try_get(0)
            .map_err(|e| PgError::query("reading a row length", e))?;
        if let Some(longest) = longest {
            sampled.insert(oid, u64::try_from(longest).unwrap_or(0));
        }
    }
    Ok(sampled)
}

/// The smallest and largest key of `t` in the caller's snapshot; `None` when it has no rows.
pub async fn key_bounds(
    client: &Client,
    t: &TableData,
    column: &str,
) -> Result<Option<(i64, i64)>, PgError> {
    let sql = format!(
        "SELECT pg_catalog.min({c})::int8, pg_catalog.max({c})::int8 FROM ONLY {}",
        qualified(&t.schema, &t.name),
        c = ident(column)
    );
    let row = client.query_one(&sql, &[]).await.map_err(|e| {
        PgError::query(
            format!("reading the key range of {}.{}", t.schema, t.name),
            e,
        )
    })?;
    let min: Option<i64> = row
        .try_get(0)
        .map_err(|e| PgError::query("reading a key range", e))?;
    let max: Option<i64> = row
        .try_get(1)
        .map_err(|e| PgError::query("reading a key range", e))?;
    Ok(min.zip(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ranges_are_adjacent_and_the_last_is_open() {
        let ranges = RowRange::block_ranges(10, 3);
        assert_eq!(
            ranges,
            vec![
                RowRange::Blocks {
                    start: 0,
                    end: Some(3)
                },
                RowRange::Blocks {
                    start: 3,
                    end: Some(6)
                },
                RowRange::Blocks {
                    start: 6,
                    end: None
                },
            ]
        );
        // Never more pieces than blocks, and an empty table is one open piece.
        assert_eq!(RowRange::block_ranges(2, 8).len(), 2);
        assert_eq!(
            RowRange::block_ranges(0, 4),
            vec![RowRange::Blocks {
                start: 0,
                end: None
            }]
        );
    }

    #[test]
    fn key_ranges_cover_every_integer_once_even_at_the_extremes() {
        let ranges = RowRange::key_ranges("id", i64::MIN, i64::MAX, 4);
        assert_eq!(ranges.len(), 4);
        let mut previous_end = None;
        for (i, range) in ranges.iter().enumerate() {
            let RowRange::Keys { start, end, .. } = range else {
                panic!("not a key range")
            };
            assert_eq!(
                *start, previous_end,
                "piece {i} starts where the last ended"
            );
            assert_eq!(i == 0, start.is_none());
            assert_eq!(i == 3, end.is_none());
            previous_end = *end;
        }
        // A span narrower than the parts gives one piece per key.
        assert_eq!(RowRange::key_ranges("id", 5, 6, 10).len(), 2);
        assert_eq!(RowRange::key_ranges("id", 7, 7, 10).len(), 1);
    }

    #[test]
    fn conditions_quote_the_key_and_leave_open_ends_out() {
        let range = RowRange::Keys {
            column: "Order Id".into(),
            start: Some(-5),
            end: Some(10),
        };
        assert_eq!(
            range.condition().as_deref(),
            Some("\"Order Id\" >= -5 AND \"Order Id\" < 10")
        );
        let blocks = RowRange::Blocks {
            start: 0,
            end: Some(7),
        };
        assert_eq!(
            blocks.condition().as_deref(),
            Some("ctid < '(7,0)'::pg_catalog.tid")
        );
        assert_eq!(
            RowRange::Blocks {
                start: 0,
                end: None
            }
            .condition(),
            None
        );
    }
}
