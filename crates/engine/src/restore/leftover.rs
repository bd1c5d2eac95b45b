//! What a restore killed where no cleanup can run (SIGKILL, the OOM killer, a host reboot)
//! leaves behind, and how the next restore recognises it, so that a half-restored database is
//! never taken for a restored one:
//!
//! - A `--create` restore builds the database under a temporary name derived from the target's
//!   name and the backup id, marked by its comment, and renames it to the target's name as its
//!   very last step. Killed, it leaves only the marked, temporary database; the next `--create`
//!   restore to the same name drops it (and nothing unmarked).
//! - A restore into an existing database marks that database with its comment while it runs and
//!   puts the comment back last. Killed, it leaves the mark; the next restore refuses the
//!   database until forced.
//!
//! Concurrent restores to one name are kept apart by an advisory lock held for the whole run, so
//! the leftover of a killed restore (whose sessions are gone) is never mistaken for the work of
//! a running one.

use pgark_pg::{Connection, PgError, quote};
use tokio_postgres::error::SqlState;

use crate::{EngineError, session};

/// How every marking comment starts; what follows is the marker's fields as JSON.
const MARKER_PREFIX: &str = "pgark: incomplete restore, not a usable database";

/// The most bytes PostgreSQL keeps of a name (NAMEDATALEN - 1).
const MAX_NAME_BYTES: usize = 63;

/// The advisory lock class of restores ("pgar"); the object is the target name's hash.
const LOCK_CLASS: i32 = 0x7067_6172;

/// What a marking comment records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marker {
    /// The database the restore was to produce.
    pub target: String,
    pub backup: String,
    /// When the restore started (RFC 3339, UTC).
    pub started: String,
    /// The comment a database restored into had before it was marked, put back when the
    /// restore ends (however many tries that takes).
    pub previous: Option<String>,
}

impl Marker {
    pub(crate) fn comment(&self) -> String {
        let fields = serde_json::json!({
            "target": self.target,
            "backup": self.backup,
            "started": self.started,
            "previous": self.previous,
        });
        format!("{MARKER_PREFIX}: {fields}")
    }

    /// The marker a database comment holds, if it is one.
    pub(crate) fn parse(comment: &str) -> Option<Marker> {
        let fields = comment.strip_prefix(MARKER_PREFIX)?.strip_prefix(": ")?;
        let value: serde_json::Value = serde_json::from_str(fields).ok()?;
        let field = |name: &str| Some(value.get(name)?.as_str()?.to_owned());
        Some(Marker {
            target: field("target")?,
            backup: field("backup")?,
            started: field("started")?,
            previous: field("previous"),
        })
    }

    /// For messages: `backup X, started T`.
    pub(crate) fn describe(&self) -> String {
        format!("backup {}, started {}", self.backup, self.started)
    }
}

/// The name a `--create` restore of `backup` builds `target` under: `<target>~pgark-<backup>`,
/// the target's part shortened (on a character boundary) to fit PostgreSQL's name length.
pub(crate) fn temporary_name(target: &str, backup: &str) -> String {
    let suffix = format!("~pgark-{backup}");
    let mut end = MAX_NAME_BYTES
        .saturating_sub(suffix.len())
        .min(target.len());
    while !target.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{suffix}", &target[..end])
}

/// How long a restore waits for another restore to the same name (or the sessions of a killed
/// one, which the server ends as soon as it notices) before giving up.
const LOCK_WAIT: &str = "10s";

/// Takes the advisory lock that keeps restores to `target` apart, on `connection`'s session
/// (released when it closes, which a killed restore's does).
pub(crate) async fn lock_target(connection: &Connection, target: &str) -> Result<(), EngineError> {
    let context = || "waiting for other restores to the same database".to_owned();
    session::execute(
        connection,
        &format!("SET lock_timeout = '{LOCK_WAIT}'"),
        context,
    )
    .await?;
    let locked = connection
        .client()
        .execute(
            "SELECT pg_catalog.pg_advisory_lock($1, pg_catalog.hashtext($2))",
            &[&LOCK_CLASS, &target],
        )
        .await;
    session::execute(connection, "SET lock_timeout = 0", context).await?;
    match locked {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
            Err(EngineError::RestoreRunning {
                database: target.to_owned(),
            })
        }
        Err(e) => Err(PgError::query(context(), e).into()),
    }
}

/// Whether database `database` exists and, if it does, its comment: `None` when there is no such
/// database, `Some(None)` when it has no comment.
pub(crate) async fn database_comment(
    connection: &Connection,
    database: &str,
) -> Result<Option<Option<String>>, EngineError> {
    let row = connection
        .client()
        .query_opt(
            "SELECT pg_catalog.shobj_description(oid, 'pg_database') \
             FROM pg_catalog.pg_database WHERE datname = $1",
            &[&database],
        )
        .await
        .map_err(|e| PgError::query(format!("reading the comment of database {database:?}"), e))?;
    Ok(row.map(|r| r.get(0)))
}

/// Sets (or with `None` removes) the comment of database `database`.
pub(crate) async fn set_comment(
    connection: &Connection,
    database: &str,
    comment: Option<&str>,
) -> Result<(), EngineError> {
    let sql = format!(
        "COMMENT ON DATABASE {} IS {}",
        quote::ident(database),
        comment.map_or_else(|| "NULL".to_owned(), quote::literal)
    );
    session::execute(connection, &sql, || {
        format!("setting the comment of database {database:?}")
    })
    .await
}

/// The temporary databases interrupted `--create` restores to `target` left: name and marker.
pub(crate) async fn find(
    connection: &Connection,
    target: &str,
) -> Result<Vec<(String, Marker)>, EngineError> {
    let rows = connection
        .client()
        .query(
            "SELECT datname, pg_catalog.shobj_description(oid, 'pg_database') \
             FROM pg_catalog.pg_database \
             WHERE pg_catalog.starts_with(pg_catalog.shobj_description(oid, 'pg_database'), $1) \
             ORDER BY 1",
            &[&MARKER_PREFIX],
        )
        .await
        .map_err(|e| PgError::query("looking for interrupted restores' databases", e))?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let name: String = row.get(0);
            let marker = Marker::parse(&row.get::<_, String>(1))?;
            // Only a temporary database: an existing database marked by a restore into it is
            // the user's, never dropped here.
            (marker.target == target && name == temporary_name(target, &marker.backup))
                .then_some((name, marker))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_reads_back_from_its_comment() {
        let marker = Marker {
            target: "shop \"eu\"".to_owned(),
            backup: "20261204T101500Z-02".to_owned(),
            started: "2026-12-04T10:20:00Z".to_owned(),
            previous: Some("reporting replica".to_owned()),
        };
        assert_eq!(Marker::parse(&marker.comment()), Some(marker));
        assert_eq!(Marker::parse("the production database"), None);
        assert_eq!(
            Marker::parse(&format!("{MARKER_PREFIX}: {{\"target\": 1}}")),
            None
        );
    }

    #[test]
    fn a_temporary_name_fits_postgresql_names() {
        assert_eq!(
            temporary_name("shop", "20261204T101500Z"),
            "shop~pgark-20261204T101500Z"
        );
        let long = "é".repeat(40);
        let name = temporary_name(&long, "20261204T101500Z-02");
        assert!(name.len() <= MAX_NAME_BYTES, "{name}");
        assert!(name.ends_with("~pgark-20261204T101500Z-02"));
    }
}
