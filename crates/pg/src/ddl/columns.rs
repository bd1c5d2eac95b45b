//! Column definitions inside `CREATE TABLE`, and what inheritance children need beyond them.

use super::sequences::sequence_options;
use crate::catalog::{Column, Generated, Identity, Sequence, Table};
use crate::quote::ident;

/// Whether `CREATE TABLE` lists the column: a partition lists all (it is created standalone),
/// other tables those they define themselves (the rest come from `INHERITS`).
pub(super) fn is_declared(table: &Table, column: &Column) -> bool {
    column.is_local || table.is_partition()
}

/// An inherited column's default that a parent would give it anyway needs no statement.
pub(super) fn inherits_default(parents: &[Option<&Table>], column: &Column) -> bool {
    let expr = column.default.as_ref().map(|d| d.expr.as_str());
    parents.iter().flatten().any(|p| {
        p.columns.iter().any(|pc| {
            pc.name == column.name && pc.default.as_ref().map(|d| d.expr.as_str()) == expr
        })
    })
}

/// An inherited (undeclared) column that is NOT NULL only in the child: the parent cannot bring
/// that, so it is set after the table exists, as `pg_dump` does.
pub(super) fn inherited_not_null(table: &Table, parents: &[Option<&Table>]) -> Vec<String> {
    table
        .columns
        .iter()
        .filter(|c| !is_declared(table, c) && c.not_null && !c.not_null_local)
        .filter(|c| {
            !parents
                .iter()
                .flatten()
                .any(|p| p.columns.iter().any(|pc| pc.name == c.name && pc.not_null))
        })
        .map(|c| {
            format!(
                "ALTER TABLE ONLY {} ALTER COLUMN {} SET NOT NULL;",
                table.name.sql(),
                ident(&c.name)
            )
        })
        .collect()
}

pub(super) fn column_definition(table: &Table, c: &Column, identity: Option<&Sequence>) -> String {
    let mut sql = format!("{} {}", ident(&c.name), c.type_name);
    if let Some(collation) = &c.collation {
        sql.push_str(&format!(" COLLATE {}", collation.sql()));
    }
    let default = c.default.as_ref().map(|d| d.expr.as_str());
    match (c.generated, default) {
        (Generated::Stored, Some(expr)) => {
            sql.push_str(&format!(" GENERATED ALWAYS AS ({expr}) STORED"));
        }
        (Generated::Virtual, Some(expr)) => {
            sql.push_str(&format!(" GENERATED ALWAYS AS ({expr}) VIRTUAL"));
        }
        (_, Some(expr)) => sql.push_str(&format!(" DEFAULT {expr}")),
        (_, None) => {}
    }
    // Without its sequence (a partition's column, whose sequence is its parent's) the identity
    // comes back with ATTACH PARTITION.
    if let Some(seq) = identity {
        let when = match c.identity {
            Identity::Always => "ALWAYS",
            Identity::ByDefault | Identity::No => "BY DEFAULT",
        };
        // The sequence takes the table's persistence unless it was changed afterwards
        // (`ALTER SEQUENCE ... SET LOGGED`, PostgreSQL 15+).
        let persistence = match (seq.unlogged, table.unlogged) {
            (true, false) => " UNLOGGED",
            (false, true) => " LOGGED",
            _ => "",
        };
        sql.push_str(&format!(
            " GENERATED {when} AS IDENTITY (SEQUENCE NAME {}{persistence} {})",
            seq.name.sql(),
            sequence_options(seq).join(" ")
        ));
    }
    if c.not_null {
        if let Some(name) = not_null_name(table, c) {
            sql.push_str(&format!(" CONSTRAINT {}", ident(name)));
        }
        sql.push_str(" NOT NULL");
    }
    sql
}

/// The NOT NULL constraint's name when it is not the one the server would choose
/// (`table_column_not_null`), as `pg_dump` does. Older servers accept the name and ignore it.
fn not_null_name<'a>(table: &Table, c: &'a Column) -> Option<&'a str> {
    let name = c.not_null_name.as_deref()?;
    (name != format!("{}_{}_not_null", table.name.name, c.name)).then_some(name)
}
