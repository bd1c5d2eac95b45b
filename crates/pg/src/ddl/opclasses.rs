//! `CREATE OPERATOR FAMILY` (with its loose members, `ALTER OPERATOR FAMILY ... ADD`) and
//! `CREATE OPERATOR CLASS`. Every family is created explicitly, even one the server created
//! implicitly for a class of the same name, and every class names its family: the result is
//! the same catalog either way. Members are owned by the item adding them, so that their
//! `pg_depend` rows (on operators, functions, types) order that item.

use pgark_archive::{ObjectKind, Section};

use super::build::Builder;
use super::graph::NewItem;
use crate::catalog::{ObjAddr, OpMember, class};
use crate::quote::ident;

pub(super) fn add_opclasses(b: &mut Builder<'_>) {
    for f in &b.catalog.opfamilies {
        let name = f.name.sql();
        let using = ident(&f.method);
        let mut sql = format!("CREATE OPERATOR FAMILY {name} USING {using};");
        if !f.members.is_empty() {
            sql.push_str(&format!(
                "\nALTER OPERATOR FAMILY {name} USING {using} ADD\n    {};",
                members_sql(&f.members)
            ));
        }
        let idx = b.add(NewItem {
            kind: ObjectKind::OperatorFamily,
            section: Section::PreData,
            schema: Some(f.name.schema.clone()),
            name: format!("{} USING {}", f.name.name, f.method),
            table: None,
            sql,
        });
        b.own_object(ObjAddr::new(class::PG_OPFAMILY, f.oid), idx);
        own_members(b, &f.members, idx);
    }
    for c in &b.catalog.opclasses {
        let mut items = Vec::new();
        // A class needs at least one item; a `STORAGE` equal to the input type is stored as
        // none, so it is the neutral item for a class without members.
        items.push(format!(
            "STORAGE {}",
            c.storage.as_deref().unwrap_or(&c.input_type)
        ));
        let default = if c.default { " DEFAULT" } else { "" };
        let sql = format!(
            "CREATE OPERATOR CLASS {}{default} FOR TYPE {} USING {} FAMILY {} AS\n    {}{}{};",
            c.name.sql(),
            c.input_type,
            ident(&c.method),
            c.family.sql(),
            items.join(""),
            if c.members.is_empty() { "" } else { ",\n    " },
            members_sql(&c.members)
        );
        let idx = b.add(NewItem {
            kind: ObjectKind::OperatorClass,
            section: Section::PreData,
            schema: Some(c.name.schema.clone()),
            name: format!("{} USING {}", c.name.name, c.method),
            table: None,
            sql,
        });
        b.own_object(ObjAddr::new(class::PG_OPCLASS, c.oid), idx);
        own_members(b, &c.members, idx);
    }
}

fn members_sql(members: &[OpMember]) -> String {
    members
        .iter()
        .map(|m| m.sql.as_str())
        .collect::<Vec<_>>()
        .join(",\n    ")
}

fn own_members(b: &mut Builder<'_>, members: &[OpMember], idx: usize) {
    for m in members {
        b.graph.own(m.addr, idx);
    }
}
