//! Procedural languages, transforms and access methods created outside extensions.

use tokio_postgres::Client;

use super::address::FIRST_NORMAL_OID;
use super::filter::not_extension_member;
use super::rows::{get, query};
use crate::PgError;

/// `pg_language`'s, `pg_transform`'s and `pg_am`'s catalog OIDs.
pub(crate) const PG_LANGUAGE: u32 = 2612;
pub(crate) const PG_TRANSFORM: u32 = 3576;
pub(crate) const PG_AM: u32 = 2601;

#[derive(Debug, Clone)]
pub(crate) struct Language {
    pub oid: u32,
    pub name: String,
    pub trusted: bool,
    /// Functions, schema-qualified unless in `pg_catalog`.
    pub handler: String,
    pub inline: Option<String>,
    pub validator: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Transform {
    pub oid: u32,
    pub type_name: String,
    pub language: String,
    /// `regprocedure` of the functions, `f(internal)`.
    pub from_sql: Option<String>,
    pub to_sql: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct AccessMethod {
    pub oid: u32,
    pub name: String,
    /// `TABLE` or `INDEX`.
    pub kind: String,
    pub handler: String,
}

pub(crate) async fn read_languages(client: &Client) -> Result<Vec<Language>, PgError> {
    let sql = format!(
        "SELECT l.oid, l.lanname::text AS name, l.lanpltrusted, \
         l.lanplcallfoid::pg_catalog.regproc::text AS handler, \
         NULLIF(l.laninline, 0)::pg_catalog.regproc::text AS inline, \
         NULLIF(l.lanvalidator, 0)::pg_catalog.regproc::text AS validator \
         FROM pg_catalog.pg_language l \
         WHERE l.oid >= {FIRST_NORMAL_OID} AND l.lanispl AND {} ORDER BY 2",
        not_extension_member(PG_LANGUAGE, "l.oid")
    );
    let what = "languages";
    query(client, what, &sql, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(Language {
                oid: get(row, "oid", what)?,
                name: get(row, "name", what)?,
                trusted: get(row, "lanpltrusted", what)?,
                handler: get(row, "handler", what)?,
                inline: get(row, "inline", what)?,
                validator: get(row, "validator", what)?,
            })
        })
        .collect()
}

pub(crate) async fn read_transforms(client: &Client) -> Result<Vec<Transform>, PgError> {
    let sql = format!(
        "SELECT t.oid, pg_catalog.format_type(t.trftype, NULL) AS type_name, \
         l.lanname::text AS language, \
         NULLIF(t.trffromsql::oid, 0)::pg_catalog.regprocedure::text AS from_sql, \
         NULLIF(t.trftosql::oid, 0)::pg_catalog.regprocedure::text AS to_sql \
         FROM pg_catalog.pg_transform t JOIN pg_catalog.pg_language l ON l.oid = t.trflang \
         WHERE t.oid >= {FIRST_NORMAL_OID} AND {} ORDER BY 2, 3",
        not_extension_member(PG_TRANSFORM, "t.oid")
    );
    let what = "transforms";
    query(client, what, &sql, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(Transform {
                oid: get(row, "oid", what)?,
                type_name: get(row, "type_name", what)?,
                language: get(row, "language", what)?,
                from_sql: get(row, "from_sql", what)?,
                to_sql: get(row, "to_sql", what)?,
            })
        })
        .collect()
}

pub(crate) async fn read_access_methods(client: &Client) -> Result<Vec<AccessMethod>, PgError> {
    let sql = format!(
        "SELECT a.oid, a.amname::text AS name, \
         CASE a.amtype WHEN 't' THEN 'TABLE' ELSE 'INDEX' END AS kind, \
         a.amhandler::pg_catalog.regproc::text AS handler \
         FROM pg_catalog.pg_am a WHERE a.oid >= {FIRST_NORMAL_OID} AND {} ORDER BY 2",
        not_extension_member(PG_AM, "a.oid")
    );
    let what = "access methods";
    query(client, what, &sql, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(AccessMethod {
                oid: get(row, "oid", what)?,
                name: get(row, "name", what)?,
                kind: get(row, "kind", what)?,
                handler: get(row, "handler", what)?,
            })
        })
        .collect()
}
