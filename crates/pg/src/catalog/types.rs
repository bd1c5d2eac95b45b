//! User-defined types: enums, composite types, domains and range types. Array types are implicit
//! (created with their element type); base and shell types need functions and come later.

use std::collections::HashMap;

use tokio_postgres::{Client, Row};

use super::address::{FIRST_NORMAL_OID, class};
use super::filter::{USER_NAMESPACE, not_extension_member};
use super::names::{QualName, optional};
use super::rows::{get, query};
use crate::PgError;

#[derive(Debug, Clone)]
pub(crate) struct UserType {
    pub oid: u32,
    pub name: QualName,
    /// The implicit array type (`_name`), 0 if none.
    pub array_oid: u32,
    pub def: TypeDef,
}

#[derive(Debug, Clone)]
pub(crate) enum TypeDef {
    Enum {
        labels: Vec<String>,
    },
    Composite(Composite),
    Domain(Domain),
    Range(Range),
    Base(Base),
    /// `CREATE TYPE name;` never completed.
    Shell,
}

/// A base type: its `CREATE TYPE (...)` options in SQL form, and the functions it names (its I/O
/// functions must be created between the shell type and the type).
#[derive(Debug, Clone, Default)]
pub(crate) struct Base {
    pub options: Vec<(String, String)>,
    pub functions: Vec<u32>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Composite {
    /// The `pg_class` row (relkind `c`) that holds the attributes.
    pub relid: u32,
    pub attributes: Vec<Attribute>,
}

#[derive(Debug, Clone)]
pub(crate) struct Attribute {
    pub name: String,
    pub type_name: String,
    /// Only when it differs from the attribute type's default collation.
    pub collation: Option<QualName>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Domain {
    pub base_type: String,
    pub collation: Option<QualName>,
    pub default: Option<String>,
    pub not_null: bool,
    pub checks: Vec<DomainCheck>,
}

#[derive(Debug, Clone)]
pub(crate) struct DomainCheck {
    pub oid: u32,
    pub name: String,
    /// `CHECK (...)` as `pg_get_constraintdef` prints it (with ` NOT VALID` when not validated).
    pub definition: String,
    pub validated: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Range {
    pub subtype: String,
    /// Only when not the subtype's default btree operator class.
    pub opclass: Option<QualName>,
    pub collation: Option<QualName>,
    pub canonical: Option<QualName>,
    pub subtype_diff: Option<QualName>,
    /// PostgreSQL 14+: the multirange type created with the range.
    pub multirange: Option<Multirange>,
}

#[derive(Debug, Clone)]
pub(crate) struct Multirange {
    pub oid: u32,
    pub array_oid: u32,
    pub name: QualName,
}

/// SQL selecting `coll_schema`/`coll_name` for collation column `coll` when it differs from
/// `default_coll`, given the alias prefix `p` for the joins.
fn collation_join(p: &str, coll: &str, default_coll: &str) -> String {
    format!(
        "LEFT JOIN pg_catalog.pg_collation {p}co ON {p}co.oid = {coll} AND {coll} <> {default_coll} \
         LEFT JOIN pg_catalog.pg_namespace {p}cn ON {p}cn.oid = {p}co.collnamespace"
    )
}

pub(crate) async fn read_types(
    client: &Client,
    server_version_num: i32,
) -> Result<Vec<UserType>, PgError> {
    let mut enums = read_enum_labels(client).await?;
    let mut composites = read_composites(client).await?;
    let mut domains = read_domains(client).await?;
    let mut ranges = read_ranges(client, server_version_num).await?;
    let mut bases = read_bases(client, server_version_num).await?;

    let sql = format!(
        "SELECT t.oid, n.nspname::text AS schema, t.typname::text AS name, \
         t.typtype::text AS typtype, t.typarray, t.typrelid \
         FROM pg_catalog.pg_type t \
         JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
         LEFT JOIN pg_catalog.pg_class c ON c.oid = t.typrelid \
         WHERE t.typtype IN ('e', 'c', 'd', 'r', 'b', 'p') AND (t.typtype <> 'c' OR c.relkind = 'c') \
         AND (t.typtype <> 'p' OR NOT t.typisdefined) \
         AND (t.typtype <> 'b' OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e \
                                              WHERE e.typarray = t.oid)) \
         AND {USER_NAMESPACE} AND {} ORDER BY n.nspname, t.typname",
        not_extension_member(class::PG_TYPE, "t.oid")
    );
    let what = "types";
    let mut types = Vec::new();
    for row in query(client, what, &sql, &[]).await? {
        let oid: u32 = get(&row, "oid", what)?;
        let typtype: String = get(&row, "typtype", what)?;
        let def = match typtype.as_str() {
            "e" => TypeDef::Enum {
                labels: enums.remove(&oid).unwrap_or_default(),
            },
            "c" => TypeDef::Composite(Composite {
                relid: get(&row, "typrelid", what)?,
                attributes: composites.remove(&oid).unwrap_or_default(),
            }),
            "d" => TypeDef::Domain(domains.remove(&oid).unwrap_or_default()),
            "r" => TypeDef::Range(ranges.remove(&oid).unwrap_or_default()),
            "b" => TypeDef::Base(bases.remove(&oid).unwrap_or_default()),
            _ => TypeDef::Shell,
        };
        types.push(UserType {
            oid,
            name: QualName::new(get(&row, "schema", what)?, get(&row, "name", what)?),
            array_oid: get(&row, "typarray", what)?,
            def,
        });
    }
    Ok(types)
}

async fn read_enum_labels(client: &Client) -> Result<HashMap<u32, Vec<String>>, PgError> {
    let sql = format!(
        "SELECT e.enumtypid, e.enumlabel::text AS label FROM pg_catalog.pg_enum e \
         WHERE e.enumtypid >= {FIRST_NORMAL_OID} ORDER BY e.enumtypid, e.enumsortorder"
    );
    let what = "enum labels";
    let mut labels: HashMap<u32, Vec<String>> = HashMap::new();
    for row in query(client, what, &sql, &[]).await? {
        labels
            .entry(get(&row, "enumtypid", what)?)
            .or_default()
            .push(get(&row, "label", what)?);
    }
    Ok(labels)
}

async fn read_composites(client: &Client) -> Result<HashMap<u32, Vec<Attribute>>, PgError> {
    let sql = format!(
        "SELECT t.oid, a.attname::text AS name, \
         pg_catalog.format_type(a.atttypid, a.atttypmod) AS type_name, \
         acn.nspname::text AS coll_schema, aco.collname::text AS coll_name \
         FROM pg_catalog.pg_type t \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = t.typrelid \
         JOIN pg_catalog.pg_type at ON at.oid = a.atttypid {} \
         WHERE t.typtype = 'c' AND t.oid >= {FIRST_NORMAL_OID} \
         AND a.attnum > 0 AND NOT a.attisdropped ORDER BY t.oid, a.attnum",
        collation_join("a", "a.attcollation", "at.typcollation")
    );
    let what = "composite type attributes";
    let mut attributes: HashMap<u32, Vec<Attribute>> = HashMap::new();
    for row in query(client, what, &sql, &[]).await? {
        attributes
            .entry(get(&row, "oid", what)?)
            .or_default()
            .push(Attribute {
                name: get(&row, "name", what)?,
                type_name: get(&row, "type_name", what)?,
                collation: optional(&row, "coll_schema", "coll_name", what)?,
            });
    }
    Ok(attributes)
}

async fn read_domains(client: &Client) -> Result<HashMap<u32, Domain>, PgError> {
    let sql = format!(
        "SELECT t.oid, pg_catalog.format_type(t.typbasetype, t.typtypmod) AS base_type, \
         t.typnotnull, pg_catalog.pg_get_expr(t.typdefaultbin, 0) AS default_expr, \
         dcn.nspname::text AS coll_schema, dco.collname::text AS coll_name \
         FROM pg_catalog.pg_type t \
         JOIN pg_catalog.pg_type bt ON bt.oid = t.typbasetype {} \
         WHERE t.typtype = 'd' AND t.oid >= {FIRST_NORMAL_OID}",
        collation_join("d", "t.typcollation", "bt.typcollation")
    );
    let what = "domains";
    let mut domains = HashMap::new();
    for row in query(client, what, &sql, &[]).await? {
        let domain = Domain {
            base_type: get(&row, "base_type", what)?,
            collation: optional(&row, "coll_schema", "coll_name", what)?,
            default: get(&row, "default_expr", what)?,
            not_null: get(&row, "typnotnull", what)?,
            checks: Vec::new(),
        };
        domains.insert(get::<u32>(&row, "oid", what)?, domain);
    }
    // NOT NULL is `typnotnull`; from PostgreSQL 17 it is also a constraint of type 'n', skipped.
    let sql = format!(
        "SELECT c.contypid, c.oid, c.conname::text AS name, \
         pg_catalog.pg_get_constraintdef(c.oid) AS definition, c.convalidated \
         FROM pg_catalog.pg_constraint c \
         WHERE c.contypid >= {FIRST_NORMAL_OID} AND c.contype = 'c' \
         ORDER BY c.contypid, c.conname"
    );
    let what = "domain constraints";
    for row in query(client, what, &sql, &[]).await? {
        let domain_oid: u32 = get(&row, "contypid", what)?;
        if let Some(domain) = domains.get_mut(&domain_oid) {
            domain.checks.push(DomainCheck {
                oid: get(&row, "oid", what)?,
                name: get(&row, "name", what)?,
                definition: get(&row, "definition", what)?,
                validated: get(&row, "convalidated", what)?,
            });
        }
    }
    Ok(domains)
}

async fn read_ranges(
    client: &Client,
    server_version_num: i32,
) -> Result<HashMap<u32, Range>, PgError> {
    let (multi_columns, multi_join) = if server_version_num >= 140_000 {
        (
            "mt.oid AS multi_oid, mt.typarray AS multi_array, \
             mtn.nspname::text AS multi_schema, mt.typname::text AS multi_name",
            "LEFT JOIN pg_catalog.pg_type mt ON mt.oid = r.rngmultitypid \
             LEFT JOIN pg_catalog.pg_namespace mtn ON mtn.oid = mt.typnamespace",
        )
    } else {
        (
            "NULL::oid AS multi_oid, NULL::oid AS multi_array, \
             NULL::text AS multi_schema, NULL::text AS multi_name",
            "",
        )
    };
    let sql = format!(
        "SELECT r.rngtypid, pg_catalog.format_type(r.rngsubtype, NULL) AS subtype, \
         CASE WHEN NOT opc.opcdefault THEN opcn.nspname::text END AS opc_schema, \
         CASE WHEN NOT opc.opcdefault THEN opc.opcname::text END AS opc_name, \
         co.collname::text AS coll_name, cn.nspname::text AS coll_schema, \
         cpn.nspname::text AS canon_schema, cp.proname::text AS canon_name, \
         dpn.nspname::text AS diff_schema, dp.proname::text AS diff_name, {multi_columns} \
         FROM pg_catalog.pg_range r \
         JOIN pg_catalog.pg_opclass opc ON opc.oid = r.rngsubopc \
         JOIN pg_catalog.pg_namespace opcn ON opcn.oid = opc.opcnamespace \
         LEFT JOIN pg_catalog.pg_collation co ON co.oid = r.rngcollation \
         LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace \
         LEFT JOIN pg_catalog.pg_proc cp ON cp.oid = r.rngcanonical \
         LEFT JOIN pg_catalog.pg_namespace cpn ON cpn.oid = cp.pronamespace \
         LEFT JOIN pg_catalog.pg_proc dp ON dp.oid = r.rngsubdiff \
         LEFT JOIN pg_catalog.pg_namespace dpn ON dpn.oid = dp.pronamespace {multi_join} \
         WHERE r.rngtypid >= {FIRST_NORMAL_OID}"
    );
    let what = "range types";
    let mut ranges = HashMap::new();
    for row in query(client, what, &sql, &[]).await? {
        ranges.insert(get::<u32>(&row, "rngtypid", what)?, range(&row, what)?);
    }
    Ok(ranges)
}

fn range(row: &Row, what: &str) -> Result<Range, PgError> {
    let multi_oid: Option<u32> = get(row, "multi_oid", what)?;
    let multi_array: Option<u32> = get(row, "multi_array", what)?;
    let multi_name = optional(row, "multi_schema", "multi_name", what)?;
    let multirange = match (multi_oid, multi_name) {
        (Some(oid), Some(name)) => Some(Multirange {
            oid,
            array_oid: multi_array.unwrap_or(0),
            name,
        }),
        _ => None,
    };
    Ok(Range {
        subtype: get(row, "subtype", what)?,
        opclass: optional(row, "opc_schema", "opc_name", what)?,
        collation: optional(row, "coll_schema", "coll_name", what)?,
        canonical: optional(row, "canon_schema", "canon_name", what)?,
        subtype_diff: optional(row, "diff_schema", "diff_name", what)?,
        multirange,
    })
}

async fn read_bases(
    client: &Client,
    server_version_num: i32,
) -> Result<HashMap<u32, Base>, PgError> {
    let subscript = if server_version_num >= 140_000 {
        "t.typsubscript"
    } else {
        "0::regproc"
    };
    let sql = format!(
        "SELECT t.oid, t.typinput::oid AS typinput, t.typoutput::oid AS typoutput, \
         t.typreceive::oid AS typreceive, t.typsend::oid AS typsend, t.typmodin::oid AS typmodin, \
         t.typmodout::oid AS typmodout, t.typanalyze::oid AS typanalyze, \
         {subscript}::oid AS typsubscript, \
         t.typinput::regproc::text AS input, t.typoutput::regproc::text AS output, \
         NULLIF(t.typreceive::oid, 0)::regproc::text AS receive, \
         NULLIF(t.typsend::oid, 0)::regproc::text AS send, \
         NULLIF(t.typmodin::oid, 0)::regproc::text AS typmod_in, \
         NULLIF(t.typmodout::oid, 0)::regproc::text AS typmod_out, \
         NULLIF(t.typanalyze::oid, 0)::regproc::text AS analyze, \
         NULLIF({subscript}::oid, 0)::regproc::text AS subscript, \
         CASE WHEN t.typlen = -1 THEN 'VARIABLE' ELSE t.typlen::text END AS internallength, \
         t.typbyval, t.typalign::text AS align, t.typstorage::text AS storage, \
         t.typcategory::text AS category, t.typispreferred, t.typdefault, \
         CASE WHEN t.typelem <> 0 THEN pg_catalog.format_type(t.typelem, NULL) END AS element, \
         t.typdelim::text AS delimiter, t.typcollation <> 0 AS collatable \
         FROM pg_catalog.pg_type t WHERE t.typtype = 'b' AND t.oid >= {FIRST_NORMAL_OID}"
    );
    let what = "base types";
    let mut bases = HashMap::new();
    for row in query(client, what, &sql, &[]).await? {
        bases.insert(get::<u32>(&row, "oid", what)?, base(&row, what)?);
    }
    Ok(bases)
}

fn base(row: &Row, what: &str) -> Result<Base, PgError> {
    let mut options = Vec::new();
    for (option, column) in [
        ("INPUT", "input"),
        ("OUTPUT", "output"),
        ("RECEIVE", "receive"),
        ("SEND", "send"),
        ("TYPMOD_IN", "typmod_in"),
        ("TYPMOD_OUT", "typmod_out"),
        ("ANALYZE", "analyze"),
        ("SUBSCRIPT", "subscript"),
        ("INTERNALLENGTH", "internallength"),
    ] {
        let value: Option<String> = get(row, column, what)?;
        if let Some(value) = value {
            options.push((option.to_owned(), value));
        }
    }
    if get::<bool>(row, "typbyval", what)? {
        options.push(("PASSEDBYVALUE".to_owned(), String::new()));
    }
    let align: String = get(row, "align", what)?;
    let alignment = match align.as_str() {
        "c" => "char",
        "s" => "int2",
        "d" => "double",
        _ => "int4",
    };
    options.push(("ALIGNMENT".to_owned(), alignment.to_owned()));
    let storage: String = get(row, "storage", what)?;
    let storage = match storage.as_str() {
        "e" => "external",
        "x" => "extended",
        "m" => "main",
        _ => "plain",
    };
    options.push(("STORAGE".to_owned(), storage.to_owned()));
    let category: String = get(row, "category", what)?;
    options.push(("CATEGORY".to_owned(), crate::quote::literal(&category)));
    if get::<bool>(row, "typispreferred", what)? {
        options.push(("PREFERRED".to_owned(), "true".to_owned()));
    }
    let default: Option<String> = get(row, "typdefault", what)?;
    if let Some(default) = default {
        options.push(("DEFAULT".to_owned(), crate::quote::literal(&default)));
    }
    let element: Option<String> = get(row, "element", what)?;
    if let Some(element) = element {
        options.push(("ELEMENT".to_owned(), element));
    }
    let delimiter: String = get(row, "delimiter", what)?;
    options.push(("DELIMITER".to_owned(), crate::quote::literal(&delimiter)));
    if get::<bool>(row, "collatable", what)? {
        options.push(("COLLATABLE".to_owned(), "true".to_owned()));
    }
    let mut functions = Vec::new();
    for column in [
        "typinput",
        "typoutput",
        "typreceive",
        "typsend",
        "typmodin",
        "typmodout",
        "typanalyze",
        "typsubscript",
    ] {
        let oid: u32 = get(row, column, what)?;
        if oid != 0 {
            functions.push(oid);
        }
    }
    Ok(Base { options, functions })
}
