//! Large objects: which exist (`pg_largeobject_metadata`) and their contents, read in the
//! dump's snapshot with `lo_get` in pieces. Their owners, privileges and comments are read
//! with every other object's.
//!
//! Contents are kept in memory and go into the manifest as data-section items, so their total
//! is capped at [`INLINE_LIMIT`]: a database holding more fails the dump with an error saying
//! so, rather than giving a backup without them. (Storing them as archive data objects, streamed
//! like table rows, lifts the cap; that needs the dump and restore pipelines to carry them.)

use tokio_postgres::Client;

use super::rows::{get, query};
use crate::PgError;

/// The most large-object content, in bytes, one dump carries (16 MiB).
pub const INLINE_LIMIT: u64 = 16 << 20;

/// The size of the pieces contents are read and restored in.
pub(crate) const PIECE: i32 = 256 << 10;

#[derive(Debug, Clone)]
pub(crate) struct LargeObject {
    pub oid: u32,
    /// The contents in pieces of [`PIECE`] bytes (the last may be shorter); none when empty.
    pub pieces: Vec<Vec<u8>>,
}

/// Every large object, by ascending OID, with its contents.
pub(crate) async fn read_large_objects(client: &Client) -> Result<Vec<LargeObject>, PgError> {
    let sql = "SELECT l.oid FROM pg_catalog.pg_largeobject_metadata l ORDER BY 1";
    let what = "large objects";
    let mut objects = query(client, what, sql, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(LargeObject {
                oid: get(row, "oid", what)?,
                pieces: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>, PgError>>()?;
    // Round after round, the next piece of every object whose last piece was full.
    let sql = "SELECT o.oid, pg_catalog.lo_get(o.oid, $2, $3) AS data \
               FROM pg_catalog.unnest($1::pg_catalog.oid[]) o(oid) ORDER BY 1";
    let what = "large object contents";
    let mut pending: Vec<u32> = objects.iter().map(|o| o.oid).collect();
    let mut offset: i64 = 0;
    let mut total: u64 = 0;
    while !pending.is_empty() {
        let rows = query(client, what, sql, &[&pending, &offset, &PIECE]).await?;
        let mut next = Vec::new();
        for row in rows {
            let oid: u32 = get(&row, "oid", what)?;
            let data: Vec<u8> = get(&row, "data", what)?;
            total += data.len() as u64;
            if total > INLINE_LIMIT {
                return Err(PgError::Catalog {
                    reason: format!(
                        "the database's large objects hold more than {} MiB; pgark stores at \
                         most that much large-object content per backup for now, so this \
                         database cannot be backed up completely",
                        INLINE_LIMIT >> 20
                    ),
                });
            }
            if data.len() == PIECE as usize {
                next.push(oid);
            }
            if !data.is_empty()
                && let Ok(i) = objects.binary_search_by_key(&oid, |o| o.oid)
            {
                objects[i].pieces.push(data);
            }
        }
        pending = next;
        offset += i64::from(PIECE);
    }
    Ok(objects)
}
