//! The relations a dump locks before reading anything else.

use tokio_postgres::Client;

use super::filter::{extension_config, user_table};
use super::rows::{get, query};
use crate::PgError;

/// Relations the dump must lock `ACCESS SHARE` before reading the rest, as `(schema, name)`: every
/// user table, partitioned parents included, outside system and temporary schemas and not created
/// by an extension — the same tables `read_schema` returns — and the extensions' configuration
/// tables, whose rows it reads too. Ordered by schema and name.
pub async fn relations_to_lock(client: &Client) -> Result<Vec<(String, String)>, PgError> {
    let sql = format!(
        "SELECT n.nspname::text AS schema, c.relname::text AS name \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE ({}) OR ({}) ORDER BY n.nspname, c.relname",
        user_table(),
        extension_config('r')
    );
    let what = "the tables to lock";
    query(client, what, &sql, &[])
        .await?
        .iter()
        .map(|row| Ok((get(row, "schema", what)?, get(row, "name", what)?)))
        .collect()
}

/// The server's shared lock table: how many locks it holds in all, and how many are taken now.
/// Every lock a transaction holds until it ends (a dump's `ACCESS SHARE` on each table, a
/// restore's `ACCESS EXCLUSIVE` on each table it creates) takes a slot until then; when none is
/// left, the statement fails with "out of shared memory".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockTable {
    pub max_locks_per_transaction: u64,
    pub max_connections: u64,
    pub max_prepared_transactions: u64,
    /// Locks held by every session now (`pg_locks`).
    pub in_use: u64,
}

impl LockTable {
    /// The slots the server sizes its lock table for: `max_locks_per_transaction` ×
    /// (`max_connections` + `max_prepared_transactions`). (The server may lend a little more
    /// from spare shared memory; this is what it promises.)
    pub fn capacity(&self) -> u64 {
        self.max_locks_per_transaction
            .saturating_mul(self.max_connections + self.max_prepared_transactions)
    }

    /// The `max_locks_per_transaction` under which `needed` slots fit beside those in use now.
    pub fn setting_for(&self, needed: u64) -> u64 {
        let sessions = (self.max_connections + self.max_prepared_transactions).max(1);
        (needed + self.in_use).div_ceil(sessions)
    }
}

/// Reads the server's lock table settings and the locks taken now.
pub async fn lock_table(client: &Client) -> Result<LockTable, PgError> {
    let what = "the server's lock settings";
    let rows = query(
        client,
        what,
        "SELECT current_setting('max_locks_per_transaction')::int8 AS per_transaction, \
                current_setting('max_connections')::int8 AS connections, \
                current_setting('max_prepared_transactions')::int8 AS prepared, \
                (SELECT count(*) FROM pg_catalog.pg_locks) AS in_use",
        &[],
    )
    .await?;
    let row = rows.first().ok_or_else(|| PgError::Catalog {
        reason: format!("{what}: no row"),
    })?;
    let setting = |name: &str| -> Result<u64, PgError> {
        let value: i64 = get(row, name, what)?;
        Ok(u64::try_from(value).unwrap_or(0))
    };
    Ok(LockTable {
        max_locks_per_transaction: setting("per_transaction")?,
        max_connections: setting("connections")?,
        max_prepared_transactions: setting("prepared")?,
        in_use: setting("in_use")?,
    })
}
