//! `CREATE COLLATION`.

use pgark_archive::{ObjectKind, Section};

use super::build::Builder;
use super::graph::NewItem;
use crate::catalog::{Collation, ObjAddr, class};
use crate::quote::literal;

pub(super) fn add_collations(b: &mut Builder<'_>) {
    for c in &b.catalog.collations {
        let Some(sql) = create_collation(c) else {
            continue;
        };
        let idx = b.add(NewItem {
            kind: ObjectKind::Collation,
            section: Section::PreData,
            schema: Some(c.name.schema.clone()),
            name: c.name.name.clone(),
            table: None,
            sql,
        });
        b.own_object(ObjAddr::new(class::PG_COLLATION, c.oid), idx);
    }
}

/// `None` for a collation of the `default` provider, which only initdb creates.
fn create_collation(c: &Collation) -> Option<String> {
    let mut options = Vec::new();
    match c.provider.as_str() {
        "c" => {
            options.push("provider = libc".to_owned());
            if let Some(collate) = &c.collate {
                options.push(format!("lc_collate = {}", literal(collate)));
            }
            if let Some(ctype) = &c.ctype {
                options.push(format!("lc_ctype = {}", literal(ctype)));
            }
        }
        "i" | "b" => {
            let provider = if c.provider == "i" { "icu" } else { "builtin" };
            options.push(format!("provider = {provider}"));
            // Before PostgreSQL 15 an ICU locale is kept in collcollate.
            if let Some(locale) = c.locale.as_ref().or(c.collate.as_ref()) {
                options.push(format!("locale = {}", literal(locale)));
            }
        }
        _ => return None,
    }
    if !c.deterministic {
        options.push("deterministic = false".to_owned());
    }
    if let Some(rules) = &c.rules {
        options.push(format!("rules = {}", literal(rules)));
    }
    Some(format!(
        "CREATE COLLATION {} ({});",
        c.name.sql(),
        options.join(", ")
    ))
}
