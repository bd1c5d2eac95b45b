//! The command that undoes a surgical restore from its before-image.

use pgark_pg::{Connection, PgError, quote};

use super::plan::Plan;
use super::write::key_tuple;
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
    let integer = plan.integer_key.is_some();
    let value = |k: &String| {
        if integer {
            format!("{}::text", quote::ident(k))
        } else {
            format!("pg_catalog.quote_literal({}::text)", quote::ident(k))
        }
    };
    let element = match plan.key.as_slice() {
        [one] => value(one),
        several => format!(
            "'(' || concat_ws(', ', {}) || ')'",
            several.iter().map(value).collect::<Vec<_>>().join(", ")
        ),
    };
    let sql = format!(
        "SELECT string_agg(e, ', ' ORDER BY e) FROM (SELECT DISTINCT {element} AS e FROM {}) s",
        plan.rows
    );
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

pub(super) fn undo_command(
    location: &str,
    options: &SurgicalOptions,
    plan: &Plan<'_>,
    condition: Option<&str>,
) -> String {
    let mut words = vec![
        "pgark".to_owned(),
        "restore".to_owned(),
        shell_quote(location),
        "--target".to_owned(),
        shell_quote(&options.target.redacted()),
        "--table".to_owned(),
        shell_quote(&plan.qualified()),
        "--conflict".to_owned(),
        "replace".to_owned(),
    ];
    if let Some(condition) = condition {
        words.push("--where".to_owned());
        words.push(shell_quote(condition));
    }
    if options.disable_triggers {
        words.push("--disable-triggers".to_owned());
    }
    words.join(" ")
}

/// Quotes a word for a POSIX shell, leaving plain ones bare.
pub(super) fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%_-+=:,./".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("/backups/x"), "/backups/x");
        assert_eq!(shell_quote("id IN (1, 2)"), "'id IN (1, 2)'");
        assert_eq!(shell_quote("name = 'o'"), "'name = '\\''o'\\'''");
        assert_eq!(shell_quote(""), "''");
    }
}
