//! The sequences a restored table's integer columns own: read before a restore (for the
//! before-image), and moved past the restored keys after it.

use pgark_archive::SequenceValue;
use pgark_pg::{Connection, PgError, rows};

use super::plan::Plan;
use crate::EngineError;

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
        let sql = rows::column_max_reaching(&table, &column, &sequence);
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
