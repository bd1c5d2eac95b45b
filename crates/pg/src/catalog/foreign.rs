//! Foreign-data wrappers, foreign servers and user mappings.
//!
//! User mappings are read from the `pg_user_mappings` view, which shows a mapping's options
//! only to those allowed to see them (the mapped user with `USAGE` on the server, the server's
//! owner, superusers), exactly as `pg_dump` reads them: what the dumping role cannot read —
//! typically other users' passwords — is dumped without options. Options that hold secrets
//! (passwords, tokens, keys) are never read into a backup at all (SPEC I7: no secret in a
//! manifest); the dump warns, naming the mapping and the option, so they can be set again after
//! a restore.

use tokio_postgres::Client;

use super::address::{FIRST_NORMAL_OID, class};
use super::filter::not_extension_member;
use super::rows::{get, query};
use crate::PgError;

/// `pg_user_mapping`'s catalog OID.
pub(crate) const PG_USER_MAPPING: u32 = 1418;

/// `OPTIONS (...)` contents of the text[] option column `column`, in the catalog's order,
/// each `key 'value'` quoted by the server; an empty string when there are none.
pub(crate) fn options_expr(column: &str) -> String {
    options_where(column, "true")
}

/// Option names that hold secrets, as a SQL condition on `o.option_name`.
const SECRET_OPTION: &str = "o.option_name ~* '(pass|secret|token|key|credential)'";

fn options_where(column: &str, condition: &str) -> String {
    format!(
        "pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.quote_ident(o.option_name) || ' ' \
         || pg_catalog.quote_literal(o.option_value) \
         FROM pg_catalog.pg_options_to_table({column}) WITH ORDINALITY o \
         WHERE {condition} ORDER BY o.ordinality), ', ')"
    )
}

#[derive(Debug, Clone)]
pub(crate) struct ForeignDataWrapper {
    pub oid: u32,
    pub name: String,
    /// Schema-qualified unless in `pg_catalog`.
    pub handler: Option<String>,
    pub validator: Option<String>,
    pub options: String,
}

#[derive(Debug, Clone)]
pub(crate) struct ForeignServer {
    pub oid: u32,
    pub name: String,
    pub wrapper: String,
    pub server_type: Option<String>,
    pub version: Option<String>,
    pub options: String,
}

#[derive(Debug, Clone)]
pub(crate) struct UserMapping {
    pub oid: u32,
    /// `None` for PUBLIC.
    pub user: Option<String>,
    pub server: String,
    /// Empty when there are none or the dumping role may not see them.
    pub options: String,
}

pub(crate) async fn read_wrappers(client: &Client) -> Result<Vec<ForeignDataWrapper>, PgError> {
    let sql = format!(
        "SELECT w.oid, w.fdwname::text AS name, \
         NULLIF(w.fdwhandler::oid, 0)::pg_catalog.regproc::text AS handler, \
         NULLIF(w.fdwvalidator::oid, 0)::pg_catalog.regproc::text AS validator, {} AS options \
         FROM pg_catalog.pg_foreign_data_wrapper w \
         WHERE w.oid >= {FIRST_NORMAL_OID} AND {} ORDER BY 2",
        options_expr("w.fdwoptions"),
        not_extension_member(class::PG_FOREIGN_DATA_WRAPPER, "w.oid")
    );
    let what = "foreign-data wrappers";
    query(client, what, &sql, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(ForeignDataWrapper {
                oid: get(row, "oid", what)?,
                name: get(row, "name", what)?,
                handler: get(row, "handler", what)?,
                validator: get(row, "validator", what)?,
                options: get(row, "options", what)?,
            })
        })
        .collect()
}

pub(crate) async fn read_servers(client: &Client) -> Result<Vec<ForeignServer>, PgError> {
    let sql = format!(
        "SELECT s.oid, s.srvname::text AS name, w.fdwname::text AS wrapper, \
         s.srvtype AS server_type, s.srvversion AS version, {} AS options \
         FROM pg_catalog.pg_foreign_server s \
         JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw \
         WHERE s.oid >= {FIRST_NORMAL_OID} AND {} ORDER BY 2",
        options_expr("s.srvoptions"),
        not_extension_member(class::PG_FOREIGN_SERVER, "s.oid")
    );
    let what = "foreign servers";
    query(client, what, &sql, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(ForeignServer {
                oid: get(row, "oid", what)?,
                name: get(row, "name", what)?,
                wrapper: get(row, "wrapper", what)?,
                server_type: get(row, "server_type", what)?,
                version: get(row, "version", what)?,
                options: get(row, "options", what)?,
            })
        })
        .collect()
}

pub(crate) async fn read_user_mappings(client: &Client) -> Result<Vec<UserMapping>, PgError> {
    let sql = format!(
        "SELECT m.umid AS oid, CASE WHEN m.umuser = 0 THEN NULL ELSE m.usename::text END AS usr, \
         m.srvname::text AS server, COALESCE({}, '') AS options, \
         COALESCE(pg_catalog.array_to_string(ARRAY(SELECT o.option_name \
           FROM pg_catalog.pg_options_to_table(m.umoptions) o WHERE {SECRET_OPTION}), ', '), '') \
           AS withheld \
         FROM pg_catalog.pg_user_mappings m \
         WHERE m.srvid >= {FIRST_NORMAL_OID} AND {} ORDER BY 3, 2 NULLS FIRST",
        options_where("m.umoptions", &format!("NOT ({SECRET_OPTION})")),
        not_extension_member(class::PG_FOREIGN_SERVER, "m.srvid")
    );
    let what = "user mappings";
    query(client, what, &sql, &[])
        .await?
        .iter()
        .map(|row| {
            let mapping = UserMapping {
                oid: get(row, "oid", what)?,
                user: get(row, "usr", what)?,
                server: get(row, "server", what)?,
                options: get(row, "options", what)?,
            };
            let withheld: String = get(row, "withheld", what)?;
            if !withheld.is_empty() {
                tracing::warn!(
                    "user mapping for {} on server {}: option(s) {withheld} hold secrets and are \
                     not backed up; set them again after a restore with ALTER USER MAPPING",
                    mapping.user.as_deref().unwrap_or("PUBLIC"),
                    mapping.server
                );
            }
            Ok(mapping)
        })
        .collect()
}

/// A foreign table: its columns (as a table's), server, options and column options.
#[derive(Debug, Clone)]
pub(crate) struct ForeignTable {
    pub table: super::Table,
    pub server: String,
    pub options: String,
    /// `OPTIONS (...)` contents by column name, for columns that have options.
    pub column_options: std::collections::HashMap<String, String>,
}

/// Foreign tables that are neither partitions nor inheritance children (those are not dumped
/// yet), as tables with their foreign parts.
pub(crate) async fn read_foreign_tables(client: &Client) -> Result<Vec<ForeignTable>, PgError> {
    let condition = format!(
        "c.relkind = 'f' AND NOT c.relispartition AND {} AND {} AND NOT EXISTS \
         (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid)",
        super::filter::USER_NAMESPACE,
        not_extension_member(class::PG_CLASS, "c.oid")
    );
    let tables = super::tables::read_relations(client, &condition, "foreign tables").await?;
    let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
    let sql = format!(
        "SELECT f.ftrelid, s.srvname::text AS server, {} AS options \
         FROM pg_catalog.pg_foreign_table f \
         JOIN pg_catalog.pg_foreign_server s ON s.oid = f.ftserver WHERE f.ftrelid = ANY($1)",
        options_expr("f.ftoptions")
    );
    let what = "foreign tables";
    let mut parts = std::collections::HashMap::new();
    for row in query(client, what, &sql, &[&oids]).await? {
        let oid: u32 = get(&row, "ftrelid", what)?;
        let server: String = get(&row, "server", what)?;
        let options: String = get(&row, "options", what)?;
        parts.insert(oid, (server, options));
    }
    let sql = format!(
        "SELECT a.attrelid, a.attname::text AS name, {} AS options \
         FROM pg_catalog.pg_attribute a WHERE a.attrelid = ANY($1) AND a.attnum > 0 \
         AND NOT a.attisdropped AND a.attfdwoptions IS NOT NULL",
        options_expr("a.attfdwoptions")
    );
    let what = "foreign table column options";
    let mut column_options: std::collections::HashMap<u32, std::collections::HashMap<_, _>> =
        std::collections::HashMap::new();
    for row in query(client, what, &sql, &[&oids]).await? {
        let options: String = get(&row, "options", what)?;
        if !options.is_empty() {
            column_options
                .entry(get(&row, "attrelid", what)?)
                .or_default()
                .insert(get(&row, "name", what)?, options);
        }
    }
    Ok(tables
        .into_iter()
        .filter_map(|table| {
            let (server, options) = parts.remove(&table.oid)?;
            Some(ForeignTable {
                column_options: column_options.remove(&table.oid).unwrap_or_default(),
                server,
                options,
                table,
            })
        })
        .collect())
}
