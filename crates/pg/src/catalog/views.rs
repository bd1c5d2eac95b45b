//! Views and materialized views, with the definitions the server prints (`pg_get_viewdef`).

use std::collections::HashMap;

use tokio_postgres::Client;

use super::address::class;
use super::filter::{USER_NAMESPACE, not_extension_member};
use super::names::QualName;
use super::rows::{get, query};
use crate::PgError;

#[derive(Debug, Clone)]
pub(crate) struct View {
    pub oid: u32,
    pub name: QualName,
    pub materialized: bool,
    /// `SELECT ...` without the trailing semicolon.
    pub definition: String,
    /// `reloptions` as `key=value` (`security_barrier=true`, `check_option=local`).
    pub options: Vec<String>,
    /// A materialized view's access method, when not `heap`.
    pub access_method: Option<String>,
    /// Whether a materialized view held data in the source.
    pub populated: bool,
    /// The `_RETURN` rule that holds the definition, which `pg_depend` names as the dependent.
    pub rule_oid: u32,
    pub row_type: u32,
    pub row_array_type: u32,
    /// (name, type) of each column, for a placeholder view when a cycle must be broken.
    pub columns: Vec<(String, String)>,
    /// Column defaults (`ALTER VIEW ... ALTER COLUMN ... SET DEFAULT`): the `pg_attrdef` row,
    /// the column and the expression.
    pub defaults: Vec<(u32, String, String)>,
}

pub(crate) async fn read_views(client: &Client) -> Result<Vec<View>, PgError> {
    let sql = format!(
        "SELECT c.oid, n.nspname::text AS schema, c.relname::text AS name, \
         c.relkind = 'm' AS materialized, pg_catalog.pg_get_viewdef(c.oid) AS definition, \
         c.reloptions AS options, c.relispopulated, \
         CASE WHEN c.relkind = 'm' AND am.amname <> 'heap' THEN am.amname::text END AS am, \
         COALESCE((SELECT r.oid FROM pg_catalog.pg_rewrite r WHERE r.ev_class = c.oid \
                   AND r.rulename = '_RETURN'), 0) AS rule_oid, \
         c.reltype, COALESCE(rt.typarray, 0) AS typarray \
         FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_catalog.pg_type rt ON rt.oid = c.reltype \
         LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam \
         WHERE c.relkind IN ('v', 'm') AND {USER_NAMESPACE} AND {} \
         ORDER BY n.nspname, c.relname",
        not_extension_member(class::PG_CLASS, "c.oid")
    );
    let what = "views";
    let mut views = Vec::new();
    for row in query(client, what, &sql, &[]).await? {
        let definition: Option<String> = get(&row, "definition", what)?;
        let options: Option<Vec<String>> = get(&row, "options", what)?;
        views.push(View {
            oid: get(&row, "oid", what)?,
            name: QualName::new(get(&row, "schema", what)?, get(&row, "name", what)?),
            materialized: get(&row, "materialized", what)?,
            definition: definition
                .unwrap_or_default()
                .trim_end()
                .trim_end_matches(';')
                .to_owned(),
            options: options.unwrap_or_default(),
            access_method: get(&row, "am", what)?,
            populated: get(&row, "relispopulated", what)?,
            rule_oid: get(&row, "rule_oid", what)?,
            row_type: get(&row, "reltype", what)?,
            row_array_type: get(&row, "typarray", what)?,
            columns: Vec::new(),
            defaults: Vec::new(),
        });
    }
    let oids: Vec<u32> = views.iter().map(|v| v.oid).collect();
    let mut columns = read_columns(client, &oids).await?;
    let sql = "SELECT d.adrelid, d.oid, a.attname::text AS name, \
               pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS expr \
               FROM pg_catalog.pg_attrdef d JOIN pg_catalog.pg_attribute a \
               ON a.attrelid = d.adrelid AND a.attnum = d.adnum \
               WHERE d.adrelid = ANY($1) ORDER BY d.adrelid, d.adnum";
    let what = "view column defaults";
    let mut defaults: HashMap<u32, Vec<(u32, String, String)>> = HashMap::new();
    for row in query(client, what, sql, &[&oids]).await? {
        defaults
            .entry(get(&row, "adrelid", what)?)
            .or_default()
            .push((
                get(&row, "oid", what)?,
                get(&row, "name", what)?,
                get(&row, "expr", what)?,
            ));
    }
    for view in &mut views {
        view.columns = columns.remove(&view.oid).unwrap_or_default();
        view.defaults = defaults.remove(&view.oid).unwrap_or_default();
    }
    Ok(views)
}

async fn read_columns(
    client: &Client,
    oids: &[u32],
) -> Result<HashMap<u32, Vec<(String, String)>>, PgError> {
    let sql = "SELECT a.attrelid, a.attname::text AS name, \
               pg_catalog.format_type(a.atttypid, a.atttypmod) AS type_name \
               FROM pg_catalog.pg_attribute a \
               WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped \
               ORDER BY a.attrelid, a.attnum";
    let what = "view columns";
    let mut columns: HashMap<u32, Vec<(String, String)>> = HashMap::new();
    for row in query(client, what, sql, &[&oids]).await? {
        columns
            .entry(get(&row, "attrelid", what)?)
            .or_default()
            .push((get(&row, "name", what)?, get(&row, "type_name", what)?));
    }
    Ok(columns)
}
