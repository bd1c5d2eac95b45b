//! `ALTER TABLE ... ALTER COLUMN ... SET STATISTICS / STORAGE / COMPRESSION / (options)` right
//! after the table, and `REPLICA IDENTITY` (after its index, if it names one).

use pgark_archive::{ObjectKind, Section};

use super::build::Builder;
use super::graph::NewItem;
use crate::catalog::ObjAddr;
use crate::quote::{ident, literal};

pub(super) fn add_column_options(b: &mut Builder<'_>) {
    for c in &b.catalog.column_options {
        let (Some(name), Some(&table)) = (
            b.relation_names.get(&c.table_oid),
            b.table_items.get(&c.table_oid),
        ) else {
            continue;
        };
        let prefix = format!(
            "ALTER TABLE ONLY {} ALTER COLUMN {}",
            name.sql(),
            ident(&c.column)
        );
        let mut statements = Vec::new();
        if let Some(n) = c.statistics {
            statements.push(format!("{prefix} SET STATISTICS {n};"));
        }
        if let Some(storage) = &c.storage {
            statements.push(format!("{prefix} SET STORAGE {storage};"));
        }
        if let Some(compression) = &c.compression {
            statements.push(format!("{prefix} SET COMPRESSION {compression};"));
        }
        if !c.options.is_empty() {
            let options: Vec<String> = c
                .options
                .iter()
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => format!("{}={}", ident(k), literal(v)),
                    None => ident(kv),
                })
                .collect();
            statements.push(format!("{prefix} SET ({});", options.join(", ")));
        }
        let schema = name.schema.clone();
        b.add(NewItem {
            kind: ObjectKind::TableOption,
            section: Section::PreData,
            schema: Some(schema),
            name: c.column.clone(),
            table: Some(table),
            sql: statements.join("\n"),
        });
    }
    for s in &b.catalog.index_statistics {
        let Some(index) = b.catalog.indexes.iter().find(|i| i.oid == s.index_oid) else {
            continue;
        };
        let Some(index_item) = b.graph.owner(ObjAddr::relation(index.oid)) else {
            continue;
        };
        let table = b.table_items.get(&index.table_oid).copied();
        let idx = b.add(NewItem {
            kind: ObjectKind::TableOption,
            section: Section::PostData,
            schema: Some(index.schema.clone()),
            name: index.name.clone(),
            table,
            sql: format!(
                "ALTER INDEX {} ALTER COLUMN {} SET STATISTICS {};",
                crate::quote::qualified(&index.schema, &index.name),
                s.column,
                s.statistics
            ),
        });
        b.graph.depend(idx, index_item);
    }
    for r in &b.catalog.replica_identities {
        let (Some(name), Some(&table)) = (
            b.relation_names.get(&r.table_oid),
            b.table_items.get(&r.table_oid),
        ) else {
            continue;
        };
        let (identity, section) = match (r.kind.as_str(), &r.index) {
            ("n", _) => ("NOTHING".to_owned(), Section::PreData),
            ("f", _) => ("FULL".to_owned(), Section::PreData),
            (_, Some(index)) => (format!("USING INDEX {}", ident(index)), Section::PostData),
            _ => continue,
        };
        let schema = name.schema.clone();
        let sql = format!(
            "ALTER TABLE ONLY {} REPLICA IDENTITY {identity};",
            name.sql()
        );
        let idx = b.add(NewItem {
            kind: ObjectKind::TableOption,
            section,
            schema: Some(schema.clone()),
            name: format!("{} replica identity", name.name),
            table: Some(table),
            sql,
        });
        if let Some(index) = &r.index {
            let found = b
                .catalog
                .indexes
                .iter()
                .find(|i| i.table_oid == r.table_oid && &i.name == index)
                .map(|i| ObjAddr::relation(i.oid));
            if let Some(addr) = found {
                b.graph.depend_on(idx, addr);
            }
        }
    }
}
