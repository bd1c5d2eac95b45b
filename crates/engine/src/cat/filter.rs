//! `--where-key`: conditions on a table's primary key, e.g. `id BETWEEN 1000 AND 2000`,
//! `id IN (1, 2, 3)`, `tenant = 42 AND seq = 7`, `id = '550e8400-e29b-41d4-a716-446655440000'`.
//! The same forms a surgical restore's `--where` prunes chunks with (see `key_lookup`), read
//! strictly: every term must be one of them, on a key column. Chunks are skipped by their key
//! ranges and filters, and rows are matched on their fields as COPY prints them; constants are
//! printed without a server, so integer, uuid and text keys can be used (ranges on integers and
//! uuids).

use pgark_archive::TableEntry;

use crate::key_lookup::{self, KeyConditions, Printed, RowMatcher};
use crate::{BackupRef, EngineError};

/// A parsed `--where-key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFilter {
    expression: String,
    conditions: KeyConditions,
}

/// A [`KeyFilter`] for one table: its printed constants and row matcher.
#[derive(Debug)]
pub(super) struct TableFilter {
    printed: Printed,
    matcher: RowMatcher,
}

impl KeyFilter {
    pub fn parse(expression: &str) -> Result<KeyFilter, EngineError> {
        let conditions = KeyConditions::parse_strict(expression).map_err(|reason| {
            EngineError::InvalidKeyFilter {
                expression: expression.to_owned(),
                reason: reason.to_owned(),
            }
        })?;
        Ok(KeyFilter {
            expression: expression.to_owned(),
            conditions,
        })
    }

    /// Checks the filter against `table` (`name` in messages): it names key columns only, and
    /// its constants are values of their types.
    pub(super) fn for_table(
        &self,
        table: &TableEntry,
        name: &str,
    ) -> Result<TableFilter, EngineError> {
        let key = table.lookup_key().ok_or_else(|| EngineError::NoKey {
            table: name.to_owned(),
        })?;
        for column in self.conditions.columns() {
            if !key.columns.iter().any(|k| k == column) {
                return Err(EngineError::WrongKeyColumn {
                    table: name.to_owned(),
                    column: column.to_owned(),
                    key: key.columns.join(", "),
                });
            }
        }
        let invalid = |reason: String| EngineError::InvalidKeyFilter {
            expression: self.expression.clone(),
            reason,
        };
        let mut printed = Printed::new();
        key_lookup::print_locally(table, &self.conditions, &mut printed).map_err(invalid)?;
        let matcher = RowMatcher::new(table, &self.conditions, &printed).map_err(invalid)?;
        Ok(TableFilter { printed, matcher })
    }
}

impl TableFilter {
    /// The chunks of `table` that can hold matching rows.
    pub(super) async fn chunks(
        &self,
        backup: &BackupRef,
        table: &TableEntry,
        filter: &KeyFilter,
    ) -> Result<Vec<usize>, EngineError> {
        Ok(
            key_lookup::choose_chunks(backup, table, &filter.conditions, &self.printed)
                .await?
                .chunks,
        )
    }

    pub(super) fn matches_row(&self, row: &[u8]) -> bool {
        self.matcher.matches(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgark_archive::{ColumnEntry, LookupKey, key_summary::KeyOrder};

    fn table(key: &[&str], columns: &[(&str, &str)]) -> TableEntry {
        TableEntry {
            id: 1,
            schema: "public".into(),
            name: "t".into(),
            item: 1,
            columns: columns
                .iter()
                .map(|(name, type_name)| ColumnEntry {
                    name: (*name).into(),
                    type_name: (*type_name).into(),
                })
                .collect(),
            row_count: 0,
            raw_bytes: 0,
            stored_bytes: 0,
            content_digest: String::new(),
            key_column: None,
            lookup_key: Some(LookupKey {
                columns: key.iter().map(|k| (*k).to_owned()).collect(),
                order: Some(KeyOrder::Integer),
                filtered: true,
            }),
            row_filter: None,
            chunk_index: None,
            chunks: Vec::new(),
        }
    }

    fn matcher(expression: &str, t: &TableEntry) -> Result<TableFilter, String> {
        KeyFilter::parse(expression)
            .and_then(|f| f.for_table(t, "public.t"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn rows_are_matched_on_their_printed_key_fields() {
        let t = table(&["id"], &[("id", "bigint"), ("v", "text")]);
        let f = matcher("id BETWEEN 10 AND 20", &t).expect("valid");
        assert!(f.matches_row(b"15\tx"));
        assert!(f.matches_row(b"10\tx") && f.matches_row(b"20\tx"));
        assert!(!f.matches_row(b"21\tx") && !f.matches_row(b"\\N\tx"));
        let f = matcher("id IN (3, '4') AND id >= 4", &t).expect("valid");
        assert!(f.matches_row(b"4\tx") && !f.matches_row(b"3\tx"));

        let u = table(
            &["tenant", "id"],
            &[("tenant", "integer"), ("id", "uuid"), ("v", "text")],
        );
        let f = matcher(
            "tenant = 7 AND id = '{550E8400-E29B-41D4-A716-446655440000}'",
            &u,
        )
        .expect("valid");
        assert!(f.matches_row(b"7\t550e8400-e29b-41d4-a716-446655440000\tx"));
        assert!(!f.matches_row(b"8\t550e8400-e29b-41d4-a716-446655440000\tx"));

        let w = table(&["code"], &[("code", "text")]);
        let f = matcher("code IN ('a\tb', 'it''s')", &w).expect("valid");
        assert!(f.matches_row(b"a\\tb") && f.matches_row(b"it's") && !f.matches_row(b"ab"));
    }

    #[test]
    fn malformed_or_unusable_filters_are_refused_with_a_reason() {
        let t = table(&["id"], &[("id", "integer"), ("v", "text"), ("at", "date")]);
        for bad in [
            "",
            "id",
            "id = 'x'",
            "id = 1 OR id = 2",
            "id BETWEEN 1",
            "id IN (1,",
            "id ~ 3",
            "id = 99999999999",
            "id = 1 -- comment",
        ] {
            let err = matcher(bad, &t).expect_err(bad);
            assert!(err.contains("invalid key condition"), "{bad}: {err}");
        }
        let err = matcher("v = 'x'", &t).expect_err("not the key");
        assert!(err.contains("the key of table public.t is id"), "{err}");
        let w = table(&["code"], &[("code", "text")]);
        let err = matcher("code > 'm'", &w).expect_err("text range");
        assert!(err.contains("collation"), "{err}");
        let d = table(&["at"], &[("at", "date")]);
        let err = matcher("at = '2024-01-01'", &d).expect_err("date");
        assert!(err.contains("without a server"), "{err}");
    }
}
