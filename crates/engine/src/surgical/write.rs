//! The writing statements: locking, deleting (`replace`), inserting under each conflict mode.

use pgark_pg::{Connection, PgError, rows};

use super::plan::{Plan, describe};
use super::referencing::{self, Reach};
use super::sequences::advance_sequences;
use super::{Conflict, SurgicalOptions};
use crate::{EngineError, session};

/// Writes every plan's rows: deletes what `replace` replaces (children first), inserts under
/// the conflict rule or sets back cleared keys (parents first), re-creates re-created tables'
/// indexes and constraints, re-adds what dropping them took elsewhere, and moves sequences.
/// Returns the dependents re-added and those that could not be, with the reason.
pub(super) async fn write_rows(
    options: &SurgicalOptions,
    connection: &Connection,
    plans: &mut [Plan<'_>],
) -> Result<(Vec<String>, Vec<String>), EngineError> {
    if options.conflict == Conflict::Replace {
        for plan in plans.iter_mut().rev() {
            delete_replaced(connection, options.predicate.as_deref(), plan).await?;
        }
    }
    for plan in plans.iter_mut() {
        match &plan.reach {
            Reach::Relink {
                columns, to_null, ..
            } => {
                let (columns, to_null) = (columns.clone(), *to_null);
                referencing::relink(connection, plan, &columns, to_null).await?;
            }
            _ => insert(connection, options.conflict, plan).await?,
        }
    }
    for plan in plans.iter() {
        for item in &plan.post_data {
            session::execute(connection, &item.sql, || {
                format!(
                    "re-creating {} of table {}",
                    describe(item),
                    plan.qualified()
                )
            })
            .await?;
        }
    }
    let dependents = re_add_dependents(connection, plans).await?;
    let recorded = options
        .manifest
        .before_image
        .as_ref()
        .map_or(&[][..], |b| b.sequences.as_slice());
    for plan in plans.iter_mut() {
        plan.report.sequences =
            advance_sequences(connection, plan, recorded, options.dry_run).await?;
    }
    Ok(dependents)
}

pub(super) async fn lock(
    connection: &Connection,
    options: &SurgicalOptions,
    plans: &[Plan<'_>],
) -> Result<(), EngineError> {
    let tables: Vec<String> = plans.iter().map(Plan::qualified).collect();
    // A partitioned table's partitions are locked with it.
    let locked: Vec<String> = plans.iter().map(Plan::only).collect();
    let sql = rows::lock_against_writers(&locked);
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

async fn insert(
    connection: &Connection,
    conflict: Conflict,
    plan: &mut Plan<'_>,
) -> Result<(), EngineError> {
    let table = plan.qualified();
    let columns: Vec<String> = plan.columns.iter().map(|c| c.target.clone()).collect();
    let insert = rows::Insert {
        table: &table,
        columns: &columns,
        overriding_system_value: !plan.identity_always.is_empty(),
        from: &plan.rows,
    };
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
            plan.report.inserted = connection
                .client()
                .execute(&insert.sql(), &[])
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
                .execute(&insert.skipping_conflicts(), &[])
                .await
                .map_err(failed)?;
            plan.report.skipped = plan.report.rows - plan.report.inserted;
        }
        (Conflict::Upsert | Conflict::Replace, _) => {
            let updated: Vec<&str> = columns
                .iter()
                .filter(|c| !plan.key.contains(c) && !plan.identity_always.contains(c))
                .map(String::as_str)
                .collect();
            // The rows whose key the target has (the table is locked against other writers)
            // are the ones the upsert may update; the others it inserts. (A partitioned table
            // cannot return its rows' xmax, which would tell the two apart.)
            let existing_sql = rows::count_existing_keys(&plan.rows, &plan.only(), &plan.key);
            let existing: i64 = connection
                .client()
                .query_one(&existing_sql, &[])
                .await
                .map_err(|e| PgError::query(context(), e))?
                .get(0);
            let sql = insert.upserting(&plan.key, &updated);
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
async fn delete_replaced(
    connection: &Connection,
    predicate: Option<&str>,
    plan: &mut Plan<'_>,
) -> Result<(), EngineError> {
    let table = plan.qualified();
    plan.report.deleted = connection
        .client()
        .execute(
            &rows::delete_replaced(&plan.only(), predicate, Some((&plan.rows, &plan.key))),
            &[],
        )
        .await
        .map_err(|e| {
            PgError::query(
                format!("deleting the rows of table {table} being replaced"),
                e,
            )
        })?;
    Ok(())
}

/// Runs the statements of what dropping the re-created tables had dropped elsewhere (foreign
/// keys to them, views over them), each under a savepoint: one that fails (its other side is
/// gone too, a new object has its name) is rolled back alone and listed with the reason.
async fn re_add_dependents(
    connection: &Connection,
    plans: &[Plan<'_>],
) -> Result<(Vec<String>, Vec<String>), EngineError> {
    let (mut added, mut failed_items, mut not_added) = (Vec::new(), Vec::new(), Vec::new());
    let mut seen = std::collections::BTreeSet::new();
    for item in plans.iter().flat_map(|p| &p.dependents) {
        if !seen.insert(item.id) || item.deps.iter().any(|d| failed_items.contains(d)) {
            continue;
        }
        let listed = !matches!(
            item.kind,
            pgark_archive::ObjectKind::Comment
                | pgark_archive::ObjectKind::Owner
                | pgark_archive::ObjectKind::Acl
                | pgark_archive::ObjectKind::MaterializedViewData
        );
        let added_again = session::under_savepoint(
            connection,
            "re-adding foreign keys and views",
            connection.client().batch_execute(&item.sql),
        )
        .await?;
        match added_again {
            Ok(()) => {
                if listed {
                    added.push(describe(item));
                }
            }
            Err(e) => {
                failed_items.push(item.id);
                not_added.push(format!(
                    "{}: {}",
                    describe(item),
                    pgark_pg::ServerMessage(&e)
                ));
            }
        }
    }
    Ok((added, not_added))
}
