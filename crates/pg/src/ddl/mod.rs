//! Turning the catalog model into ordered DDL items, plus the SQL pgark runs around them: COPY
//! statements for the data and the statements that undo a restore.
//!
//! Every identifier and literal goes through [`crate::quote`]; expressions, types and constraint
//! definitions come from the server's own deparsers (`pg_get_expr`, `format_type`,
//! `pg_get_constraintdef`, `pg_get_indexdef`), read with an empty `search_path` so that they are
//! schema-qualified.

mod build;
mod casts;
mod collations;
mod column_options;
mod columns;
mod comments;
mod constraints;
mod copy;
mod cycles;
mod depend;
mod drop;
mod foreign;
mod graph;
mod indexes;
mod languages;
mod large_objects;
mod opclasses;
mod operators;
mod order;
mod policies;
mod privileged;
mod privileges;
mod publications;
mod routines;
mod schemas;
mod sequences;
mod statistics;
mod tables;
mod target;
mod text_search;
mod triggers;
mod types;
mod views;

use pgark_archive::{ColumnEntry, DdlItem, PartitionedEntry, RoleEntry};
use tokio_postgres::Client;

use crate::PgError;
use crate::catalog;

pub use copy::{copy_in_sql, copy_out_columns_sql, copy_out_sql};
pub use drop::drop_statement;
pub use privileged::superuser_only;

/// The schema of one database, ready for the manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaDump {
    /// In execution order: sections in turn (pre-data, data, post-data) and every item after the
    /// items in its `deps`. Ids are unique and ascend in this order.
    pub items: Vec<DdlItem>,
    /// The tables that hold rows (not partitioned parents), by schema and name.
    pub tables: Vec<TableData>,
    /// The roles the items name, with their attributes and memberships.
    pub roles: Vec<RoleEntry>,
    /// Dependency loops that no known repair broke, each broken at its weakest edge: the dump
    /// goes on, and these say which items a restore may fail at.
    pub warnings: Vec<String>,
    /// The partitioned tables and their partitions.
    pub partitioned: Vec<PartitionedEntry>,
}

/// A table whose rows are dumped.
#[derive(Debug, Clone, PartialEq)]
pub struct TableData {
    /// The id of the [`DdlItem`] that creates the table.
    pub item: u32,
    pub oid: u32,
    pub schema: String,
    pub name: String,
    /// The COPY column list: non-dropped, non-generated columns in `attnum` order.
    pub columns: Vec<ColumnEntry>,
    /// On-disk size including TOAST, for scheduling the largest tables first.
    pub estimated_bytes: u64,
    /// Only the rows this condition (a `WHERE` clause, or empty for every row) selects are the
    /// dump's: an extension's configuration table, whose other rows `CREATE EXTENSION` creates.
    pub row_filter: Option<String>,
}

/// Reads the schema inside the caller's transaction (`BEGIN ISOLATION LEVEL REPEATABLE READ`,
/// usually with an imported snapshot), whose snapshot it sees; sequence states are read in it too.
///
/// For the rest of that transaction `search_path` is empty and `DateStyle` is ISO, so that
/// everything the server prints is qualified and unambiguous. Fails if the connection is not in a
/// transaction block; dependency loops are broken and reported in [`SchemaDump::warnings`].
pub async fn read_schema(client: &Client) -> Result<SchemaDump, PgError> {
    let catalog = catalog::read(client).await?;
    build::build(&catalog)
}
