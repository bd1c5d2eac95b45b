//! Table constraints: CHECK, primary key, unique, exclusion and foreign keys. NOT NULL (a
//! constraint of type 'n' from PostgreSQL 18) is read as the column's `attnotnull` instead.

use tokio_postgres::Client;

use super::rows::{get, query};
use crate::PgError;

#[derive(Debug, Clone)]
pub(crate) struct Constraint {
    pub oid: u32,
    pub table_oid: u32,
    pub name: String,
    pub kind: ConstraintKind,
    /// `pg_get_constraintdef`, e.g. `PRIMARY KEY (id)` or `CHECK ((n > 0)) NOT VALID`.
    pub definition: String,
    /// Defined on this table, not (only) inherited from a parent.
    pub is_local: bool,
    /// The parent partitioned table's constraint this one was cloned from, 0 if none.
    pub parent_oid: u32,
    pub validated: bool,
    pub deferrable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConstraintKind {
    Check,
    PrimaryKey,
    Unique,
    Exclusion,
    ForeignKey,
}

/// The constraints of the tables `table_oids`, ordered by table and name.
pub(crate) async fn read_constraints(
    client: &Client,
    table_oids: &[u32],
) -> Result<Vec<Constraint>, PgError> {
    let sql = "SELECT c.oid, c.conrelid, c.conname::text AS name, c.contype::text AS contype, \
               pg_catalog.pg_get_constraintdef(c.oid) AS definition, c.conislocal, \
               c.conparentid, c.convalidated, c.condeferrable \
               FROM pg_catalog.pg_constraint c \
               WHERE c.conrelid = ANY($1) AND c.contype IN ('c', 'p', 'u', 'x', 'f') \
               ORDER BY c.conrelid, c.conname";
    let what = "table constraints";
    let mut constraints = Vec::new();
    for row in query(client, what, sql, &[&table_oids]).await? {
        let contype: String = get(&row, "contype", what)?;
        let kind = match contype.as_str() {
            "c" => ConstraintKind::Check,
            "p" => ConstraintKind::PrimaryKey,
            "u" => ConstraintKind::Unique,
            "x" => ConstraintKind::Exclusion,
            _ => ConstraintKind::ForeignKey,
        };
        constraints.push(Constraint {
            oid: get(&row, "oid", what)?,
            table_oid: get(&row, "conrelid", what)?,
            name: get(&row, "name", what)?,
            kind,
            definition: get(&row, "definition", what)?,
            is_local: get(&row, "conislocal", what)?,
            parent_oid: get(&row, "conparentid", what)?,
            validated: get(&row, "convalidated", what)?,
            deferrable: get(&row, "condeferrable", what)?,
        });
    }
    Ok(constraints)
}
