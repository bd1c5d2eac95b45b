//! `--with-referencing`: what a delete did to the tables referencing the restored rows, put back
//! in the same transaction. Foreign keys are followed in the target (where the delete
//! happened), from each restored table to every table referencing it:
//!
//! - `ON DELETE CASCADE`: the delete removed the referencing rows. The backup's rows of the
//!   referencing table whose key columns match a restored row are restored with it, and their
//!   own referencing rows in turn (transitively);
//! - `ON DELETE SET NULL` / `SET DEFAULT`: the delete cleared the keys. The target's rows are
//!   found by primary key among the backup's rows that referenced a restored row, and their key
//!   columns are set back to the backup's values, where they are still cleared;
//! - `NO ACTION` / `RESTRICT`: the delete could not have touched them; nothing to do.
//!
//! A referencing table's rows are selected by a condition on the restored rows of the tables it
//! references (`(fk) IN (SELECT key FROM restored rows)`), so parents are staged first; its
//! chunks are read whole and filtered by the server.

use pgark_pg::{Connection, PgError, quote, rows};

use super::SurgicalOptions;
use super::plan::{Plan, prepare};
use super::select::SelectedTable;
use crate::EngineError;

/// How a table came into the restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Reach {
    /// Named by the user.
    Selected,
    /// Its rows referencing restored rows were deleted by `ON DELETE CASCADE`.
    Cascade { via: Vec<String> },
    /// Its keys referencing restored rows were cleared (`SET NULL`/`SET DEFAULT`): set back.
    Relink {
        via: Vec<String>,
        /// The key columns to set back, and whether the delete set them to NULL (else to their
        /// default).
        columns: Vec<String>,
        to_null: bool,
    },
}

/// A foreign key of the target referencing a restored table.
struct Reference {
    constraint: String,
    schema: String,
    name: String,
    oid: u32,
    action: char,
    columns: Vec<String>,
    referenced: Vec<String>,
}

/// Adds to `plans` every table whose rows a delete of the restored rows cascaded to or
/// cleared keys in, transitively through cascades; `notes` gets what cannot be followed.
pub(super) async fn add_referencing<'m>(
    options: &'m SurgicalOptions,
    connection: &Connection,
    plans: &mut Vec<Plan<'m>>,
    notes: &mut Vec<String>,
) -> Result<(), EngineError> {
    let mut next = 0;
    while next < plans.len() {
        let (parent_oid, parent_rows, parent_name) = (
            plans[next].oid,
            plans[next].rows.clone(),
            plans[next].qualified(),
        );
        let follows = matches!(plans[next].reach, Reach::Selected | Reach::Cascade { .. });
        next += 1;
        if !follows {
            continue;
        }
        for reference in references_to(connection, parent_oid).await? {
            if reference.oid == parent_oid {
                // A tree of rows in one table (ON DELETE CASCADE to itself): the delete also
                // took every row below the selected ones, which the condition now reaches.
                if reference.action == 'c' {
                    let plan = &mut plans[next - 1];
                    plan.condition = Some(self_closure(
                        &plan.staging,
                        plan.condition.as_deref(),
                        &reference,
                    ));
                    if let Reach::Cascade { via } = &mut plan.reach {
                        via.push(format!(
                            "foreign key {} to itself, ON DELETE CASCADE",
                            quote::ident(&reference.constraint)
                        ));
                    }
                } else {
                    notes.push(format!(
                        "{parent_name} (foreign key {} to itself, ON DELETE SET NULL/DEFAULT): \
                         keys cleared in the table's other rows are not set back",
                        quote::ident(&reference.constraint)
                    ));
                }
                continue;
            }
            let table = quote::qualified(&reference.schema, &reference.name);
            let via = format!(
                "foreign key {} to {parent_name}, ON DELETE {}",
                quote::ident(&reference.constraint),
                match reference.action {
                    'c' => "CASCADE",
                    'n' => "SET NULL",
                    _ => "SET DEFAULT",
                }
            );
            let condition =
                rows::references_any(&reference.columns, &reference.referenced, &parent_rows);
            if let Some(existing) = plans.iter_mut().find(|p| p.oid == reference.oid) {
                existing.condition = Some(match existing.condition.take() {
                    Some(c) => format!("({c}) OR {condition}"),
                    None => condition,
                });
                match &mut existing.reach {
                    Reach::Cascade { via: all } | Reach::Relink { via: all, .. } => all.push(via),
                    Reach::Selected => {}
                }
                continue;
            }
            let Some(selected) =
                SelectedTable::named(&options.manifest, &reference.schema, &reference.name)
            else {
                notes.push(format!(
                    "{table} ({via}): the backup does not have this table, so its rows are not put back"
                ));
                continue;
            };
            let n = plans.len();
            let mut plan = prepare(options, connection, &selected, n).await?;
            if plan.oid != reference.oid {
                // Not the same table: `--into-schema`/`--into-table` write elsewhere.
                notes.push(format!(
                    "{table} ({via}): the restore writes to {} instead",
                    plan.qualified()
                ));
                continue;
            }
            let unmatched: Vec<&String> = reference
                .columns
                .iter()
                .filter(|c| !plan.source.columns.iter().any(|b| &&b.name == c))
                .collect();
            if !unmatched.is_empty() {
                return Err(EngineError::ReferencingNotRestorable {
                    table: plan.qualified(),
                    constraint: reference.constraint,
                    reason: format!(
                        "the backup's table has no column {}",
                        unmatched
                            .iter()
                            .map(|c| quote::ident(c))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            plan.condition = Some(condition);
            plan.reach = if reference.action == 'c' {
                Reach::Cascade { via: vec![via] }
            } else {
                if plan.key.is_empty() {
                    return Err(EngineError::ReferencingNotRestorable {
                        table: plan.qualified(),
                        constraint: reference.constraint,
                        reason: "it has no primary key in the target, so the rows whose keys \
                                 were cleared cannot be found"
                            .into(),
                    });
                }
                Reach::Relink {
                    via: vec![via],
                    columns: reference.columns,
                    to_null: reference.action == 'n',
                }
            };
            plans.push(plan);
        }
    }
    Ok(())
}

/// The target's foreign keys referencing table `oid` that a delete acts on (CASCADE, SET NULL,
/// SET DEFAULT), its own included; for partitioned tables, the constraint of the partitioned
/// table (not its clones on partitions).
async fn references_to(connection: &Connection, oid: u32) -> Result<Vec<Reference>, EngineError> {
    let rows = connection
        .client()
        .query(
            "SELECT c.conname::text, n.nspname::text, r.relname::text, c.conrelid, \
                    c.confdeltype::text, \
                    ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(c.conkey) WITH ORDINALITY k(n, i) \
                          JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n \
                          ORDER BY k.i), \
                    ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(c.confkey) WITH ORDINALITY k(n, i) \
                          JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n \
                          ORDER BY k.i) \
             FROM pg_catalog.pg_constraint c \
             JOIN pg_catalog.pg_class r ON r.oid = c.conrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace \
             WHERE c.contype = 'f' AND c.confrelid = $1 \
               AND c.confdeltype IN ('c', 'n', 'd') AND c.conparentid = 0 \
             ORDER BY n.nspname, r.relname, c.conname",
            &[&oid],
        )
        .await
        .map_err(|e| PgError::query("reading the foreign keys referencing a restored table", e))?;
    Ok(rows
        .iter()
        .map(|row| Reference {
            constraint: row.get(0),
            schema: row.get(1),
            name: row.get(2),
            oid: row.get(3),
            action: row.get::<_, String>(4).chars().next().unwrap_or('a'),
            columns: row.get(5),
            referenced: row.get(6),
        })
        .collect())
}

/// The condition selecting the rows `condition` selects and, transitively, every row of the
/// same table referencing one of them through `reference` (a foreign key to itself): a
/// recursive walk over the staged rows, by the referenced key.
fn self_closure(staging: &str, condition: Option<&str>, reference: &Reference) -> String {
    rows::with_self_references(
        staging,
        condition,
        &reference.columns,
        &reference.referenced,
    )
}

/// Sets back the key columns a delete cleared (`SET NULL`/`SET DEFAULT`) in the target's rows
/// that referenced restored rows in the backup, where they are still cleared (NULL) or, for
/// `SET DEFAULT`, differ from the backup's.
pub(super) async fn relink(
    connection: &Connection,
    plan: &mut Plan<'_>,
    columns: &[String],
    to_null: bool,
) -> Result<(), EngineError> {
    let table = plan.qualified();
    let sql = rows::set_back_cleared(&plan.only(), &plan.rows, &plan.key, columns, to_null);
    let updated: i64 = connection
        .client()
        .query_one(&sql, &[])
        .await
        .map_err(|e| PgError::query(format!("setting back the cleared keys of table {table}"), e))?
        .get(0);
    plan.report.updated = u64::try_from(updated).unwrap_or(0);
    plan.report.skipped = plan.report.rows.saturating_sub(plan.report.updated);
    Ok(())
}
