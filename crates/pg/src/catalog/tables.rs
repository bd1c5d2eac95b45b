//! User tables (ordinary and partitioned, including partitions and inheritance children) and
//! their columns.

use std::collections::HashMap;

use tokio_postgres::{Client, Row};

use super::filter::user_table;
use super::names::{QualName, optional};
use super::rows::{get, get_u64, query};
use crate::PgError;

#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub oid: u32,
    pub name: QualName,
    pub partitioned: bool,
    pub unlogged: bool,
    /// Only when not `heap`.
    pub access_method: Option<String>,
    /// `reloptions` as `key=value`.
    pub options: Vec<String>,
    /// The TOAST table's `reloptions`, written `toast.key=value` in DDL.
    pub toast_options: Vec<String>,
    /// The composite type of a typed table (`CREATE TABLE ... OF type`), which gives its columns.
    pub of_type: Option<String>,
    /// `pg_get_partkeydef`, e.g. `RANGE (created_at)`, for partitioned tables.
    pub partition_key: Option<String>,
    /// `FOR VALUES ...` or `DEFAULT`, for partitions.
    pub partition_bound: Option<String>,
    /// Inheritance parents in `inhseqno` order; for a partition, its one parent.
    pub parents: Vec<Parent>,
    pub columns: Vec<Column>,
    /// On-disk size including TOAST, to schedule the largest tables first.
    pub estimated_bytes: u64,
    /// The table's row type and its array type, which columns of other tables may use.
    pub row_type: u32,
    pub row_array_type: u32,
}

impl Table {
    pub fn is_partition(&self) -> bool {
        self.partition_bound.is_some()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Parent {
    pub oid: u32,
    pub name: QualName,
}

#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub name: String,
    /// `format_type(atttypid, atttypmod)`.
    pub type_name: String,
    /// Only when it differs from the column type's default collation.
    pub collation: Option<QualName>,
    pub not_null: bool,
    /// PostgreSQL 18+: the name of the NOT NULL constraint (older servers do not name them).
    pub not_null_name: Option<String>,
    /// PostgreSQL 18+: the NOT NULL constraint is the table's own (`conislocal`), not only
    /// inherited from a parent; an inherited column's local NOT NULL must be declared again.
    pub not_null_local: bool,
    /// The default, or the generation expression of a generated column.
    pub default: Option<ColumnDefault>,
    pub generated: Generated,
    pub identity: Identity,
    /// Defined in this table (not only inherited).
    pub is_local: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct ColumnDefault {
    /// The `pg_attrdef` row, which `pg_depend` names as the dependent of what the expression uses.
    pub oid: u32,
    pub expr: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Generated {
    No,
    Stored,
    /// PostgreSQL 18+.
    Virtual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Identity {
    No,
    Always,
    ByDefault,
}

/// Every user table, ordered by schema and name.
pub(crate) async fn read_tables(client: &Client) -> Result<Vec<Table>, PgError> {
    read_relations(client, &user_table(), "tables").await
}

/// The relations aliased `c` (joined to namespace `n`) that `condition` selects, as tables.
pub(crate) async fn read_relations(
    client: &Client,
    condition: &str,
    what: &str,
) -> Result<Vec<Table>, PgError> {
    let sql = format!(
        "SELECT c.oid, n.nspname::text AS schema, c.relname::text AS name, \
         c.relkind = 'p' AS partitioned, c.relpersistence = 'u' AS unlogged, \
         c.reltype, COALESCE(rt.typarray, 0) AS typarray, \
         CASE WHEN am.amname <> 'heap' THEN am.amname::text END AS access_method, \
         c.reloptions AS options, tc.reloptions AS toast_options, \
         CASE WHEN c.reloftype <> 0 THEN pg_catalog.format_type(c.reloftype, NULL) END AS of_type, \
         CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END AS partition_key, \
         CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END \
              AS partition_bound, \
         CASE WHEN c.relkind = 'r' THEN pg_catalog.pg_table_size(c.oid) ELSE 0 END AS size \
         FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_catalog.pg_type rt ON rt.oid = c.reltype \
         LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam \
         LEFT JOIN pg_catalog.pg_class tc ON tc.oid = c.reltoastrelid \
         WHERE {condition} ORDER BY n.nspname, c.relname"
    );
    let mut tables = query(client, what, &sql, &[])
        .await?
        .iter()
        .map(|row| table(row, what))
        .collect::<Result<Vec<_>, _>>()?;
    let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
    let mut parents = read_parents(client, &oids).await?;
    let mut columns = read_columns(client, &oids).await?;
    for table in &mut tables {
        table.parents = parents.remove(&table.oid).unwrap_or_default();
        table.columns = columns.remove(&table.oid).unwrap_or_default();
    }
    Ok(tables)
}

fn table(row: &Row, what: &str) -> Result<Table, PgError> {
    let options: Option<Vec<String>> = get(row, "options", what)?;
    let toast_options: Option<Vec<String>> = get(row, "toast_options", what)?;
    Ok(Table {
        oid: get(row, "oid", what)?,
        name: QualName::new(get(row, "schema", what)?, get(row, "name", what)?),
        partitioned: get(row, "partitioned", what)?,
        unlogged: get(row, "unlogged", what)?,
        access_method: get(row, "access_method", what)?,
        options: options.unwrap_or_default(),
        toast_options: toast_options.unwrap_or_default(),
        of_type: get(row, "of_type", what)?,
        partition_key: get(row, "partition_key", what)?,
        partition_bound: get(row, "partition_bound", what)?,
        parents: Vec::new(),
        columns: Vec::new(),
        estimated_bytes: get_u64(row, "size", what)?,
        row_type: get(row, "reltype", what)?,
        row_array_type: get(row, "typarray", what)?,
    })
}

async fn read_parents(client: &Client, oids: &[u32]) -> Result<HashMap<u32, Vec<Parent>>, PgError> {
    let sql = "SELECT i.inhrelid, p.oid, pn.nspname::text AS schema, p.relname::text AS name \
               FROM pg_catalog.pg_inherits i \
               JOIN pg_catalog.pg_class p ON p.oid = i.inhparent \
               JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace \
               WHERE i.inhrelid = ANY($1) ORDER BY i.inhrelid, i.inhseqno";
    let what = "table inheritance";
    let mut parents: HashMap<u32, Vec<Parent>> = HashMap::new();
    for row in query(client, what, sql, &[&oids]).await? {
        parents
            .entry(get(&row, "inhrelid", what)?)
            .or_default()
            .push(Parent {
                oid: get(&row, "oid", what)?,
                name: QualName::new(get(&row, "schema", what)?, get(&row, "name", what)?),
            });
    }
    Ok(parents)
}

async fn read_columns(client: &Client, oids: &[u32]) -> Result<HashMap<u32, Vec<Column>>, PgError> {
    let sql = "SELECT a.attrelid, a.attname::text AS name, \
               pg_catalog.format_type(a.atttypid, a.atttypmod) AS type_name, \
               a.attnotnull, a.attidentity::text AS identity, a.attgenerated::text AS generated, \
               a.attislocal, cn.nspname::text AS coll_schema, co.collname::text AS coll_name, \
               ad.oid AS default_oid, pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) AS default_expr, \
               nn.conname::text AS not_null_name, COALESCE(nn.conislocal, false) AS not_null_local \
               FROM pg_catalog.pg_attribute a \
               JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
               LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation \
                    AND a.attcollation <> t.typcollation \
               LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace \
               LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum \
               LEFT JOIN pg_catalog.pg_constraint nn ON nn.conrelid = a.attrelid \
                    AND nn.contype = 'n' AND nn.conkey[1] = a.attnum \
               WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped \
               ORDER BY a.attrelid, a.attnum";
    let what = "table columns";
    let mut columns: HashMap<u32, Vec<Column>> = HashMap::new();
    for row in query(client, what, sql, &[&oids]).await? {
        columns
            .entry(get(&row, "attrelid", what)?)
            .or_default()
            .push(column(&row, what)?);
    }
    Ok(columns)
}

fn column(row: &Row, what: &str) -> Result<Column, PgError> {
    let name: String = get(row, "name", what)?;
    let identity: String = get(row, "identity", what)?;
    let generated: String = get(row, "generated", what)?;
    let default_oid: Option<u32> = get(row, "default_oid", what)?;
    let default_expr: Option<String> = get(row, "default_expr", what)?;
    let unknown = |attribute: &str, value: &str| PgError::Catalog {
        reason: format!("column {name:?} has an unknown {attribute} {value:?}"),
    };
    Ok(Column {
        type_name: get(row, "type_name", what)?,
        collation: optional(row, "coll_schema", "coll_name", what)?,
        not_null: get(row, "attnotnull", what)?,
        not_null_name: get(row, "not_null_name", what)?,
        not_null_local: get(row, "not_null_local", what)?,
        default: default_oid
            .zip(default_expr)
            .map(|(oid, expr)| ColumnDefault { oid, expr }),
        generated: match generated.as_str() {
            "" => Generated::No,
            "s" => Generated::Stored,
            "v" => Generated::Virtual,
            other => return Err(unknown("attgenerated", other)),
        },
        identity: match identity.as_str() {
            "" => Identity::No,
            "a" => Identity::Always,
            "d" => Identity::ByDefault,
            other => return Err(unknown("attidentity", other)),
        },
        is_local: get(row, "attislocal", what)?,
        name,
    })
}
