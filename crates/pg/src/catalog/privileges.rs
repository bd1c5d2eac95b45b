//! Owners, access privileges (`GRANT`s, as differences from the built-in defaults) and default
//! privileges, read in a form that needs no further catalog lookups.

use tokio_postgres::{Client, Row};

use super::address::{FIRST_NORMAL_OID, ObjAddr, class};
use super::rows::{get, query};
use crate::PgError;

/// The `public` schema, which initdb creates (OID 2200 in every version) but whose owner,
/// privileges and comment the user may have changed.
const PUBLIC: &str = "o.tableoid = 'pg_catalog.pg_namespace'::regclass AND o.oid = 2200";

/// The `public` schema's initial privileges with its initial owner (the bootstrap superuser,
/// OID 10, before PostgreSQL 15; `pg_database_owner`, OID 6171, from 15 on) replaced by its
/// current one: changing the owner hands the owner's privileges over, so this is the state the
/// owner change alone gives, which is what `pg_dump` compares with.
const PUBLIC_INITPRIVS: &str = "(SELECT pg_catalog.array_agg(pg_catalog.makeaclitem(\
    CASE WHEN a.grantee IN (10, 6171) THEN x.owner ELSE a.grantee END, \
    CASE WHEN a.grantor IN (10, 6171) THEN x.owner ELSE a.grantor END, \
    a.privilege_type, a.is_grantable)) FROM pg_catalog.aclexplode(ip.initprivs) a)";

/// Who owns one object.
#[derive(Debug, Clone)]
pub(crate) struct Owned {
    pub addr: ObjAddr,
    pub object_type: String,
    pub identity: String,
    pub owner: String,
}

/// One privilege held by one grantee (`""` for PUBLIC).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Grant {
    pub grantee: String,
    pub privilege: String,
    pub grantable: bool,
}

/// An object's (or column's) privileges next to the defaults it would have without any GRANT.
/// Built-in objects (initdb's, below `FirstNormalObjectId`) are included when their privileges
/// differ from those initdb gave them (`pg_init_privs`), as `pg_dump` includes them; never those
/// in `information_schema`, which some servers create without recording its privileges there
/// (a restore would re-grant them all, and a non-owner gets a warning per statement).
#[derive(Debug, Clone)]
pub(crate) struct Acl {
    pub addr: ObjAddr,
    pub object_type: String,
    pub identity: String,
    /// For column privileges: the column's name (`identity` is then the table's).
    pub column: Option<String>,
    pub actual: Vec<Grant>,
    pub default: Vec<Grant>,
}

/// `ALTER DEFAULT PRIVILEGES FOR ROLE role [IN SCHEMA schema]` for one kind of object.
#[derive(Debug, Clone)]
pub(crate) struct DefaultAcl {
    pub oid: u32,
    pub role: String,
    pub schema: Option<String>,
    /// `r` tables, `S` sequences, `f` functions, `T` types, `n` schemas, `L` large objects.
    pub object_type: String,
    pub actual: Vec<Grant>,
    pub default: Vec<Grant>,
}

/// The objects whose owner a dump records, as (catalog, OID column, owner column, extra
/// condition). Types exclude arrays, row types and multiranges, which follow their creator.
const OWNED: &[(u32, &str, &str, &str, &str)] = &[
    (
        class::PG_CLASS,
        "pg_class",
        "oid",
        "relowner",
        "relkind IN ('r', 'p', 'v', 'm', 'f', 'S')",
    ),
    (
        class::PG_TYPE,
        "pg_type",
        "oid",
        "typowner",
        "typtype IN ('b', 'c', 'd', 'e', 'r', 'p') AND (typrelid = 0 OR EXISTS (SELECT 1 FROM \
         pg_catalog.pg_class c WHERE c.oid = typrelid AND c.relkind = 'c')) AND NOT EXISTS \
         (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = o.oid)",
    ),
    (class::PG_PROC, "pg_proc", "oid", "proowner", "true"),
    // The `public` schema's owner only when it is not the initial one (see PUBLIC_INITPRIVS):
    // every new database has that already, and a restoring role may not be able to set it.
    (
        class::PG_NAMESPACE,
        "pg_namespace",
        "oid",
        "nspowner",
        "(o.oid <> 2200 OR o.nspowner <> CASE WHEN pg_catalog.current_setting('server_version_num')::int \
         >= 150000 THEN 6171 ELSE 10 END)",
    ),
    (
        class::PG_COLLATION,
        "pg_collation",
        "oid",
        "collowner",
        "true",
    ),
    (
        class::PG_CONVERSION,
        "pg_conversion",
        "oid",
        "conowner",
        "true",
    ),
    (class::PG_TS_DICT, "pg_ts_dict", "oid", "dictowner", "true"),
    (
        class::PG_TS_CONFIG,
        "pg_ts_config",
        "oid",
        "cfgowner",
        "true",
    ),
    (
        class::PG_FOREIGN_DATA_WRAPPER,
        "pg_foreign_data_wrapper",
        "oid",
        "fdwowner",
        "true",
    ),
    (
        class::PG_FOREIGN_SERVER,
        "pg_foreign_server",
        "oid",
        "srvowner",
        "true",
    ),
    (
        class::PG_EVENT_TRIGGER,
        "pg_event_trigger",
        "oid",
        "evtowner",
        "true",
    ),
    (
        class::PG_PUBLICATION,
        "pg_publication",
        "oid",
        "pubowner",
        "true",
    ),
    (class::PG_OPERATOR, "pg_operator", "oid", "oprowner", "true"),
    (class::PG_OPCLASS, "pg_opclass", "oid", "opcowner", "true"),
    (class::PG_OPFAMILY, "pg_opfamily", "oid", "opfowner", "true"),
    (
        class::PG_LARGEOBJECT,
        "pg_largeobject_metadata",
        "oid",
        "lomowner",
        "true",
    ),
    (
        class::PG_STATISTIC_EXT,
        "pg_statistic_ext",
        "oid",
        "stxowner",
        "true",
    ),
];

pub(crate) async fn read_owners(client: &Client) -> Result<Vec<Owned>, PgError> {
    let parts: Vec<String> = OWNED
        .iter()
        .map(|(class, table, oid, owner, condition)| {
            format!(
                "SELECT {class}::oid AS classid, o.{oid} AS objid, o.{owner} AS owner \
                 FROM pg_catalog.{table} o WHERE (o.{oid} >= {FIRST_NORMAL_OID} OR {PUBLIC}) \
                 AND {condition}"
            )
        })
        .collect();
    let sql = format!(
        "SELECT x.classid, x.objid, io.type AS object_type, io.identity, \
         pg_catalog.pg_get_userbyid(x.owner)::text AS owner \
         FROM ({}) x, LATERAL pg_catalog.pg_identify_object(x.classid, x.objid, 0) io \
         ORDER BY 1, 2",
        parts.join(" UNION ALL ")
    );
    let what = "object owners";
    query(client, what, &sql, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(Owned {
                addr: ObjAddr::new(get(row, "classid", what)?, get(row, "objid", what)?),
                object_type: get(row, "object_type", what)?,
                identity: get(row, "identity", what)?,
                owner: get(row, "owner", what)?,
            })
        })
        .collect()
}

/// Grantees, privileges and grant options of the ACL expression `acl`, as three arrays.
fn explode(acl: &str, prefix: &str) -> String {
    let sub = |expr: &str| {
        format!(
            "(SELECT COALESCE(pg_catalog.array_agg({expr} ORDER BY a.grantee, a.privilege_type, \
             a.is_grantable), '{{}}') FROM pg_catalog.aclexplode({acl}) a)"
        )
    };
    format!(
        "{} AS {prefix}_grantees, {} AS {prefix}_privileges, {} AS {prefix}_grantable",
        sub("CASE WHEN a.grantee = 0 THEN '' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END"),
        sub("a.privilege_type::text"),
        sub("a.is_grantable"),
    )
}

fn grants(row: &Row, prefix: &str, what: &str) -> Result<Vec<Grant>, PgError> {
    let grantees: Vec<String> = get(row, &format!("{prefix}_grantees"), what)?;
    let privileges: Vec<String> = get(row, &format!("{prefix}_privileges"), what)?;
    let grantable: Vec<bool> = get(row, &format!("{prefix}_grantable"), what)?;
    Ok(grantees
        .into_iter()
        .zip(privileges)
        .zip(grantable)
        .map(|((grantee, privilege), grantable)| Grant {
            grantee,
            privilege,
            grantable,
        })
        .collect())
}

pub(crate) async fn read_acls(client: &Client) -> Result<Vec<Acl>, PgError> {
    let objects = format!(
        "SELECT {pg_class}::oid AS classid, c.oid AS objid, 0 AS subid, c.relowner AS owner, \
           c.relacl AS acl, CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\" AS deftype, \
           NULL::text AS column_name \
         FROM pg_catalog.pg_class c WHERE c.relacl IS NOT NULL \
           AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') \
         UNION ALL SELECT {pg_class}, c.oid, a.attnum, c.relowner, a.attacl, 'c', a.attname::text \
         FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
         WHERE a.attacl IS NOT NULL AND a.attnum <> 0 AND NOT a.attisdropped \
         UNION ALL SELECT {pg_proc}, p.oid, 0, p.proowner, p.proacl, 'f', NULL \
         FROM pg_catalog.pg_proc p WHERE p.proacl IS NOT NULL \
         UNION ALL SELECT {pg_namespace}, n.oid, 0, n.nspowner, n.nspacl, 'n', NULL \
         FROM pg_catalog.pg_namespace n WHERE n.nspacl IS NOT NULL \
         UNION ALL SELECT {pg_type}, t.oid, 0, t.typowner, t.typacl, 'T', NULL \
         FROM pg_catalog.pg_type t WHERE t.typacl IS NOT NULL \
         UNION ALL SELECT {pg_fdw}, f.oid, 0, f.fdwowner, f.fdwacl, 'F', NULL \
         FROM pg_catalog.pg_foreign_data_wrapper f WHERE f.fdwacl IS NOT NULL \
         UNION ALL SELECT {pg_srv}, s.oid, 0, s.srvowner, s.srvacl, 'S', NULL \
         FROM pg_catalog.pg_foreign_server s WHERE s.srvacl IS NOT NULL \
         UNION ALL SELECT {pg_lo}, l.oid, 0, l.lomowner, l.lomacl, 'L', NULL \
         FROM pg_catalog.pg_largeobject_metadata l WHERE l.lomacl IS NOT NULL \
         UNION ALL SELECT {pg_language}, l.oid, 0, l.lanowner, l.lanacl, 'l', NULL \
         FROM pg_catalog.pg_language l WHERE l.lanacl IS NOT NULL",
        pg_language = super::languages::PG_LANGUAGE,
        pg_class = class::PG_CLASS,
        pg_proc = class::PG_PROC,
        pg_namespace = class::PG_NAMESPACE,
        pg_type = class::PG_TYPE,
        pg_fdw = class::PG_FOREIGN_DATA_WRAPPER,
        pg_srv = class::PG_FOREIGN_SERVER,
        pg_lo = class::PG_LARGEOBJECT,
    );
    let sql = format!(
        "SELECT x.classid, x.objid, io.type AS object_type, io.identity, x.column_name, {}, {} \
         FROM ({objects}) x \
         LEFT JOIN pg_catalog.pg_init_privs ip ON ip.classoid = x.classid AND ip.objoid = x.objid \
              AND ip.objsubid = x.subid, \
         LATERAL pg_catalog.pg_identify_object(x.classid, x.objid, 0) io \
         WHERE (x.objid >= {FIRST_NORMAL_OID} OR (x.classid = {pg_namespace} AND x.objid = 2200) \
         OR pg_catalog.array_to_string(x.acl, ',') IS DISTINCT FROM \
            pg_catalog.array_to_string(ip.initprivs, ',')) \
         AND io.schema IS DISTINCT FROM 'information_schema' \
         AND NOT (x.classid = {pg_namespace} AND io.identity = 'information_schema') \
         ORDER BY x.classid, x.objid, x.subid <> 0, x.subid",
        explode("x.acl", "actual"),
        // An extension's objects start from the privileges the extension script gave them.
        explode(
            &format!(
                "COALESCE(CASE WHEN x.classid = {pg_namespace} AND x.objid = 2200 \
                 THEN {PUBLIC_INITPRIVS} ELSE ip.initprivs END, \
                 pg_catalog.acldefault(x.deftype, x.owner))",
                pg_namespace = class::PG_NAMESPACE,
            ),
            "default"
        ),
        pg_namespace = class::PG_NAMESPACE,
    );
    let what = "privileges";
    query(client, what, &sql, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(Acl {
                addr: ObjAddr::new(get(row, "classid", what)?, get(row, "objid", what)?),
                object_type: get(row, "object_type", what)?,
                identity: get(row, "identity", what)?,
                column: get(row, "column_name", what)?,
                actual: grants(row, "actual", what)?,
                default: grants(row, "default", what)?,
            })
        })
        .collect()
}

/// Default privileges. Those for all schemas replace the built-in defaults (so they are compared
/// with them); those for one schema add to the all-schemas ones (so they start from nothing).
pub(crate) async fn read_default_acls(client: &Client) -> Result<Vec<DefaultAcl>, PgError> {
    let sql = format!(
        "SELECT d.oid, pg_catalog.pg_get_userbyid(d.defaclrole)::text AS role, \
         n.nspname::text AS schema, d.defaclobjtype::text AS object_type, {}, {} \
         FROM pg_catalog.pg_default_acl d \
         LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace \
         ORDER BY 2, 3 NULLS FIRST, 4",
        explode("d.defaclacl", "actual"),
        explode(
            "CASE WHEN d.defaclnamespace = 0 THEN pg_catalog.acldefault(CASE d.defaclobjtype \
             WHEN 'S' THEN 's' ELSE d.defaclobjtype END, d.defaclrole) END",
            "default"
        ),
    );
    let what = "default privileges";
    query(client, what, &sql, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(DefaultAcl {
                oid: get(row, "oid", what)?,
                role: get(row, "role", what)?,
                schema: get(row, "schema", what)?,
                object_type: get(row, "object_type", what)?,
                actual: grants(row, "actual", what)?,
                default: grants(row, "default", what)?,
            })
        })
        .collect()
}
