//! `CREATE SCHEMA`, `CREATE EXTENSION` and the extensions' configuration tables.

use pgark_archive::{ObjectKind, Section};

use super::build::Builder;
use super::graph::NewItem;
use crate::catalog::{ObjAddr, class};
use crate::quote::{ident, literal};

/// What the `public` schema's item runs: every new database already has it, and creating it
/// would need the CREATE privilege on the database, which a restoring role may lack. The item
/// still exists so that objects in `public` (and, later, its comment and privileges) can depend
/// on it.
pub(super) const PUBLIC_SCHEMA_SQL: &str = "-- schema public exists in every new database";

pub(super) fn add_schemas(b: &mut Builder<'_>) {
    for schema in &b.catalog.schemas {
        let sql = if schema.name == "public" {
            PUBLIC_SCHEMA_SQL.to_owned()
        } else {
            format!("CREATE SCHEMA {};", ident(&schema.name))
        };
        let item = NewItem {
            kind: ObjectKind::Schema,
            section: Section::PreData,
            schema: None,
            name: schema.name.clone(),
            table: None,
            sql,
        };
        let idx = b.add_schema_item(&schema.name, item);
        b.own_object(ObjAddr::namespace(schema.oid), idx);
    }
}

/// One item per extension, which also stands for every object the extension created: a column
/// of an extension's type depends on the `CREATE EXTENSION`.
pub(super) fn add_extensions(b: &mut Builder<'_>) {
    for ext in &b.catalog.extensions {
        let item = NewItem {
            kind: ObjectKind::Extension,
            section: Section::PreData,
            schema: None,
            name: ext.name.clone(),
            table: None,
            sql: create_extension(&ext.name, &ext.schema),
        };
        let idx = b.add(item);
        if let Some(schema) = b.schema_item(&ext.schema) {
            b.graph.depend(idx, schema);
        }
        b.own_object(ObjAddr::new(class::PG_EXTENSION, ext.oid), idx);
    }
    // An extension's configuration tables stand for themselves (see `add_extension_config`):
    // what refers to one (a user's foreign key, a view) waits for its rows, not only for the
    // extension.
    let config_tables: std::collections::HashSet<ObjAddr> = b
        .catalog
        .extension_tables
        .iter()
        .map(|c| ObjAddr::relation(c.table.oid))
        .collect();
    for member in &b.catalog.extension_members {
        if config_tables.contains(&member.member) {
            continue;
        }
        let extension = ObjAddr::new(class::PG_EXTENSION, member.extension_oid);
        if let Some(idx) = b.graph.owner(extension) {
            b.graph.own(member.member, idx);
        }
    }
}

/// An item for each extension configuration table, after its extension: the table's rows load
/// after it, and after those of the configuration tables it has foreign keys to (the extension
/// created those keys). Its statement only checks that the extension created the table.
pub(super) fn add_extension_config(b: &mut Builder<'_>) {
    for config in &b.catalog.extension_tables {
        let table = &config.table;
        let idx = b.add(NewItem {
            kind: ObjectKind::ExtensionTable,
            section: Section::PreData,
            schema: Some(table.name.schema.clone()),
            name: table.name.name.clone(),
            table: None,
            sql: format!(
                "SELECT {}::pg_catalog.regclass;",
                literal(&table.name.sql())
            ),
        });
        if let Some(extension) = b
            .graph
            .owner(ObjAddr::new(class::PG_EXTENSION, config.extension_oid))
        {
            b.graph.depend(idx, extension);
        }
        b.graph.own(ObjAddr::relation(table.oid), idx);
        b.config_table_items.insert(table.oid, idx);
    }
    for config in &b.catalog.extension_tables {
        let Some(&idx) = b.config_table_items.get(&config.table.oid) else {
            continue;
        };
        for referenced in &config.references {
            if let Some(&on) = b.config_table_items.get(referenced) {
                b.graph.depend(idx, on);
            }
        }
    }
}

/// `IF NOT EXISTS`: the target may have it already (installed into `template1`, say).
fn create_extension(name: &str, schema: &str) -> String {
    format!(
        "CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {};",
        ident(name),
        ident(schema)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_created_in_their_schema() {
        assert_eq!(
            create_extension("uuid-ossp", "Ext"),
            "CREATE EXTENSION IF NOT EXISTS \"uuid-ossp\" WITH SCHEMA \"Ext\";"
        );
    }
}
