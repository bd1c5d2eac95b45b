//! Constraints added after the data: primary keys, unique and exclusion constraints, foreign
//! keys, and NOT VALID checks. Validated CHECK constraints are inside `CREATE TABLE` (`tables`).

use pgark_archive::{ObjectKind, Section};

use super::build::Builder;
use super::graph::NewItem;
use super::tables::is_inline_check;
use crate::catalog::{Constraint, ConstraintKind, ObjAddr, Table};
use crate::quote::ident;

pub(super) fn add_constraints(b: &mut Builder<'_>) {
    for c in &b.catalog.constraints {
        let (Some(&table), Some(&table_item)) =
            (b.tables.get(&c.table_oid), b.table_items.get(&c.table_oid))
        else {
            continue;
        };
        let Some(sql) = add_constraint_sql(table, c) else {
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
        b.graph.own(ObjAddr::constraint(c.oid), idx);
    }
}

/// The statement adding `c`, or `None` when something else creates it: inline checks, checks
/// inherited from a parent (its own statement recurses to the children), and foreign keys
/// cloned onto partitions from their parent's.
///
/// Index-backed constraints of partitions are added even though the source cloned them from the
/// parent: the parent's is added `ONLY` to itself, and `ALTER INDEX ... ATTACH PARTITION` links
/// them (see `indexes`), which keeps the partitions' constraint names.
fn add_constraint_sql(table: &Table, c: &Constraint) -> Option<String> {
    let name = ident(&c.name);
    let target = table.name.sql();
    match c.kind {
        ConstraintKind::Check if is_inline_check(table, c) || !c.is_local => None,
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
