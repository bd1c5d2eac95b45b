//! What an instance holds beside its databases: roles (from `pg_roles`, readable by every role,
//! never `pg_authid` unless password hashes are asked for), memberships and tablespaces.

use pgark_archive::{GlobalRole, GlobalsEntry, Membership, TablespaceEntry};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::rows::{get, query};
use crate::PgError;

/// The instance's roles (the built-in `pg_*` roles aside), memberships and tablespaces. With
/// `password_hashes`, each role's hash too, which only a superuser may read: for any other role
/// this fails with [`PgError::PasswordsHidden`].
pub async fn read_globals(client: &Client, password_hashes: bool) -> Result<GlobalsEntry, PgError> {
    let what = "the instance's roles";
    let version = super::server_version_num(client).await?;
    let sql = "SELECT r.rolname::text AS name, r.rolsuper, r.rolinherit, r.rolcreaterole, \
               r.rolcreatedb, r.rolcanlogin, r.rolreplication, r.rolbypassrls, r.rolconnlimit, \
               pg_catalog.to_char(r.rolvaliduntil AT TIME ZONE 'UTC', \
                                  'YYYY-MM-DD HH24:MI:SS+00') AS valid_until, \
               pg_catalog.shobj_description(r.oid, 'pg_authid') AS comment, \
               ARRAY(SELECT s.setting FROM pg_catalog.pg_db_role_setting d, \
                     pg_catalog.unnest(d.setconfig) WITH ORDINALITY s(setting, n) \
                     WHERE d.setrole = r.oid AND d.setdatabase = 0 ORDER BY s.n) AS settings \
               FROM pg_catalog.pg_roles r WHERE r.rolname !~ '^pg_' ORDER BY 1";
    let mut globals = GlobalsEntry::default();
    for row in query(client, what, sql, &[]).await? {
        let mut attributes = Vec::new();
        for (column, yes, no) in [
            ("rolsuper", "SUPERUSER", "NOSUPERUSER"),
            ("rolinherit", "INHERIT", "NOINHERIT"),
            ("rolcreaterole", "CREATEROLE", "NOCREATEROLE"),
            ("rolcreatedb", "CREATEDB", "NOCREATEDB"),
            ("rolcanlogin", "LOGIN", "NOLOGIN"),
            ("rolreplication", "REPLICATION", "NOREPLICATION"),
            ("rolbypassrls", "BYPASSRLS", "NOBYPASSRLS"),
        ] {
            let keyword = if get::<bool>(&row, column, what)? {
                yes
            } else {
                no
            };
            attributes.push(keyword.to_owned());
        }
        let limit: i32 = get(&row, "rolconnlimit", what)?;
        attributes.push(format!("CONNECTION LIMIT {limit}"));
        if let Some(until) = get::<Option<String>>(&row, "valid_until", what)? {
            attributes.push(format!("VALID UNTIL {}", crate::quote::literal(&until)));
        }
        globals.roles.push(GlobalRole {
            name: get(&row, "name", what)?,
            attributes,
            comment: get(&row, "comment", what)?,
            settings: get(&row, "settings", what)?,
            password_hash: None,
        });
    }
    if password_hashes {
        read_password_hashes(client, &mut globals).await?;
    }

    let what = "the instance's role memberships";
    let options = if version >= 160_000 {
        "m.inherit_option AS inherit_option, m.set_option AS set_option"
    } else {
        "NULL::bool AS inherit_option, NULL::bool AS set_option"
    };
    let sql = format!(
        "SELECT g.rolname::text AS role, u.rolname::text AS member, m.admin_option, {options} \
         FROM pg_catalog.pg_auth_members m \
         JOIN pg_catalog.pg_roles g ON g.oid = m.roleid \
         JOIN pg_catalog.pg_roles u ON u.oid = m.member \
         WHERE u.rolname !~ '^pg_' ORDER BY 1, 2"
    );
    for row in query(client, what, &sql, &[]).await? {
        globals.memberships.push(Membership {
            role: get(&row, "role", what)?,
            member: get(&row, "member", what)?,
            admin_option: get(&row, "admin_option", what)?,
            inherit_option: get(&row, "inherit_option", what)?,
            set_option: get(&row, "set_option", what)?,
        });
    }

    let what = "the instance's tablespaces";
    let sql = "SELECT t.spcname::text AS name, \
               pg_catalog.pg_get_userbyid(t.spcowner)::text AS owner, \
               pg_catalog.pg_tablespace_location(t.oid) AS location, \
               COALESCE(t.spcoptions, '{}') AS options, \
               pg_catalog.shobj_description(t.oid, 'pg_tablespace') AS comment \
               FROM pg_catalog.pg_tablespace t \
               WHERE t.spcname NOT IN ('pg_default', 'pg_global') ORDER BY 1";
    for row in query(client, what, sql, &[]).await? {
        globals.tablespaces.push(TablespaceEntry {
            name: get(&row, "name", what)?,
            owner: get(&row, "owner", what)?,
            location: get(&row, "location", what)?,
            options: get(&row, "options", what)?,
            comment: get(&row, "comment", what)?,
        });
    }
    Ok(globals)
}

async fn read_password_hashes(client: &Client, globals: &mut GlobalsEntry) -> Result<(), PgError> {
    let what = "the roles' password hashes";
    let rows = match client
        .query(
            "SELECT rolname::text, rolpassword FROM pg_catalog.pg_authid \
             WHERE rolpassword IS NOT NULL",
            &[],
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
            let role = client
                .query_one("SELECT current_user::text", &[])
                .await
                .map_err(|e| PgError::query(what, e))?
                .try_get(0)
                .map_err(|e| PgError::query(what, e))?;
            return Err(PgError::PasswordsHidden { role });
        }
        Err(e) => return Err(PgError::query(what, e)),
    };
    for row in rows {
        let name: String = row.try_get(0).map_err(|e| PgError::query(what, e))?;
        let hash: String = row.try_get(1).map_err(|e| PgError::query(what, e))?;
        if let Some(role) = globals.roles.iter_mut().find(|r| r.name == name) {
            role.password_hash = Some(hash);
        }
    }
    Ok(())
}
