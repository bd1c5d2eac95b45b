//! Sequences: their options from `pg_sequence`, who owns them (`OWNED BY` or an identity column),
//! and their current state as seen by the snapshot.

use futures::{StreamExt, TryStreamExt};
use tokio_postgres::Client;

use super::address::class;
use super::filter::{USER_NAMESPACE, extension_config, not_extension_member};
use super::names::QualName;
use super::rows::{get, query};
use crate::PgError;

/// How many `SELECT last_value ...` queries are in flight at once on the one connection
/// (tokio-postgres pipelines them).
const STATE_QUERIES_IN_FLIGHT: usize = 32;

#[derive(Debug, Clone)]
pub(crate) struct Sequence {
    pub oid: u32,
    pub name: QualName,
    pub unlogged: bool,
    pub type_name: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cache: i64,
    pub cycle: bool,
    pub owner: Option<SequenceOwner>,
    pub last_value: i64,
    pub is_called: bool,
}

/// The column a sequence belongs to.
#[derive(Debug, Clone)]
pub(crate) struct SequenceOwner {
    pub table_oid: u32,
    pub column: String,
    /// An identity column's sequence (created by the column) rather than `OWNED BY`.
    pub identity: bool,
}

/// The user's sequences, outside extensions.
pub(crate) async fn read_sequences(client: &Client) -> Result<Vec<Sequence>, PgError> {
    let condition = format!(
        "c.relkind = 'S' AND {USER_NAMESPACE} AND {}",
        not_extension_member(class::PG_CLASS, "c.oid")
    );
    read_sequences_where(client, &condition, "sequences").await
}

/// The sequences extensions created and marked as configuration, whose state the dump keeps.
pub(crate) async fn read_extension_sequences(client: &Client) -> Result<Vec<Sequence>, PgError> {
    let condition = extension_config('S');
    read_sequences_where(client, &condition, "extension configuration sequences").await
}

/// The sequences aliased `c` (joined to namespace `n`) that `condition` selects.
async fn read_sequences_where(
    client: &Client,
    condition: &str,
    what: &str,
) -> Result<Vec<Sequence>, PgError> {
    let sql = format!(
        "SELECT c.oid, n.nspname::text AS schema, c.relname::text AS name, \
         c.relpersistence = 'u' AS unlogged, \
         pg_catalog.format_type(s.seqtypid, NULL) AS type_name, s.seqstart, s.seqincrement, \
         s.seqmin, s.seqmax, s.seqcache, s.seqcycle, \
         d.refobjid AS owner_table, a.attname::text AS owner_column, \
         d.deptype = 'i' AS identity \
         FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid \
         LEFT JOIN pg_catalog.pg_depend d ON d.classid = {pg_class} AND d.objid = c.oid \
              AND d.refclassid = {pg_class} AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i') \
         LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid \
              AND a.attnum = d.refobjsubid \
         WHERE {condition} ORDER BY n.nspname, c.relname",
        pg_class = class::PG_CLASS,
    );
    let mut sequences = Vec::new();
    for row in query(client, what, &sql, &[]).await? {
        let owner_table: Option<u32> = get(&row, "owner_table", what)?;
        let owner_column: Option<String> = get(&row, "owner_column", what)?;
        let owner = match (owner_table, owner_column) {
            (Some(table_oid), Some(column)) => Some(SequenceOwner {
                table_oid,
                column,
                identity: get(&row, "identity", what)?,
            }),
            _ => None,
        };
        sequences.push(Sequence {
            oid: get(&row, "oid", what)?,
            name: QualName::new(get(&row, "schema", what)?, get(&row, "name", what)?),
            unlogged: get(&row, "unlogged", what)?,
            type_name: get(&row, "type_name", what)?,
            start: get(&row, "seqstart", what)?,
            increment: get(&row, "seqincrement", what)?,
            min: get(&row, "seqmin", what)?,
            max: get(&row, "seqmax", what)?,
            cache: get(&row, "seqcache", what)?,
            cycle: get(&row, "seqcycle", what)?,
            owner,
            last_value: 0,
            is_called: false,
        });
    }
    read_states(client, &mut sequences).await?;
    Ok(sequences)
}

/// Fills in `last_value`/`is_called`, read from each sequence relation itself so they belong to
/// the caller's snapshot.
async fn read_states(client: &Client, sequences: &mut [Sequence]) -> Result<(), PgError> {
    let states: Vec<(i64, bool)> = futures::stream::iter(sequences.iter())
        .map(|seq| async move {
            let sql = format!("SELECT last_value, is_called FROM {}", seq.name.sql());
            let what = format!(
                "the state of sequence {}.{}",
                seq.name.schema, seq.name.name
            );
            let row = client
                .query_one(&sql, &[])
                .await
                .map_err(|e| PgError::query(format!("reading {what}"), e))?;
            Ok::<_, PgError>((
                get(&row, "last_value", &what)?,
                get(&row, "is_called", &what)?,
            ))
        })
        .buffered(STATE_QUERIES_IN_FLIGHT)
        .try_collect()
        .await?;
    for (seq, (last_value, is_called)) in sequences.iter_mut().zip(states) {
        seq.last_value = last_value;
        seq.is_called = is_called;
    }
    Ok(())
}
