//! User-defined casts and encoding conversions.

use tokio_postgres::Client;

use super::address::{FIRST_NORMAL_OID, class};
use super::filter::{USER_NAMESPACE, not_extension_member};
use super::names::QualName;
use super::rows::{get, query};
use crate::PgError;

/// `pg_cast`'s catalog OID.
pub(crate) const PG_CAST: u32 = 2605;

#[derive(Debug, Clone)]
pub(crate) struct Cast {
    pub oid: u32,
    /// `format_type` of the source and target types.
    pub source: String,
    pub target: String,
    /// `WITH FUNCTION f(args)`, `WITHOUT FUNCTION` or `WITH INOUT`.
    pub method: String,
    /// `''`, ` AS ASSIGNMENT` or ` AS IMPLICIT`.
    pub context: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Conversion {
    pub oid: u32,
    pub name: QualName,
    pub default: bool,
    pub from: String,
    pub to: String,
    /// The function, schema-qualified unless in `pg_catalog`.
    pub function: String,
}

/// Casts a user created (initdb's have lower OIDs), as `pg_dump` chooses them, except those a
/// type creates for itself (a range type's casts to its multirange, PostgreSQL 14+), which
/// depend on it internally.
pub(crate) async fn read_casts(client: &Client) -> Result<Vec<Cast>, PgError> {
    let sql = format!(
        "SELECT c.oid, pg_catalog.format_type(c.castsource, NULL) AS source, \
         pg_catalog.format_type(c.casttarget, NULL) AS target, \
         CASE c.castmethod WHEN 'f' THEN 'WITH FUNCTION ' || c.castfunc::pg_catalog.regprocedure::text \
           WHEN 'i' THEN 'WITH INOUT' ELSE 'WITHOUT FUNCTION' END AS method, \
         CASE c.castcontext WHEN 'a' THEN ' AS ASSIGNMENT' WHEN 'i' THEN ' AS IMPLICIT' \
           ELSE '' END AS context \
         FROM pg_catalog.pg_cast c WHERE c.oid >= {FIRST_NORMAL_OID} AND {} \
         AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = {PG_CAST} \
           AND d.objid = c.oid AND d.deptype = 'i') ORDER BY 2, 3",
        not_extension_member(PG_CAST, "c.oid")
    );
    let what = "casts";
    query(client, what, &sql, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(Cast {
                oid: get(row, "oid", what)?,
                source: get(row, "source", what)?,
                target: get(row, "target", what)?,
                method: get(row, "method", what)?,
                context: get(row, "context", what)?,
            })
        })
        .collect()
}

pub(crate) async fn read_conversions(client: &Client) -> Result<Vec<Conversion>, PgError> {
    let sql = format!(
        "SELECT c.oid, n.nspname::text AS schema, c.conname::text AS name, c.condefault, \
         pg_catalog.pg_encoding_to_char(c.conforencoding)::text AS from_encoding, \
         pg_catalog.pg_encoding_to_char(c.contoencoding)::text AS to_encoding, \
         c.conproc::pg_catalog.regproc::text AS function \
         FROM pg_catalog.pg_conversion c JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace \
         WHERE c.oid >= {FIRST_NORMAL_OID} AND {USER_NAMESPACE} AND {} ORDER BY 2, 3",
        not_extension_member(class::PG_CONVERSION, "c.oid")
    );
    let what = "conversions";
    query(client, what, &sql, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(Conversion {
                oid: get(row, "oid", what)?,
                name: QualName::new(get(row, "schema", what)?, get(row, "name", what)?),
                default: get(row, "condefault", what)?,
                from: get(row, "from_encoding", what)?,
                to: get(row, "to_encoding", what)?,
                function: get(row, "function", what)?,
            })
        })
        .collect()
}
