//! Statements that move rows through temporary tables into a live table: staging a backup's
//! rows, converting them to the target's column types, locking the target, and writing them
//! under a conflict rule (plain insert, skip, upsert by key, delete-then-insert).
//!
//! Relations are passed as SQL text the caller built with [`crate::quote`] (a temporary table's
//! `pg_temp.name`, `ONLY schema.table`); column names are passed raw and quoted here. Conditions
//! (`--where`-style predicates) are SQL the caller vouches for and are parenthesised here. The
//! target table is aliased `t` and the restored rows `r` wherever a statement names both.

use std::time::Duration;

use crate::quote;

/// Makes the transaction's lock waits give up after `timeout` (0: wait forever).
pub fn set_local_lock_timeout(timeout: Duration) -> String {
    format!("SET LOCAL lock_timeout = '{}ms'", timeout.as_millis())
}

/// A temporary table dropped at commit, with `columns` as `(name, type)`.
pub fn create_temp_table(table: &str, columns: &[(&str, &str)]) -> String {
    let definitions: Vec<String> = columns
        .iter()
        .map(|(name, type_name)| format!("{} {type_name}", quote::ident(name)))
        .collect();
    format!(
        "CREATE TEMP TABLE {table} ({}) ON COMMIT DROP",
        definitions.join(", ")
    )
}

/// A plain table with just `columns` as `(name, type)`: no constraints, defaults or storage
/// options (a table to hold saved rows, or one created beside a live table when its definition
/// cannot be reused).
pub fn create_table(table: &str, columns: &[(&str, &str)]) -> String {
    let definitions: Vec<String> = columns
        .iter()
        .map(|(name, type_name)| format!("    {} {type_name}", quote::ident(name)))
        .collect();
    format!("CREATE TABLE {table} (\n{}\n);", definitions.join(",\n"))
}

/// `COPY (SELECT columns FROM table WHERE (condition)) TO STDOUT`: the rows of `table` (as `ONLY
/// t` where inheritance children must not be read) matching `condition` (all without one).
pub fn copy_out_rows(table: &str, columns: &[&str], condition: Option<&str>) -> String {
    format!(
        "COPY (SELECT {} FROM {table}{}) TO STDOUT",
        column_list(columns),
        where_clause(condition.map(|c| format!("({c})")))
    )
}

/// `COPY table (columns) FROM STDIN`, in the order the COPY text has them.
pub fn copy_in(table: &str, columns: &[&str]) -> String {
    format!("COPY {table} ({}) FROM STDIN", column_list(columns))
}

/// A statement that reads no row but fails as `condition` would on `table` (an unknown column, a
/// syntax error, a type mismatch): checks a condition before any data is loaded.
pub fn probe_condition(table: &str, condition: &str) -> String {
    format!("SELECT 1 FROM {table} WHERE ({condition}) LIMIT 0")
}

/// One column of a conversion: from a staged column to a target column, cast when the types
/// differ.
#[derive(Debug, Clone, Copy)]
pub struct Conversion<'a> {
    pub from: &'a str,
    pub to: &'a str,
    /// The target's type, when it differs from the staged column's.
    pub cast_to: Option<&'a str>,
}

/// A temporary table (dropped at commit) holding the rows of `from` that match `condition`, with
/// its columns renamed and cast as `columns` say.
pub fn create_converted(
    table: &str,
    from: &str,
    columns: &[Conversion<'_>],
    condition: Option<&str>,
) -> String {
    let select: Vec<String> = columns
        .iter()
        .map(|c| {
            let (from, to) = (quote::ident(c.from), quote::ident(c.to));
            match (c.cast_to, from == to) {
                (None, true) => from,
                (None, false) => format!("{from} AS {to}"),
                (Some(cast_to), _) => format!("{from}::{cast_to} AS {to}"),
            }
        })
        .collect();
    format!(
        "CREATE TEMP TABLE {table} ON COMMIT DROP AS SELECT {} FROM {from}{}",
        select.join(", "),
        where_clause(condition.map(|c| format!("({c})")))
    )
}

pub fn drop_table(table: &str) -> String {
    format!("DROP TABLE {table}")
}

/// Locks `tables` against other writers for the rest of the transaction; readers go on.
pub fn lock_against_writers(tables: &[String]) -> String {
    format!(
        "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
        tables.join(", ")
    )
}

/// `(k1, k2)`: a key as a row value.
pub fn key_tuple(key: &[String]) -> String {
    format!("({})", column_list(key))
}

/// `k1, k2`.
pub fn column_list<S: AsRef<str>>(columns: &[S]) -> String {
    columns
        .iter()
        .map(|c| quote::ident(c.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A condition on a table's rows: its key is one of the keys of `rows`.
pub fn key_in(key: &[String], rows: &str) -> String {
    format!(
        "{} IN (SELECT {} FROM {rows})",
        key_tuple(key),
        column_list(key)
    )
}

/// One row, one column: the distinct keys of `rows` written as SQL literals and joined with
/// commas (`1, 2` for an integer key, `'a', 'b'` otherwise, `('a', '1'), ...` for a key of
/// several columns), NULL when `rows` is empty: a list for `key IN (...)` in a later command.
pub fn key_literals(rows: &str, key: &[String], integer: bool) -> String {
    let value = |k: &String| {
        if integer {
            format!("{}::text", quote::ident(k))
        } else {
            format!("pg_catalog.quote_literal({}::text)", quote::ident(k))
        }
    };
    let element = match key {
        [one] => value(one),
        several => format!(
            "'(' || concat_ws(', ', {}) || ')'",
            several.iter().map(value).collect::<Vec<_>>().join(", ")
        ),
    };
    format!(
        "SELECT string_agg(e, ', ' ORDER BY e) FROM (SELECT DISTINCT {element} AS e FROM {rows}) s"
    )
}

/// Inserting every row of a (temporary) table into the target.
#[derive(Debug, Clone, Copy)]
pub struct Insert<'a> {
    /// The target table, qualified.
    pub table: &'a str,
    /// The columns written; the source has the same names.
    pub columns: &'a [String],
    /// Write `GENERATED ALWAYS` identity columns from the source too.
    pub overriding_system_value: bool,
    /// The rows to insert.
    pub from: &'a str,
}

impl Insert<'_> {
    /// A plain insert: any conflict fails it. Its row count is the rows inserted.
    pub fn sql(&self) -> String {
        let list = column_list(self.columns);
        let overriding = if self.overriding_system_value {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        };
        format!(
            "INSERT INTO {} AS t ({list}){overriding} SELECT {list} FROM {}",
            self.table, self.from
        )
    }

    /// Rows whose key (or another unique constraint) the target has already are left alone.
    pub fn skipping_conflicts(&self) -> String {
        format!("{} ON CONFLICT DO NOTHING", self.sql())
    }

    /// Rows whose `key` the target has already overwrite its row where a column of `updated`
    /// differs; one row, one column: how many rows were inserted or changed.
    pub fn upserting(&self, key: &[String], updated: &[&str]) -> String {
        let action = if updated.is_empty() {
            "DO NOTHING".to_owned()
        } else {
            let quoted: Vec<String> = updated.iter().map(|c| quote::ident(c)).collect();
            let set: Vec<String> = quoted
                .iter()
                .map(|c| format!("{c} = EXCLUDED.{c}"))
                .collect();
            let old: Vec<String> = quoted.iter().map(|c| format!("t.{c}")).collect();
            let new: Vec<String> = quoted.iter().map(|c| format!("EXCLUDED.{c}")).collect();
            // Compared as text, which every type has (json has no equality operator).
            format!(
                "DO UPDATE SET {} WHERE ROW({})::text IS DISTINCT FROM ROW({})::text",
                set.join(", "),
                old.join(", "),
                new.join(", ")
            )
        };
        format!(
            "WITH w AS ({} ON CONFLICT {} {action} RETURNING 1) SELECT count(*) FROM w",
            self.sql(),
            key_tuple(key)
        )
    }
}

/// `r.k1 = t.k1 AND r.k2 = t.k2`.
fn same_key(key: &[String]) -> String {
    key.iter()
        .map(|k| format!("r.{0} = t.{0}", quote::ident(k)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// One row, one column: how many of `rows` have a key `target` (a table, as `ONLY t` where
/// inheritance children must not count) has already.
pub fn count_existing_keys(rows: &str, target: &str, key: &[String]) -> String {
    format!(
        "SELECT count(*) FROM {rows} r WHERE EXISTS (SELECT 1 FROM {target} t WHERE {})",
        same_key(key)
    )
}

/// Deletes the rows of `target` matching `condition` (all without one), except — with a key —
/// those whose key `rows` has: those are overwritten in place by the upsert that follows.
pub fn delete_replaced(
    target: &str,
    condition: Option<&str>,
    kept: Option<(&str, &[String])>,
) -> String {
    let mut conditions: Vec<String> = condition.map(|c| format!("({c})")).into_iter().collect();
    if let Some((rows, key)) = kept.filter(|(_, key)| !key.is_empty()) {
        conditions.push(format!(
            "NOT EXISTS (SELECT 1 FROM {rows} r WHERE {})",
            same_key(key)
        ));
    }
    let filter = (!conditions.is_empty()).then(|| conditions.join(" AND "));
    format!("DELETE FROM {target} t{}", where_clause(filter))
}

/// A condition on a referencing table's rows: its foreign-key `columns` hold a key (the
/// `referenced` columns) of one of `parent_rows`.
pub fn references_any(columns: &[String], referenced: &[String], parent_rows: &str) -> String {
    format!(
        "({}) IN (SELECT {} FROM {parent_rows})",
        column_list(columns),
        column_list(referenced)
    )
}

/// A condition selecting the rows of `table` that `condition` selects (all without one) and,
/// transitively, every row of `table` whose `columns` reference (by its `referenced` key) one of
/// them: a foreign key from a table to itself, walked recursively.
pub fn with_self_references(
    table: &str,
    condition: Option<&str>,
    columns: &[String],
    referenced: &[String],
) -> String {
    let list = column_list(referenced);
    let s_list: Vec<String> = referenced
        .iter()
        .map(|c| format!("s.{}", quote::ident(c)))
        .collect();
    let join: Vec<String> = columns
        .iter()
        .zip(referenced)
        .map(|(f, r)| format!("s.{} = c.{}", quote::ident(f), quote::ident(r)))
        .collect();
    format!(
        "({list}) IN (WITH RECURSIVE c AS (SELECT {list} FROM {table}{} \
         UNION SELECT {} FROM {table} s JOIN c ON {}) SELECT {list} FROM c)",
        where_clause(condition.map(|c| format!("({c})"))),
        s_list.join(", "),
        join.join(" AND "),
    )
}

/// Sets the foreign-key `columns` of `target`'s rows (by `key`) back to their values in `rows`,
/// where a delete cleared them: NULL (`to_null`), or otherwise (`SET DEFAULT`) differing from
/// `rows`. One row, one column: how many rows were changed.
pub fn set_back_cleared(
    target: &str,
    rows: &str,
    key: &[String],
    columns: &[String],
    to_null: bool,
) -> String {
    let set: Vec<String> = columns
        .iter()
        .map(|c| format!("{0} = r.{0}", quote::ident(c)))
        .collect();
    let side = |alias: &str| -> Vec<String> {
        columns
            .iter()
            .map(|c| format!("{alias}.{}", quote::ident(c)))
            .collect()
    };
    let cleared = if to_null {
        side("t")
            .iter()
            .map(|c| format!("{c} IS NULL"))
            .collect::<Vec<_>>()
            .join(" OR ")
    } else {
        format!(
            "ROW({}) IS DISTINCT FROM ROW({})",
            side("t").join(", "),
            side("r").join(", ")
        )
    };
    format!(
        "WITH u AS (UPDATE {target} AS t SET {} FROM {rows} r WHERE {} AND ({cleared}) \
         RETURNING 1) SELECT count(*) FROM u",
        set.join(", "),
        same_key(key)
    )
}

/// One row, one column: the largest value of `column` in `table` if it has reached `sequence`'s
/// last value (no row when the sequence is ahead).
pub fn column_max_reaching(table: &str, column: &str, sequence: &str) -> String {
    format!(
        "SELECT m FROM (SELECT max({})::int8 AS m FROM {table}) x \
         WHERE m >= (SELECT last_value FROM {sequence})",
        quote::ident(column)
    )
}

fn where_clause(condition: Option<String>) -> String {
    condition.map(|c| format!(" WHERE {c}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn staging_statements_quote_column_names() {
        assert_eq!(
            create_temp_table("pg_temp.s", &[("id", "integer"), ("Odd \"name\"", "text")]),
            "CREATE TEMP TABLE pg_temp.s (id integer, \"Odd \"\"name\"\"\" text) ON COMMIT DROP"
        );
        assert_eq!(
            copy_in("pg_temp.s", &["Odd \"name\"", "id"]),
            "COPY pg_temp.s (\"Odd \"\"name\"\"\", id) FROM STDIN"
        );
        assert_eq!(
            create_table("app.saved", &[("id", "integer"), ("note", "text")]),
            "CREATE TABLE app.saved (\n    id integer,\n    note text\n);"
        );
        assert_eq!(
            copy_out_rows("ONLY app.t", &["id", "Note"], Some("id = 1 OR id = 2")),
            "COPY (SELECT id, \"Note\" FROM ONLY app.t WHERE (id = 1 OR id = 2)) TO STDOUT"
        );
        assert_eq!(
            copy_out_rows("app.p", &["id"], None),
            "COPY (SELECT id FROM app.p) TO STDOUT"
        );
        assert_eq!(
            probe_condition("pg_temp.s", "id > 3 OR true"),
            "SELECT 1 FROM pg_temp.s WHERE (id > 3 OR true) LIMIT 0"
        );
        assert_eq!(
            set_local_lock_timeout(Duration::from_secs(10)),
            "SET LOCAL lock_timeout = '10000ms'"
        );
    }

    #[test]
    fn a_conversion_renames_and_casts_only_what_differs() {
        let columns = [
            Conversion {
                from: "id",
                to: "id",
                cast_to: None,
            },
            Conversion {
                from: "old",
                to: "New",
                cast_to: None,
            },
            Conversion {
                from: "n",
                to: "n",
                cast_to: Some("bigint"),
            },
        ];
        assert_eq!(
            create_converted("pg_temp.r", "pg_temp.s", &columns, Some("id < 5 OR id > 9")),
            "CREATE TEMP TABLE pg_temp.r ON COMMIT DROP AS SELECT id, old AS \"New\", n::bigint AS n \
             FROM pg_temp.s WHERE (id < 5 OR id > 9)"
        );
        assert_eq!(
            create_converted("pg_temp.r", "pg_temp.s", &columns[..1], None),
            "CREATE TEMP TABLE pg_temp.r ON COMMIT DROP AS SELECT id FROM pg_temp.s"
        );
    }

    #[test]
    fn inserts_under_each_conflict_rule() {
        let columns = strings(&["id", "note"]);
        let insert = Insert {
            table: "public.t",
            columns: &columns,
            overriding_system_value: true,
            from: "pg_temp.r",
        };
        assert_eq!(
            insert.sql(),
            "INSERT INTO public.t AS t (id, note) OVERRIDING SYSTEM VALUE SELECT id, note FROM pg_temp.r"
        );
        assert!(
            insert
                .skipping_conflicts()
                .ends_with(" ON CONFLICT DO NOTHING")
        );
        let key = strings(&["id"]);
        assert_eq!(
            insert.upserting(&key, &["note"]),
            "WITH w AS (INSERT INTO public.t AS t (id, note) OVERRIDING SYSTEM VALUE SELECT id, \
             note FROM pg_temp.r ON CONFLICT (id) DO UPDATE SET note = EXCLUDED.note WHERE \
             ROW(t.note)::text IS DISTINCT FROM ROW(EXCLUDED.note)::text RETURNING 1) SELECT \
             count(*) FROM w"
        );
        assert!(
            insert
                .upserting(&key, &[])
                .contains("ON CONFLICT (id) DO NOTHING RETURNING 1")
        );
    }

    #[test]
    fn replacing_keeps_the_rows_the_upsert_overwrites() {
        let key = strings(&["a", "b"]);
        assert_eq!(
            delete_replaced("ONLY public.t", Some("a > 1"), Some(("pg_temp.r", &key))),
            "DELETE FROM ONLY public.t t WHERE (a > 1) AND NOT EXISTS (SELECT 1 FROM pg_temp.r r \
             WHERE r.a = t.a AND r.b = t.b)"
        );
        assert_eq!(
            delete_replaced("public.t", None, Some(("pg_temp.r", &[]))),
            "DELETE FROM public.t t"
        );
        assert_eq!(
            count_existing_keys("pg_temp.r", "ONLY public.t", &key),
            "SELECT count(*) FROM pg_temp.r r WHERE EXISTS (SELECT 1 FROM ONLY public.t t WHERE \
             r.a = t.a AND r.b = t.b)"
        );
        assert_eq!(
            key_in(&key, "pg_temp.r"),
            "(a, b) IN (SELECT a, b FROM pg_temp.r)"
        );
        assert_eq!(
            lock_against_writers(&strings(&["ONLY public.t", "public.p"])),
            "LOCK TABLE ONLY public.t, public.p IN SHARE ROW EXCLUSIVE MODE"
        );
    }

    #[test]
    fn referencing_rows_are_selected_and_set_back_by_key() {
        let (columns, referenced) = (strings(&["parent_id"]), strings(&["id"]));
        assert_eq!(
            references_any(&columns, &referenced, "pg_temp.r0"),
            "(parent_id) IN (SELECT id FROM pg_temp.r0)"
        );
        assert_eq!(
            with_self_references("pg_temp.s", Some("id = 1"), &columns, &referenced),
            "(id) IN (WITH RECURSIVE c AS (SELECT id FROM pg_temp.s WHERE (id = 1) UNION SELECT \
             s.id FROM pg_temp.s s JOIN c ON s.parent_id = c.id) SELECT id FROM c)"
        );
        let key = strings(&["id"]);
        assert_eq!(
            set_back_cleared("ONLY app.child", "pg_temp.r1", &key, &columns, true),
            "WITH u AS (UPDATE ONLY app.child AS t SET parent_id = r.parent_id FROM pg_temp.r1 r \
             WHERE r.id = t.id AND (t.parent_id IS NULL) RETURNING 1) SELECT count(*) FROM u"
        );
        assert!(
            set_back_cleared("app.child", "pg_temp.r1", &key, &columns, false)
                .contains("ROW(t.parent_id) IS DISTINCT FROM ROW(r.parent_id)")
        );
    }
}
