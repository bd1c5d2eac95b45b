//! The database's own properties, which belong to no schema object: owner, locale, connection
//! limit, comment, privileges, and the settings of the database and of roles in it. A restore
//! that creates the database gives it these.

use pgark_archive::{DatabaseEntry, DatabaseGrant, RoleSetting};
use tokio_postgres::Client;

use super::rows::{get, query};
use crate::PgError;

/// The properties of the database `client` is connected to.
pub async fn read_database(client: &Client) -> Result<DatabaseEntry, PgError> {
    let what = "the database's properties";
    let version = super::server_version_num(client).await?;
    // The locale provider and its locale moved about: ICU from 15 (`daticulocale`), the builtin
    // provider and `datlocale` from 17, ICU rules from 16.
    let provider = if version >= 150_000 {
        "CASE d.datlocprovider WHEN 'i' THEN 'icu' WHEN 'b' THEN 'builtin' ELSE 'libc' END"
    } else {
        "'libc'"
    };
    let locale = match version {
        170_000.. => "d.datlocale::text",
        150_000.. => "d.daticulocale::text",
        _ => "NULL::text",
    };
    let rules = if version >= 160_000 {
        "d.daticurules::text"
    } else {
        "NULL::text"
    };
    let sql = format!(
        "SELECT d.datname::text AS name, pg_catalog.pg_get_userbyid(d.datdba)::text AS owner, \
                d.datcollate::text AS collate, d.datctype::text AS ctype, \
                {provider} AS provider, {locale} AS locale, {rules} AS rules, \
                d.datconnlimit AS connection_limit, \
                pg_catalog.shobj_description(d.oid, 'pg_database') AS comment, \
                ARRAY(SELECT s.setting FROM pg_catalog.pg_db_role_setting r, \
                      pg_catalog.unnest(r.setconfig) WITH ORDINALITY s(setting, n) \
                      WHERE r.setdatabase = d.oid AND r.setrole = 0 ORDER BY s.n) AS settings \
         FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()"
    );
    let rows = query(client, what, &sql, &[]).await?;
    let row = rows.first().ok_or_else(|| PgError::Catalog {
        reason: format!("{what}: the current database is not in pg_database"),
    })?;
    let mut database = DatabaseEntry {
        name: get(row, "name", what)?,
        owner: get(row, "owner", what)?,
        collate: get(row, "collate", what)?,
        ctype: get(row, "ctype", what)?,
        locale_provider: get(row, "provider", what)?,
        locale: get(row, "locale", what)?,
        icu_rules: get(row, "rules", what)?,
        connection_limit: get(row, "connection_limit", what)?,
        comment: get(row, "comment", what)?,
        settings: get(row, "settings", what)?,
        ..DatabaseEntry::default()
    };
    // Privileges as the difference from what a new database of the same owner has.
    let privileges_sql = "WITH here AS (SELECT d.datacl, d.datdba FROM pg_catalog.pg_database d \
                                        WHERE d.datname = pg_catalog.current_database()), \
         now AS (SELECT a.grantee, a.privilege_type, a.is_grantable FROM here, \
                 pg_catalog.aclexplode(COALESCE(here.datacl, \
                                                pg_catalog.acldefault('d', here.datdba))) a), \
         initial AS (SELECT a.grantee, a.privilege_type, a.is_grantable FROM here, \
                     pg_catalog.aclexplode(pg_catalog.acldefault('d', here.datdba)) a) \
         SELECT x.granted, \
                CASE WHEN x.grantee = 0 THEN '' \
                     ELSE pg_catalog.pg_get_userbyid(x.grantee)::text END AS grantee, \
                x.privilege_type::text AS privilege, x.is_grantable AS grantable \
         FROM (SELECT true AS granted, * FROM (SELECT * FROM now EXCEPT SELECT * FROM initial) g \
               UNION ALL \
               SELECT false, * FROM (SELECT * FROM initial EXCEPT SELECT * FROM now) r) x \
         ORDER BY 2, 3, 4";
    for row in query(client, what, privileges_sql, &[]).await? {
        let grant = DatabaseGrant {
            grantee: get(&row, "grantee", what)?,
            privilege: get(&row, "privilege", what)?,
            grantable: get(&row, "grantable", what)?,
        };
        if get(&row, "granted", what)? {
            database.grants.push(grant);
        } else {
            database.revokes.push(grant);
        }
    }
    let role_settings_sql = "SELECT pg_catalog.pg_get_userbyid(r.setrole)::text AS role, \
                s.setting \
         FROM pg_catalog.pg_db_role_setting r \
         JOIN pg_catalog.pg_database d ON d.oid = r.setdatabase, \
         pg_catalog.unnest(r.setconfig) WITH ORDINALITY s(setting, n) \
         WHERE d.datname = pg_catalog.current_database() AND r.setrole <> 0 \
         ORDER BY 1, s.n";
    for row in query(client, what, role_settings_sql, &[]).await? {
        database.role_settings.push(RoleSetting {
            role: get(&row, "role", what)?,
            setting: get(&row, "setting", what)?,
        });
    }
    Ok(database)
}
