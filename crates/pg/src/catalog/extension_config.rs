//! Extensions' configuration tables (`pg_extension_config_dump`): tables `CREATE EXTENSION`
//! creates, with rows of the extension's own, to which users add rows of theirs (settings, jobs).
//! The dump keeps the rows the extension's filter condition selects — the users' — and restores
//! them after `CREATE EXTENSION`, as pg_dump does.

use std::collections::HashMap;

use tokio_postgres::Client;

use super::filter::extension_config;
use super::rows::{get, query};
use super::tables::{Table, read_relations};
use crate::PgError;

#[derive(Debug, Clone)]
pub(crate) struct ConfigTable {
    pub table: Table,
    pub extension_oid: u32,
    /// The extension's filter, a `WHERE` clause (or empty: every row).
    pub condition: String,
    /// The other configuration tables this one has foreign keys to: their rows load first.
    pub references: Vec<u32>,
}

pub(crate) async fn read_config_tables(client: &Client) -> Result<Vec<ConfigTable>, PgError> {
    let tables = read_relations(
        client,
        &extension_config('r'),
        "extension configuration tables",
    )
    .await?;
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let what = "extension configuration conditions";
    let sql = "SELECT x.oid, e.oid AS extension, x.condition \
               FROM pg_catalog.pg_extension e \
               CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(e.extconfig), \
                    pg_catalog.unnest(e.extcondition)) AS x(oid, condition)";
    let mut conditions: HashMap<u32, (u32, String)> = HashMap::new();
    for row in query(client, what, sql, &[]).await? {
        let condition: Option<String> = get(&row, "condition", what)?;
        conditions.insert(
            get(&row, "oid", what)?,
            (get(&row, "extension", what)?, condition.unwrap_or_default()),
        );
    }
    let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
    let what = "foreign keys between extension configuration tables";
    let sql = "SELECT conrelid, confrelid FROM pg_catalog.pg_constraint \
               WHERE contype = 'f' AND conrelid = ANY($1) AND confrelid = ANY($1) \
               AND conrelid <> confrelid ORDER BY conrelid, confrelid";
    let mut references: HashMap<u32, Vec<u32>> = HashMap::new();
    for row in query(client, what, sql, &[&oids]).await? {
        references
            .entry(get(&row, "conrelid", what)?)
            .or_default()
            .push(get(&row, "confrelid", what)?);
    }
    Ok(tables
        .into_iter()
        .filter_map(|table| {
            let (extension_oid, condition) = conditions.remove(&table.oid)?;
            Some(ConfigTable {
                references: references.remove(&table.oid).unwrap_or_default(),
                table,
                extension_oid,
                condition,
            })
        })
        .collect())
}
