//! `CREATE TEXT SEARCH PARSER / TEMPLATE / DICTIONARY / CONFIGURATION`, a configuration with
//! its token mappings.

use pgark_archive::{ObjectKind, Section};

use super::build::Builder;
use super::graph::NewItem;
use super::routines::options_sql;
use crate::catalog::{ObjAddr, class};
use crate::quote::ident;

pub(super) fn add_text_search(b: &mut Builder<'_>) {
    for t in &b.catalog.text_search {
        let (kind, what) = match t.class {
            class::PG_TS_PARSER => (ObjectKind::TextSearchParser, "PARSER"),
            class::PG_TS_TEMPLATE => (ObjectKind::TextSearchTemplate, "TEMPLATE"),
            class::PG_TS_DICT => (ObjectKind::TextSearchDictionary, "DICTIONARY"),
            _ => (ObjectKind::TextSearchConfiguration, "CONFIGURATION"),
        };
        let name = t.name.sql();
        let mut sql = format!(
            "CREATE TEXT SEARCH {what} {name} (\n    {}\n);",
            options_sql(&t.options).join(",\n    ")
        );
        for (token, dictionaries) in &t.mappings {
            sql.push_str(&format!(
                "\nALTER TEXT SEARCH CONFIGURATION {name} ADD MAPPING FOR {} WITH {};",
                ident(token),
                dictionaries.join(", ")
            ));
        }
        let idx = b.add(NewItem {
            kind,
            section: Section::PreData,
            schema: Some(t.name.schema.clone()),
            name: t.name.name.clone(),
            table: None,
            sql,
        });
        b.own_object(ObjAddr::new(t.class, t.oid), idx);
    }
}
