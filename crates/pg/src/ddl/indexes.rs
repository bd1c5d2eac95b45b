//! `CREATE INDEX`, `ALTER INDEX ... ATTACH PARTITION` and `ALTER TABLE ... CLUSTER ON`.

use std::collections::HashMap;

use pgark_archive::{ObjectKind, Section};

use super::build::Builder;
use super::graph::NewItem;
use crate::catalog::{Index, ObjAddr};
use crate::quote::{ident, qualified};

pub(super) fn add_indexes(b: &mut Builder<'_>) {
    let catalog = b.catalog;
    // A constraint's index is created by the constraint's item.
    for index in &catalog.indexes {
        let owner = match index.constraint_oid {
            Some(c) => b.graph.owner(ObjAddr::constraint(c)),
            None => add_index(b, index),
        };
        if let Some(owner) = owner {
            b.graph.own(ObjAddr::relation(index.oid), owner);
        }
    }
    let by_oid: HashMap<u32, &Index> = catalog.indexes.iter().map(|i| (i.oid, i)).collect();
    for index in &catalog.indexes {
        if let Some(parent) = index.parent_oid.and_then(|p| by_oid.get(&p)) {
            add_attach(b, parent, index);
        }
        if index.clustered {
            add_cluster_on(b, index);
        }
    }
}

fn add_index(b: &mut Builder<'_>, index: &Index) -> Option<usize> {
    let table = b.table_items.get(&index.table_oid).copied()?;
    Some(b.add(NewItem {
        kind: ObjectKind::Index,
        section: Section::PostData,
        schema: Some(index.schema.clone()),
        name: index.name.clone(),
        table: Some(table),
        sql: format!("{};", index.definition),
    }))
}

/// A partition's index joins its parent's, which becomes valid once every partition has one.
fn add_attach(b: &mut Builder<'_>, parent: &Index, child: &Index) {
    let parent_item = b.graph.owner(ObjAddr::relation(parent.oid));
    let child_item = b.graph.owner(ObjAddr::relation(child.oid));
    let table = b.table_items.get(&child.table_oid).copied();
    let (Some(parent_item), Some(child_item), Some(table)) = (parent_item, child_item, table)
    else {
        return;
    };
    let idx = b.add(NewItem {
        kind: ObjectKind::IndexAttach,
        section: Section::PostData,
        schema: Some(child.schema.clone()),
        name: child.name.clone(),
        table: Some(table),
        sql: format!(
            "ALTER INDEX {} ATTACH PARTITION {};",
            qualified(&parent.schema, &parent.name),
            qualified(&child.schema, &child.name)
        ),
    });
    b.graph.depend(idx, parent_item);
    b.graph.depend(idx, child_item);
    b.index_attaches
        .entry(parent.oid)
        .or_default()
        .push((child.oid, idx));
}

/// Every attach item below partitioned index `oid`, at any depth: the index is only complete
/// (valid, usable by a foreign key) once they have all run.
pub(super) fn attaches_below(b: &Builder<'_>, oid: u32) -> Vec<usize> {
    let mut found = Vec::new();
    let mut pending = vec![oid];
    while let Some(index) = pending.pop() {
        for &(child, attach) in b.index_attaches.get(&index).into_iter().flatten() {
            found.push(attach);
            pending.push(child);
        }
    }
    found
}

fn add_cluster_on(b: &mut Builder<'_>, index: &Index) {
    let (Some(index_item), Some(&table), Some(&table_item)) = (
        b.graph.owner(ObjAddr::relation(index.oid)),
        b.tables.get(&index.table_oid),
        b.table_items.get(&index.table_oid),
    ) else {
        return;
    };
    let idx = b.add(NewItem {
        kind: ObjectKind::ClusterOn,
        section: Section::PostData,
        schema: Some(index.schema.clone()),
        name: index.name.clone(),
        table: Some(table_item),
        sql: format!(
            "ALTER TABLE {} CLUSTER ON {};",
            table.name.sql(),
            ident(&index.name)
        ),
    });
    b.graph.depend(idx, index_item);
}
