//! Opening PostgreSQL sessions configured the same way for every dump and restore connection.

use std::time::Duration;

use pgark_pg::{ConnConfig, Connection, PgError, connect};

use crate::EngineError;

/// Settings that make COPY text and DDL mean the same on the way out and the way back in:
/// fully qualified names, exact floats, ISO dates (BC dates included), one time zone, no
/// timeouts inherited from a role or database that would kill a long dump, and no row-level
/// security: a query it would filter fails instead of silently leaving rows out (as with
/// pg_dump and pg_restore).
const SESSION_SETUP: &str = "\
    SET search_path = ''; \
    SET statement_timeout = 0; \
    SET lock_timeout = 0; \
    SET idle_in_transaction_session_timeout = 0; \
    SET extra_float_digits = 3; \
    SET DateStyle = 'ISO, YMD'; \
    SET IntervalStyle = 'postgres'; \
    SET TimeZone = 'UTC'; \
    SET xmloption = content; \
    SET client_min_messages = warning; \
    SET check_function_bodies = false; \
    SET row_security = off";

/// Connects and applies the common session settings.
pub(crate) async fn open(config: &ConnConfig) -> Result<Connection, EngineError> {
    let connection = connect(config).await?;
    connection
        .client()
        .batch_execute(SESSION_SETUP)
        .await
        .map_err(|e| PgError::query(format!("setting up a session on {config}"), e))?;
    Ok(connection)
}

/// Runs `sql` on `connection`, naming `context` in the error.
pub(crate) async fn execute(
    connection: &Connection,
    sql: &str,
    context: impl FnOnce() -> String,
) -> Result<(), EngineError> {
    connection
        .client()
        .batch_execute(sql)
        .await
        .map_err(|e| PgError::query(context(), e).into())
}

/// Runs `work` inside the current transaction under a savepoint: if it fails, what it did is
/// rolled back and nothing else, and its error is handed back (`Ok(Err(e))`) for the caller to
/// judge; the transaction goes on. Failing to set or end the savepoint is an error (`context`
/// names the step).
pub(crate) async fn under_savepoint<T>(
    connection: &Connection,
    context: &str,
    work: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<Result<T, tokio_postgres::Error>, EngineError> {
    let run = |sql: &'static str| async move {
        connection
            .client()
            .batch_execute(sql)
            .await
            .map_err(|e| EngineError::from(PgError::query(context.to_owned(), e)))
    };
    run("SAVEPOINT pgark_step").await?;
    let outcome = work.await;
    match outcome {
        Ok(_) => run("RELEASE SAVEPOINT pgark_step").await?,
        Err(_) => run("ROLLBACK TO SAVEPOINT pgark_step; RELEASE SAVEPOINT pgark_step").await?,
    }
    Ok(outcome)
}

/// Makes writes on `connection` fire no user triggers and check no foreign keys
/// (`session_replication_role = replica`) for the current transaction (`local`) or the session.
/// `false` when the role may not set it — only superusers may, unless granted (`GRANT SET ON
/// PARAMETER`, PostgreSQL 15+), and managed services do not grant it everywhere; nothing else
/// changes then (in a transaction, a savepoint keeps the refusal from aborting it).
pub(crate) async fn try_replica_role(
    connection: &Connection,
    local: bool,
) -> Result<bool, EngineError> {
    const CONTEXT: &str = "switching triggers off (session_replication_role)";
    let outcome = if local {
        under_savepoint(
            connection,
            CONTEXT,
            connection
                .client()
                .batch_execute("SET LOCAL session_replication_role = replica"),
        )
        .await?
    } else {
        connection
            .client()
            .batch_execute("SET session_replication_role = replica")
            .await
    };
    match outcome {
        Ok(()) => Ok(true),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) => {
            Ok(false)
        }
        Err(e) => Err(PgError::query(CONTEXT, e).into()),
    }
}

/// The role the session acts as (`current_user`), for messages.
pub(crate) async fn current_role(connection: &Connection) -> Result<String, EngineError> {
    let row = connection
        .client()
        .query_one("SELECT current_user::text", &[])
        .await
        .map_err(|e| PgError::query("reading the current role", e))?;
    row.try_get(0)
        .map_err(|e| PgError::query("reading the current role", e).into())
}

/// How many parallel workers the server may add to one index build
/// (`max_parallel_maintenance_workers`).
pub(crate) async fn parallel_maintenance_workers(
    connection: &Connection,
) -> Result<u64, EngineError> {
    const CONTEXT: &str = "reading max_parallel_maintenance_workers";
    let row = connection
        .client()
        .query_one(
            "SELECT current_setting('max_parallel_maintenance_workers')::bigint",
            &[],
        )
        .await
        .map_err(|e| PgError::query(CONTEXT, e))?;
    let workers: i64 = row.try_get(0).map_err(|e| PgError::query(CONTEXT, e))?;
    Ok(workers.max(0).unsigned_abs())
}

/// Awaits `work`, a step that waits on the server to send or take data, giving up when it takes
/// longer than `limit` (a connection's [`ConnConfig::stall_timeout`]; `None` waits forever).
/// `what` names the step in the error.
pub(crate) async fn unless_stalled<T>(
    limit: Option<Duration>,
    what: &dyn Fn() -> String,
    work: impl Future<Output = T>,
) -> Result<T, EngineError> {
    let Some(limit) = limit else {
        return Ok(work.await);
    };
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| EngineError::ServerStalled {
            what: what(),
            waited: describe_duration(limit),
        })
}

/// The next buffer of rows of a query of COPY OUTs, or the mark that one completed (`None` at
/// the end of them all). Gives up when the session has read nothing for `limit`, not when a
/// buffer takes longer than that to fill: a slow server is not a stalled one. `stalled` names the
/// step in a stall's error, `reading` in the server's.
pub(crate) async fn next_copy_item<T>(
    limit: Option<Duration>,
    stalled: &dyn Fn() -> String,
    reading: &dyn Fn() -> String,
    buffers: &mut pgark_pg::CopyOutBuffers<T>,
) -> Result<Option<pgark_pg::CopyOutItem<T>>, EngineError> {
    let failed = |e| EngineError::from(PgError::query(reading(), e));
    let Some(limit) = limit else {
        return buffers.next().await.transpose().map_err(failed);
    };
    loop {
        let before = buffers.bytes_read();
        match tokio::time::timeout(limit, buffers.next()).await {
            Ok(next) => return next.transpose().map_err(failed),
            Err(_) if buffers.bytes_read() != before => {}
            Err(_) => {
                return Err(EngineError::ServerStalled {
                    what: stalled(),
                    waited: describe_duration(limit),
                });
            }
        }
    }
}

/// `300s` as `5m`, `2s`, `1500ms`: the way durations are written on the command line.
pub fn describe_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    match (millis % 1000, duration.as_secs()) {
        (0, secs) if secs >= 3600 && secs % 3600 == 0 => format!("{}h", secs / 3600),
        (0, secs) if secs >= 60 && secs % 60 == 0 => format!("{}m", secs / 60),
        (0, secs) => format!("{secs}s"),
        _ => format!("{millis}ms"),
    }
}
