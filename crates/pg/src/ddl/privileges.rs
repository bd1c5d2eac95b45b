//! `ALTER ... OWNER TO`, `GRANT`/`REVOKE` and `ALTER DEFAULT PRIVILEGES`, and the roles they
//! name.
//!
//! Privileges are written as the difference between the object's ACL and the default ACL its
//! owner would have without any `GRANT` (`acldefault`), as `pg_dump` does: revokes first, then
//! grants. Each becomes its own item so that a restore can leave owners (`--no-owner`) or
//! privileges (`--no-acl`) out.

use std::collections::{BTreeMap, BTreeSet};

use pgark_archive::{ObjectKind, RoleEntry, Section};

use super::build::Builder;
use super::comments::{attach, dumped_item};
use super::graph::NewItem;
use super::target::{RoutineUse, alter_target, grant_target};
use crate::catalog::{FIRST_NORMAL_OID, Grant, ObjAddr, class};
use crate::quote::ident;

pub(super) fn add_owners(b: &mut Builder<'_>) {
    let catalog = b.catalog;
    for o in &catalog.owners {
        let Some(&item) = b.objects.get(&o.addr) else {
            continue;
        };
        if dumped_item(b, o.addr).is_none() {
            continue;
        }
        let identity = b.identity(o.addr, &o.identity, RoutineUse::Name);
        let Some(target) = alter_target(&o.object_type, &identity) else {
            continue;
        };
        let sql = format!("ALTER {target} OWNER TO {};", ident(&o.owner));
        let owner = attach(b, item, ObjectKind::Owner, sql, vec![o.owner.clone()]);
        b.owner_items.insert(o.addr, owner);
    }
    // A sequence must have its owner before `OWNED BY` links it to a table: from then on only
    // the table's owner change may change it.
    let links: Vec<(usize, usize)> = b
        .graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.item.kind == ObjectKind::SequenceOwnedBy)
        .filter_map(|(i, n)| {
            let seq = n.deps.iter().copied().find(|&d| {
                b.graph.nodes[d].item.kind == ObjectKind::Sequence
                    && b.graph.nodes[d].item.name == n.item.name
            })?;
            let (addr, _) = b.objects.iter().find(|&(_, &idx)| idx == seq)?;
            Some((i, *b.owner_items.get(addr)?))
        })
        .collect();
    for (link, owner) in links {
        b.graph.depend(link, owner);
    }
}

/// An object's new owner needs `CREATE` on the object's schema, unless a superuser gives it: the
/// schemas' privileges are granted before the owners of what is in them change.
pub(super) fn order_owners_after_schema_grants(b: &mut Builder<'_>) {
    let nodes = &b.graph.nodes;
    let mut schema_grants: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (idx, node) in nodes.iter().enumerate() {
        if node.item.kind != ObjectKind::Acl {
            continue;
        }
        if let Some(&schema) = node
            .deps
            .iter()
            .find(|&&d| nodes[d].item.kind == ObjectKind::Schema)
        {
            schema_grants
                .entry(nodes[schema].item.name.as_str())
                .or_default()
                .push(idx);
        }
    }
    let links: Vec<(usize, usize)> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.item.kind == ObjectKind::Owner)
        .filter_map(|(idx, n)| Some((idx, schema_grants.get(n.item.schema.as_deref()?)?)))
        .flat_map(|(idx, grants)| grants.iter().map(move |&g| (idx, g)))
        .collect();
    for (owner, grant) in links {
        b.graph.depend(owner, grant);
    }
}

pub(super) fn add_acls(b: &mut Builder<'_>) {
    let catalog = b.catalog;
    // Object-level privilege items, which column-level ones on the same object follow: a
    // table-level REVOKE takes the columns' privileges with it. (The catalog lists an object's
    // own privileges before its columns'.)
    let mut object_acls: std::collections::HashMap<ObjAddr, usize> =
        std::collections::HashMap::new();
    for acl in &catalog.acls {
        // An extension's member whose privileges were changed after CREATE EXTENSION gets
        // them back after the extension is created.
        // A built-in object whose privileges were changed gets them back on its own.
        let item = match b.objects.get(&acl.addr) {
            Some(&item) if dumped_item(b, acl.addr).is_some() => Some(item),
            Some(_) => continue,
            None => match b.graph.owner(acl.addr) {
                Some(ext) if b.graph.nodes[ext].item.kind == ObjectKind::Extension => Some(ext),
                Some(_) => continue,
                None if acl.addr.oid < FIRST_NORMAL_OID => None,
                None => continue,
            },
        };
        let identity = b.identity(acl.addr, &acl.identity, RoutineUse::Grant);
        let Some(target) = grant_target(&acl.object_type, &identity) else {
            continue;
        };
        let column = acl.column.as_ref().map(|c| format!(" ({})", ident(c)));
        let statements = acl_statements(
            &acl.actual,
            &acl.default,
            |privileges, grantee, grant, grantable| {
                let privileges: Vec<String> = privileges
                    .iter()
                    .map(|p| format!("{p}{}", column.as_deref().unwrap_or_default()))
                    .collect();
                statement(&privileges.join(", "), &target, grantee, grant, grantable)
            },
        );
        if statements.is_empty() {
            continue;
        }
        let roles = grantees(&acl.actual, &acl.default);
        let Some(item) = item else {
            let idx = b.add(NewItem {
                kind: ObjectKind::Acl,
                section: Section::PreData,
                schema: None,
                name: acl.identity.clone(),
                table: None,
                sql: statements.join("\n"),
            });
            b.graph.nodes[idx].roles = roles;
            order_columns_after_object(b, &mut object_acls, acl, idx);
            continue;
        };
        let idx = attach(b, item, ObjectKind::Acl, statements.join("\n"), roles);
        order_columns_after_object(b, &mut object_acls, acl, idx);
        if let Some(&owner) = b.owner_items.get(&acl.addr) {
            b.graph.depend(idx, owner);
        }
    }
}

fn order_columns_after_object(
    b: &mut Builder<'_>,
    object_acls: &mut std::collections::HashMap<ObjAddr, usize>,
    acl: &crate::catalog::Acl,
    idx: usize,
) {
    if acl.column.is_none() {
        object_acls.insert(acl.addr, idx);
    } else if let Some(&object) = object_acls.get(&acl.addr) {
        b.graph.depend(idx, object);
    }
}

fn statement(
    privileges: &str,
    target: &str,
    grantee: &str,
    grant: bool,
    grantable: bool,
) -> String {
    let grantee = if grantee.is_empty() {
        "PUBLIC".to_owned()
    } else {
        ident(grantee)
    };
    if grant {
        let option = if grantable { " WITH GRANT OPTION" } else { "" };
        format!("GRANT {privileges} ON {target} TO {grantee}{option};")
    } else {
        format!("REVOKE {privileges} ON {target} FROM {grantee};")
    }
}

/// Revokes of what `default` has and `actual` lacks, then grants of what `actual` adds, each
/// grouped by grantee: `make(privileges, grantee, is_grant, with_grant_option)`.
fn acl_statements(
    actual: &[Grant],
    default: &[Grant],
    make: impl Fn(&[String], &str, bool, bool) -> String,
) -> Vec<String> {
    let actual: BTreeSet<&Grant> = actual.iter().collect();
    let default: BTreeSet<&Grant> = default.iter().collect();
    let mut revokes: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for g in default.difference(&actual) {
        revokes
            .entry(&g.grantee)
            .or_default()
            .push(g.privilege.clone());
    }
    let mut grants: BTreeMap<(&str, bool), Vec<String>> = BTreeMap::new();
    for g in actual.difference(&default) {
        grants
            .entry((&g.grantee, g.grantable))
            .or_default()
            .push(g.privilege.clone());
    }
    let mut statements: Vec<String> = revokes
        .iter()
        .map(|(grantee, privileges)| make(privileges, grantee, false, false))
        .collect();
    statements.extend(
        grants
            .iter()
            .map(|((grantee, grantable), privileges)| make(privileges, grantee, true, *grantable)),
    );
    statements
}

/// The named roles (not PUBLIC) among the grantees of either list.
fn grantees(actual: &[Grant], default: &[Grant]) -> Vec<String> {
    let names: BTreeSet<&str> = actual
        .iter()
        .chain(default)
        .map(|g| g.grantee.as_str())
        .filter(|g| !g.is_empty())
        .collect();
    names.into_iter().map(str::to_owned).collect()
}

/// Default privileges come after every object is created (post-data), so that they apply to
/// nothing the restore creates: those objects get their own privileges.
pub(super) fn add_default_acls(b: &mut Builder<'_>) {
    let catalog = b.catalog;
    for d in &catalog.default_acls {
        let objects = match d.object_type.as_str() {
            "r" => "TABLES",
            "S" => "SEQUENCES",
            "f" => "FUNCTIONS",
            "T" => "TYPES",
            "n" => "SCHEMAS",
            "L" => "LARGE OBJECTS",
            _ => continue,
        };
        let mut prefix = format!("ALTER DEFAULT PRIVILEGES FOR ROLE {}", ident(&d.role));
        if let Some(schema) = &d.schema {
            prefix.push_str(&format!(" IN SCHEMA {}", ident(schema)));
        }
        let statements = acl_statements(
            &d.actual,
            &d.default,
            |privileges, grantee, grant, grantable| {
                let grantee = if grantee.is_empty() {
                    "PUBLIC".to_owned()
                } else {
                    ident(grantee)
                };
                let privileges = privileges.join(", ");
                if grant {
                    let option = if grantable { " WITH GRANT OPTION" } else { "" };
                    format!("{prefix} GRANT {privileges} ON {objects} TO {grantee}{option};")
                } else {
                    format!("{prefix} REVOKE {privileges} ON {objects} FROM {grantee};")
                }
            },
        );
        if statements.is_empty() {
            continue;
        }
        let mut roles = grantees(&d.actual, &d.default);
        if !roles.contains(&d.role) {
            roles.push(d.role.clone());
        }
        let idx = b.add(NewItem {
            kind: ObjectKind::DefaultAcl,
            section: Section::PostData,
            schema: d.schema.clone(),
            name: format!("{} {objects}", d.role),
            table: None,
            sql: statements.join("\n"),
        });
        b.graph.nodes[idx].roles = roles;
        b.graph.own(ObjAddr::new(class::PG_DEFAULT_ACL, d.oid), idx);
    }
}

/// The roles any item names, as the source knew them, with memberships among themselves.
pub(super) fn roles(b: &Builder<'_>) -> Vec<RoleEntry> {
    let named: BTreeSet<&str> = b
        .graph
        .nodes
        .iter()
        .flat_map(|n| n.roles.iter().map(String::as_str))
        .collect();
    b.catalog
        .roles
        .iter()
        .filter(|r| named.contains(r.name.as_str()))
        .map(|r| RoleEntry {
            name: r.name.clone(),
            attributes: r.attributes.clone(),
            member_of: r
                .member_of
                .iter()
                .filter(|m| named.contains(m.as_str()))
                .cloned()
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(grantee: &str, privilege: &str, grantable: bool) -> Grant {
        Grant {
            grantee: grantee.into(),
            privilege: privilege.into(),
            grantable,
        }
    }

    #[test]
    fn privileges_are_the_difference_from_the_defaults() {
        let default = [
            grant("owner", "SELECT", false),
            grant("owner", "UPDATE", false),
        ];
        let actual = [
            grant("owner", "SELECT", false),
            grant("", "SELECT", false),
            grant("Reader", "SELECT", true),
        ];
        let statements = acl_statements(&actual, &default, |p, g, grant, option| {
            statement(&p.join(", "), "TABLE public.t", g, grant, option)
        });
        assert_eq!(
            statements,
            [
                "REVOKE UPDATE ON TABLE public.t FROM owner;",
                "GRANT SELECT ON TABLE public.t TO PUBLIC;",
                "GRANT SELECT ON TABLE public.t TO \"Reader\" WITH GRANT OPTION;",
            ]
        );
        assert_eq!(grantees(&actual, &default), ["Reader", "owner"]);
    }
}
