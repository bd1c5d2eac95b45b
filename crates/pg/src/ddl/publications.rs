//! `CREATE PUBLICATION` and what it publishes (post-data, as `pg_dump` places them): one
//! `ALTER PUBLICATION ... ADD` item per table or schema, after the table it names.

use pgark_archive::{ObjectKind, Section};

use super::build::Builder;
use super::graph::NewItem;
use crate::catalog::{ObjAddr, PG_PUBLICATION_NAMESPACE, PG_PUBLICATION_REL, class};
use crate::quote::ident;

pub(super) fn add_publications(b: &mut Builder<'_>) {
    for p in &b.catalog.publications {
        let name = ident(&p.name);
        let all = if p.all_tables { " FOR ALL TABLES" } else { "" };
        let idx = b.add(NewItem {
            kind: ObjectKind::Publication,
            section: Section::PostData,
            schema: None,
            name: p.name.clone(),
            table: None,
            sql: format!(
                "CREATE PUBLICATION {name}{all} WITH ({});",
                p.options.join(", ")
            ),
        });
        b.own_object(ObjAddr::new(class::PG_PUBLICATION, p.oid), idx);
        for t in &p.tables {
            let columns = if t.columns.is_empty() {
                String::new()
            } else {
                format!(" ({})", t.columns.join(", "))
            };
            let filter = t
                .filter
                .as_ref()
                .map(|f| format!(" WHERE ({f})"))
                .unwrap_or_default();
            let table = b.table_items.get(&t.table_oid).copied();
            let member = b.add(NewItem {
                kind: ObjectKind::PublicationMember,
                section: Section::PostData,
                schema: Some(t.table.schema.clone()),
                name: format!("{} {}", p.name, t.table.name),
                table,
                sql: format!(
                    "ALTER PUBLICATION {name} ADD TABLE ONLY {}{columns}{filter};",
                    t.table.sql()
                ),
            });
            b.graph.depend(member, idx);
            b.own_object(ObjAddr::new(PG_PUBLICATION_REL, t.oid), member);
        }
        for (oid, schema) in &p.schemas {
            let member = b.add(NewItem {
                kind: ObjectKind::PublicationMember,
                section: Section::PostData,
                schema: Some(schema.clone()),
                name: format!("{} IN SCHEMA {schema}", p.name),
                table: None,
                sql: format!(
                    "ALTER PUBLICATION {name} ADD TABLES IN SCHEMA {};",
                    ident(schema)
                ),
            });
            b.graph.depend(member, idx);
            b.own_object(ObjAddr::new(PG_PUBLICATION_NAMESPACE, *oid), member);
        }
    }
}
