//! Putting the items in a valid, deterministic execution order and numbering them.
//!
//! A topological sort (Kahn's algorithm) that, among the items whose dependencies are all done,
//! always takes the smallest by (section, kind priority, schema, name, table, SQL): sections run in
//! order, and within a section objects come in `pg_dump`'s order (schemas, extensions, types,
//! functions, sequences, tables, ...) unless a dependency says otherwise. The same catalog always
//! gives the same list, so dumps of unchanged databases compare equal.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use pgark_archive::{DdlItem, ObjectKind, Section};

use super::graph::{Graph, ItemIdx, Node};
use crate::PgError;

/// Where a kind goes within its section. Exhaustive on purpose: a new kind must be placed.
fn priority(kind: ObjectKind) -> u8 {
    match kind {
        ObjectKind::Schema => 1,
        ObjectKind::Collation => 2,
        ObjectKind::AccessMethod => 2,
        ObjectKind::Extension => 3,
        ObjectKind::ExtensionTable => 3,
        ObjectKind::ShellType => 4,
        ObjectKind::Type | ObjectKind::Domain => 5,
        ObjectKind::Cast => 6,
        ObjectKind::Language => 6,
        ObjectKind::Function | ObjectKind::Procedure => 7,
        ObjectKind::Transform => 8,
        ObjectKind::Aggregate => 8,
        ObjectKind::Operator => 9,
        ObjectKind::OperatorFamily => 10,
        ObjectKind::OperatorClass => 11,
        ObjectKind::Conversion => 12,
        ObjectKind::TextSearchParser => 13,
        ObjectKind::TextSearchTemplate => 14,
        ObjectKind::TextSearchDictionary => 15,
        ObjectKind::TextSearchConfiguration => 16,
        ObjectKind::ForeignDataWrapper => 17,
        ObjectKind::ForeignServer => 18,
        ObjectKind::UserMapping => 19,
        ObjectKind::Sequence => 20,
        ObjectKind::Table | ObjectKind::ForeignTable => 21,
        ObjectKind::View | ObjectKind::MaterializedView => 22,
        ObjectKind::TableAttach => 23,
        ObjectKind::ColumnDefault => 24,
        ObjectKind::TableOption => 25,
        ObjectKind::SequenceOwnedBy => 26,
        ObjectKind::LargeObject => 27,
        ObjectKind::SequenceSet => 30,
        ObjectKind::Constraint => 40,
        ObjectKind::Index => 41,
        ObjectKind::IndexAttach => 42,
        ObjectKind::ClusterOn => 43,
        ObjectKind::Statistics => 44,
        ObjectKind::Rule => 44,
        ObjectKind::Trigger => 45,
        ObjectKind::ForeignKey => 46,
        ObjectKind::Policy => 47,
        ObjectKind::Publication => 48,
        ObjectKind::PublicationMember => 49,
        ObjectKind::DefaultAcl => 50,
        ObjectKind::EventTrigger => 51,
        ObjectKind::MaterializedViewData => 52,
        ObjectKind::Comment => 60,
        ObjectKind::SecurityLabel => 61,
        ObjectKind::Owner => 62,
        ObjectKind::Acl => 63,
    }
}

/// The sort key of node `i`, ties broken by the table an item belongs to and then its SQL (two
/// constraints of one name on different tables).
fn sort_key(graph: &Graph, i: ItemIdx) -> (Section, u8, &str, &str, (&str, &str), &str) {
    let item = &graph.nodes[i].item;
    let table = item.table.map_or(("", ""), |t| {
        let t = &graph.nodes[t].item;
        (t.schema.as_deref().unwrap_or(""), t.name.as_str())
    });
    (
        item.section,
        priority(item.kind),
        item.schema.as_deref().unwrap_or(""),
        &item.name,
        table,
        &item.sql,
    )
}

/// The execution order: items numbered from 1, each graph node's id, and a warning for every
/// dependency loop that no known repair broke (see [`break_at_weakest_edge`]).
#[derive(Debug)]
pub(crate) struct Ordered {
    pub items: Vec<DdlItem>,
    pub ids: Vec<u32>,
    pub warnings: Vec<String>,
}

/// Orders the items. A dependency loop left after the repairs in `cycles` does not stop the dump
/// (a nightly backup must not fail over ordering): it is broken at its weakest edge and warned
/// about, and the sort goes on. Only an item in a later section than one it needs is an error.
pub(crate) fn order(graph: &Graph) -> Result<Ordered, PgError> {
    let mut deps: Vec<BTreeSet<ItemIdx>> = graph.nodes.iter().map(|n| n.deps.clone()).collect();
    let rank = ranks(graph);
    let mut warnings = Vec::new();
    loop {
        match sort(&deps, &rank) {
            Ok(sorted) => {
                let (items, ids) = number(graph, &deps, &sorted)?;
                check_sections(graph, &deps, &sorted)?;
                return Ok(Ordered {
                    items,
                    ids,
                    warnings,
                });
            }
            Err(cycle) => warnings.push(break_at_weakest_edge(graph, &mut deps, &cycle)),
        }
    }
}

/// Removes the edge of `cycle` whose dependent runs latest by kind (a comment or privilege
/// before a table, a function before a type), and says what was done. The item then runs
/// before the one it needed, which a restore may reject; the warning names every item.
fn break_at_weakest_edge(
    graph: &Graph,
    deps: &mut [BTreeSet<ItemIdx>],
    cycle: &[ItemIdx],
) -> String {
    // `cycle` runs along dependencies and ends where it starts: [a, b, ..., a], a needs b.
    let edges = cycle.windows(2).map(|w| (w[0], w[1]));
    let weakest = edges.max_by_key(|&(from, _)| {
        let item = &graph.nodes[from].item;
        (item.section, priority(item.kind), Reverse(from))
    });
    let members: Vec<String> = cycle
        .iter()
        .take(cycle.len().saturating_sub(1))
        .map(|&i| describe(graph, i))
        .collect();
    let Some((from, to)) = weakest else {
        return format!("dependency loop among {}", members.join(", "));
    };
    deps[from].remove(&to);
    format!(
        "the schema has a dependency loop that no known repair breaks: {}; {} is created \
         before {}, which it depends on, and a restore may fail there",
        members.join(" -> "),
        describe(graph, from),
        describe(graph, to)
    )
}

/// rank[i]: the position of node i in the plain sort by [`sort_key`], so that the sort's heap
/// only compares integers.
fn ranks(graph: &Graph) -> Vec<usize> {
    let n = graph.nodes.len();
    let mut by_key: Vec<ItemIdx> = (0..n).collect();
    by_key.sort_by(|&a, &b| sort_key(graph, a).cmp(&sort_key(graph, b)));
    let mut rank = vec![0; n];
    for (r, &i) in by_key.iter().enumerate() {
        rank[i] = r;
    }
    rank
}

/// Kahn's algorithm over `deps`, taking the lowest-ranked ready item first: the order, or a
/// cycle among the items left over.
fn sort(deps: &[BTreeSet<ItemIdx>], rank: &[usize]) -> Result<Vec<ItemIdx>, Vec<ItemIdx>> {
    let n = deps.len();
    let mut dependents: Vec<Vec<ItemIdx>> = vec![Vec::new(); n];
    let mut waiting: Vec<usize> = vec![0; n];
    for (i, node_deps) in deps.iter().enumerate() {
        waiting[i] = node_deps.len();
        for &d in node_deps {
            dependents[d].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<(usize, ItemIdx)>> = (0..n)
        .filter(|&i| waiting[i] == 0)
        .map(|i| Reverse((rank[i], i)))
        .collect();
    let mut sorted = Vec::with_capacity(n);
    while let Some(Reverse((_, i))) = ready.pop() {
        sorted.push(i);
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(Reverse((rank[d], d)));
            }
        }
    }
    if sorted.len() < n {
        return Err(find_cycle(deps, &waiting, rank));
    }
    Ok(sorted)
}

/// Ids in sort order and the numbered items.
fn number(
    graph: &Graph,
    deps: &[BTreeSet<ItemIdx>],
    sorted: &[ItemIdx],
) -> Result<(Vec<DdlItem>, Vec<u32>), PgError> {
    let n = graph.nodes.len();
    let mut ids = vec![0u32; n];
    for (position, &i) in sorted.iter().enumerate() {
        ids[i] = u32::try_from(position + 1).map_err(|_| PgError::Catalog {
            reason: "more schema objects than fit in a manifest".to_owned(),
        })?;
    }
    let items = sorted
        .iter()
        .map(|&i| numbered(&graph.nodes[i], &deps[i], ids[i], &ids))
        .collect::<Vec<_>>();
    Ok((items, ids))
}

fn numbered(node: &Node, deps: &BTreeSet<ItemIdx>, id: u32, ids: &[u32]) -> DdlItem {
    let item = &node.item;
    DdlItem {
        id,
        kind: item.kind,
        section: item.section,
        schema: item.schema.clone(),
        name: item.name.clone(),
        table: item.table.map(|t| ids[t]),
        sql: item.sql.clone(),
        deps: {
            let mut deps: Vec<u32> = deps.iter().map(|&d| ids[d]).collect();
            deps.sort_unstable();
            deps
        },
        roles: node.roles.clone(),
        via_index: node.via_index.clone(),
    }
}

/// A dependency in a later section than its dependent would be created after it by a restore
/// that runs the sections in turn; nothing read today does that, so it is a bug worth stopping at.
fn check_sections(
    graph: &Graph,
    deps: &[BTreeSet<ItemIdx>],
    sorted: &[ItemIdx],
) -> Result<(), PgError> {
    for &i in sorted {
        let node = &graph.nodes[i];
        if let Some(&d) = deps[i]
            .iter()
            .find(|&&d| graph.nodes[d].item.section > node.item.section)
        {
            return Err(PgError::DependencyAcrossSections {
                item: describe(graph, i),
                section: format!("{:?}", node.item.section),
                dependency: describe(graph, d),
            });
        }
    }
    Ok(())
}

/// Every node left over by the sort still waits on another left-over node, so walking those
/// dependencies from any of them must come back round: that walk is the cycle, as
/// `[a, b, ..., a]` where each item needs the next.
fn find_cycle(deps: &[BTreeSet<ItemIdx>], waiting: &[usize], rank: &[usize]) -> Vec<ItemIdx> {
    let left = |i: ItemIdx| waiting[i] > 0;
    let Some(start) = (0..deps.len())
        .filter(|&i| left(i))
        .min_by_key(|&i| rank[i])
    else {
        return Vec::new();
    };
    let mut path = vec![start];
    let mut current = start;
    while let Some(&next) = deps[current].iter().find(|&&d| left(d)) {
        if let Some(pos) = path.iter().position(|&p| p == next) {
            path.drain(..pos);
            path.push(next);
            break;
        }
        path.push(next);
        current = next;
    }
    path
}

fn kind_word(kind: ObjectKind) -> &'static str {
    pgark_archive::kind_word(kind)
}

/// `table public.tasks`, `index tasks_pkey on public.tasks`: for messages only.
fn describe(graph: &Graph, i: ItemIdx) -> String {
    let item = &graph.nodes[i].item;
    let name = match &item.schema {
        Some(schema) => format!("{schema}.{}", item.name),
        None => item.name.clone(),
    };
    let kind = kind_word(item.kind);
    match item.table.filter(|_| item.kind != ObjectKind::Table) {
        Some(t) => {
            let table = &graph.nodes[t].item;
            format!(
                "{kind} {} on {}.{}",
                item.name,
                table.schema.as_deref().unwrap_or(""),
                table.name
            )
        }
        None => format!("{kind} {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ddl::graph::NewItem;

    fn add(g: &mut Graph, kind: ObjectKind, section: Section, name: &str) -> ItemIdx {
        g.add(NewItem {
            kind,
            section,
            schema: Some("s".into()),
            name: name.into(),
            table: None,
            sql: String::new(),
        })
    }

    fn names(items: &[DdlItem]) -> Vec<&str> {
        items.iter().map(|i| i.name.as_str()).collect()
    }

    #[test]
    fn sections_then_kinds_then_names_without_dependencies() {
        let mut g = Graph::default();
        add(&mut g, ObjectKind::Index, Section::PostData, "i");
        add(&mut g, ObjectKind::Table, Section::PreData, "b");
        add(&mut g, ObjectKind::SequenceSet, Section::Data, "q");
        add(&mut g, ObjectKind::Table, Section::PreData, "a");
        add(&mut g, ObjectKind::Type, Section::PreData, "z");
        let Ordered { items, ids, .. } = order(&g).expect("orders");
        assert_eq!(names(&items), ["z", "a", "b", "q", "i"]);
        assert_eq!(ids, [5, 3, 4, 2, 1]);
        assert!(
            items
                .iter()
                .enumerate()
                .all(|(n, i)| i.id as usize == n + 1)
        );
    }

    #[test]
    fn dependencies_win_over_kind_and_name_and_are_renumbered() {
        let mut g = Graph::default();
        let table = add(&mut g, ObjectKind::Table, Section::PreData, "a");
        let ty = add(&mut g, ObjectKind::Type, Section::PreData, "b");
        g.depend(ty, table);
        let items = order(&g).expect("orders").items;
        assert_eq!(names(&items), ["a", "b"]);
        assert_eq!(items[1].deps, [1]);
    }

    #[test]
    fn an_unknown_cycle_is_broken_at_its_weakest_edge_with_a_warning() {
        let mut g = Graph::default();
        let a = add(&mut g, ObjectKind::Table, Section::PreData, "a");
        let b = add(&mut g, ObjectKind::Sequence, Section::PreData, "b");
        let c = add(&mut g, ObjectKind::Table, Section::PreData, "c");
        g.depend(a, b);
        g.depend(b, a);
        g.depend(c, a);
        let ordered = order(&g).expect("a loop does not stop the order");
        assert_eq!(ordered.warnings.len(), 1, "{:?}", ordered.warnings);
        let message = &ordered.warnings[0];
        assert!(
            message.contains("table s.a") && message.contains("sequence s.b"),
            "{message}"
        );
        assert!(!message.contains("s.c"), "{message}");
        // The table (later by kind) lost its edge to the sequence: the sequence needs it.
        assert!(
            message.contains("table s.a is created before sequence s.b"),
            "{message}"
        );
        assert_eq!(names(&ordered.items), ["a", "b", "c"]);
        let id = |name: &str| ordered.items.iter().find(|i| i.name == name).map(|i| i.id);
        assert_eq!(ordered.items[1].deps, [id("a").unwrap_or_default()]);
        assert!(ordered.items[0].deps.is_empty());
    }

    #[test]
    fn two_loops_give_two_warnings() {
        let mut g = Graph::default();
        let a = add(&mut g, ObjectKind::Function, Section::PreData, "a");
        let b = add(&mut g, ObjectKind::Table, Section::PreData, "b");
        let c = add(&mut g, ObjectKind::Type, Section::PreData, "c");
        let d = add(&mut g, ObjectKind::View, Section::PreData, "d");
        g.depend(a, b);
        g.depend(b, a);
        g.depend(c, d);
        g.depend(d, c);
        let ordered = order(&g).expect("orders");
        assert_eq!(ordered.warnings.len(), 2, "{:?}", ordered.warnings);
        assert_eq!(ordered.items.len(), 4);
    }

    #[test]
    fn depending_on_a_later_section_is_an_error() {
        let mut g = Graph::default();
        let table = add(&mut g, ObjectKind::Table, Section::PreData, "t");
        let index = add(&mut g, ObjectKind::Index, Section::PostData, "i");
        g.depend(table, index);
        let err = order(&g).expect_err("across sections");
        assert!(
            matches!(err, PgError::DependencyAcrossSections { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("index s.i"), "{err}");
    }
}
