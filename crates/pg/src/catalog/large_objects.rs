//! Large objects: which exist (`pg_largeobject_metadata`). Their owners, privileges and comments
//! are read with every other object's; their contents are not catalog data and are read by the
//! dump's workers (`LargeObjectReader`).

use tokio_postgres::Client;

use super::rows::{get, query};
use crate::PgError;

#[derive(Debug, Clone)]
pub(crate) struct LargeObject {
    pub oid: u32,
}

/// Every large object, by ascending OID.
pub(crate) async fn read_large_objects(client: &Client) -> Result<Vec<LargeObject>, PgError> {
    let sql = "SELECT l.oid FROM pg_catalog.pg_largeobject_metadata l ORDER BY 1";
    let what = "large objects";
    query(client, what, sql, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(LargeObject {
                oid: get(row, "oid", what)?,
            })
        })
        .collect()
}
