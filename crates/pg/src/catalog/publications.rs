//! Publications and what they publish: tables (with column lists and row filters on
//! PostgreSQL 15+) and, on 15+, schemas.

use tokio_postgres::Client;

use super::address::{FIRST_NORMAL_OID, class};
use super::filter::not_extension_member;
use super::names::QualName;
use super::rows::{get, query};
use crate::PgError;

/// `pg_publication_rel`'s and `pg_publication_namespace`'s catalog OIDs.
pub(crate) const PG_PUBLICATION_REL: u32 = 6106;
pub(crate) const PG_PUBLICATION_NAMESPACE: u32 = 6237;

#[derive(Debug, Clone)]
pub(crate) struct Publication {
    pub oid: u32,
    pub name: String,
    pub all_tables: bool,
    /// `WITH (...)` options in SQL form, e.g. `publish = 'insert, update'`.
    pub options: Vec<String>,
    pub tables: Vec<PublishedTable>,
    /// `TABLES IN SCHEMA` (15+): the `pg_publication_namespace` row and the schema.
    pub schemas: Vec<(u32, String)>,
}

#[derive(Debug, Clone)]
pub(crate) struct PublishedTable {
    /// The `pg_publication_rel` row.
    pub oid: u32,
    pub table_oid: u32,
    pub table: QualName,
    /// Quoted column names, when the publication lists columns (15+).
    pub columns: Vec<String>,
    /// `pg_get_expr` of the row filter (15+).
    pub filter: Option<String>,
}

pub(crate) async fn read_publications(
    client: &Client,
    server_version_num: i32,
) -> Result<Vec<Publication>, PgError> {
    let generated = if server_version_num >= 180_000 {
        "CASE p.pubgencols WHEN 's' THEN 'stored' ELSE 'none' END"
    } else {
        "NULL::text"
    };
    let sql = format!(
        "SELECT p.oid, p.pubname::text AS name, p.puballtables, \
         pg_catalog.concat_ws(', ', CASE WHEN p.pubinsert THEN 'insert' END, \
           CASE WHEN p.pubupdate THEN 'update' END, CASE WHEN p.pubdelete THEN 'delete' END, \
           CASE WHEN p.pubtruncate THEN 'truncate' END) AS publish, \
         p.pubviaroot, {generated} AS generated \
         FROM pg_catalog.pg_publication p WHERE p.oid >= {FIRST_NORMAL_OID} AND {} ORDER BY 2",
        not_extension_member(class::PG_PUBLICATION, "p.oid")
    );
    let what = "publications";
    let mut publications = Vec::new();
    for row in query(client, what, &sql, &[]).await? {
        let publish: String = get(&row, "publish", what)?;
        let mut options = vec![format!("publish = {}", crate::quote::literal(&publish))];
        if get::<bool>(&row, "pubviaroot", what)? {
            options.push("publish_via_partition_root = true".to_owned());
        }
        let generated: Option<String> = get(&row, "generated", what)?;
        if let Some(generated) = generated.filter(|g| g != "none") {
            options.push(format!("publish_generated_columns = {generated}"));
        }
        publications.push(Publication {
            oid: get(&row, "oid", what)?,
            name: get(&row, "name", what)?,
            all_tables: get(&row, "puballtables", what)?,
            options,
            tables: Vec::new(),
            schemas: Vec::new(),
        });
    }
    let (columns, filter) = if server_version_num >= 150_000 {
        (
            "CASE WHEN r.prattrs IS NULL THEN '{}'::text[] ELSE ARRAY(SELECT \
             pg_catalog.quote_ident(a.attname) FROM pg_catalog.unnest(r.prattrs) WITH ORDINALITY \
             k(attnum, i) JOIN pg_catalog.pg_attribute a ON a.attrelid = r.prrelid \
             AND a.attnum = k.attnum ORDER BY k.i) END",
            "pg_catalog.pg_get_expr(r.prqual, r.prrelid)",
        )
    } else {
        ("'{}'::text[]", "NULL::text")
    };
    let sql = format!(
        "SELECT r.oid, r.prpubid, r.prrelid, n.nspname::text AS schema, c.relname::text AS name, \
         {columns} AS columns, {filter} AS filter \
         FROM pg_catalog.pg_publication_rel r JOIN pg_catalog.pg_class c ON c.oid = r.prrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace ORDER BY 4, 5"
    );
    let what = "published tables";
    for row in query(client, what, &sql, &[]).await? {
        let publication: u32 = get(&row, "prpubid", what)?;
        if let Some(p) = publications.iter_mut().find(|p| p.oid == publication) {
            p.tables.push(PublishedTable {
                oid: get(&row, "oid", what)?,
                table_oid: get(&row, "prrelid", what)?,
                table: QualName::new(get(&row, "schema", what)?, get(&row, "name", what)?),
                columns: get(&row, "columns", what)?,
                filter: get(&row, "filter", what)?,
            });
        }
    }
    if server_version_num >= 150_000 {
        let sql = "SELECT s.oid, s.pnpubid, n.nspname::text AS schema \
                   FROM pg_catalog.pg_publication_namespace s \
                   JOIN pg_catalog.pg_namespace n ON n.oid = s.pnnspid ORDER BY 3";
        let what = "published schemas";
        for row in query(client, what, sql, &[]).await? {
            let publication: u32 = get(&row, "pnpubid", what)?;
            if let Some(p) = publications.iter_mut().find(|p| p.oid == publication) {
                p.schemas
                    .push((get(&row, "oid", what)?, get(&row, "schema", what)?));
            }
        }
    }
    Ok(publications)
}
