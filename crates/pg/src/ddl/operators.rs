//! `CREATE OPERATOR`. A commutator or negator not created yet is made a shell by the server and
//! completed by its own statement later.

use pgark_archive::{ObjectKind, Section};

use super::build::Builder;
use super::graph::NewItem;
use super::routines::options_sql;
use crate::catalog::{ObjAddr, class};
use crate::quote::ident;

pub(super) fn add_operators(b: &mut Builder<'_>) {
    for o in &b.catalog.operators {
        let sql = format!(
            "CREATE OPERATOR {}.{} (\n    {}\n);",
            ident(&o.name.schema),
            o.name.name,
            options_sql(&o.options).join(",\n    ")
        );
        let idx = b.add(NewItem {
            kind: ObjectKind::Operator,
            section: Section::PreData,
            schema: Some(o.name.schema.clone()),
            name: format!("{}{}", o.name.name, o.signature),
            table: None,
            sql,
        });
        b.own_object(ObjAddr::new(class::PG_OPERATOR, o.oid), idx);
    }
}
