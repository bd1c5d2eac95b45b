//! Constraints added after the data: primary keys, unique and exclusion constraints, foreign
//! keys, and NOT VALID checks. Validated CHECK constraints are inside `CREATE TABLE` (`tables`).

use std::collections::HashMap;

use pgark_archive::{ConstraintViaIndex, ObjectKind, Section};

use super::build::{Builder, Detached};
use super::graph::NewItem;
use super::tables::is_inline_check;
use crate::catalog::{Constraint, ConstraintKind, Index, ObjAddr, Table};
use crate::quote::ident;

pub(super) fn add_constraints(b: &mut Builder<'_>) {
    let index_of: HashMap<u32, &Index> = b
        .catalog
        .indexes
        .iter()
        .filter_map(|i| Some((i.constraint_oid?, i)))
        .collect();
    for c in &b.catalog.constraints {
        let (Some(&table), Some(&table_item)) =
            (b.tables.get(&c.table_oid), b.table_items.get(&c.table_oid))
        else {
            continue;
        };
        let Some(sql) = add_constraint_sql(table, c, b.detached) else {
            continue;
        };
        let kind = if c.kind == ConstraintKind::ForeignKey {
            ObjectKind::ForeignKey
        } else {
            ObjectKind::Constraint
        };
        let idx = b.add(NewItem {
            kind,
            section: Section::PostData,
            schema: Some(table.name.schema.clone()),
            name: c.name.clone(),
            table: Some(table_item),
            sql,
        });
        b.graph.nodes[idx].via_index = index_of
            .get(&c.oid)
            .and_then(|index| via_index(table, c, index));
        b.graph.own(ObjAddr::constraint(c.oid), idx);
    }
}

/// A primary key or unique constraint as `CREATE UNIQUE INDEX` plus `ADD CONSTRAINT ... USING
/// INDEX`, where PostgreSQL accepts that form and it means the same: plain tables only (neither
/// partitioned nor partitions, whose indexes attach to their parent's), not deferrable (the
/// index would check immediately), in the default tablespace (an index definition names none).
fn via_index(table: &Table, c: &Constraint, index: &Index) -> Option<ConstraintViaIndex> {
    let kind = match c.kind {
        ConstraintKind::PrimaryKey => "PRIMARY KEY",
        ConstraintKind::Unique => "UNIQUE",
        _ => return None,
    };
    if table.partitioned
        || table.is_partition()
        || c.deferrable
        || c.definition.contains(" USING INDEX TABLESPACE ")
        || index.name != c.name
        || !index.definition.starts_with("CREATE UNIQUE INDEX ")
    {
        return None;
    }
    let name = ident(&c.name);
    Some(ConstraintViaIndex {
        create_index: format!("{};", index.definition),
        add_constraint: format!(
            "ALTER TABLE ONLY {} ADD CONSTRAINT {name} {kind} USING INDEX {name};",
            table.name.sql()
        ),
    })
}

/// The statement adding `c`, or `None` when something else creates it: inline checks, checks
/// inherited from a parent (its own statement recurses to the children), and foreign keys
/// cloned onto partitions from their parent's.
///
/// Index-backed constraints of partitions are added even though the source cloned them from the
/// parent: the parent's is added `ONLY` to itself, and `ALTER INDEX ... ATTACH PARTITION` links
/// them (see `indexes`), which keeps the partitions' constraint names.
fn add_constraint_sql(table: &Table, c: &Constraint, detached: &Detached) -> Option<String> {
    let name = ident(&c.name);
    let target = table.name.sql();
    match c.kind {
        ConstraintKind::Check if is_inline_check(table, c, detached) || !c.is_local => None,
        // Without ONLY, to reach inheritance children as it did in the source.
        ConstraintKind::Check => Some(format!(
            "ALTER TABLE {target} ADD CONSTRAINT {name} {};",
            c.definition
        )),
        ConstraintKind::ForeignKey if c.parent_oid != 0 => None,
        // A partitioned table's foreign key must recurse to its partitions, so no ONLY.
        ConstraintKind::ForeignKey if table.partitioned => Some(format!(
            "ALTER TABLE {target} ADD CONSTRAINT {name} {};",
            c.definition
        )),
        ConstraintKind::ForeignKey
        | ConstraintKind::PrimaryKey
        | ConstraintKind::Unique
        | ConstraintKind::Exclusion => Some(format!(
            "ALTER TABLE ONLY {target} ADD CONSTRAINT {name} {};",
            c.definition
        )),
    }
}
