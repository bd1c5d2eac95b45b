//! Comments and security labels on user objects, with each object's identity as the server
//! prints it (`pg_identify_object`), from which the `COMMENT ON` target is built.

use tokio_postgres::Client;

use super::address::{FIRST_NORMAL_OID, ObjAddr};
use super::rows::{get, query};
use crate::PgError;

/// A comment or security label on one object or column.
#[derive(Debug, Clone)]
pub(crate) struct Described {
    pub addr: ObjAddr,
    /// `pg_identify_object`'s type, e.g. `table`, `table column`, `function`.
    pub object_type: String,
    /// `pg_identify_object`'s identity, e.g. `public.t`, `c on public.t`, `public.f(integer)`.
    pub identity: String,
    pub text: String,
    /// The label provider, for security labels.
    pub provider: Option<String>,
}

/// The `public` schema's comment only when it is not initdb's: every new database has that one,
/// and setting it again needs the schema's owner, which a restoring role may not be.
pub(crate) async fn read_comments(client: &Client) -> Result<Vec<Described>, PgError> {
    let sql = format!(
        "SELECT d.classoid, d.objoid, d.objsubid, io.type AS object_type, io.identity, \
         d.description AS text, NULL::text AS provider \
         FROM pg_catalog.pg_description d, \
         LATERAL pg_catalog.pg_identify_object(d.classoid, d.objoid, d.objsubid) io \
         WHERE d.objoid >= {FIRST_NORMAL_OID} \
         OR (d.classoid = 'pg_catalog.pg_namespace'::regclass AND d.objoid = 2200 \
             AND d.description <> 'standard public schema') \
         ORDER BY 1, 2, 3"
    );
    read(client, "comments", &sql).await
}

pub(crate) async fn read_security_labels(client: &Client) -> Result<Vec<Described>, PgError> {
    let sql = format!(
        "SELECT s.classoid, s.objoid, s.objsubid, io.type AS object_type, io.identity, \
         s.label AS text, s.provider \
         FROM pg_catalog.pg_seclabel s, \
         LATERAL pg_catalog.pg_identify_object(s.classoid, s.objoid, s.objsubid) io \
         WHERE s.objoid >= {FIRST_NORMAL_OID} ORDER BY 1, 2, 3, s.provider"
    );
    read(client, "security labels", &sql).await
}

async fn read(client: &Client, what: &str, sql: &str) -> Result<Vec<Described>, PgError> {
    query(client, what, sql, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(Described {
                addr: ObjAddr::new(get(row, "classoid", what)?, get(row, "objoid", what)?),
                object_type: get(row, "object_type", what)?,
                identity: get(row, "identity", what)?,
                text: get(row, "text", what)?,
                provider: get(row, "provider", what)?,
            })
        })
        .collect()
}
