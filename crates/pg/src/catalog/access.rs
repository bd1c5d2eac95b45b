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

/// What fires when rows are written into some tables, for a restore that wants it not to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteGuards {
    /// Enabled user triggers (not those behind constraints), on the tables and their partitions.
    pub triggers: Vec<UserTrigger>,
    /// The tables (of those asked about, or their partitions) with a foreign key to or from
    /// them, each as `schema.name`, sorted.
    pub foreign_keys: Vec<String>,
}

/// An enabled user trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTrigger {
    /// Its table as `schema.name`, quoted as SQL needs.
    pub table: String,
    pub name: String,
    /// Whether the current role may alter the table (it is a member of the owner).
    pub owned: bool,
}

/// The user triggers that fire on writes (enabled in the default, origin mode: those a
/// `session_replication_role = replica` session does not fire) and the foreign keys of `tables`
/// (each `schema.name` as SQL names it) and of their partitions.
pub async fn write_guards(client: &Client, tables: &[String]) -> Result<WriteGuards, PgError> {
    // pg_partition_tree lists nothing for a table outside any partition tree.
    const RELATIONS: &str = "SELECT r::pg_catalog.oid FROM ( \
           SELECT pg_catalog.to_regclass(n) AS r FROM pg_catalog.unnest($1::text[]) n \
           UNION SELECT p.relid FROM pg_catalog.unnest($1::text[]) n, \
                  pg_catalog.pg_partition_tree(pg_catalog.to_regclass(n)) p) tree \
         WHERE r IS NOT NULL";
    let what = "the triggers and foreign keys of the restored tables";
    let triggers_sql = format!(
        "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS table_name, \
                t.tgname::text AS name, \
                pg_catalog.pg_has_role(c.relowner, 'USAGE') AS owned \
         FROM pg_catalog.pg_trigger t \
         JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE NOT t.tgisinternal AND t.tgenabled = 'O' AND t.tgrelid IN ({RELATIONS}) \
         ORDER BY 1, 2"
    );
    let mut guards = WriteGuards::default();
    for row in query(client, what, &triggers_sql, &[&tables]).await? {
        guards.triggers.push(UserTrigger {
            table: get(&row, "table_name", what)?,
            name: get(&row, "name", what)?,
            owned: get(&row, "owned", what)?,
        });
    }
    let keys_sql = format!(
        "SELECT DISTINCT pg_catalog.format('%I.%I', n.nspname, c.relname) AS table_name \
         FROM pg_catalog.pg_constraint k \
         JOIN pg_catalog.pg_class c ON c.oid IN (k.conrelid, k.confrelid) \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE k.contype = 'f' AND c.oid IN ({RELATIONS}) \
         ORDER BY 1"
    );
    for row in query(client, what, &keys_sql, &[&tables]).await? {
        guards.foreign_keys.push(get(&row, "table_name", what)?);
    }
    Ok(guards)
}

/// Who the current role is, as far as a restore is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreRights {
    /// `current_user`.
    pub role: String,
    pub superuser: bool,
    /// The server's languages only a superuser may write functions in (`c`, `internal`, the
    /// untrusted procedural languages installed).
    pub untrusted_languages: Vec<String>,
}

pub async fn restore_rights(client: &Client) -> Result<RestoreRights, PgError> {
    let what = "the restoring role's rights";
    let sql = "SELECT current_user::text AS role, \
                      COALESCE((SELECT r.rolsuper FROM pg_catalog.pg_roles r \
                                WHERE r.rolname = current_user), false) AS superuser, \
                      ARRAY(SELECT l.lanname::text FROM pg_catalog.pg_language l \
                            WHERE NOT l.lanpltrusted ORDER BY 1) AS untrusted";
    let rows = query(client, what, sql, &[]).await?;
    let row = rows.first().ok_or_else(|| PgError::Catalog {
        reason: format!("{what}: the query returned no row"),
    })?;
    Ok(RestoreRights {
        role: get(row, "role", what)?,
        superuser: get(row, "superuser", what)?,
        untrusted_languages: get(row, "untrusted", what)?,
    })
}

/// Of `roles`, those that exist and that the current role may not give objects to (`ALTER ...
/// OWNER TO` needs membership in the new owner; from PostgreSQL 16 with the SET option), sorted.
pub async fn unsettable_owners(client: &Client, roles: &[String]) -> Result<Vec<String>, PgError> {
    let what = "which owners the restoring role may set";
    let sql = "SELECT n FROM pg_catalog.unnest($1::text[]) n \
               WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = n) \
                 AND NOT pg_catalog.pg_has_role(n, CASE WHEN \
                     pg_catalog.current_setting('server_version_num')::int >= 160000 \
                     THEN 'SET' ELSE 'MEMBER' END) \
               ORDER BY 1";
    query(client, what, sql, &[&roles])
        .await?
        .iter()
        .map(|row| get(row, "n", what))
        .collect()
}

/// Of the extensions `names`, those the server has no files for (`pg_available_extensions`),
/// sorted.
pub async fn unavailable_extensions(
    client: &Client,
    names: &[String],
) -> Result<Vec<String>, PgError> {
    let what = "the extensions the server can install";
    let sql = "SELECT n FROM pg_catalog.unnest($1::text[]) n \
               WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions a \
                                 WHERE a.name = n) \
               ORDER BY 1";
    query(client, what, sql, &[&names])
        .await?
        .iter()
        .map(|row| get(row, "n", what))
        .collect()
}

/// Of the extensions `names`, those installed in the database already, sorted.
pub async fn installed_extensions(
    client: &Client,
    names: &[String],
) -> Result<Vec<String>, PgError> {
    let what = "the extensions installed in the target";
    let sql = "SELECT e.extname::text AS n FROM pg_catalog.pg_extension e \
               WHERE e.extname = ANY($1::text[]) ORDER BY 1";
    query(client, what, sql, &[&names])
        .await?
        .iter()
        .map(|row| get(row, "n", what))
        .collect()
}
