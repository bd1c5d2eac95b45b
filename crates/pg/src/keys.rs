//! Which tables have a key whose range a chunk can record: a single-column primary key of an
//! integer type. Chunk key ranges let filtered reads (`cat --where-key`, later filtered restores)
//! fetch only the chunks that can hold matching rows.

use std::collections::HashMap;

use tokio_postgres::Client;

use crate::PgError;

/// Table oid → name of its single-column `smallint`/`integer`/`bigint` primary key column.
pub async fn integer_keys(client: &Client) -> Result<HashMap<u32, String>, PgError> {
    let rows = client
        .query(
            "SELECT c.conrelid, a.attname::text \
             FROM pg_catalog.pg_constraint c \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
             WHERE c.contype = 'p' AND pg_catalog.array_length(c.conkey, 1) = 1 \
               AND a.atttypid IN ('pg_catalog.int2'::pg_catalog.regtype, \
                                  'pg_catalog.int4'::pg_catalog.regtype, \
                                  'pg_catalog.int8'::pg_catalog.regtype)",
            &[],
        )
        .await
        .map_err(|e| PgError::query("reading the tables' integer keys", e))?;
    rows.iter()
        .map(|row| {
            let oid: u32 = row
                .try_get(0)
                .map_err(|e| PgError::query("reading a key", e))?;
            let column: String = row
                .try_get(1)
                .map_err(|e| PgError::query("reading a key", e))?;
            Ok((oid, column))
        })
        .collect()
}
