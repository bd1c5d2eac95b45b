//! The writing statements: locking, deleting (`replace`), inserting under each conflict mode,
//! and moving sequences forward.

use pgark_archive::SequenceValue;
use pgark_pg::{Connection, PgError, quote};

use super::plan::Plan;
use super::{Conflict, SurgicalOptions};
use crate::EngineError;

pub(super) async fn lock(
    connection: &Connection,
    options: &SurgicalOptions,
    plans: &[Plan<'_>],
) -> Result<(), EngineError> {
    let tables: Vec<String> = plans.iter().map(Plan::qualified).collect();
    // A partitioned table's partitions are locked with it.
    let locked: Vec<String> = plans.iter().map(Plan::only).collect();
    let sql = format!(
        "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
        locked.join(", ")
    );
    match connection.client().batch_execute(&sql).await {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
            Err(EngineError::TargetLockTimeout {
                tables: tables.join(", "),
                timeout: format!("{:?}", options.lock_timeout),
            })
        }
        Err(e) => Err(PgError::query(format!("locking {}", tables.join(", ")), e).into()),
    }
}

pub(super) fn key_tuple(key: &[String]) -> String {
    format!("({})", key_list(key))
}

pub(super) fn key_list(key: &[String]) -> String {
    key.iter()
        .map(|k| quote::ident(k))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) async fn insert(
    connection: &Connection,
    conflict: Conflict,
    plan: &mut Plan<'_>,
) -> Result<(), EngineError> {
    let table = plan.qualified();
    let columns: Vec<String> = plan
        .columns
        .iter()
        .map(|c| quote::ident(&c.target))
        .collect();
    let list = columns.join(", ");
    let overriding = if plan.identity_always.is_empty() {
        ""
    } else {
        " OVERRIDING SYSTEM VALUE"
    };
    let insert = format!(
        "INSERT INTO {table} AS t ({list}){overriding} SELECT {list} FROM {}",
        plan.rows
    );
    let context = || format!("inserting the backup's rows into table {table}");
    // Rows go in through a partitioned table to whichever partition the target has for them.
    let failed = |e: tokio_postgres::Error| -> EngineError {
        if e.code() == Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION)
            && e.as_db_error()
                .is_some_and(|d| d.message().starts_with("no partition of relation"))
        {
            EngineError::NoPartitionForRows {
                table: table.clone(),
                reason: pgark_pg::ServerMessage(&e).to_string(),
            }
        } else {
            PgError::query(context(), e).into()
        }
    };
    // `replace` has deleted what goes; with a key, what stays is overwritten in place.
    match (conflict, plan.key.is_empty()) {
        (Conflict::Error, _) | (Conflict::Replace, true) => {
            plan.report.inserted =
                connection
                    .client()
                    .execute(&insert, &[])
                    .await
                    .map_err(|e| {
                        if conflict == Conflict::Error
                            && e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
                        {
                            EngineError::RowsExist {
                                table: table.clone(),
                                reason: pgark_pg::ServerMessage(&e).to_string(),
                            }
                        } else {
                            failed(e)
                        }
                    })?;
        }
        (Conflict::Skip, _) => {
            plan.report.inserted = connection
                .client()
                .execute(&format!("{insert} ON CONFLICT DO NOTHING"), &[])
                .await
                .map_err(failed)?;
            plan.report.skipped = plan.report.rows - plan.report.inserted;
        }
        (Conflict::Upsert | Conflict::Replace, _) => {
            let updated: Vec<&String> = columns
                .iter()
                .zip(&plan.columns)
                .filter(|(_, c)| {
                    !plan.key.contains(&c.target) && !plan.identity_always.contains(&c.target)
                })
                .map(|(quoted, _)| quoted)
                .collect();
            let action = if updated.is_empty() {
                "DO NOTHING".to_owned()
            } else {
                let set: Vec<String> = updated
                    .iter()
                    .map(|c| format!("{c} = EXCLUDED.{c}"))
                    .collect();
                let old: Vec<String> = updated.iter().map(|c| format!("t.{c}")).collect();
                let new: Vec<String> = updated.iter().map(|c| format!("EXCLUDED.{c}")).collect();
                // Compared as text, which every type has (json has no equality operator).
                format!(
                    "DO UPDATE SET {} WHERE ROW({})::text IS DISTINCT FROM ROW({})::text",
                    set.join(", "),
                    old.join(", "),
                    new.join(", ")
                )
            };
            // The rows whose key the target has (the table is locked against other writers)
            // are the ones the upsert may update; the others it inserts. (A partitioned table
            // cannot return its rows' xmax, which would tell the two apart.)
            let same_key: Vec<String> = plan
                .key
                .iter()
                .map(|k| format!("r.{0} = t.{0}", quote::ident(k)))
                .collect();
            let existing_sql = format!(
                "SELECT count(*) FROM {} r WHERE EXISTS (SELECT 1 FROM {} t WHERE {})",
                plan.rows,
                plan.only(),
                same_key.join(" AND ")
            );
            let existing: i64 = connection
                .client()
                .query_one(&existing_sql, &[])
                .await
                .map_err(|e| PgError::query(context(), e))?
                .get(0);
            let sql = format!(
                "WITH w AS ({insert} ON CONFLICT {} {action} RETURNING 1) SELECT count(*) FROM w",
                key_tuple(&plan.key)
            );
            let row = connection
                .client()
                .query_one(&sql, &[])
                .await
                .map_err(failed)?;
            let written = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
            let existing = u64::try_from(existing).unwrap_or(0);
            plan.report.inserted = plan.report.rows.saturating_sub(existing);
            plan.report.updated = written.saturating_sub(plan.report.inserted);
            plan.report.skipped = plan.report.rows - plan.report.inserted - plan.report.updated;
        }
    }
    Ok(())
}

/// `replace`, first half: deletes the target's rows matching `--where` (all rows without one).
/// With a primary key, rows the backup has too are left for the upsert that follows, so they are
/// overwritten in place rather than deleted: foreign keys referencing them (`ON DELETE CASCADE`)
/// and delete triggers do not act on rows that are put back.
pub(super) async fn delete_replaced(
    connection: &Connection,
    predicate: Option<&str>,
    plan: &mut Plan<'_>,
) -> Result<(), EngineError> {
    let mut conditions: Vec<String> = predicate.map(|p| format!("({p})")).into_iter().collect();
    if !plan.key.is_empty() {
        let same: Vec<String> = plan
            .key
            .iter()
            .map(|k| format!("r.{0} = t.{0}", quote::ident(k)))
            .collect();
        conditions.push(format!(
            "NOT EXISTS (SELECT 1 FROM {} r WHERE {})",
            plan.rows,
            same.join(" AND ")
        ));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let table = plan.qualified();
    plan.report.deleted = connection
        .client()
        .execute(&format!("DELETE FROM {} t{filter}", plan.only()), &[])
        .await
        .map_err(|e| {
            PgError::query(
                format!("deleting the rows of table {table} being replaced"),
                e,
            )
        })?;
    Ok(())
}

/// The sequences owned by `plan`'s table's integer columns (serial and identity), as
/// `(sequence, column)`; the sequence as `regclass` prints it.
pub(super) async fn owned_sequences(
    connection: &Connection,
    plan: &Plan<'_>,
) -> Result<Vec<(String, String)>, EngineError> {
    let table = plan.qualified();
    let owned = connection
        .client()
        .query(
            "SELECT s.oid::regclass::text, a.attname::text \
             FROM pg_catalog.pg_depend d \
             JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
             JOIN pg_catalog.pg_sequence q ON q.seqrelid = s.oid AND q.seqincrement > 0 \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid \
             WHERE d.classid = 'pg_catalog.pg_class'::regclass \
               AND d.refclassid = 'pg_catalog.pg_class'::regclass \
               AND d.refobjid = $1 AND d.deptype IN ('a', 'i') \
               AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) \
             ORDER BY 1",
            &[&plan.oid],
        )
        .await
        .map_err(|e| PgError::query(format!("reading the sequences table {table} owns"), e))?;
    Ok(owned.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The state of each of `sequences`, to put back what a restore moves.
pub(super) async fn sequence_values(
    connection: &Connection,
    sequences: &[(String, String)],
) -> Result<Vec<SequenceValue>, EngineError> {
    let mut values = Vec::with_capacity(sequences.len());
    for (sequence, _) in sequences {
        let row = connection
            .client()
            .query_one(
                &format!("SELECT last_value, is_called FROM {sequence}"),
                &[],
            )
            .await
            .map_err(|e| PgError::query(format!("reading sequence {sequence}"), e))?;
        values.push(SequenceValue {
            sequence: sequence.clone(),
            last_value: row.get(0),
            is_called: row.get(1),
        });
    }
    Ok(values)
}

/// Moves sequences owned by the table's integer columns forward to the largest value in the
/// table, where they are behind it (never backward); restoring a before-image (an undo), puts
/// them back where it recorded them instead. Sequences are not transactional, so a dry run only
/// says what it would do.
pub(super) async fn advance_sequences(
    connection: &Connection,
    plan: &Plan<'_>,
    recorded: &[SequenceValue],
    dry_run: bool,
) -> Result<Vec<(String, i64)>, EngineError> {
    let table = plan.only();
    let mut moved = Vec::new();
    for (sequence, column) in owned_sequences(connection, plan).await? {
        let context = || format!("moving sequence {sequence} past the restored keys");
        if let Some(before) = recorded.iter().find(|r| r.sequence == sequence) {
            if !dry_run {
                connection
                    .client()
                    .execute(
                        "SELECT pg_catalog.setval($1::text::regclass, $2, $3)",
                        &[&sequence, &before.last_value, &before.is_called],
                    )
                    .await
                    .map_err(|e| PgError::query(context(), e))?;
            }
            moved.push((sequence, before.last_value));
            continue;
        }
        let sql = format!(
            "SELECT m FROM (SELECT max({})::int8 AS m FROM {table}) x \
             WHERE m >= (SELECT last_value FROM {sequence})",
            quote::ident(&column),
        );
        let Some(row) = connection
            .client()
            .query_opt(&sql, &[])
            .await
            .map_err(|e| PgError::query(context(), e))?
        else {
            continue;
        };
        let value: i64 = row.get(0);
        if !dry_run {
            connection
                .client()
                .execute(
                    "SELECT pg_catalog.setval($1::text::regclass, $2)",
                    &[&sequence, &value],
                )
                .await
                .map_err(|e| PgError::query(context(), e))?;
        }
        moved.push((sequence, value));
    }
    Ok(moved)
}
