//! `ALTER TABLE ... ENABLE/FORCE ROW LEVEL SECURITY` and `CREATE POLICY`, after the data.

use pgark_archive::{ObjectKind, Section};

use super::build::Builder;
use super::graph::NewItem;
use crate::catalog::{ObjAddr, Policy};
use crate::quote::ident;

/// `pg_policy`'s catalog OID.
const PG_POLICY: u32 = 3256;

pub(super) fn add_row_security(b: &mut Builder<'_>) {
    for rs in &b.catalog.row_security {
        let (Some(name), Some(&table)) = (
            b.relation_names.get(&rs.table_oid),
            b.table_items.get(&rs.table_oid),
        ) else {
            continue;
        };
        let mut statements = Vec::new();
        if rs.enabled {
            statements.push(format!(
                "ALTER TABLE {} ENABLE ROW LEVEL SECURITY;",
                name.sql()
            ));
        }
        if rs.forced {
            statements.push(format!(
                "ALTER TABLE {} FORCE ROW LEVEL SECURITY;",
                name.sql()
            ));
        }
        let schema = name.schema.clone();
        let item_name = name.name.clone();
        b.add(NewItem {
            kind: ObjectKind::TableOption,
            section: Section::PostData,
            schema: Some(schema),
            name: item_name,
            table: Some(table),
            sql: statements.join("\n"),
        });
    }
    for p in &b.catalog.policies {
        let (Some(name), Some(&table)) = (
            b.relation_names.get(&p.table_oid),
            b.table_items.get(&p.table_oid),
        ) else {
            continue;
        };
        let sql = create_policy(&name.sql(), p);
        let schema = name.schema.clone();
        let idx = b.add(NewItem {
            kind: ObjectKind::Policy,
            section: Section::PostData,
            schema: Some(schema),
            name: p.name.clone(),
            table: Some(table),
            sql,
        });
        b.graph.nodes[idx].roles = p.roles.clone();
        b.own_object(ObjAddr::new(PG_POLICY, p.oid), idx);
    }
}

fn create_policy(table: &str, p: &Policy) -> String {
    let mut sql = format!("CREATE POLICY {} ON {table}", ident(&p.name));
    if !p.permissive {
        sql.push_str(" AS RESTRICTIVE");
    }
    let command = match p.command.as_str() {
        "r" => "SELECT",
        "a" => "INSERT",
        "w" => "UPDATE",
        "d" => "DELETE",
        _ => "ALL",
    };
    sql.push_str(&format!(" FOR {command}"));
    let roles: Vec<String> = p.roles.iter().map(|r| ident(r)).collect();
    if roles.is_empty() {
        sql.push_str(" TO PUBLIC");
    } else {
        sql.push_str(&format!(" TO {}", roles.join(", ")));
    }
    if let Some(using) = &p.using {
        sql.push_str(&format!(" USING ({using})"));
    }
    if let Some(check) = &p.with_check {
        sql.push_str(&format!(" WITH CHECK ({check})"));
    }
    sql.push(';');
    sql
}
