//! Functions, procedures and aggregates. Functions and procedures are printed by the server
//! (`pg_get_functiondef`); aggregates have no such function and are read from `pg_aggregate`.
//! Functions a type or extension created internally (range constructors, extension members) are
//! left out: their creator makes them again.

use tokio_postgres::{Client, Row};

use super::address::class;
use super::filter::{USER_NAMESPACE, not_extension_member};
use super::names::QualName;
use super::rows::{get, query};
use crate::PgError;

#[derive(Debug, Clone)]
pub(crate) struct Routine {
    pub oid: u32,
    pub name: QualName,
    /// `pg_get_function_identity_arguments`, e.g. `a integer, b text`.
    pub identity_args: String,
    pub def: RoutineDef,
}

#[derive(Debug, Clone)]
pub(crate) enum RoutineDef {
    /// `CREATE OR REPLACE FUNCTION ...` as `pg_get_functiondef` prints it.
    Function(String),
    Procedure(String),
    Aggregate(Aggregate),
}

/// The parts of `CREATE AGGREGATE`, each already in SQL form.
#[derive(Debug, Clone, Default)]
pub(crate) struct Aggregate {
    /// `pg_get_function_arguments` (with `ORDER BY` for ordered-set aggregates); empty for `*`.
    pub args: String,
    pub hypothetical: bool,
    /// `name = value` options in `CREATE AGGREGATE` order.
    pub options: Vec<(String, String)>,
}

pub(crate) async fn read_routines(
    client: &Client,
    server_version_num: i32,
) -> Result<Vec<Routine>, PgError> {
    let sql = format!(
        "SELECT p.oid, n.nspname::text AS schema, p.proname::text AS name, \
         p.prokind::text AS prokind, \
         pg_catalog.pg_get_function_identity_arguments(p.oid) AS identity_args, \
         CASE WHEN p.prokind <> 'a' THEN pg_catalog.pg_get_functiondef(p.oid) END AS def, \
         pg_catalog.pg_get_function_arguments(p.oid) AS args \
         FROM pg_catalog.pg_proc p \
         JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
         WHERE {USER_NAMESPACE} AND {} \
         AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = {} \
                         AND d.objid = p.oid AND d.deptype = 'i') \
         ORDER BY n.nspname, p.proname, p.oid",
        not_extension_member(class::PG_PROC, "p.oid"),
        class::PG_PROC
    );
    let what = "functions";
    let mut aggregates = read_aggregates(client, server_version_num).await?;
    let mut routines = Vec::new();
    for row in query(client, what, &sql, &[]).await? {
        let oid: u32 = get(&row, "oid", what)?;
        let prokind: String = get(&row, "prokind", what)?;
        let def = match prokind.as_str() {
            "a" => {
                let Some(mut agg) = aggregates.remove(&oid) else {
                    continue;
                };
                agg.args = get(&row, "args", what)?;
                RoutineDef::Aggregate(agg)
            }
            "p" => RoutineDef::Procedure(function_def(&row, what)?),
            _ => RoutineDef::Function(function_def(&row, what)?),
        };
        routines.push(Routine {
            oid,
            name: QualName::new(get(&row, "schema", what)?, get(&row, "name", what)?),
            identity_args: get(&row, "identity_args", what)?,
            def,
        });
    }
    Ok(routines)
}

fn function_def(row: &Row, what: &str) -> Result<String, PgError> {
    let def: Option<String> = get(row, "def", what)?;
    def.ok_or_else(|| PgError::Catalog {
        reason: "pg_get_functiondef returned nothing for a function".to_owned(),
    })
}

/// The aggregates' options, by OID. Function names print qualified (empty `search_path`).
async fn read_aggregates(
    client: &Client,
    server_version_num: i32,
) -> Result<std::collections::HashMap<u32, Aggregate>, PgError> {
    let modify = if server_version_num >= 110_000 {
        "a.aggfinalmodify::text AS finalmodify, a.aggmfinalmodify::text AS mfinalmodify"
    } else {
        "'r'::text AS finalmodify, 'r'::text AS mfinalmodify"
    };
    let sql = format!(
        "SELECT a.aggfnoid::oid AS oid, a.aggkind::text AS aggkind, \
         a.aggtransfn::regproc::text AS sfunc, \
         pg_catalog.format_type(a.aggtranstype, NULL) AS stype, \
         NULLIF(a.aggtransspace, 0)::text AS sspace, \
         NULLIF(a.aggfinalfn::oid, 0)::regproc::text AS finalfunc, a.aggfinalextra, \
         NULLIF(a.aggcombinefn::oid, 0)::regproc::text AS combinefunc, \
         NULLIF(a.aggserialfn::oid, 0)::regproc::text AS serialfunc, \
         NULLIF(a.aggdeserialfn::oid, 0)::regproc::text AS deserialfunc, \
         a.agginitval AS initcond, \
         NULLIF(a.aggmtransfn::oid, 0)::regproc::text AS msfunc, \
         NULLIF(a.aggminvtransfn::oid, 0)::regproc::text AS minvfunc, \
         CASE WHEN a.aggmtranstype <> 0 THEN pg_catalog.format_type(a.aggmtranstype, NULL) END \
              AS mstype, \
         NULLIF(a.aggmtransspace, 0)::text AS msspace, \
         NULLIF(a.aggmfinalfn::oid, 0)::regproc::text AS mfinalfunc, a.aggmfinalextra, \
         a.aggminitval AS minitcond, \
         CASE WHEN a.aggsortop <> 0 THEN 'OPERATOR(' || pg_catalog.quote_ident(son.nspname) \
              || '.' || so.oprname || ')' END AS sortop, \
         p.proparallel::text AS parallel, {modify} \
         FROM pg_catalog.pg_aggregate a \
         JOIN pg_catalog.pg_proc p ON p.oid = a.aggfnoid \
         LEFT JOIN pg_catalog.pg_operator so ON so.oid = a.aggsortop \
         LEFT JOIN pg_catalog.pg_namespace son ON son.oid = so.oprnamespace \
         WHERE a.aggfnoid::oid >= {}",
        super::address::FIRST_NORMAL_OID
    );
    let what = "aggregates";
    let mut aggregates = std::collections::HashMap::new();
    for row in query(client, what, &sql, &[]).await? {
        let oid: u32 = get(&row, "oid", what)?;
        aggregates.insert(oid, aggregate(&row, what)?);
    }
    Ok(aggregates)
}

fn aggregate(row: &Row, what: &str) -> Result<Aggregate, PgError> {
    let mut options: Vec<(String, String)> = Vec::new();
    let mut push = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            options.push((name.to_owned(), value));
        }
    };
    let text = |column: &str| -> Result<Option<String>, PgError> { get(row, column, what) };
    let literal = |column: &str| -> Result<Option<String>, PgError> {
        Ok(text(column)?.map(|v| crate::quote::literal(&v)))
    };
    let flag = |column: &str| -> Result<Option<String>, PgError> {
        let on: bool = get(row, column, what)?;
        Ok(on.then(String::new))
    };
    let modify = |column: &str| -> Result<Option<String>, PgError> {
        Ok(match text(column)?.as_deref() {
            Some("s") => Some("SHAREABLE".to_owned()),
            Some("w") => Some("READ_WRITE".to_owned()),
            Some("r") => Some("READ_ONLY".to_owned()),
            _ => None,
        })
    };
    push("SFUNC", text("sfunc")?);
    push("STYPE", text("stype")?);
    push("SSPACE", text("sspace")?);
    push("FINALFUNC", text("finalfunc")?);
    push("FINALFUNC_EXTRA", flag("aggfinalextra")?);
    if text("finalfunc")?.is_some() {
        push("FINALFUNC_MODIFY", modify("finalmodify")?);
    }
    push("COMBINEFUNC", text("combinefunc")?);
    push("SERIALFUNC", text("serialfunc")?);
    push("DESERIALFUNC", text("deserialfunc")?);
    push("INITCOND", literal("initcond")?);
    push("MSFUNC", text("msfunc")?);
    push("MINVFUNC", text("minvfunc")?);
    push("MSTYPE", text("mstype")?);
    push("MSSPACE", text("msspace")?);
    push("MFINALFUNC", text("mfinalfunc")?);
    push("MFINALFUNC_EXTRA", flag("aggmfinalextra")?);
    if text("mfinalfunc")?.is_some() {
        push("MFINALFUNC_MODIFY", modify("mfinalmodify")?);
    }
    push("MINITCOND", literal("minitcond")?);
    push("SORTOP", text("sortop")?);
    let parallel: String = get(row, "parallel", what)?;
    push(
        "PARALLEL",
        match parallel.as_str() {
            "s" => Some("SAFE".to_owned()),
            "r" => Some("RESTRICTED".to_owned()),
            _ => None,
        },
    );
    let kind: String = get(row, "aggkind", what)?;
    Ok(Aggregate {
        args: String::new(),
        hypothetical: kind == "h",
        options,
    })
}
