//! Roles: names, attributes and memberships (never passwords, which managed services do not
//! expose anyway). A dump records those its schema names.

use tokio_postgres::Client;

use super::rows::{get, query};
use crate::PgError;

#[derive(Debug, Clone)]
pub(crate) struct Role {
    pub name: String,
    /// `CREATE ROLE` keywords: `SUPERUSER`, `LOGIN`, `NOINHERIT`, `CONNECTION LIMIT 3`, ...
    pub attributes: Vec<String>,
    pub member_of: Vec<String>,
}

pub(crate) async fn read_roles(client: &Client) -> Result<Vec<Role>, PgError> {
    let sql = "SELECT r.rolname::text AS name, r.rolsuper, r.rolinherit, r.rolcreaterole, \
               r.rolcreatedb, r.rolcanlogin, r.rolreplication, r.rolbypassrls, r.rolconnlimit, \
               COALESCE(ARRAY(SELECT g.rolname::text FROM pg_catalog.pg_auth_members m \
                              JOIN pg_catalog.pg_roles g ON g.oid = m.roleid \
                              WHERE m.member = r.oid ORDER BY 1), '{}') AS member_of \
               FROM pg_catalog.pg_roles r WHERE r.rolname !~ '^pg_' ORDER BY 1";
    let what = "roles";
    let mut roles = Vec::new();
    for row in query(client, what, sql, &[]).await? {
        let mut attributes = Vec::new();
        for (column, keyword) in [
            ("rolsuper", "SUPERUSER"),
            ("rolcreatedb", "CREATEDB"),
            ("rolcreaterole", "CREATEROLE"),
            ("rolcanlogin", "LOGIN"),
            ("rolreplication", "REPLICATION"),
            ("rolbypassrls", "BYPASSRLS"),
        ] {
            if get::<bool>(&row, column, what)? {
                attributes.push(keyword.to_owned());
            }
        }
        if !get::<bool>(&row, "rolinherit", what)? {
            attributes.push("NOINHERIT".to_owned());
        }
        let limit: i32 = get(&row, "rolconnlimit", what)?;
        if limit >= 0 {
            attributes.push(format!("CONNECTION LIMIT {limit}"));
        }
        roles.push(Role {
            name: get(&row, "name", what)?,
            attributes,
            member_of: get(&row, "member_of", what)?,
        });
    }
    Ok(roles)
}
