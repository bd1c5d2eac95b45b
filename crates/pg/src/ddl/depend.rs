//! The catalog's own dependencies (`pg_depend`), mapped onto the items that create the objects.

use std::collections::HashSet;

use super::build::Builder;
use super::indexes::attaches_below;
use crate::catalog::{DependKind, ObjAddr, class};

pub(super) fn add_catalog_dependencies(b: &mut Builder<'_>) {
    // A sequence OWNED BY a column depends on the table ('a'), while the column's default depends
    // on the sequence: a cycle, broken here because the OWNED BY link is an item of its own that
    // runs after both (see `sequences`).
    let owned_by: HashSet<(ObjAddr, ObjAddr)> = b
        .catalog
        .sequences
        .iter()
        .filter_map(|s| {
            let o = s.owner.as_ref().filter(|o| !o.identity)?;
            Some((ObjAddr::relation(s.oid), ObjAddr::relation(o.table_oid)))
        })
        .collect();
    for d in &b.catalog.depends {
        if d.kind == DependKind::Auto && owned_by.contains(&(d.dependent, d.referenced)) {
            continue;
        }
        let Some(item) = b.graph.owner(d.dependent) else {
            continue;
        };
        // A base type's I/O function takes or returns the type: it needs only the shell.
        if d.dependent.class == class::PG_PROC
            && d.referenced.class == class::PG_TYPE
            && let Some(&(type_oid, shell)) = b.shell_types.get(&d.dependent.oid)
            && b.graph.owner(d.referenced) == b.graph.owner(ObjAddr::type_(type_oid))
        {
            b.graph.depend(item, shell);
            continue;
        }
        b.graph.depend_on(item, d.referenced);
        // A foreign key referencing a partitioned table's key needs that key's index complete:
        // every partition's index attached. (Partition links — a child index on its parent — are
        // the attachments themselves, hence only normal dependencies.)
        if d.kind == DependKind::Normal && d.referenced.class == class::PG_CLASS {
            for attach in attaches_below(b, d.referenced.oid) {
                b.graph.depend(item, attach);
            }
        }
    }
}
