//! Functions and procedures (as the server prints them) and `CREATE AGGREGATE`.

use pgark_archive::{ObjectKind, Section};

use super::build::Builder;
use super::graph::NewItem;
use crate::catalog::{Aggregate, ObjAddr, QualName, RoutineDef};

pub(super) fn add_routines(b: &mut Builder<'_>) {
    for r in &b.catalog.routines {
        let (kind, sql) = match &r.def {
            RoutineDef::Function(def) => (ObjectKind::Function, format!("{};", def.trim_end())),
            RoutineDef::Procedure(def) => (ObjectKind::Procedure, format!("{};", def.trim_end())),
            RoutineDef::Aggregate(a) => (ObjectKind::Aggregate, create_aggregate(&r.name, a)),
        };
        let idx = b.add(NewItem {
            kind,
            section: Section::PreData,
            schema: Some(r.name.schema.clone()),
            name: format!("{}({})", r.name.name, r.identity_args),
            table: None,
            sql,
        });
        b.own_object(ObjAddr::proc(r.oid), idx);
    }
}

/// `NAME = value` options; a flag (empty value) is its name alone.
pub(super) fn options_sql(options: &[(String, String)]) -> Vec<String> {
    options
        .iter()
        .map(|(name, value)| {
            if value.is_empty() {
                name.clone()
            } else {
                format!("{name} = {value}")
            }
        })
        .collect()
}

fn create_aggregate(name: &QualName, a: &Aggregate) -> String {
    let args = if a.args.is_empty() { "*" } else { &a.args };
    let mut options = options_sql(&a.options);
    if a.hypothetical {
        options.push("HYPOTHETICAL".to_owned());
    }
    format!(
        "CREATE AGGREGATE {}({args}) (\n    {}\n);",
        name.sql(),
        options.join(",\n    ")
    )
}
