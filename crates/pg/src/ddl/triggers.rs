//! `CREATE TRIGGER`, `CREATE RULE` and `CREATE EVENT TRIGGER`, all after the data so that
//! loading rows fires nothing, and their enabled state.

use pgark_archive::{ObjectKind, Section};

use super::build::Builder;
use super::graph::NewItem;
use crate::catalog::{ObjAddr, class};
use crate::quote::{ident, literal};

/// `ALTER TABLE ... DISABLE TRIGGER x` and friends for a `tgenabled`/`ev_enabled` state other
/// than the default `O`.
fn enable_state(relation: &str, what: &str, name: &str, state: &str) -> Option<String> {
    let action = match state {
        "D" => "DISABLE",
        "R" => "ENABLE REPLICA",
        "A" => "ENABLE ALWAYS",
        _ => return None,
    };
    Some(format!(
        "ALTER TABLE {relation} {action} {what} {};",
        ident(name)
    ))
}

pub(super) fn add_triggers(b: &mut Builder<'_>) {
    for t in &b.catalog.triggers {
        let (Some(name), Some(&table)) = (
            b.relation_names.get(&t.relation_oid),
            b.table_items.get(&t.relation_oid),
        ) else {
            continue;
        };
        let state = enable_state(&name.sql(), "TRIGGER", &t.name, &t.enabled);
        let sql = if t.cloned {
            // The parent's trigger creates this one; a state back to `O` is written too.
            state.unwrap_or_else(|| {
                format!(
                    "ALTER TABLE {} ENABLE TRIGGER {};",
                    name.sql(),
                    ident(&t.name)
                )
            })
        } else {
            let mut sql = format!("{};", t.definition);
            if let Some(state) = state {
                sql.push('\n');
                sql.push_str(&state);
            }
            sql
        };
        let schema = name.schema.clone();
        let idx = b.add(NewItem {
            kind: ObjectKind::Trigger,
            section: Section::PostData,
            schema: Some(schema),
            name: t.name.clone(),
            table: Some(table),
            sql,
        });
        b.own_object(ObjAddr::new(class::PG_TRIGGER, t.oid), idx);
    }
}

pub(super) fn add_rules(b: &mut Builder<'_>) {
    for r in &b.catalog.rules {
        let Some(name) = b.relation_names.get(&r.relation_oid) else {
            continue;
        };
        let Some(relation) = b.graph.owner(ObjAddr::relation(r.relation_oid)) else {
            continue;
        };
        let mut sql = r.definition.trim_end().to_owned();
        if !sql.ends_with(';') {
            sql.push(';');
        }
        if let Some(state) = enable_state(&name.sql(), "RULE", &r.name, &r.enabled) {
            sql.push('\n');
            sql.push_str(&state);
        }
        let schema = name.schema.clone();
        let idx = b.add(NewItem {
            kind: ObjectKind::Rule,
            section: Section::PostData,
            schema: Some(schema),
            name: r.name.clone(),
            table: Some(relation),
            sql,
        });
        b.own_object(ObjAddr::new(class::PG_REWRITE, r.oid), idx);
    }
}

pub(super) fn add_event_triggers(b: &mut Builder<'_>) {
    for e in &b.catalog.event_triggers {
        let tags = if e.tags.is_empty() {
            String::new()
        } else {
            let tags: Vec<String> = e.tags.iter().map(|t| literal(t)).collect();
            format!("\n    WHEN TAG IN ({})", tags.join(", "))
        };
        let mut sql = format!(
            "CREATE EVENT TRIGGER {} ON {}{tags}\n    EXECUTE FUNCTION {}();",
            ident(&e.name),
            ident(&e.event),
            e.function
        );
        let state = match e.enabled.as_str() {
            "D" => Some("DISABLE"),
            "R" => Some("ENABLE REPLICA"),
            "A" => Some("ENABLE ALWAYS"),
            _ => None,
        };
        if let Some(state) = state {
            sql.push_str(&format!(
                "\nALTER EVENT TRIGGER {} {state};",
                ident(&e.name)
            ));
        }
        let idx = b.add(NewItem {
            kind: ObjectKind::EventTrigger,
            section: Section::PostData,
            schema: None,
            name: e.name.clone(),
            table: None,
            sql,
        });
        b.own_object(ObjAddr::new(class::PG_EVENT_TRIGGER, e.oid), idx);
    }
}

/// Event triggers are created after every other post-data item, comments, owners and
/// privileges of other objects included, so that they fire on as little of the restore's own
/// DDL as possible; only their own comments, owners and privileges follow them.
pub(super) fn event_triggers_last(b: &mut Builder<'_>) {
    let is_event_trigger = |kind| kind == ObjectKind::EventTrigger;
    let nodes = &b.graph.nodes;
    let triggers: Vec<usize> = (0..nodes.len())
        .filter(|&i| is_event_trigger(nodes[i].item.kind))
        .collect();
    let on_trigger = |i: usize| nodes[i].deps.iter().any(|&d| triggers.contains(&d));
    let others: Vec<usize> = (0..nodes.len())
        .filter(|&i| nodes[i].item.section == Section::PostData)
        .filter(|&i| !is_event_trigger(nodes[i].item.kind) && !on_trigger(i))
        .collect();
    for &t in &triggers {
        for &o in &others {
            b.graph.depend(t, o);
        }
    }
}
