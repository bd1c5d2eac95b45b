//! Per-column settings `CREATE TABLE` cannot carry: statistics targets, storage, compression
//! and attribute options; and each table's replica identity.

use tokio_postgres::Client;

use super::rows::{get, query};
use crate::PgError;

#[derive(Debug, Clone)]
pub(crate) struct ColumnOptions {
    pub table_oid: u32,
    pub column: String,
    pub statistics: Option<i32>,
    /// `PLAIN`, `EXTERNAL`, `EXTENDED` or `MAIN`, when not the type's default.
    pub storage: Option<String>,
    /// `pglz` or `lz4` (PostgreSQL 14+), when set.
    pub compression: Option<String>,
    /// `attoptions` as `key=value` (`n_distinct=100`).
    pub options: Vec<String>,
}

/// A statistics target on an index column (an expression's), set with
/// `ALTER INDEX ... ALTER COLUMN n SET STATISTICS`.
#[derive(Debug, Clone)]
pub(crate) struct IndexStatistics {
    pub index_oid: u32,
    pub column: i16,
    pub statistics: i32,
}

#[derive(Debug, Clone)]
pub(crate) struct ReplicaIdentity {
    pub table_oid: u32,
    /// `n` NOTHING, `f` FULL or `i` (USING INDEX `index`).
    pub kind: String,
    pub index: Option<String>,
}

pub(crate) async fn read_column_options(
    client: &Client,
    tables: &[u32],
    server_version_num: i32,
) -> Result<Vec<ColumnOptions>, PgError> {
    let compression = if server_version_num >= 140_000 {
        "CASE a.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END"
    } else {
        "NULL::text"
    };
    let sql = format!(
        "SELECT a.attrelid, a.attname::text AS name, \
         NULLIF(a.attstattarget::int4, -1) AS statistics, \
         CASE WHEN a.attstorage <> t.typstorage THEN CASE a.attstorage WHEN 'p' THEN 'PLAIN' \
              WHEN 'e' THEN 'EXTERNAL' WHEN 'x' THEN 'EXTENDED' WHEN 'm' THEN 'MAIN' END END \
              AS storage, \
         {compression} AS compression, COALESCE(a.attoptions, '{{}}') AS options \
         FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
         WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped \
         AND (a.attstattarget::int4 <> -1 OR a.attstorage <> t.typstorage \
              OR {compression} IS NOT NULL OR a.attoptions IS NOT NULL) \
         ORDER BY a.attrelid, a.attnum"
    );
    let what = "column options";
    query(client, what, &sql, &[&tables])
        .await?
        .iter()
        .map(|row| {
            Ok(ColumnOptions {
                table_oid: get(row, "attrelid", what)?,
                column: get(row, "name", what)?,
                statistics: get(row, "statistics", what)?,
                storage: get(row, "storage", what)?,
                compression: get(row, "compression", what)?,
                options: get(row, "options", what)?,
            })
        })
        .collect()
}

pub(crate) async fn read_replica_identities(
    client: &Client,
    tables: &[u32],
) -> Result<Vec<ReplicaIdentity>, PgError> {
    let sql = "SELECT c.oid, c.relreplident::text AS kind, \
               (SELECT ic.relname::text FROM pg_catalog.pg_index i \
                JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid \
                WHERE i.indrelid = c.oid AND i.indisreplident) AS index \
               FROM pg_catalog.pg_class c WHERE c.oid = ANY($1) AND c.relreplident <> 'd' \
               ORDER BY 1";
    let what = "replica identities";
    query(client, what, sql, &[&tables])
        .await?
        .iter()
        .map(|row| {
            Ok(ReplicaIdentity {
                table_oid: get(row, "oid", what)?,
                kind: get(row, "kind", what)?,
                index: get(row, "index", what)?,
            })
        })
        .collect()
}

pub(crate) async fn read_index_statistics(
    client: &Client,
    tables: &[u32],
) -> Result<Vec<IndexStatistics>, PgError> {
    let sql = "SELECT a.attrelid, a.attnum, a.attstattarget::int4 AS statistics \
               FROM pg_catalog.pg_attribute a \
               JOIN pg_catalog.pg_index i ON i.indexrelid = a.attrelid \
               WHERE i.indrelid = ANY($1) AND a.attstattarget::int4 >= 0 \
               ORDER BY 1, 2";
    let what = "index statistics targets";
    query(client, what, sql, &[&tables])
        .await?
        .iter()
        .map(|row| {
            Ok(IndexStatistics {
                index_oid: get(row, "attrelid", what)?,
                column: get(row, "attnum", what)?,
                statistics: get(row, "statistics", what)?,
            })
        })
        .collect()
}
