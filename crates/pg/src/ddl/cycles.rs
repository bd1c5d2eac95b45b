//! Breaking dependency cycles the way `pg_dump` does, before the items are ordered.
//!
//! A view that is part of a cycle (a function returning the view's row type that the view
//! calls, say) is created twice: first as a placeholder with the right columns and no
//! dependencies inside the cycle, then with its real definition (`CREATE OR REPLACE VIEW`) once
//! everything it needs exists. Whatever depends on the view waits for the placeholder only.

use std::collections::HashMap;

use pgark_archive::{ObjectKind, Section};

use super::build::{Builder, Detached};
use super::columns::is_declared;
use super::graph::{Graph, ItemIdx, NewItem};
use super::tables::is_inline_check;
use super::types::is_inline_check as is_inline_domain_check;
use crate::catalog::{Generated, ObjAddr, TypeDef};

/// For each plain view's item: the placeholder SQL and the `CREATE OR REPLACE VIEW` SQL.
pub(super) type ViewSplits = HashMap<ItemIdx, (String, String)>;

pub(super) fn break_cycles(graph: &mut Graph, splits: &ViewSplits) {
    let mut split_done = std::collections::HashSet::new();
    // A view grouping by a table's primary key depends on that (post-data) constraint: its real
    // definition is postponed to post-data, as `pg_dump` does.
    for (&view, (placeholder, replace)) in splits {
        let section = graph.nodes[view].item.section;
        let later: std::collections::HashSet<ItemIdx> = graph.nodes[view]
            .deps
            .iter()
            .copied()
            .filter(|&d| graph.nodes[d].item.section > section)
            .collect();
        if later.is_empty() {
            continue;
        }
        split_done.insert(view);
        split(
            graph,
            view,
            &later,
            placeholder,
            replace,
            Some(Section::PostData),
        );
    }
    postpone_routines(graph);
    // Each round splits one view per cycle found; a view is split at most once.
    loop {
        let components = cyclic_components(graph);
        let mut changed = false;
        for component in components {
            let Some(&view) = component
                .iter()
                .find(|&&i| splits.contains_key(&i) && !split_done.contains(&i))
            else {
                continue;
            };
            let Some((placeholder, replace)) = splits.get(&view) else {
                continue;
            };
            split_done.insert(view);
            let inside: std::collections::HashSet<ItemIdx> = component.iter().copied().collect();
            split(graph, view, &inside, placeholder, replace, None);
            changed = true;
        }
        if !changed {
            return;
        }
    }
}

/// A function whose SQL-standard body, or a materialized view whose query, uses something
/// created after the data (grouping by a primary key, say) is created after it too, as
/// `pg_dump` does; so are whatever views build on it and its comment, owner and privileges.
fn postpone_routines(graph: &mut Graph) {
    let movable = |kind: ObjectKind| {
        matches!(
            kind,
            ObjectKind::Function
                | ObjectKind::Procedure
                | ObjectKind::ColumnDefault
                | ObjectKind::View
                | ObjectKind::MaterializedView
                | ObjectKind::Comment
                | ObjectKind::SecurityLabel
                | ObjectKind::Owner
                | ObjectKind::Acl
        )
    };
    loop {
        let mut moved = false;
        for i in 0..graph.nodes.len() {
            let node = &graph.nodes[i];
            if !movable(node.item.kind) {
                continue;
            }
            let latest = node.deps.iter().map(|&d| graph.nodes[d].item.section).max();
            if let Some(section) = latest.filter(|&s| s > graph.nodes[i].item.section) {
                graph.nodes[i].item.section = section;
                moved = true;
            }
        }
        if !moved {
            return;
        }
    }
}

/// Turns `view` into its placeholder, without the dependencies in `drop`, and adds the real
/// definition after it (in `section`, if given) with all the original dependencies.
fn split(
    graph: &mut Graph,
    view: ItemIdx,
    drop: &std::collections::HashSet<ItemIdx>,
    placeholder: &str,
    replace: &str,
    section: Option<Section>,
) {
    let original = graph.nodes[view].item.clone();
    let deps = graph.nodes[view].deps.clone();
    graph.nodes[view].item.sql = placeholder.to_owned();
    graph.nodes[view].deps.retain(|d| !drop.contains(d));
    let real = graph.add(NewItem {
        kind: ObjectKind::View,
        sql: replace.to_owned(),
        section: section.unwrap_or(original.section),
        ..original
    });
    graph.depend(real, view);
    for d in deps {
        graph.depend(real, d);
    }
}

/// The inline CHECK constraints and column defaults (of tables and domains) through which a
/// dependency loop runs: one whose own catalog dependencies lead to another item of the loop
/// its creator is in. The graph is built again with them detached (see [`Detached`]).
pub(super) fn inline_parts_in_loops(b: &Builder<'_>) -> Detached {
    let mut found = Detached::default();
    let component_of: HashMap<ItemIdx, usize> = cyclic_components(&b.graph)
        .into_iter()
        .enumerate()
        .flat_map(|(k, items)| items.into_iter().map(move |i| (i, k)))
        .collect();
    if component_of.is_empty() {
        return found;
    }
    let mut references: HashMap<ObjAddr, Vec<ObjAddr>> = HashMap::new();
    for d in &b.catalog.depends {
        references
            .entry(d.dependent)
            .or_default()
            .push(d.referenced);
    }
    // Whether `part`, created by `creator`, needs another item of the loop `creator` is in.
    let loops = |part: ObjAddr, creator: ItemIdx| {
        let Some(k) = component_of.get(&creator) else {
            return false;
        };
        references.get(&part).is_some_and(|refs| {
            refs.iter().any(|r| {
                b.graph
                    .owner(*r)
                    .is_some_and(|o| o != creator && component_of.get(&o) == Some(k))
            })
        })
    };
    for c in &b.catalog.constraints {
        if let (Some(table), Some(&item)) =
            (b.tables.get(&c.table_oid), b.table_items.get(&c.table_oid))
            && is_inline_check(table, c, b.detached)
            && loops(ObjAddr::constraint(c.oid), item)
        {
            found.constraints.insert(c.oid);
        }
    }
    for table in &b.catalog.tables {
        let Some(&item) = b.table_items.get(&table.oid) else {
            continue;
        };
        let defaults = table
            .columns
            .iter()
            .filter(|c| is_declared(table, c) && c.generated == Generated::No)
            .filter(|c| !b.detached.has_default(c))
            .filter_map(|c| c.default.as_ref());
        for d in defaults {
            if loops(ObjAddr::default(d.oid), item) {
                found.defaults.insert(d.oid);
            }
        }
    }
    for t in &b.catalog.types {
        let (TypeDef::Domain(domain), Some(item)) = (&t.def, b.graph.owner(ObjAddr::type_(t.oid)))
        else {
            continue;
        };
        for c in domain.checks.iter() {
            if is_inline_domain_check(c, b.detached) && loops(ObjAddr::constraint(c.oid), item) {
                found.constraints.insert(c.oid);
            }
        }
    }
    found
}

/// The strongly connected components with more than one item (Tarjan's algorithm, iterative).
fn cyclic_components(graph: &Graph) -> Vec<Vec<ItemIdx>> {
    let n = graph.nodes.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut found = Vec::new();
    let edges: Vec<Vec<ItemIdx>> = graph
        .nodes
        .iter()
        .map(|node| node.deps.iter().copied().collect())
        .collect();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work: Vec<(ItemIdx, usize)> = vec![(root, 0)];
        while let Some(&mut (v, ref mut edge)) = work.last_mut() {
            if *edge == 0 && index[v] == usize::MAX {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = edges[v].get(*edge) {
                *edge += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    found.push(component);
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(g: &mut Graph, kind: ObjectKind, name: &str) -> ItemIdx {
        g.add(NewItem {
            kind,
            section: Section::PreData,
            schema: Some("s".into()),
            name: name.into(),
            table: None,
            sql: format!("create {name}"),
        })
    }

    #[test]
    fn a_view_in_a_cycle_is_split_into_placeholder_and_definition() {
        let mut g = Graph::default();
        let view = add(&mut g, ObjectKind::View, "v");
        let function = add(&mut g, ObjectKind::Function, "f()");
        let table = add(&mut g, ObjectKind::Table, "t");
        g.depend(view, function);
        g.depend(view, table);
        g.depend(function, view);
        let splits = ViewSplits::from([(view, ("placeholder".into(), "replace".into()))]);
        break_cycles(&mut g, &splits);
        assert!(cyclic_components(&g).is_empty());
        assert_eq!(g.nodes[view].item.sql, "placeholder");
        assert!(g.nodes[view].deps.contains(&table));
        let real = g.nodes.len() - 1;
        assert_eq!(g.nodes[real].item.sql, "replace");
        assert!(g.nodes[real].deps.contains(&function) && g.nodes[real].deps.contains(&view));
    }

    #[test]
    fn components_are_found_only_for_cycles() {
        let mut g = Graph::default();
        let a = add(&mut g, ObjectKind::Table, "a");
        let b = add(&mut g, ObjectKind::Table, "b");
        g.depend(b, a);
        assert!(cyclic_components(&g).is_empty());
        g.depend(a, b);
        assert_eq!(cyclic_components(&g).len(), 1);
    }
}
