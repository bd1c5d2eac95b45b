//! User schemas and installed extensions.

use tokio_postgres::Client;

use super::address::class;
use super::filter::{USER_NAMESPACE, not_extension_member};
use super::rows::{get, query};
use crate::PgError;

#[derive(Debug, Clone)]
pub(crate) struct Schema {
    pub oid: u32,
    pub name: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Extension {
    pub oid: u32,
    pub name: String,
    /// The schema its objects live in (`WITH SCHEMA`).
    pub schema: String,
}

pub(crate) async fn read_schemas(client: &Client) -> Result<Vec<Schema>, PgError> {
    let sql = format!(
        "SELECT n.oid, n.nspname::text AS name FROM pg_catalog.pg_namespace n \
         WHERE {USER_NAMESPACE} AND {} ORDER BY n.nspname",
        not_extension_member(class::PG_NAMESPACE, "n.oid")
    );
    let what = "schemas";
    query(client, what, &sql, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(Schema {
                oid: get(row, "oid", what)?,
                name: get(row, "name", what)?,
            })
        })
        .collect()
}

/// Every extension but `plpgsql`, which every database has from its template.
pub(crate) async fn read_extensions(client: &Client) -> Result<Vec<Extension>, PgError> {
    let sql = "SELECT e.oid, e.extname::text AS name, n.nspname::text AS schema \
               FROM pg_catalog.pg_extension e \
               JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace \
               WHERE e.extname <> 'plpgsql' ORDER BY e.extname";
    let what = "extensions";
    query(client, what, sql, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(Extension {
                oid: get(row, "oid", what)?,
                name: get(row, "name", what)?,
                schema: get(row, "schema", what)?,
            })
        })
        .collect()
}
