//! `CREATE VIEW`, `CREATE MATERIALIZED VIEW ... WITH NO DATA` and, after the data, the
//! `REFRESH MATERIALIZED VIEW` of those the source had populated (in dependency order).

use std::collections::{HashMap, HashSet};

use pgark_archive::{ObjectKind, Section};

use super::build::Builder;
use super::graph::{ItemIdx, NewItem};
use crate::catalog::{ObjAddr, View, class};
use crate::quote::{ident, literal};

pub(super) fn add_views(b: &mut Builder<'_>) {
    for view in &b.catalog.views {
        let kind = if view.materialized {
            ObjectKind::MaterializedView
        } else {
            ObjectKind::View
        };
        let idx = b.add(NewItem {
            kind,
            section: Section::PreData,
            schema: Some(view.name.schema.clone()),
            name: view.name.name.clone(),
            table: None,
            sql: create_view(view),
        });
        b.own_object(ObjAddr::relation(view.oid), idx);
        for addr in [
            ObjAddr::new(class::PG_REWRITE, view.rule_oid),
            ObjAddr::type_(view.row_type),
            ObjAddr::type_(view.row_array_type),
        ] {
            if addr.oid != 0 {
                b.graph.own(addr, idx);
            }
        }
        if !view.materialized {
            b.view_splits.insert(idx, placeholder(view));
        }
        for (oid, column, expr) in &view.defaults {
            let default = b.add(NewItem {
                kind: ObjectKind::ColumnDefault,
                section: Section::PreData,
                schema: Some(view.name.schema.clone()),
                name: column.clone(),
                table: Some(idx),
                sql: format!(
                    "ALTER VIEW {} ALTER COLUMN {} SET DEFAULT {expr};",
                    view.name.sql(),
                    crate::quote::ident(column)
                ),
            });
            b.graph.own(ObjAddr::default(*oid), default);
        }
        if view.materialized {
            // Indexes and triggers find their relation's item here.
            b.table_items.insert(view.oid, idx);
        }
        if view.materialized && view.populated {
            let refresh = b.add(NewItem {
                kind: ObjectKind::MaterializedViewData,
                section: Section::PostData,
                schema: Some(view.name.schema.clone()),
                name: view.name.name.clone(),
                table: Some(idx),
                sql: format!("REFRESH MATERIALIZED VIEW {};", view.name.sql()),
            });
            b.refreshes.insert(view.oid, refresh);
        }
    }
}

fn create_view(view: &View) -> String {
    let options = if view.options.is_empty() {
        String::new()
    } else {
        let options: Vec<String> = view
            .options
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => format!("{}={}", ident(k), literal(v)),
                None => ident(kv),
            })
            .collect();
        format!(" WITH ({})", options.join(", "))
    };
    if view.materialized {
        let using = view
            .access_method
            .as_ref()
            .map(|am| format!(" USING {}", ident(am)))
            .unwrap_or_default();
        format!(
            "CREATE MATERIALIZED VIEW {}{using}{options} AS\n{}\nWITH NO DATA;",
            view.name.sql(),
            view.definition
        )
    } else {
        format!(
            "CREATE VIEW {}{options} AS\n{};",
            view.name.sql(),
            view.definition
        )
    }
}

/// A placeholder with the view's columns and no dependencies, used when a cycle must be broken
/// (as `pg_dump` does): the real definition replaces it later with `CREATE OR REPLACE VIEW`.
fn placeholder(view: &View) -> (String, String) {
    let columns: Vec<String> = view
        .columns
        .iter()
        .map(|(name, type_name)| format!("NULL::{type_name} AS {}", ident(name)))
        .collect();
    let placeholder = format!(
        "CREATE VIEW {} AS\n SELECT {};",
        view.name.sql(),
        columns.join(",\n    ")
    );
    let replace = create_view(view).replacen("CREATE VIEW", "CREATE OR REPLACE VIEW", 1);
    (placeholder, replace)
}

/// A refresh waits for the refreshes of the materialized views its query reads, directly or
/// through plain views.
pub(super) fn add_refresh_order(b: &mut Builder<'_>) {
    if b.refreshes.is_empty() {
        return;
    }
    let rule_view: HashMap<u32, u32> = b
        .catalog
        .views
        .iter()
        .map(|v| (v.rule_oid, v.oid))
        .collect();
    let mut reads: HashMap<u32, Vec<u32>> = HashMap::new();
    for d in &b.catalog.depends {
        if d.dependent.class == class::PG_REWRITE
            && d.referenced.class == class::PG_CLASS
            && let Some(&view) = rule_view.get(&d.dependent.oid)
        {
            reads.entry(view).or_default().push(d.referenced.oid);
        }
    }
    let edges: Vec<(ItemIdx, ItemIdx)> = b
        .refreshes
        .iter()
        .flat_map(|(&view, &refresh)| {
            let mut seen = HashSet::new();
            let mut pending = vec![view];
            let mut found = Vec::new();
            while let Some(v) = pending.pop() {
                for &r in reads.get(&v).into_iter().flatten() {
                    if r != view && seen.insert(r) {
                        if let Some(&other) = b.refreshes.get(&r) {
                            found.push((refresh, other));
                        }
                        pending.push(r);
                    }
                }
            }
            found
        })
        .collect();
    for (item, on) in edges {
        b.graph.depend(item, on);
    }
}
