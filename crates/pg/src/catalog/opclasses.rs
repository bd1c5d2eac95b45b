//! Operator families and operator classes, with their operators and support functions
//! (`pg_amop`, `pg_amproc`). A member belongs to a class when `pg_depend` ties it to the class,
//! and is a family's "loose" member (`ALTER OPERATOR FAMILY ... ADD`) when it is tied to the
//! family, as `pg_dump` tells them apart.

use std::collections::HashMap;

use tokio_postgres::Client;

use super::address::{FIRST_NORMAL_OID, class};
use super::filter::{USER_NAMESPACE, not_extension_member};
use super::names::QualName;
use super::rows::{get, query};
use crate::PgError;

/// `pg_amop`'s and `pg_amproc`'s catalog OIDs, for their `pg_depend` rows.
pub(crate) const PG_AMOP: u32 = 2602;
pub(crate) const PG_AMPROC: u32 = 2603;

#[derive(Debug, Clone)]
pub(crate) struct OpFamily {
    pub oid: u32,
    pub name: QualName,
    /// The index access method, e.g. `btree`.
    pub method: String,
    /// Members added with `ALTER OPERATOR FAMILY ... ADD`.
    pub members: Vec<OpMember>,
}

#[derive(Debug, Clone)]
pub(crate) struct OpClass {
    pub oid: u32,
    pub name: QualName,
    pub method: String,
    pub default: bool,
    /// `format_type` of the indexed type.
    pub input_type: String,
    /// `STORAGE` type, when the class has one.
    pub storage: Option<String>,
    /// The family, always named explicitly (the one created implicitly is dumped on its own).
    pub family: QualName,
    pub members: Vec<OpMember>,
}

/// One `OPERATOR` or `FUNCTION` item of a class or family.
#[derive(Debug, Clone)]
pub(crate) struct OpMember {
    /// The `pg_amop`/`pg_amproc` row.
    pub addr: super::ObjAddr,
    /// The item as SQL, e.g. `OPERATOR 1 <(bigint,bigint)` or
    /// `FUNCTION 1 (integer, integer) btint4cmp(integer,integer)`.
    pub sql: String,
}

/// Members by the class or family (catalog, OID) they belong to, in strategy/support number
/// order, operators first.
async fn read_members(client: &Client) -> Result<HashMap<(u32, u32), Vec<OpMember>>, PgError> {
    let sql = format!(
        "SELECT d.refclassid AS owner_class, d.refobjid AS owner, {PG_AMOP}::oid AS classid, \
           ao.oid, 0 AS k, ao.amopstrategy::int4 AS num, \
           'OPERATOR ' || ao.amopstrategy || ' ' || ao.amopopr::pg_catalog.regoperator::text \
           || CASE WHEN ao.amoppurpose = 'o' THEN ' FOR ORDER BY ' || \
              pg_catalog.quote_ident(sn.nspname) || '.' || pg_catalog.quote_ident(sf.opfname) \
              ELSE '' END AS sql \
         FROM pg_catalog.pg_amop ao \
         JOIN pg_catalog.pg_depend d ON d.classid = {PG_AMOP} AND d.objid = ao.oid \
           AND d.refclassid IN ({opclass}, {opfamily}) AND d.deptype IN ('a', 'i') \
         LEFT JOIN pg_catalog.pg_opfamily sf ON sf.oid = ao.amopsortfamily \
         LEFT JOIN pg_catalog.pg_namespace sn ON sn.oid = sf.opfnamespace \
         WHERE ao.oid >= {FIRST_NORMAL_OID} \
         UNION ALL \
         SELECT d.refclassid, d.refobjid, {PG_AMPROC}::oid, ap.oid, 1, ap.amprocnum::int4, \
           'FUNCTION ' || ap.amprocnum || ' (' || \
           pg_catalog.format_type(ap.amproclefttype, NULL) || ', ' || \
           pg_catalog.format_type(ap.amprocrighttype, NULL) || ') ' || \
           ap.amproc::pg_catalog.regprocedure::text \
         FROM pg_catalog.pg_amproc ap \
         JOIN pg_catalog.pg_depend d ON d.classid = {PG_AMPROC} AND d.objid = ap.oid \
           AND d.refclassid IN ({opclass}, {opfamily}) AND d.deptype IN ('a', 'i') \
         WHERE ap.oid >= {FIRST_NORMAL_OID} \
         ORDER BY 1, 2, 5, 6, 7",
        opclass = class::PG_OPCLASS,
        opfamily = class::PG_OPFAMILY,
    );
    let what = "operator class members";
    let mut members: HashMap<(u32, u32), Vec<OpMember>> = HashMap::new();
    for row in query(client, what, &sql, &[]).await? {
        members
            .entry((get(&row, "owner_class", what)?, get(&row, "owner", what)?))
            .or_default()
            .push(OpMember {
                addr: super::ObjAddr::new(get(&row, "classid", what)?, get(&row, "oid", what)?),
                sql: get(&row, "sql", what)?,
            });
    }
    Ok(members)
}

pub(crate) async fn read_opfamilies(
    client: &Client,
) -> Result<(Vec<OpFamily>, Vec<OpClass>), PgError> {
    let mut members = read_members(client).await?;
    let sql = format!(
        "SELECT f.oid, n.nspname::text AS schema, f.opfname::text AS name, \
         am.amname::text AS method \
         FROM pg_catalog.pg_opfamily f JOIN pg_catalog.pg_namespace n ON n.oid = f.opfnamespace \
         JOIN pg_catalog.pg_am am ON am.oid = f.opfmethod \
         WHERE f.oid >= {FIRST_NORMAL_OID} AND {USER_NAMESPACE} AND {} ORDER BY 2, 3, 4",
        not_extension_member(class::PG_OPFAMILY, "f.oid")
    );
    let what = "operator families";
    let mut families = Vec::new();
    for row in query(client, what, &sql, &[]).await? {
        let oid: u32 = get(&row, "oid", what)?;
        families.push(OpFamily {
            oid,
            name: QualName::new(get(&row, "schema", what)?, get(&row, "name", what)?),
            method: get(&row, "method", what)?,
            members: members
                .remove(&(class::PG_OPFAMILY, oid))
                .unwrap_or_default(),
        });
    }
    let sql = format!(
        "SELECT c.oid, n.nspname::text AS schema, c.opcname::text AS name, \
         am.amname::text AS method, c.opcdefault, \
         pg_catalog.format_type(c.opcintype, NULL) AS input_type, \
         CASE WHEN c.opckeytype <> 0 THEN pg_catalog.format_type(c.opckeytype, NULL) END \
           AS storage, \
         fn.nspname::text AS family_schema, f.opfname::text AS family \
         FROM pg_catalog.pg_opclass c JOIN pg_catalog.pg_namespace n ON n.oid = c.opcnamespace \
         JOIN pg_catalog.pg_am am ON am.oid = c.opcmethod \
         JOIN pg_catalog.pg_opfamily f ON f.oid = c.opcfamily \
         JOIN pg_catalog.pg_namespace fn ON fn.oid = f.opfnamespace \
         WHERE c.oid >= {FIRST_NORMAL_OID} AND {USER_NAMESPACE} AND {} ORDER BY 2, 3, 4",
        not_extension_member(class::PG_OPCLASS, "c.oid")
    );
    let what = "operator classes";
    let mut classes = Vec::new();
    for row in query(client, what, &sql, &[]).await? {
        let oid: u32 = get(&row, "oid", what)?;
        classes.push(OpClass {
            oid,
            name: QualName::new(get(&row, "schema", what)?, get(&row, "name", what)?),
            method: get(&row, "method", what)?,
            default: get(&row, "opcdefault", what)?,
            input_type: get(&row, "input_type", what)?,
            storage: get(&row, "storage", what)?,
            family: QualName::new(
                get(&row, "family_schema", what)?,
                get(&row, "family", what)?,
            ),
            members: members
                .remove(&(class::PG_OPCLASS, oid))
                .unwrap_or_default(),
        });
    }
    Ok((families, classes))
}
