//! `COMMENT ON` and `SECURITY LABEL` for every dumped object that has them, each right after
//! the item creating the object, in its section.

use pgark_archive::ObjectKind;

use super::build::Builder;
use super::graph::{ItemIdx, NewItem};
use super::target::{RoutineUse, comment_target};
use crate::catalog::{Described, ObjAddr, class};
use crate::quote::{ident, literal};

pub(super) fn add_comments(b: &mut Builder<'_>) {
    let catalog = b.catalog;
    for c in &catalog.comments {
        if let Some((on, target)) = described(b, c) {
            let sql = format!("COMMENT ON {target} IS {};", literal(&c.text));
            attach(b, on, ObjectKind::Comment, sql, Vec::new());
        }
    }
    for l in &catalog.security_labels {
        if let Some((on, target)) = described(b, l) {
            let provider = l.provider.as_deref().unwrap_or_default();
            let sql = format!(
                "SECURITY LABEL FOR {} ON {target} IS {};",
                ident(provider),
                literal(&l.text)
            );
            attach(b, on, ObjectKind::SecurityLabel, sql, Vec::new());
        }
    }
}

/// The item a comment or label on `d` follows, and the object part of the statement; `None`
/// when the object is not dumped (or an extension created it).
fn described(b: &Builder<'_>, d: &Described) -> Option<(ItemIdx, String)> {
    let on = dumped_item(b, d.addr)?;
    let identity = b.identity(d.addr, &d.identity, RoutineUse::Name);
    Some((on, comment_target(&d.object_type, &identity)?))
}

/// The item that creates `addr`, unless that is an extension creating one of its members.
pub(super) fn dumped_item(b: &Builder<'_>, addr: ObjAddr) -> Option<ItemIdx> {
    let item = b.graph.owner(addr)?;
    let by_extension =
        b.graph.nodes[item].item.kind == ObjectKind::Extension && addr.class != class::PG_EXTENSION;
    (!by_extension).then_some(item)
}

/// Adds an item of `kind` running `sql` right after item `on`, in its section, named after it.
pub(super) fn attach(
    b: &mut Builder<'_>,
    on: ItemIdx,
    kind: ObjectKind,
    sql: String,
    roles: Vec<String>,
) -> ItemIdx {
    let object = b.graph.nodes[on].item.clone();
    let idx = b.graph.add(NewItem {
        kind,
        section: object.section,
        schema: object.schema,
        name: object.name,
        table: object.table,
        sql,
    });
    b.graph.depend(idx, on);
    b.graph.nodes[idx].roles = roles;
    idx
}
