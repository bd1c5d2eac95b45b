//! Whether a restore target is empty enough to restore into.

use tokio_postgres::Client;

use super::address::class;
use super::filter::{USER_NAMESPACE, not_extension_member};
use super::rows::{get, query};
use crate::PgError;

/// Up to `limit` descriptions (`table public.tasks`, `schema app`, ...) of user objects in the
/// database: relations, types, functions, schemas other than `public` and extensions other than
/// `plpgsql`. Objects an extension created count as the extension. An empty result means the
/// database is empty. Sorted, so the same database always gives the same list. The
/// `extensions` named do not count: a restore of a backup that has them creates them only if
/// missing (a managed service installs some into every new database).
pub async fn user_objects(
    client: &Client,
    limit: usize,
    extensions: &[String],
) -> Result<Vec<String>, PgError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let sql = format!(
        "SELECT description FROM ( \
           SELECT 'schema ' || pg_catalog.quote_ident(n.nspname) AS description \
           FROM pg_catalog.pg_namespace n \
           WHERE {USER_NAMESPACE} AND n.nspname <> 'public' AND {schema_member} \
         UNION ALL \
           SELECT 'extension ' || pg_catalog.quote_ident(e.extname) \
           FROM pg_catalog.pg_extension e \
           WHERE e.extname <> 'plpgsql' AND e.extname <> ALL($2::text[]) \
         UNION ALL \
           SELECT CASE c.relkind WHEN 'S' THEN 'sequence ' WHEN 'v' THEN 'view ' \
                  WHEN 'm' THEN 'materialized view ' WHEN 'f' THEN 'foreign table ' \
                  ELSE 'table ' END \
                  || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) \
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
           WHERE c.relkind IN ('r', 'p', 'S', 'v', 'm', 'f') AND {USER_NAMESPACE} \
           AND {class_member} \
         UNION ALL \
           SELECT 'type ' || pg_catalog.quote_ident(n.nspname) || '.' \
                  || pg_catalog.quote_ident(t.typname) \
           FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
           LEFT JOIN pg_catalog.pg_class c ON c.oid = t.typrelid \
           WHERE {USER_NAMESPACE} AND {type_member} AND t.typtype <> 'm' \
           AND (t.typrelid = 0 OR c.relkind = 'c') \
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid) \
         UNION ALL \
           SELECT 'function ' || pg_catalog.quote_ident(n.nspname) || '.' \
                  || pg_catalog.quote_ident(p.proname) || '(' \
                  || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' \
           FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
           WHERE {USER_NAMESPACE} AND {proc_member} \
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d \
                           WHERE d.classid = {pg_proc} AND d.objid = p.oid \
                           AND d.deptype = 'i') \
         ) objects \
         ORDER BY description LIKE 'function %', description LIMIT $1",
        schema_member = not_extension_member(class::PG_NAMESPACE, "n.oid"),
        class_member = not_extension_member(class::PG_CLASS, "c.oid"),
        type_member = not_extension_member(class::PG_TYPE, "t.oid"),
        proc_member = not_extension_member(class::PG_PROC, "p.oid"),
        pg_proc = class::PG_PROC,
    );
    let what = "the objects in the database";
    query(client, what, &sql, &[&limit, &extensions])
        .await?
        .iter()
        .map(|row| get(row, "description", what))
        .collect()
}
