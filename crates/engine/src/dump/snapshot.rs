//! The leader session (exports the snapshot, holds the locks, reads the schema) and the worker
//! sessions that import its snapshot.

use pgark_archive::SourceInfo;
use pgark_pg::{ConnConfig, Connection, PgError, SchemaDump, quote};

use super::DumpOptions;
use crate::{EngineError, session};

/// The oldest server pgark reads: the catalog queries rely on features of 13 and later.
const MIN_SERVER_VERSION_NUM: u32 = 130_000;

pub(super) struct Leader {
    connection: Connection,
    pub(super) source: SourceInfo,
}

impl Leader {
    /// Starts the snapshot transaction, exports the snapshot and locks every table.
    pub(super) async fn start(options: &DumpOptions) -> Result<Leader, EngineError> {
        let connection = session::open(&options.source).await?;
        let client = connection.client();
        let context = |what: &str| format!("{what} on {}", options.source);

        let row = client
            .query_one(
                "SELECT current_setting('server_version'), \
                        current_setting('server_version_num')::int4, \
                        current_database()::text, \
                        pg_catalog.pg_encoding_to_char(d.encoding)::text \
                 FROM pg_catalog.pg_database d WHERE d.datname = current_database()",
                &[],
            )
            .await
            .map_err(|e| PgError::query(context("reading the server version"), e))?;
        let server_version: String = row.get(0);
        let version_num: i32 = row.get(1);
        let server_version_num = u32::try_from(version_num).unwrap_or(0);
        if server_version_num < MIN_SERVER_VERSION_NUM {
            return Err(EngineError::UnsupportedServer {
                version: server_version,
            });
        }

        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .map_err(|e| PgError::query(context("starting the snapshot transaction"), e))?;
        let snapshot = client
            .query_one(
                "SELECT pg_catalog.pg_export_snapshot(), \
                        to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
                &[],
            )
            .await
            .map_err(|e| PgError::query(context("exporting the snapshot"), e))?;

        let source = SourceInfo {
            connection: options.source.to_string(),
            database: row.get(2),
            server_version,
            server_version_num,
            encoding: row.get(3),
            snapshot_id: snapshot.get(0),
            snapshot_time: snapshot.get(1),
        };
        let leader = Leader { connection, source };
        if options.contents != super::DumpContents::Database {
            return Ok(leader);
        }
        // Before the locks, which a table without SELECT would fail one at a time.
        let unreadable = pgark_pg::unreadable_relations(leader.client()).await?;
        if !unreadable.is_empty() {
            return Err(EngineError::SourceNotReadable(unreadable));
        }
        leader.lock_tables(options).await?;
        Ok(leader)
    }

    /// Locks every table ACCESS SHARE, one statement per table so a timeout names the table.
    /// The statements are pipelined, a few hundred at a time: with thousands of tables, one
    /// round trip each would cost more than dumping them.
    async fn lock_tables(&self, options: &DumpOptions) -> Result<(), EngineError> {
        const PIPELINED: usize = 256;
        let client = self.connection.client();
        let timeout = match options.lock_wait_timeout {
            Some(t) => format!("{}ms", t.as_millis().max(1)),
            None => "0".to_owned(),
        };
        client
            .batch_execute(&format!(
                "SET LOCAL lock_timeout = {}",
                quote::literal(&timeout)
            ))
            .await
            .map_err(|e| PgError::query("setting the lock wait timeout", e))?;
        let relations = pgark_pg::relations_to_lock(client).await?;
        check_lock_table(client, relations.len(), options.jobs).await?;
        for batch in relations.chunks(PIPELINED) {
            let locks = batch.iter().map(|(schema, name)| async move {
                let sql = format!(
                    "LOCK TABLE {} IN ACCESS SHARE MODE",
                    quote::qualified(schema, name)
                );
                (schema, name, client.batch_execute(&sql).await)
            });
            // In order: after the first failure the rest only report the aborted transaction.
            for (schema, name, result) in futures::future::join_all(locks).await {
                if let Err(e) = result {
                    let table = format!("{schema}.{name}");
                    return Err(match e.code() {
                        Some(code)
                            if *code == tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE =>
                        {
                            EngineError::LockTimeout { table, timeout }
                        }
                        _ => PgError::query(format!("locking table {table}"), e).into(),
                    });
                }
            }
        }
        client
            .batch_execute("SET LOCAL lock_timeout = 0")
            .await
            .map_err(|e| PgError::query("resetting the lock wait timeout", e))?;
        Ok(())
    }

    pub(super) fn client(&self) -> &tokio_postgres::Client {
        self.connection.client()
    }

    pub(super) async fn read_schema(&self) -> Result<SchemaDump, EngineError> {
        Ok(pgark_pg::read_schema(self.connection.client()).await?)
    }

    /// Ends the snapshot transaction, releasing the locks. Called once every worker is done.
    pub(super) async fn finish(self) -> Result<(), EngineError> {
        self.connection
            .client()
            .batch_execute("COMMIT")
            .await
            .map_err(|e| PgError::query("ending the snapshot transaction", e))?;
        Ok(())
    }
}

/// Locks a session takes besides the tables' (catalogs, its own transaction), allowed for each.
const LOCKS_PER_SESSION: u64 = 16;

/// Fails, before anything is locked or read, when locking `tables` tables in one transaction
/// would run the server's lock table out of slots half-way ("out of shared memory"). The
/// snapshot's transaction holds one lock per table until the dump ends, so that no table changes
/// shape between the snapshot and its COPY; the workers' locks on the same tables share those
/// entries.
async fn check_lock_table(
    client: &tokio_postgres::Client,
    tables: usize,
    jobs: usize,
) -> Result<(), EngineError> {
    let lock_table = pgark_pg::lock_table(client).await?;
    let needed = tables as u64 + LOCKS_PER_SESSION * (jobs as u64 + 1);
    if needed + lock_table.in_use > lock_table.capacity() {
        return Err(EngineError::LockTableTooSmall {
            tables,
            capacity: lock_table.capacity(),
            in_use: lock_table.in_use,
            max_locks_per_transaction: lock_table.max_locks_per_transaction,
            max_connections: lock_table.max_connections,
            max_prepared_transactions: lock_table.max_prepared_transactions,
            needed_setting: lock_table.setting_for(needed),
        });
    }
    Ok(())
}

/// Opens a worker session that sees exactly the leader's snapshot.
pub(super) async fn import(
    source: &ConnConfig,
    snapshot_id: &str,
) -> Result<Connection, EngineError> {
    let connection = session::open(source).await?;
    let sql = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}",
        quote::literal(snapshot_id)
    );
    session::execute(&connection, &sql, || {
        format!("importing snapshot {snapshot_id}")
    })
    .await
    .map_err(|cause| EngineError::SnapshotLost {
        snapshot: snapshot_id.to_owned(),
        cause: Box::new(cause),
    })?;
    Ok(connection)
}
