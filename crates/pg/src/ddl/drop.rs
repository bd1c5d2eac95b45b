//! Undoing what a restore created.

use pgark_archive::{DdlItem, ObjectKind};

use crate::quote::{ident, qualified};

/// The statement (without `;`) that removes what `item` created, for cleaning up after a failed
/// restore; run them in reverse item order. `None` for items whose effect goes away with the
/// object they belong to (constraints, indexes, attachments, defaults, sequence state) and for the
/// `public` schema, which the target had before. `CASCADE` and `IF EXISTS` because a dropped table
/// may already have taken a later item's object with it.
pub fn drop_statement(item: &DdlItem) -> Option<String> {
    let name = || match &item.schema {
        Some(schema) => qualified(schema, &item.name),
        None => ident(&item.name),
    };
    let what = match item.kind {
        ObjectKind::Schema if item.name == "public" => return None,
        ObjectKind::Schema => "SCHEMA",
        ObjectKind::Extension => "EXTENSION",
        ObjectKind::Type => "TYPE",
        ObjectKind::Domain => "DOMAIN",
        ObjectKind::Sequence => "SEQUENCE",
        ObjectKind::Table => "TABLE",
        // Functions need their argument types, which the item's name will carry once functions
        // are dumped; until then there are none to drop.
        ObjectKind::Function
        | ObjectKind::TableAttach
        | ObjectKind::ColumnDefault
        | ObjectKind::SequenceOwnedBy
        | ObjectKind::SequenceSet
        | ObjectKind::Constraint
        | ObjectKind::ForeignKey
        | ObjectKind::Index
        | ObjectKind::IndexAttach
        | ObjectKind::ClusterOn => return None,
    };
    let name = match item.kind {
        ObjectKind::Schema | ObjectKind::Extension => ident(&item.name),
        _ => name(),
    };
    Some(format!("DROP {what} IF EXISTS {name} CASCADE"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgark_archive::Section;

    fn item(kind: ObjectKind, schema: Option<&str>, name: &str) -> DdlItem {
        DdlItem {
            id: 1,
            kind,
            section: Section::PreData,
            schema: schema.map(Into::into),
            name: name.into(),
            table: None,
            sql: String::new(),
            deps: vec![],
        }
    }

    #[test]
    fn created_objects_are_dropped_with_cascade() {
        let cases = [
            (
                item(ObjectKind::Schema, None, "App"),
                Some("DROP SCHEMA IF EXISTS \"App\" CASCADE"),
            ),
            (item(ObjectKind::Schema, None, "public"), None),
            (
                item(ObjectKind::Extension, None, "citext"),
                Some("DROP EXTENSION IF EXISTS citext CASCADE"),
            ),
            (
                item(ObjectKind::Table, Some("public"), "order"),
                Some("DROP TABLE IF EXISTS public.\"order\" CASCADE"),
            ),
            (
                item(ObjectKind::Domain, Some("s"), "d"),
                Some("DROP DOMAIN IF EXISTS s.d CASCADE"),
            ),
            (item(ObjectKind::Index, Some("s"), "i"), None),
            (item(ObjectKind::SequenceSet, Some("s"), "q"), None),
        ];
        for (item, expected) in cases {
            assert_eq!(drop_statement(&item).as_deref(), expected, "{item:?}");
        }
    }
}
