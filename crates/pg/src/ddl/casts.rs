//! `CREATE CAST` and `CREATE CONVERSION`.

use pgark_archive::{ObjectKind, Section};

use super::build::Builder;
use super::graph::NewItem;
use crate::catalog::{ObjAddr, PG_CAST, class};
use crate::quote::literal;

pub(super) fn add_casts(b: &mut Builder<'_>) {
    for c in &b.catalog.casts {
        let signature = format!("({} AS {})", c.source, c.target);
        let idx = b.add(NewItem {
            kind: ObjectKind::Cast,
            section: Section::PreData,
            schema: None,
            name: signature.clone(),
            table: None,
            sql: format!("CREATE CAST {signature} {}{};", c.method, c.context),
        });
        b.own_object(ObjAddr::new(PG_CAST, c.oid), idx);
    }
    for c in &b.catalog.conversions {
        let default = if c.default { "DEFAULT " } else { "" };
        let idx = b.add(NewItem {
            kind: ObjectKind::Conversion,
            section: Section::PreData,
            schema: Some(c.name.schema.clone()),
            name: c.name.name.clone(),
            table: None,
            sql: format!(
                "CREATE {default}CONVERSION {} FOR {} TO {} FROM {};",
                c.name.sql(),
                literal(&c.from),
                literal(&c.to),
                c.function
            ),
        });
        b.own_object(ObjAddr::new(class::PG_CONVERSION, c.oid), idx);
    }
}
