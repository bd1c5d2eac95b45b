//! `cat`: one table's rows from a backup, with no database — as COPY text, CSV (as
//! `COPY ... (FORMAT csv)` prints it) or JSON lines — optionally limited to a key range, in which
//! case only the chunks whose recorded key range can match are fetched.

mod filter;
mod format;

use pgark_archive::{ColumnEntry, Manifest, TableEntry, copy_text};
use tokio::io::{AsyncWrite, AsyncWriteExt};

pub use filter::KeyFilter;
pub use format::CatFormat;

use crate::cpu::CpuPool;
use crate::{BackupRef, EngineError};

/// Chunks fetched ahead of the one being written.
const PREFETCH: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatSummary {
    pub rows: u64,
    pub chunks_read: usize,
    pub chunks_total: usize,
}

/// A table whose rows `cat` writes: one of the backup's tables, or a partitioned table, whose
/// rows are its leaf partitions'.
#[derive(Debug, Clone)]
pub struct CatTable<'m> {
    schema: &'m str,
    name: &'m str,
    /// The columns rows are written with, in this order.
    columns: &'m [ColumnEntry],
    /// The tables holding the rows.
    parts: Vec<&'m TableEntry>,
}

impl CatTable<'_> {
    /// The tables holding the rows, as indexes into `manifest.tables` (whose chunk lists must be
    /// loaded before the table is read).
    pub fn part_indexes(&self, manifest: &Manifest) -> Vec<usize> {
        self.parts
            .iter()
            .filter_map(|part| manifest.tables.iter().position(|t| t.id == part.id))
            .collect()
    }

    /// `schema.name` for messages (unquoted; not for SQL).
    pub fn display_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// Finds a table (or partitioned table) by `schema.name` or, when unambiguous, `name`; quoted
/// parts keep their case as in SQL (`"Odd Schema"."select"`), unquoted ones are folded to lower
/// case.
pub fn find_table<'m>(manifest: &'m Manifest, name: &str) -> Result<CatTable<'m>, EngineError> {
    let parts = split_qualified(name).ok_or_else(|| EngineError::UnknownTable {
        table: name.to_owned(),
        known: known_tables(manifest),
    })?;
    let named = |schema: &str, table: &str| match parts.as_slice() {
        [s, t] => s == schema && t == table,
        [t] => t == table,
        _ => false,
    };
    let mut matches: Vec<CatTable<'m>> = manifest
        .tables
        .iter()
        .filter(|t| named(&t.schema, &t.name))
        .map(|t| CatTable {
            schema: &t.schema,
            name: &t.name,
            columns: &t.columns,
            parts: vec![t],
        })
        .collect();
    for p in manifest
        .partitioned
        .iter()
        .filter(|p| named(&p.schema, &p.name))
    {
        matches.push(CatTable {
            schema: &p.schema,
            name: &p.name,
            columns: &p.columns,
            parts: manifest
                .leaf_partitions(&p.schema, &p.name)
                .unwrap_or_default()
                .into_iter()
                .map(|i| &manifest.tables[i])
                .collect(),
        });
    }
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => Err(EngineError::UnknownTable {
            table: name.to_owned(),
            known: known_tables(manifest),
        }),
        _ => Err(EngineError::AmbiguousTable {
            table: name.to_owned(),
            candidates: matches
                .iter()
                .map(CatTable::display_name)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Up to ten of the backup's table names for messages, partitioned tables first (they are the
/// names people know), then how many more there are.
pub(crate) fn known_tables(manifest: &Manifest) -> String {
    let all: Vec<String> = manifest
        .partitioned
        .iter()
        .map(|p| format!("{}.{} (partitioned)", p.schema, p.name))
        .chain(manifest.tables.iter().map(TableEntry::display_name))
        .collect();
    let mut names: Vec<String> = all.iter().take(10).cloned().collect();
    if all.len() > 10 {
        names.push(format!("and {} more", all.len() - 10));
    }
    names.join(", ")
}

/// `a.b` → `["a", "b"]`, honouring double quotes; `None` when malformed.
pub(crate) fn split_qualified(name: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut chars = name.chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    '"' => break,
                    c => part.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.extend(c.to_lowercase());
                chars.next();
            }
            if part.is_empty() {
                return None;
            }
        }
        parts.push(part);
        match chars.next() {
            None => return Some(parts),
            Some('.') => continue,
            Some(_) => return None,
        }
    }
}

/// Writes the rows of `table` to `out` in `format`. With a filter, chunks whose key range or key
/// filter rules it out are not fetched, and rows outside it are not written.
pub async fn cat(
    backup: &BackupRef,
    table: &CatTable<'_>,
    format: CatFormat,
    filter: Option<&KeyFilter>,
    out: &mut (dyn AsyncWrite + Unpin + Send),
) -> Result<CatSummary, EngineError> {
    crate::backup::require_chunks(table.parts.iter().copied())?;
    let mut filters = Vec::with_capacity(table.parts.len());
    let mut wanted = Vec::new();
    for (part_index, part) in table.parts.iter().enumerate() {
        let part_filter = match filter {
            Some(filter) => {
                let resolved = filter.for_table(part, &table.display_name())?;
                for index in resolved.chunks(backup, part, filter).await? {
                    wanted.push((part_index, index, &part.chunks[index]));
                }
                Some(resolved)
            }
            None => {
                wanted.extend(
                    part.chunks
                        .iter()
                        .enumerate()
                        .map(|(index, chunk)| (part_index, index, chunk)),
                );
                None
            }
        };
        filters.push(part_filter);
    }
    let cpu = CpuPool::shared()?;
    let mut summary = CatSummary {
        rows: 0,
        chunks_read: wanted.len(),
        chunks_total: table.parts.iter().map(|t| t.chunks.len()).sum(),
    };
    // A partition's columns may stand in another order than its parent's: where they do, each
    // row's fields are put in the parent's order.
    let orders: Vec<Option<Vec<usize>>> = table
        .parts
        .iter()
        .map(|part| field_order(table.columns, &part.columns))
        .collect();
    let mut formatter = format::Formatter::new(format, table.columns);
    if let Some(header) = formatter.header() {
        out.write_all(&header).await.map_err(EngineError::output)?;
    }

    let mut fetches = std::collections::VecDeque::new();
    let mut pending = wanted.into_iter();
    loop {
        while fetches.len() < PREFETCH {
            let Some((part, index, chunk)) = pending.next() else {
                break;
            };
            let name = table.parts[part].display_name();
            let table_id = table.parts[part].id;
            fetches.push_back((
                part,
                backup.fetch_rows(&cpu, chunk.clone(), (table_id, name), index, Vec::new()),
            ));
        }
        let Some((part, next)) = fetches.pop_front() else {
            break;
        };
        let text = next.rows().await?;
        let mut buffer = Vec::with_capacity(text.len() + text.len() / 4);
        let mut reordered = Vec::new();
        for row in copy_text::rows(&text) {
            if filters[part]
                .as_ref()
                .is_some_and(|filter| !filter.matches_row(row))
            {
                continue;
            }
            summary.rows += 1;
            match &orders[part] {
                Some(order) => {
                    reorder(row, order, &mut reordered);
                    formatter.write_row(&reordered, &mut buffer);
                }
                None => formatter.write_row(row, &mut buffer),
            }
        }
        out.write_all(&buffer).await.map_err(EngineError::output)?;
    }
    out.flush().await.map_err(EngineError::output)?;
    Ok(summary)
}

/// For each of `wanted`'s columns, its field in rows with `have`'s columns; `None` when the two
/// are the same.
fn field_order(wanted: &[ColumnEntry], have: &[ColumnEntry]) -> Option<Vec<usize>> {
    let order: Vec<usize> = wanted
        .iter()
        .enumerate()
        .map(|(i, c)| have.iter().position(|h| h.name == c.name).unwrap_or(i))
        .collect();
    (order.iter().enumerate().any(|(i, &f)| i != f)).then_some(order)
}

/// Writes `row`'s tab-separated fields (COPY text: a tab inside a value is escaped) into `out`
/// in `order`.
fn reorder(row: &[u8], order: &[usize], out: &mut Vec<u8>) {
    let fields: Vec<&[u8]> = row.split(|&b| b == b'\t').collect();
    out.clear();
    for (n, &field) in order.iter().enumerate() {
        if n > 0 {
            out.push(b'\t');
        }
        out.extend_from_slice(fields.get(field).copied().unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::split_qualified;

    #[test]
    fn qualified_names_follow_sql_quoting() {
        let cases: [(&str, Option<Vec<&str>>); 7] = [
            ("tasks", Some(vec!["tasks"])),
            ("Public.Tasks", Some(vec!["public", "tasks"])),
            (
                "\"Odd Schema\".\"select\"",
                Some(vec!["Odd Schema", "select"]),
            ),
            ("\"a\"\"b\".c", Some(vec!["a\"b", "c"])),
            ("\"a.b\"", Some(vec!["a.b"])),
            ("a..b", None),
            ("\"open", None),
        ];
        for (input, expected) in cases {
            let expected = expected.map(|v| v.into_iter().map(String::from).collect::<Vec<_>>());
            assert_eq!(split_qualified(input), expected, "{input}");
        }
    }
}
