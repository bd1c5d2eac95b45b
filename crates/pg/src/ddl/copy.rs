//! The COPY statements that move a table's rows (text format).

use pgark_archive::ColumnEntry;

use super::TableData;
use crate::quote::{ident, qualified};

/// `COPY schema.table (columns) TO STDOUT`. A table with no copyable columns gets no column
/// list: its rows still come out, one empty line each. Only the rows of its filter, if it has one
/// (see [`TableData::row_filter`]).
pub fn copy_out_sql(t: &TableData) -> String {
    copy_out_columns_sql(&t.schema, &t.name, &t.columns, t.row_filter.as_deref())
}

/// `COPY schema.table (columns) TO STDOUT` for a table known only by its manifest entry (to read
/// a restored table back the way the dump read it), of the rows `row_filter` selects if given.
pub fn copy_out_columns_sql(
    schema: &str,
    name: &str,
    columns: &[ColumnEntry],
    row_filter: Option<&str>,
) -> String {
    match row_filter {
        // An extension's filter is a `WHERE` clause written for a query over the table alone.
        Some(condition) => {
            let columns: Vec<String> = columns.iter().map(|c| ident(&c.name)).collect();
            format!(
                "COPY (SELECT {} FROM ONLY {} {condition}) TO STDOUT",
                columns.join(", "),
                qualified(schema, name)
            )
        }
        None => format!("COPY {} TO STDOUT", target(schema, name, columns)),
    }
}

/// `COPY schema.table (columns) FROM STDIN`, the counterpart of [`copy_out_sql`].
pub fn copy_in_sql(schema: &str, name: &str, columns: &[ColumnEntry]) -> String {
    format!("COPY {} FROM STDIN", target(schema, name, columns))
}

fn target(schema: &str, name: &str, columns: &[ColumnEntry]) -> String {
    let table = qualified(schema, name);
    if columns.is_empty() {
        table
    } else {
        let columns: Vec<String> = columns.iter().map(|c| ident(&c.name)).collect();
        format!("{table} ({})", columns.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> ColumnEntry {
        ColumnEntry {
            name: name.into(),
            type_name: "text".into(),
        }
    }

    #[test]
    fn copy_names_every_column_quoted() {
        let t = TableData {
            item: 1,
            oid: 1,
            schema: "Sales".into(),
            name: "order".into(),
            columns: vec![entry("id"), entry("Total \"net\"")],
            estimated_bytes: 0,
            row_filter: None,
        };
        assert_eq!(
            copy_out_sql(&t),
            "COPY \"Sales\".\"order\" (id, \"Total \"\"net\"\"\") TO STDOUT"
        );
        assert_eq!(
            copy_in_sql("Sales", "order", &t.columns),
            "COPY \"Sales\".\"order\" (id, \"Total \"\"net\"\"\") FROM STDIN"
        );
    }

    #[test]
    fn filtered_tables_copy_the_rows_their_condition_selects() {
        let t = TableData {
            item: 1,
            oid: 1,
            schema: "ext".into(),
            name: "settings".into(),
            columns: vec![entry("name"), entry("value")],
            estimated_bytes: 0,
            row_filter: Some("WHERE NOT builtin".into()),
        };
        assert_eq!(
            copy_out_sql(&t),
            "COPY (SELECT name, value FROM ONLY ext.settings WHERE NOT builtin) TO STDOUT"
        );
    }

    #[test]
    fn zero_column_tables_copy_without_a_column_list() {
        assert_eq!(copy_in_sql("public", "t", &[]), "COPY public.t FROM STDIN");
    }
}
