//! User-defined collations (libc, ICU and, from PostgreSQL 17, builtin).

use tokio_postgres::Client;

use super::address::class;
use super::filter::{USER_NAMESPACE, not_extension_member};
use super::names::QualName;
use super::rows::{get, query};
use crate::PgError;

#[derive(Debug, Clone)]
pub(crate) struct Collation {
    pub oid: u32,
    pub name: QualName,
    /// `c` (libc), `i` (ICU), `b` (builtin) or `d` (the database default).
    pub provider: String,
    pub deterministic: bool,
    pub collate: Option<String>,
    pub ctype: Option<String>,
    /// The ICU or builtin locale (PostgreSQL 15+; older servers keep ICU's in `collcollate`).
    pub locale: Option<String>,
    /// ICU tailoring rules (PostgreSQL 16+).
    pub rules: Option<String>,
}

pub(crate) async fn read_collations(
    client: &Client,
    server_version_num: i32,
) -> Result<Vec<Collation>, PgError> {
    let locale = match server_version_num {
        v if v >= 170_000 => "c.colllocale",
        v if v >= 150_000 => "c.colliculocale",
        _ => "NULL::text",
    };
    let rules = if server_version_num >= 160_000 {
        "c.collicurules"
    } else {
        "NULL::text"
    };
    let sql = format!(
        "SELECT c.oid, n.nspname::text AS schema, c.collname::text AS name, \
         c.collprovider::text AS provider, c.collisdeterministic, \
         c.collcollate::text AS collate, c.collctype::text AS ctype, \
         {locale}::text AS locale, {rules}::text AS rules \
         FROM pg_catalog.pg_collation c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.collnamespace \
         WHERE {USER_NAMESPACE} AND {} ORDER BY n.nspname, c.collname",
        not_extension_member(class::PG_COLLATION, "c.oid")
    );
    let what = "collations";
    query(client, what, &sql, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(Collation {
                oid: get(row, "oid", what)?,
                name: QualName::new(get(row, "schema", what)?, get(row, "name", what)?),
                provider: get(row, "provider", what)?,
                deterministic: get(row, "collisdeterministic", what)?,
                collate: get(row, "collate", what)?,
                ctype: get(row, "ctype", what)?,
                locale: get(row, "locale", what)?,
                rules: get(row, "rules", what)?,
            })
        })
        .collect()
}
