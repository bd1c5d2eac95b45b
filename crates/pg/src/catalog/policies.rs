//! Row-level security: which tables have it enabled or forced, and their policies.

use tokio_postgres::Client;

use super::rows::{get, query};
use crate::PgError;

#[derive(Debug, Clone)]
pub(crate) struct RowSecurity {
    pub table_oid: u32,
    pub enabled: bool,
    pub forced: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub oid: u32,
    pub table_oid: u32,
    pub name: String,
    /// `r` SELECT, `a` INSERT, `w` UPDATE, `d` DELETE, `*` ALL.
    pub command: String,
    pub permissive: bool,
    /// Role names; empty for PUBLIC.
    pub roles: Vec<String>,
    pub using: Option<String>,
    pub with_check: Option<String>,
}

pub(crate) async fn read_row_security(
    client: &Client,
    tables: &[u32],
) -> Result<Vec<RowSecurity>, PgError> {
    let sql = "SELECT c.oid, c.relrowsecurity, c.relforcerowsecurity FROM pg_catalog.pg_class c \
               WHERE c.oid = ANY($1) AND (c.relrowsecurity OR c.relforcerowsecurity) ORDER BY 1";
    let what = "row security";
    query(client, what, sql, &[&tables])
        .await?
        .iter()
        .map(|row| {
            Ok(RowSecurity {
                table_oid: get(row, "oid", what)?,
                enabled: get(row, "relrowsecurity", what)?,
                forced: get(row, "relforcerowsecurity", what)?,
            })
        })
        .collect()
}

pub(crate) async fn read_policies(client: &Client, tables: &[u32]) -> Result<Vec<Policy>, PgError> {
    let sql = "SELECT p.oid, p.polrelid, p.polname::text AS name, p.polcmd::text AS command, \
               p.polpermissive, \
               COALESCE(ARRAY(SELECT pg_catalog.pg_get_userbyid(r)::text \
                              FROM pg_catalog.unnest(p.polroles) r WHERE r <> 0 ORDER BY 1), \
                        '{}') AS roles, \
               pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS using_expr, \
               pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr \
               FROM pg_catalog.pg_policy p WHERE p.polrelid = ANY($1) \
               ORDER BY p.polrelid, p.polname";
    let what = "policies";
    query(client, what, sql, &[&tables])
        .await?
        .iter()
        .map(|row| {
            Ok(Policy {
                oid: get(row, "oid", what)?,
                table_oid: get(row, "polrelid", what)?,
                name: get(row, "name", what)?,
                command: get(row, "command", what)?,
                permissive: get(row, "polpermissive", what)?,
                roles: get(row, "roles", what)?,
                using: get(row, "using_expr", what)?,
                with_check: get(row, "check_expr", what)?,
            })
        })
        .collect()
}
