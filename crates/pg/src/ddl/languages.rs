//! `CREATE LANGUAGE`, `CREATE TRANSFORM` and `CREATE ACCESS METHOD`.

use pgark_archive::{ObjectKind, Section};

use super::build::Builder;
use super::graph::NewItem;
use crate::catalog::{ObjAddr, PG_AM, PG_LANGUAGE, PG_TRANSFORM};
use crate::quote::ident;

pub(super) fn add_languages(b: &mut Builder<'_>) {
    for a in &b.catalog.access_methods {
        let idx = b.add(NewItem {
            kind: ObjectKind::AccessMethod,
            section: Section::PreData,
            schema: None,
            name: a.name.clone(),
            table: None,
            sql: format!(
                "CREATE ACCESS METHOD {} TYPE {} HANDLER {};",
                ident(&a.name),
                a.kind,
                a.handler
            ),
        });
        b.own_object(ObjAddr::new(PG_AM, a.oid), idx);
    }
    for l in &b.catalog.languages {
        let trusted = if l.trusted { "TRUSTED " } else { "" };
        let mut sql = format!(
            "CREATE {trusted}PROCEDURAL LANGUAGE {} HANDLER {}",
            ident(&l.name),
            l.handler
        );
        if let Some(inline) = &l.inline {
            sql.push_str(&format!(" INLINE {inline}"));
        }
        if let Some(validator) = &l.validator {
            sql.push_str(&format!(" VALIDATOR {validator}"));
        }
        sql.push(';');
        let idx = b.add(NewItem {
            kind: ObjectKind::Language,
            section: Section::PreData,
            schema: None,
            name: l.name.clone(),
            table: None,
            sql,
        });
        b.own_object(ObjAddr::new(PG_LANGUAGE, l.oid), idx);
    }
    for t in &b.catalog.transforms {
        let name = format!("FOR {} LANGUAGE {}", t.type_name, ident(&t.language));
        let mut parts = Vec::new();
        if let Some(f) = &t.from_sql {
            parts.push(format!("FROM SQL WITH FUNCTION {f}"));
        }
        if let Some(f) = &t.to_sql {
            parts.push(format!("TO SQL WITH FUNCTION {f}"));
        }
        let idx = b.add(NewItem {
            kind: ObjectKind::Transform,
            section: Section::PreData,
            schema: None,
            name: name.clone(),
            table: None,
            sql: format!("CREATE TRANSFORM {name} ({});", parts.join(", ")),
        });
        b.own_object(ObjAddr::new(PG_TRANSFORM, t.oid), idx);
    }
}
