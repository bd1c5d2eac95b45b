//! `CREATE FOREIGN DATA WRAPPER`, `CREATE SERVER` and `CREATE USER MAPPING`.

use pgark_archive::{ObjectKind, Section};

use super::build::Builder;
use super::columns::column_definition;
use super::graph::NewItem;
use crate::catalog::{ObjAddr, PG_USER_MAPPING, class};
use crate::quote::{ident, literal};

fn options(options: &str) -> String {
    if options.is_empty() {
        String::new()
    } else {
        format!(" OPTIONS ({options})")
    }
}

pub(super) fn add_foreign(b: &mut Builder<'_>) {
    for w in &b.catalog.wrappers {
        let handler = w
            .handler
            .as_ref()
            .map(|h| format!(" HANDLER {h}"))
            .unwrap_or_default();
        let validator = w
            .validator
            .as_ref()
            .map(|v| format!(" VALIDATOR {v}"))
            .unwrap_or_default();
        let idx = b.add(NewItem {
            kind: ObjectKind::ForeignDataWrapper,
            section: Section::PreData,
            schema: None,
            name: w.name.clone(),
            table: None,
            sql: format!(
                "CREATE FOREIGN DATA WRAPPER {}{handler}{validator}{};",
                ident(&w.name),
                options(&w.options)
            ),
        });
        b.own_object(ObjAddr::new(class::PG_FOREIGN_DATA_WRAPPER, w.oid), idx);
    }
    for s in &b.catalog.servers {
        let server_type = s
            .server_type
            .as_ref()
            .map(|t| format!(" TYPE {}", literal(t)))
            .unwrap_or_default();
        let version = s
            .version
            .as_ref()
            .map(|v| format!(" VERSION {}", literal(v)))
            .unwrap_or_default();
        let idx = b.add(NewItem {
            kind: ObjectKind::ForeignServer,
            section: Section::PreData,
            schema: None,
            name: s.name.clone(),
            table: None,
            sql: format!(
                "CREATE SERVER {}{server_type}{version} FOREIGN DATA WRAPPER {}{};",
                ident(&s.name),
                ident(&s.wrapper),
                options(&s.options)
            ),
        });
        b.own_object(ObjAddr::new(class::PG_FOREIGN_SERVER, s.oid), idx);
    }
    for m in &b.catalog.user_mappings {
        let user = m.user.as_deref().map_or("PUBLIC".to_owned(), ident);
        // The name is the statement's object part, which `drop_statement` reuses.
        let name = format!("FOR {user} SERVER {}", ident(&m.server));
        let idx = b.add(NewItem {
            kind: ObjectKind::UserMapping,
            section: Section::PreData,
            schema: None,
            name: name.clone(),
            table: None,
            sql: format!("CREATE USER MAPPING {name}{};", options(&m.options)),
        });
        b.graph.nodes[idx].roles = m.user.iter().cloned().collect();
        b.own_object(ObjAddr::new(PG_USER_MAPPING, m.oid), idx);
    }
}

/// `CREATE FOREIGN TABLE`, columns with their options, defaults, collations and NOT NULL.
pub(super) fn add_foreign_tables(b: &mut Builder<'_>) {
    for f in &b.catalog.foreign_tables {
        let t = &f.table;
        let columns: Vec<String> = t
            .columns
            .iter()
            .map(|c| {
                let definition = column_definition(t, c, None);
                let head = format!("{} {}", ident(&c.name), c.type_name);
                let rest = definition.strip_prefix(&head).unwrap_or_default();
                let options = f
                    .column_options
                    .get(&c.name)
                    .map(|o| options(o))
                    .unwrap_or_default();
                format!("    {head}{options}{rest}")
            })
            .collect();
        let sql = format!(
            "CREATE FOREIGN TABLE {} (\n{}\n)\nSERVER {}{};",
            t.name.sql(),
            columns.join(",\n"),
            ident(&f.server),
            options(&f.options)
        );
        let idx = b.add(NewItem {
            kind: ObjectKind::ForeignTable,
            section: Section::PreData,
            schema: Some(t.name.schema.clone()),
            name: t.name.name.clone(),
            table: None,
            sql,
        });
        b.relation_names.insert(t.oid, t.name.clone());
        b.own_object(ObjAddr::relation(t.oid), idx);
        for addr in [ObjAddr::type_(t.row_type), ObjAddr::type_(t.row_array_type)]
            .into_iter()
            .chain(
                t.columns
                    .iter()
                    .filter_map(|c| c.default.as_ref())
                    .map(|d| ObjAddr::default(d.oid)),
            )
            .filter(|a| a.oid != 0)
        {
            b.graph.own(addr, idx);
        }
    }
}
