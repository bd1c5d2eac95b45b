//! Extended statistics objects (`CREATE STATISTICS`).

use tokio_postgres::Client;

use super::address::{FIRST_NORMAL_OID, class};
use super::filter::{USER_NAMESPACE, not_extension_member};
use super::names::QualName;
use super::rows::{get, query};
use crate::PgError;

#[derive(Debug, Clone)]
pub(crate) struct Statistics {
    pub oid: u32,
    pub name: QualName,
    pub table_oid: u32,
    /// `pg_get_statisticsobjdef`: the whole `CREATE STATISTICS` statement, without `;`.
    pub definition: String,
    /// A statistics target set with `ALTER STATISTICS ... SET STATISTICS`.
    pub target: Option<i32>,
}

pub(crate) async fn read_statistics(
    client: &Client,
    server_version_num: i32,
) -> Result<Vec<Statistics>, PgError> {
    // Before 17 the target is -1 when not set; from 17 on it is NULL.
    let target = if server_version_num >= 170_000 {
        "s.stxstattarget::int4"
    } else {
        "NULLIF(s.stxstattarget, -1)::int4"
    };
    let sql = format!(
        "SELECT s.oid, n.nspname::text AS schema, s.stxname::text AS name, s.stxrelid, \
         pg_catalog.pg_get_statisticsobjdef(s.oid) AS definition, {target} AS target \
         FROM pg_catalog.pg_statistic_ext s \
         JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace \
         WHERE s.oid >= {FIRST_NORMAL_OID} AND {USER_NAMESPACE} AND {} ORDER BY 2, 3",
        not_extension_member(class::PG_STATISTIC_EXT, "s.oid")
    );
    let what = "extended statistics";
    query(client, what, &sql, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(Statistics {
                oid: get(row, "oid", what)?,
                name: QualName::new(get(row, "schema", what)?, get(row, "name", what)?),
                table_oid: get(row, "stxrelid", what)?,
                definition: get(row, "definition", what)?,
                target: get(row, "target", what)?,
            })
        })
        .collect()
}
