//! What the dumping role cannot read, found before anything is read: tables and sequences it has
//! no `SELECT` on, and tables whose row-level security would hide rows from it. Dump sessions
//! run with `row_security = off`, so such a table would fail half-way (or, without that
//! setting, be dumped with rows silently missing); asked up front, every one is named at once.

use tokio_postgres::Client;

use super::filter::{USER_NAMESPACE, extension_config, not_extension_member, user_table};
use super::rows::{get, query};
use crate::PgError;

/// The relations the current role cannot dump whole, each as `schema.name` (quoted as SQL
/// needs), sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unreadable {
    /// The role asking (`current_user`).
    pub role: String,
    /// Tables and sequences without `SELECT` for the role.
    pub no_select: Vec<String>,
    /// Tables whose row-level security applies to the role: it neither owns them (or the table
    /// forces row security on its owner too), nor is superuser, nor has `BYPASSRLS`.
    pub row_security: Vec<String>,
}

impl Unreadable {
    pub fn is_empty(&self) -> bool {
        self.no_select.is_empty() && self.row_security.is_empty()
    }
}

/// What [`Unreadable`] lists for the current role, over the tables a dump reads (those of
/// [`super::relations_to_lock`]) and the user sequences.
pub async fn unreadable_relations(client: &Client) -> Result<Unreadable, PgError> {
    let sql = format!(
        "SELECT r.rolname::text AS role, \
                pg_catalog.format('%I.%I', n.nspname, c.relname) AS name, \
                NOT (CASE WHEN c.relkind = 'S' \
                     THEN pg_catalog.has_sequence_privilege(c.oid, 'SELECT') \
                     ELSE pg_catalog.has_table_privilege(c.oid, 'SELECT') END) AS no_select, \
                (c.relkind <> 'S' AND c.relrowsecurity \
                 AND NOT (r.rolsuper OR r.rolbypassrls) \
                 AND (c.relforcerowsecurity OR NOT pg_catalog.pg_has_role(c.relowner, 'USAGE'))) \
                  AS row_security \
         FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         CROSS JOIN pg_catalog.pg_roles r \
         WHERE r.rolname = current_user \
           AND (({}) OR ({}) OR (c.relkind = 'S' AND {USER_NAMESPACE} AND {})) \
         ORDER BY 1",
        user_table(),
        extension_config('r'),
        not_extension_member(super::address::class::PG_CLASS, "c.oid"),
    );
    let what = "what the role may read";
    let mut unreadable = Unreadable::default();
    for row in query(client, what, &sql, &[]).await? {
        unreadable.role = get(&row, "role", what)?;
        let name: String = get(&row, "name", what)?;
        if get(&row, "no_select", what)? {
            unreadable.no_select.push(name);
        } else if get(&row, "row_security", what)? {
            unreadable.row_security.push(name);
        }
    }
    Ok(unreadable)
}
