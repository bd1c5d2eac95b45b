//! `CREATE TYPE` (enum, composite, range) and `CREATE DOMAIN`.

use pgark_archive::{ObjectKind, Section};

use super::build::{Builder, Detached};
use super::graph::{ItemIdx, NewItem};
use crate::catalog::{
    Base, Composite, Domain, DomainCheck, ObjAddr, QualName, Range, TypeDef, UserType,
};
use crate::quote::{ident, literal};

pub(super) fn add_types(b: &mut Builder<'_>) {
    for t in &b.catalog.types {
        let (kind, sql) = match &t.def {
            TypeDef::Enum { labels } => (ObjectKind::Type, create_enum(&t.name, labels)),
            TypeDef::Composite(c) => (ObjectKind::Type, create_composite(&t.name, c)),
            TypeDef::Domain(d) => (ObjectKind::Domain, create_domain(&t.name, d, b.detached)),
            TypeDef::Range(r) => (ObjectKind::Type, create_range(&t.name, r)),
            TypeDef::Base(base) => (ObjectKind::Type, create_base(&t.name, base)),
            TypeDef::Shell => (
                ObjectKind::ShellType,
                format!("CREATE TYPE {};", t.name.sql()),
            ),
        };
        let shell = match &t.def {
            TypeDef::Base(_) => Some(b.add(NewItem {
                kind: ObjectKind::ShellType,
                section: Section::PreData,
                schema: Some(t.name.schema.clone()),
                name: t.name.name.clone(),
                table: None,
                sql: format!("CREATE TYPE {};", t.name.sql()),
            })),
            _ => None,
        };
        let idx = b.add(NewItem {
            kind,
            section: Section::PreData,
            schema: Some(t.name.schema.clone()),
            name: t.name.name.clone(),
            table: None,
            sql,
        });
        own_type_objects(b, t, idx);
        if let (Some(shell), TypeDef::Base(base)) = (shell, &t.def) {
            b.graph.depend(idx, shell);
            for &function in &base.functions {
                b.shell_types.insert(function, (t.oid, shell));
            }
        }
        if let TypeDef::Domain(d) = &t.def {
            add_unvalidated_domain_checks(b, t, d, idx);
        }
    }
}

/// The catalog objects one `CREATE TYPE` makes: the type, its array type, a composite type's
/// relation, a range's multirange (and its array), a domain's constraints.
fn own_type_objects(b: &mut Builder<'_>, t: &UserType, idx: ItemIdx) {
    b.own_object(ObjAddr::type_(t.oid), idx);
    let mut owned = vec![ObjAddr::type_(t.oid), ObjAddr::type_(t.array_oid)];
    match &t.def {
        TypeDef::Composite(c) => owned.push(ObjAddr::relation(c.relid)),
        TypeDef::Range(Range {
            multirange: Some(m),
            ..
        }) => {
            owned.push(ObjAddr::type_(m.oid));
            owned.push(ObjAddr::type_(m.array_oid));
        }
        TypeDef::Domain(d) => {
            let inline = d.checks.iter().filter(|c| is_inline_check(c, b.detached));
            owned.extend(inline.map(|c| ObjAddr::constraint(c.oid)));
        }
        _ => {}
    }
    for addr in owned.into_iter().filter(|a| a.oid != 0) {
        b.graph.own(addr, idx);
    }
}

/// Domain CHECK constraints written inside `CREATE DOMAIN`: validated ones not in a dependency
/// loop through the domain (a check calling a function that takes the domain).
pub(super) fn is_inline_check(c: &DomainCheck, detached: &Detached) -> bool {
    c.validated && !detached.constraints.contains(&c.oid)
}

/// A NOT VALID domain constraint cannot be written into `CREATE DOMAIN`; like a table's, it is
/// added after the data so that existing values are not checked. So is one in a dependency
/// loop (see [`is_inline_check`]).
fn add_unvalidated_domain_checks(b: &mut Builder<'_>, t: &UserType, d: &Domain, domain: ItemIdx) {
    let detached = b.detached;
    for check in d.checks.iter().filter(|c| !is_inline_check(c, detached)) {
        let idx = b.add(NewItem {
            kind: ObjectKind::Constraint,
            section: Section::PostData,
            schema: Some(t.name.schema.clone()),
            name: check.name.clone(),
            table: None,
            sql: format!(
                "ALTER DOMAIN {} ADD CONSTRAINT {} {};",
                t.name.sql(),
                ident(&check.name),
                check.definition
            ),
        });
        b.graph.depend(idx, domain);
        b.graph.own(ObjAddr::constraint(check.oid), idx);
    }
}

fn create_enum(name: &QualName, labels: &[String]) -> String {
    let labels: Vec<String> = labels
        .iter()
        .map(|l| format!("    {}", literal(l)))
        .collect();
    if labels.is_empty() {
        format!("CREATE TYPE {} AS ENUM ();", name.sql())
    } else {
        format!(
            "CREATE TYPE {} AS ENUM (\n{}\n);",
            name.sql(),
            labels.join(",\n")
        )
    }
}

fn create_composite(name: &QualName, c: &Composite) -> String {
    let attributes: Vec<String> = c
        .attributes
        .iter()
        .map(|a| {
            let collate = a
                .collation
                .as_ref()
                .map(|c| format!(" COLLATE {}", c.sql()))
                .unwrap_or_default();
            format!("    {} {}{collate}", ident(&a.name), a.type_name)
        })
        .collect();
    if attributes.is_empty() {
        format!("CREATE TYPE {} AS ();", name.sql())
    } else {
        format!(
            "CREATE TYPE {} AS (\n{}\n);",
            name.sql(),
            attributes.join(",\n")
        )
    }
}

fn create_domain(name: &QualName, d: &Domain, detached: &Detached) -> String {
    let mut sql = format!("CREATE DOMAIN {} AS {}", name.sql(), d.base_type);
    if let Some(collation) = &d.collation {
        sql.push_str(&format!(" COLLATE {}", collation.sql()));
    }
    if let Some(default) = &d.default {
        sql.push_str(&format!(" DEFAULT {default}"));
    }
    if d.not_null {
        sql.push_str(" NOT NULL");
    }
    for check in d.checks.iter().filter(|c| is_inline_check(c, detached)) {
        sql.push_str(&format!(
            "\n    CONSTRAINT {} {}",
            ident(&check.name),
            check.definition
        ));
    }
    sql.push(';');
    sql
}

/// `CREATE TYPE name (INPUT = ..., ...)`, completing the shell type created before its functions.
fn create_base(name: &QualName, base: &Base) -> String {
    format!(
        "CREATE TYPE {} (\n    {}\n);",
        name.sql(),
        super::routines::options_sql(&base.options).join(",\n    ")
    )
}

fn create_range(name: &QualName, r: &Range) -> String {
    let mut options = vec![format!("subtype = {}", r.subtype)];
    let named = [
        ("subtype_opclass", &r.opclass),
        ("collation", &r.collation),
        ("canonical", &r.canonical),
        ("subtype_diff", &r.subtype_diff),
    ];
    for (option, value) in named {
        if let Some(value) = value {
            options.push(format!("{option} = {}", value.sql()));
        }
    }
    if let Some(m) = &r.multirange {
        options.push(format!("multirange_type_name = {}", m.name.sql()));
    }
    format!(
        "CREATE TYPE {} AS RANGE (\n    {}\n);",
        name.sql(),
        options.join(",\n    ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Attribute, DomainCheck};

    fn name(schema: &str, name: &str) -> QualName {
        QualName::new(schema.into(), name.into())
    }

    #[test]
    fn enum_labels_are_literals_in_order() {
        let sql = create_enum(&name("public", "Mood"), &["sad".into(), "it's ok".into()]);
        assert_eq!(
            sql,
            "CREATE TYPE public.\"Mood\" AS ENUM (\n    'sad',\n    'it''s ok'\n);"
        );
        assert_eq!(
            create_enum(&name("s", "e"), &[]),
            "CREATE TYPE s.e AS ENUM ();"
        );
    }

    #[test]
    fn composite_attributes_keep_their_collation() {
        let c = Composite {
            relid: 1,
            attributes: vec![
                Attribute {
                    name: "a".into(),
                    type_name: "integer".into(),
                    collation: None,
                },
                Attribute {
                    name: "B".into(),
                    type_name: "text".into(),
                    collation: Some(name("pg_catalog", "C")),
                },
            ],
        };
        assert_eq!(
            create_composite(&name("s", "pair"), &c),
            "CREATE TYPE s.pair AS (\n    a integer,\n    \"B\" text COLLATE pg_catalog.\"C\"\n);"
        );
    }

    #[test]
    fn domains_carry_default_not_null_and_valid_checks_only() {
        let d = Domain {
            base_type: "integer".into(),
            collation: None,
            default: Some("1".into()),
            not_null: true,
            checks: vec![
                DomainCheck {
                    oid: 1,
                    name: "positive".into(),
                    definition: "CHECK ((VALUE > 0))".into(),
                    validated: true,
                },
                DomainCheck {
                    oid: 2,
                    name: "small".into(),
                    definition: "CHECK ((VALUE < 10)) NOT VALID".into(),
                    validated: false,
                },
            ],
        };
        assert_eq!(
            create_domain(&name("s", "pos"), &d, &Detached::default()),
            "CREATE DOMAIN s.pos AS integer DEFAULT 1 NOT NULL\n    CONSTRAINT positive CHECK ((VALUE > 0));"
        );
    }

    #[test]
    fn ranges_name_only_the_options_they_set() {
        let r = Range {
            subtype: "double precision".into(),
            subtype_diff: Some(name("pg_catalog", "float8mi")),
            ..Range::default()
        };
        assert_eq!(
            create_range(&name("s", "floats"), &r),
            "CREATE TYPE s.floats AS RANGE (\n    subtype = double precision,\n    \
             subtype_diff = pg_catalog.float8mi\n);"
        );
    }
}
