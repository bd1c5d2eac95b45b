//! When a table's rows may start loading while the schema is still being created.
//!
//! The pre-data section runs on one session, in order, committing as it goes; with more sessions
//! than that one, a table's rows need not wait for the whole schema, only for the statements
//! that concern the table. On a schema that is slow to create (1,000 partitions: every `ATTACH
//! PARTITION` costs the server time in proportion to the partitions already attached) that is
//! half the restore, during which the other sessions would sit idle.
//!
//! A table's gate is the number of pre-data statements that must have committed before its load
//! may start: every statement on the table itself or on one of its ancestors (its creation, an
//! `ATTACH PARTITION` of it, its owner, privileges, comments, options, column defaults) but
//! views over it and sequences linked to it, which only read its definition. After the gate
//! nothing in the schema's transactions locks the table or its ancestors in a way a load
//! conflicts with — the `ATTACH PARTITION` of a sibling takes `SHARE UPDATE EXCLUSIVE` on the
//! parent, which a load's `ACCESS SHARE` on it (to check the partition's bound) does not
//! conflict with — so a load never waits for the schema's session, and the two cannot deadlock.
//! Some tables wait for the whole schema:
//!
//! - a default partition, or one below it: attaching any sibling scans the default partition
//!   for rows that would belong to the new one, which loaded rows would make slow;
//! - a table whose rows run user functions as they arrive (a `CHECK` calling one, a generated
//!   column, a domain or base type of one): a function's body is not checked when it is created
//!   and may use objects the schema creates later;
//! - an extension's configuration table.

use std::collections::{HashMap, HashSet};

use pgark_archive::{DdlItem, ObjectKind};

/// The gate of each table that may load before the schema is complete.
#[derive(Debug, Default)]
pub(super) struct LoadGates {
    /// Pre-data statements that must have committed, by the id of the item creating the table.
    needed: HashMap<u32, usize>,
    /// The number of pre-data statements: the gate of every other table.
    total: usize,
}

impl LoadGates {
    /// The gates of the tables `pre_data` (the statements, in the order they run) creates.
    pub(super) fn new(pre_data: &[&DdlItem]) -> Self {
        let by_id: HashMap<u32, &DdlItem> = pre_data.iter().map(|item| (item.id, *item)).collect();
        let is_table = |id: &u32| by_id.get(id).is_some_and(|i| i.kind == ObjectKind::Table);

        // The last statement on each table (its creation at least), and each table's
        // statements.
        let mut last: HashMap<u32, usize> = HashMap::new();
        let mut statements_on: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut parents: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut default_partitions: HashSet<u32> = HashSet::new();
        for (n, item) in pre_data.iter().enumerate() {
            let own = (item.kind == ObjectKind::Table).then_some(item.id);
            for table in own.into_iter().chain(item.table) {
                last.insert(table, n);
                statements_on.entry(table).or_default().push(item.id);
            }
            match item.kind {
                // A sibling's attach locks the parent only in a mode loads do not conflict with.
                ObjectKind::TableAttach => {
                    if let Some(child) = item.table {
                        parents
                            .entry(child)
                            .or_default()
                            .extend(item.deps.iter().filter(|d| is_table(d)));
                        if item.sql.trim_end().ends_with(" DEFAULT;") {
                            default_partitions.insert(child);
                        }
                    }
                }
                ObjectKind::Table => {
                    // Inheritance: a child table's creation depends on its parents, and locks
                    // them.
                    let inherited: Vec<u32> =
                        item.deps.iter().copied().filter(|d| is_table(d)).collect();
                    for &parent in &inherited {
                        last.insert(parent, n);
                    }
                    parents.entry(item.id).or_default().extend(inherited);
                }
                // They only read the table's definition (ACCESS SHARE), and change nothing a
                // load changes: a load waiting for them waits only for their commit.
                ObjectKind::View | ObjectKind::MaterializedView | ObjectKind::SequenceOwnedBy => {}
                _ => {
                    for &table in item.deps.iter().filter(|d| is_table(d)) {
                        last.insert(table, n);
                    }
                }
            }
        }

        let mut runs_functions = RunsFunctions::new(&by_id);
        let mut needed = HashMap::new();
        for table in pre_data.iter().filter(|i| i.kind == ObjectKind::Table) {
            let lineage = lineage(table.id, &parents);
            if lineage.iter().any(|t| default_partitions.contains(t)) {
                continue;
            }
            let statements: Vec<u32> = lineage
                .iter()
                .flat_map(|t| statements_on.get(t).into_iter().flatten().copied())
                .collect();
            if statements.iter().any(|&s| runs_functions.check(s)) {
                continue;
            }
            let gate = lineage
                .iter()
                .filter_map(|t| last.get(t))
                .max()
                .map_or(0, |&n| n + 1);
            needed.insert(table.id, gate);
        }
        LoadGates {
            needed,
            total: pre_data.len(),
        }
    }

    /// How many pre-data statements must have committed before the rows of the table that item
    /// `table_item` creates may start loading.
    pub(super) fn of(&self, table_item: u32) -> usize {
        self.needed.get(&table_item).copied().unwrap_or(self.total)
    }

    /// The gates below the whole schema, in order: where committing opens loads.
    pub(super) fn positions(&self) -> Vec<usize> {
        let mut positions: Vec<usize> = self
            .needed
            .values()
            .copied()
            .filter(|&n| n < self.total)
            .collect();
        positions.sort_unstable();
        positions.dedup();
        positions
    }
}

/// The table and its ancestors (partitioned parents, inheritance parents), each once.
fn lineage(table: u32, parents: &HashMap<u32, Vec<u32>>) -> Vec<u32> {
    let mut found = vec![table];
    let mut next = 0;
    while let Some(&t) = found.get(next) {
        for &p in parents.get(&t).into_iter().flatten() {
            if !found.contains(&p) {
                found.push(p);
            }
        }
        next += 1;
    }
    found
}

/// Whether an item depends, directly or through other pre-data items, on a user function:
/// rows arriving in a table whose statements do may run it.
struct RunsFunctions<'a> {
    by_id: &'a HashMap<u32, &'a DdlItem>,
    known: HashMap<u32, bool>,
}

impl<'a> RunsFunctions<'a> {
    fn new(by_id: &'a HashMap<u32, &'a DdlItem>) -> Self {
        RunsFunctions {
            by_id,
            known: HashMap::new(),
        }
    }

    fn check(&mut self, id: u32) -> bool {
        if let Some(&known) = self.known.get(&id) {
            return known;
        }
        // Depth first, without recursion: the schema's dependency chains can be long. An item
        // is recorded as running none when first reached (a cycle, which there should not be,
        // then ends there), and every item on the path as running one when one is found.
        let mut stack = vec![(id, 0usize)];
        self.known.insert(id, false);
        while let Some(&(current, next)) = stack.last() {
            let Some(item) = self.by_id.get(&current) else {
                stack.pop();
                continue;
            };
            let is_function = matches!(
                item.kind,
                ObjectKind::Function | ObjectKind::Procedure | ObjectKind::Aggregate
            );
            if is_function || self.known.get(&current) == Some(&true) {
                for &(on_path, _) in &stack {
                    self.known.insert(on_path, true);
                }
                return true;
            }
            let Some(&dep) = item.deps.get(next) else {
                stack.pop();
                continue;
            };
            if let Some(last) = stack.last_mut() {
                last.1 += 1;
            }
            match self.known.get(&dep) {
                Some(false) => {}
                Some(true) => stack.push((dep, 0)),
                None => {
                    self.known.insert(dep, false);
                    stack.push((dep, 0));
                }
            }
        }
        false
    }
}

/// `items` (the pre-data section, in order) with the owner, comments, security labels and
/// privileges of each table and sequence moved to right after its creation, as pg_dump orders
/// them: a table's load waits for all of those (see [`LoadGates`]), which the dump's order puts
/// after every other statement of the schema. A sequence's move with its table's: `ALTER
/// SEQUENCE ... OWNED BY` (run after them) requires both to have the same owner.
pub(super) fn decorations_first<'a>(items: &[&'a DdlItem]) -> Vec<&'a DdlItem> {
    let objects: HashSet<u32> = items
        .iter()
        .filter(|i| matches!(i.kind, ObjectKind::Table | ObjectKind::Sequence))
        .map(|i| i.id)
        .collect();
    let decorates = |item: &DdlItem| match (item.kind, item.deps.as_slice()) {
        (
            ObjectKind::Owner | ObjectKind::Comment | ObjectKind::SecurityLabel | ObjectKind::Acl,
            [object],
        ) if objects.contains(object) && item.table.is_none() => Some(*object),
        _ => None,
    };
    let mut moved: HashMap<u32, Vec<&DdlItem>> = HashMap::new();
    for item in items {
        if let Some(object) = decorates(item) {
            moved.entry(object).or_default().push(item);
        }
    }
    let mut ordered = Vec::with_capacity(items.len());
    for item in items {
        if decorates(item).is_some() {
            continue;
        }
        ordered.push(*item);
        ordered.extend(moved.remove(&item.id).into_iter().flatten());
    }
    ordered
}

#[cfg(test)]
mod tests {
    use pgark_archive::Section;

    use super::*;

    fn item(id: u32, kind: ObjectKind, table: Option<u32>, deps: &[u32], sql: &str) -> DdlItem {
        DdlItem {
            id,
            kind,
            section: Section::PreData,
            schema: Some("public".into()),
            name: format!("item{id}"),
            table,
            sql: sql.into(),
            deps: deps.to_vec(),
            roles: Vec::new(),
            via_index: None,
        }
    }

    fn ids(items: &[&DdlItem]) -> Vec<u32> {
        items.iter().map(|i| i.id).collect()
    }

    #[test]
    fn a_table_and_a_sequence_are_followed_by_their_owner_comments_and_privileges() {
        let schema = [
            item(1, ObjectKind::Function, None, &[], "CREATE FUNCTION f"),
            item(2, ObjectKind::Sequence, None, &[], "CREATE SEQUENCE s"),
            item(3, ObjectKind::Table, None, &[], "CREATE TABLE t"),
            item(4, ObjectKind::View, None, &[3], "CREATE VIEW v"),
            item(5, ObjectKind::SequenceOwnedBy, None, &[2, 3], "OWNED BY"),
            item(6, ObjectKind::Comment, None, &[3], "COMMENT ON TABLE t"),
            item(7, ObjectKind::Owner, None, &[1], "ALTER FUNCTION f OWNER"),
            item(8, ObjectKind::Owner, None, &[2], "ALTER SEQUENCE s OWNER"),
            item(9, ObjectKind::Owner, None, &[3], "ALTER TABLE t OWNER"),
            item(10, ObjectKind::Owner, None, &[4], "ALTER VIEW v OWNER"),
            item(11, ObjectKind::Acl, None, &[3], "GRANT ON t"),
            item(12, ObjectKind::Acl, None, &[1], "GRANT ON f"),
        ];
        let items: Vec<&DdlItem> = schema.iter().collect();
        assert_eq!(
            ids(&decorations_first(&items)),
            [1, 2, 8, 3, 6, 9, 11, 4, 5, 7, 10, 12]
        );
    }

    #[test]
    fn a_partition_loads_once_it_is_attached_and_decorated_with_its_parent() {
        let schema = [
            item(1, ObjectKind::Table, None, &[], "CREATE TABLE parent"),
            item(2, ObjectKind::Owner, None, &[1], "ALTER TABLE parent OWNER"),
            item(3, ObjectKind::Table, None, &[], "CREATE TABLE p1"),
            item(4, ObjectKind::Owner, None, &[3], "ALTER TABLE p1 OWNER"),
            item(5, ObjectKind::Table, None, &[], "CREATE TABLE p2"),
            item(6, ObjectKind::View, None, &[1], "CREATE VIEW over_parent"),
            item(
                7,
                ObjectKind::TableAttach,
                Some(3),
                &[1],
                "ATTACH p1 FOR VALUES IN (1);",
            ),
            item(
                8,
                ObjectKind::TableAttach,
                Some(5),
                &[1],
                "ATTACH p2 FOR VALUES IN (2);",
            ),
            item(9, ObjectKind::Function, None, &[], "CREATE FUNCTION late"),
        ];
        let items: Vec<&DdlItem> = schema.iter().collect();
        let gates = LoadGates::new(&items);
        // Through its attach; a sibling's attach and a view over the parent do not hold it.
        assert_eq!(gates.of(3), 7);
        assert_eq!(gates.of(5), 8);
        // The parent: its owner, not its partitions' attaches.
        assert_eq!(gates.of(1), 2);
        assert_eq!(gates.positions(), [2, 7, 8]);
    }

    #[test]
    fn tables_whose_rows_could_run_a_user_function_or_meet_attaches_wait_for_the_whole_schema() {
        let schema = [
            item(
                1,
                ObjectKind::Function,
                None,
                &[],
                "CREATE FUNCTION positive",
            ),
            item(2, ObjectKind::Domain, None, &[1], "CREATE DOMAIN checked"),
            item(3, ObjectKind::Table, None, &[2], "CREATE TABLE uses_domain"),
            item(4, ObjectKind::Table, None, &[], "CREATE TABLE plain"),
            item(5, ObjectKind::Table, None, &[], "CREATE TABLE parent"),
            item(6, ObjectKind::Table, None, &[], "CREATE TABLE fallback"),
            item(
                7,
                ObjectKind::Table,
                None,
                &[],
                "CREATE TABLE fallback_leaf",
            ),
            item(
                8,
                ObjectKind::TableAttach,
                Some(6),
                &[5],
                "ATTACH fallback DEFAULT;",
            ),
            item(
                9,
                ObjectKind::TableAttach,
                Some(7),
                &[6],
                "ATTACH leaf FOR VALUES IN (1);",
            ),
            item(
                10,
                ObjectKind::Constraint,
                Some(4),
                &[4, 1],
                "ADD CHECK (positive(x))",
            ),
            item(
                11,
                ObjectKind::Table,
                None,
                &[4],
                "CREATE TABLE child () INHERITS (plain)",
            ),
            item(12, ObjectKind::Table, None, &[], "CREATE TABLE last"),
        ];
        let items: Vec<&DdlItem> = schema.iter().collect();
        let gates = LoadGates::new(&items);
        let whole = schema.len();
        assert_eq!(gates.of(3), whole, "a domain whose check calls a function");
        assert_eq!(gates.of(4), whole, "a check calling a function");
        assert_eq!(gates.of(11), whole, "inherits a check calling a function");
        assert_eq!(gates.of(6), whole, "a default partition");
        assert_eq!(gates.of(7), whole, "below a default partition");
        assert_eq!(gates.of(5), 5);
        assert_eq!(gates.of(12), 12);
        assert_eq!(gates.of(999), whole, "not created by the schema");
    }

    #[test]
    fn an_inheritance_parent_waits_for_its_children() {
        let schema = [
            item(1, ObjectKind::Table, None, &[], "CREATE TABLE parent"),
            item(2, ObjectKind::Table, None, &[], "CREATE TABLE other"),
            item(
                3,
                ObjectKind::Table,
                None,
                &[1],
                "CREATE TABLE child () INHERITS (parent)",
            ),
            item(4, ObjectKind::Table, None, &[], "CREATE TABLE last"),
        ];
        let items: Vec<&DdlItem> = schema.iter().collect();
        let gates = LoadGates::new(&items);
        assert_eq!(gates.of(1), 3);
        assert_eq!(gates.of(3), 3);
        assert_eq!(gates.of(2), 2);
    }
}
