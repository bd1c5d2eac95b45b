//! Indexes of user tables, including those that back constraints (needed to attach partition
//! indexes and to find what a foreign key references).

use tokio_postgres::Client;

use super::rows::{get, query};
use crate::PgError;

#[derive(Debug, Clone)]
pub(crate) struct Index {
    pub oid: u32,
    pub table_oid: u32,
    pub schema: String,
    pub name: String,
    /// `pg_get_indexdef`: the full `CREATE [UNIQUE] INDEX ... ON [ONLY] ...` statement.
    pub definition: String,
    pub clustered: bool,
    /// The partitioned index this one is attached to.
    pub parent_oid: Option<u32>,
    /// The primary key, unique or exclusion constraint this index implements.
    pub constraint_oid: Option<u32>,
}

/// The indexes of the tables `table_oids`, ordered by table and name. Invalid indexes (a failed
/// `CREATE INDEX CONCURRENTLY`) are left out, as `pg_dump` does, except on partitioned tables,
/// where an index is invalid until every partition's index is attached.
pub(crate) async fn read_indexes(
    client: &Client,
    table_oids: &[u32],
) -> Result<Vec<Index>, PgError> {
    let sql = "SELECT i.indexrelid, i.indrelid, n.nspname::text AS schema, \
               ic.relname::text AS name, pg_catalog.pg_get_indexdef(i.indexrelid) AS definition, \
               i.indisclustered, inh.inhparent, con.oid AS constraint_oid \
               FROM pg_catalog.pg_index i \
               JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid \
               JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace \
               JOIN pg_catalog.pg_class t ON t.oid = i.indrelid \
               LEFT JOIN pg_catalog.pg_inherits inh ON inh.inhrelid = i.indexrelid \
               LEFT JOIN pg_catalog.pg_constraint con ON con.conindid = i.indexrelid \
                    AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x') \
               WHERE i.indrelid = ANY($1) AND (i.indisvalid OR t.relkind = 'p') \
               ORDER BY i.indrelid, ic.relname";
    let what = "indexes";
    let mut indexes = Vec::new();
    for row in query(client, what, sql, &[&table_oids]).await? {
        indexes.push(Index {
            oid: get(&row, "indexrelid", what)?,
            table_oid: get(&row, "indrelid", what)?,
            schema: get(&row, "schema", what)?,
            name: get(&row, "name", what)?,
            definition: get(&row, "definition", what)?,
            clustered: get(&row, "indisclustered", what)?,
            parent_oid: get(&row, "inhparent", what)?,
            constraint_oid: get(&row, "constraint_oid", what)?,
        });
    }
    Ok(indexes)
}
