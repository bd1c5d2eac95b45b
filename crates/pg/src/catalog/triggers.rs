//! Triggers on tables and views, rules, and event triggers.

use tokio_postgres::Client;

use super::address::{FIRST_NORMAL_OID, class};
use super::filter::not_extension_member;
use super::rows::{get, query};
use crate::PgError;

#[derive(Debug, Clone)]
pub(crate) struct Trigger {
    pub oid: u32,
    pub relation_oid: u32,
    pub name: String,
    /// `pg_get_triggerdef`: the whole `CREATE [CONSTRAINT] TRIGGER` statement.
    pub definition: String,
    /// `tgenabled`: `O` (origin, the default), `D`, `R` (replica) or `A` (always).
    pub enabled: String,
    /// For a trigger cloned onto a partition from its parent's: only its enabled state, which
    /// differs from the parent trigger's, is dumped.
    pub cloned: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub oid: u32,
    pub relation_oid: u32,
    pub name: String,
    /// `pg_get_ruledef`: `CREATE RULE ...;`.
    pub definition: String,
    pub enabled: String,
}

#[derive(Debug, Clone)]
pub(crate) struct EventTrigger {
    pub oid: u32,
    pub name: String,
    pub event: String,
    pub tags: Vec<String>,
    pub function: String,
    pub enabled: String,
}

/// Triggers of `relations` the user created: not internal ones (foreign key checks), and not
/// those cloned onto partitions from their parent's (the parent's statement recreates them)
/// unless their enabled state differs from the parent trigger's.
pub(crate) async fn read_triggers(
    client: &Client,
    relations: &[u32],
) -> Result<Vec<Trigger>, PgError> {
    let sql = "SELECT t.oid, t.tgrelid, t.tgname::text AS name, \
               pg_catalog.pg_get_triggerdef(t.oid) AS definition, t.tgenabled::text AS enabled, \
               t.tgparentid <> 0 AS cloned \
               FROM pg_catalog.pg_trigger t \
               WHERE t.tgrelid = ANY($1) AND NOT t.tgisinternal AND (t.tgparentid = 0 \
                 OR t.tgenabled <> (SELECT p.tgenabled FROM pg_catalog.pg_trigger p \
                                    WHERE p.oid = t.tgparentid)) \
               ORDER BY t.tgrelid, t.tgname";
    let what = "triggers";
    query(client, what, sql, &[&relations])
        .await?
        .iter()
        .map(|row| {
            Ok(Trigger {
                oid: get(row, "oid", what)?,
                relation_oid: get(row, "tgrelid", what)?,
                name: get(row, "name", what)?,
                definition: get(row, "definition", what)?,
                enabled: get(row, "enabled", what)?,
                cloned: get(row, "cloned", what)?,
            })
        })
        .collect()
}

/// Rules of `relations`, except views' `_RETURN` rules (the view's definition).
pub(crate) async fn read_rules(client: &Client, relations: &[u32]) -> Result<Vec<Rule>, PgError> {
    let sql = "SELECT r.oid, r.ev_class, r.rulename::text AS name, \
               pg_catalog.pg_get_ruledef(r.oid) AS definition, r.ev_enabled::text AS enabled \
               FROM pg_catalog.pg_rewrite r \
               WHERE r.ev_class = ANY($1) AND r.rulename <> '_RETURN' \
               ORDER BY r.ev_class, r.rulename";
    let what = "rules";
    query(client, what, sql, &[&relations])
        .await?
        .iter()
        .map(|row| {
            Ok(Rule {
                oid: get(row, "oid", what)?,
                relation_oid: get(row, "ev_class", what)?,
                name: get(row, "name", what)?,
                definition: get(row, "definition", what)?,
                enabled: get(row, "enabled", what)?,
            })
        })
        .collect()
}

pub(crate) async fn read_event_triggers(client: &Client) -> Result<Vec<EventTrigger>, PgError> {
    let sql = format!(
        "SELECT e.oid, e.evtname::text AS name, e.evtevent::text AS event, \
         COALESCE(e.evttags, '{{}}'::text[]) AS tags, e.evtfoid::regproc::text AS function, \
         e.evtenabled::text AS enabled \
         FROM pg_catalog.pg_event_trigger e \
         WHERE e.oid >= {FIRST_NORMAL_OID} AND {} ORDER BY e.evtname",
        not_extension_member(class::PG_EVENT_TRIGGER, "e.oid")
    );
    let what = "event triggers";
    query(client, what, &sql, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(EventTrigger {
                oid: get(row, "oid", what)?,
                name: get(row, "name", what)?,
                event: get(row, "event", what)?,
                tags: get(row, "tags", what)?,
                function: get(row, "function", what)?,
                enabled: get(row, "enabled", what)?,
            })
        })
        .collect()
}
