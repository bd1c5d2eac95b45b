//! `cat`: one table's rows from a backup, with no database — as COPY text, CSV (as
//! `COPY ... (FORMAT csv)` prints it) or JSON lines — optionally limited to a key range, in which
//! case only the chunks whose recorded key range can match are fetched.

mod filter;
mod format;

use std::sync::Arc;

use pgark_archive::{Manifest, TableEntry, copy_text};
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

/// Finds a table by `schema.name` or, when unambiguous, `name`; quoted parts keep their case as
/// in SQL (`"Odd Schema"."select"`), unquoted ones are folded to lower case.
pub fn find_table<'m>(manifest: &'m Manifest, name: &str) -> Result<&'m TableEntry, EngineError> {
    let parts = split_qualified(name).ok_or_else(|| EngineError::UnknownTable {
        table: name.to_owned(),
        known: known_tables(manifest),
    })?;
    let matches: Vec<&TableEntry> = manifest
        .tables
        .iter()
        .filter(|t| match parts.as_slice() {
            [schema, table] => &t.schema == schema && &t.name == table,
            [table] => &t.name == table,
            _ => false,
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(EngineError::UnknownTable {
            table: name.to_owned(),
            known: known_tables(manifest),
        }),
        several => Err(EngineError::AmbiguousTable {
            table: name.to_owned(),
            candidates: several
                .iter()
                .map(|t| t.display_name())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

pub(crate) fn known_tables(manifest: &Manifest) -> String {
    let mut names: Vec<String> = manifest
        .tables
        .iter()
        .take(10)
        .map(TableEntry::display_name)
        .collect();
    if manifest.tables.len() > 10 {
        names.push(format!("and {} more", manifest.tables.len() - 10));
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

/// Writes the rows of `table` to `out` in `format`. With a filter, chunks whose key range lies
/// outside it are not fetched, and rows outside it are not written.
pub async fn cat(
    backup: &BackupRef,
    table: &TableEntry,
    format: CatFormat,
    filter: Option<&KeyFilter>,
    out: &mut (dyn AsyncWrite + Unpin + Send),
) -> Result<CatSummary, EngineError> {
    let key_field = match filter {
        Some(filter) => {
            let field = filter::key_field(table)?;
            let key = &table.columns[field].name;
            if filter.column() != key {
                return Err(EngineError::WrongKeyColumn {
                    table: table.display_name(),
                    column: filter.column().to_owned(),
                    key: key.clone(),
                });
            }
            Some(field)
        }
        None => None,
    };
    let cpu = Arc::new(CpuPool::for_machine()?);
    let wanted: Vec<(usize, &pgark_archive::ChunkEntry)> = table
        .chunks
        .iter()
        .enumerate()
        .filter(|(_, chunk)| filter.is_none_or(|f| f.may_match(chunk.key_range.as_ref())))
        .collect();
    let mut summary = CatSummary {
        rows: 0,
        chunks_read: wanted.len(),
        chunks_total: table.chunks.len(),
    };
    let name = table.display_name();
    let mut formatter = format::Formatter::new(format, &table.columns);
    if let Some(header) = formatter.header() {
        out.write_all(&header).await.map_err(EngineError::output)?;
    }

    let mut fetches = std::collections::VecDeque::new();
    let mut pending = wanted.into_iter();
    loop {
        while fetches.len() < PREFETCH {
            let Some((index, chunk)) = pending.next() else {
                break;
            };
            fetches.push_back(backup.fetch_rows(&cpu, chunk.clone(), name.clone(), index));
        }
        let Some(next) = fetches.pop_front() else {
            break;
        };
        let text = next.rows().await?;
        let mut buffer = Vec::with_capacity(text.len() + text.len() / 4);
        for row in copy_text::rows(&text) {
            if let (Some(filter), Some(field)) = (filter, key_field)
                && !filter.matches_row(row, field)
            {
                continue;
            }
            summary.rows += 1;
            formatter.write_row(row, &mut buffer);
        }
        out.write_all(&buffer).await.map_err(EngineError::output)?;
    }
    out.flush().await.map_err(EngineError::output)?;
    Ok(summary)
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
