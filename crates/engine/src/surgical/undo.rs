//! The command that undoes a surgical restore from its before-image.

use pgark_pg::rows::{self, key_tuple};
use pgark_pg::{Connection, PgError, quote};

use super::plan::Plan;
use super::{Conflict, SurgicalOptions};
use crate::EngineError;

/// The `--where` of the command that undoes this table's restore from the before-image: every
/// row the restore wrote (by key) and every row it saved. `None` for a whole-table replace.
pub(super) async fn undo_condition(
    connection: &Connection,
    conflict: Conflict,
    predicate: Option<&str>,
    plan: &Plan<'_>,
) -> Result<Option<String>, EngineError> {
    if plan.key.is_empty() {
        return Ok(predicate.map(str::to_owned));
    }
    if conflict == Conflict::Replace && predicate.is_none() {
        return Ok(None);
    }
    let sql = rows::key_literals(&plan.rows, &plan.key, plan.integer_key.is_some());
    let keys: Option<String> = connection
        .client()
        .query_one(&sql, &[])
        .await
        .map_err(|e| PgError::query("listing the restored keys for the undo command", e))?
        .get(0);
    let key_column = match plan.key.as_slice() {
        [one] => quote::ident(one),
        several => key_tuple(several),
    };
    let restored = match keys {
        Some(keys) => format!("{key_column} IN ({keys})"),
        None => "false".to_owned(),
    };
    Ok(Some(match (conflict, predicate) {
        (Conflict::Replace, Some(p)) => format!("({p}) OR {restored}"),
        _ => restored,
    }))
}

/// How to undo one table of a surgical restore: restore the before-image's rows of `table`
/// into `target` in place of the rows the restore wrote (those matching `condition`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoRestore {
    /// The before-image, as commands take a backup.
    pub before_image: String,
    /// The target, with its password removed.
    pub target: String,
    /// The table, quoted and qualified.
    pub table: String,
    /// The rows the restore wrote or deleted, as a condition on the table (`None`: all).
    pub condition: Option<String>,
    /// The restore ran without firing triggers, and so must its undo.
    pub disable_triggers: bool,
}

pub(super) fn undo_restore(
    location: &str,
    options: &SurgicalOptions,
    plan: &Plan<'_>,
    condition: Option<String>,
) -> UndoRestore {
    UndoRestore {
        before_image: location.to_owned(),
        target: options.target.redacted(),
        table: plan.qualified(),
        condition,
        disable_triggers: options.disable_triggers,
    }
}
