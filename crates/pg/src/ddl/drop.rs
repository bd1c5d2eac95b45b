//! Undoing what a restore created.

use pgark_archive::{DdlItem, ObjectKind};

use super::target::aggregate_args;
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
        ObjectKind::Type | ObjectKind::ShellType => "TYPE",
        ObjectKind::Domain => "DOMAIN",
        ObjectKind::Sequence => "SEQUENCE",
        ObjectKind::Table => "TABLE",
        ObjectKind::Collation => "COLLATION",
        ObjectKind::View => "VIEW",
        ObjectKind::MaterializedView => "MATERIALIZED VIEW",
        ObjectKind::ForeignTable => "FOREIGN TABLE",
        ObjectKind::Conversion => "CONVERSION",
        ObjectKind::Statistics => "STATISTICS",
        // Not in a schema: named alone.
        ObjectKind::AccessMethod => {
            return Some(format!(
                "DROP ACCESS METHOD IF EXISTS {} CASCADE",
                ident(&item.name)
            ));
        }
        ObjectKind::Language => {
            return Some(format!(
                "DROP LANGUAGE IF EXISTS {} CASCADE",
                ident(&item.name)
            ));
        }
        // Named `FOR type LANGUAGE language`, already quoted.
        ObjectKind::Transform => {
            return Some(format!("DROP TRANSFORM IF EXISTS {} CASCADE", item.name));
        }
        ObjectKind::TextSearchParser => "TEXT SEARCH PARSER",
        ObjectKind::TextSearchTemplate => "TEXT SEARCH TEMPLATE",
        ObjectKind::TextSearchDictionary => "TEXT SEARCH DICTIONARY",
        ObjectKind::TextSearchConfiguration => "TEXT SEARCH CONFIGURATION",
        // Routines are named with their arguments, `f(a integer)`: the name is quoted alone.
        ObjectKind::Function | ObjectKind::Procedure | ObjectKind::Aggregate => {
            let what = match item.kind {
                ObjectKind::Procedure => "PROCEDURE",
                ObjectKind::Aggregate => "AGGREGATE",
                _ => "FUNCTION",
            };
            let (name, args) = item.name.rsplit_once('(')?;
            let args = args.strip_suffix(')')?;
            let args = if item.kind == ObjectKind::Aggregate {
                aggregate_args(args)
            } else {
                args
            };
            let schema = item.schema.as_deref()?;
            return Some(format!(
                "DROP {what} IF EXISTS {}({args}) CASCADE",
                qualified(schema, name)
            ));
        }
        // Not in a schema, so not dropped with one.
        ObjectKind::EventTrigger => {
            return Some(format!(
                "DROP EVENT TRIGGER IF EXISTS {} CASCADE",
                ident(&item.name)
            ));
        }
        ObjectKind::Publication => {
            return Some(format!(
                "DROP PUBLICATION IF EXISTS {} CASCADE",
                ident(&item.name)
            ));
        }
        ObjectKind::ForeignDataWrapper => {
            return Some(format!(
                "DROP FOREIGN DATA WRAPPER IF EXISTS {} CASCADE",
                ident(&item.name)
            ));
        }
        ObjectKind::ForeignServer => {
            return Some(format!(
                "DROP SERVER IF EXISTS {} CASCADE",
                ident(&item.name)
            ));
        }
        ObjectKind::LargeObject => {
            let oid: u32 = item.name.parse().ok()?;
            return Some(format!("SELECT pg_catalog.lo_unlink({oid})"));
        }
        // Operators are named with their argument types, `~<<(text, text)`; the symbol is
        // never quoted.
        ObjectKind::Operator => {
            let schema = item.schema.as_deref()?;
            return Some(format!(
                "DROP OPERATOR IF EXISTS {}.{} CASCADE",
                ident(schema),
                item.name
            ));
        }
        // Named `name USING method`.
        ObjectKind::OperatorClass | ObjectKind::OperatorFamily => {
            let what = if item.kind == ObjectKind::OperatorClass {
                "CLASS"
            } else {
                "FAMILY"
            };
            let (name, method) = item.name.rsplit_once(" USING ")?;
            let schema = item.schema.as_deref()?;
            return Some(format!(
                "DROP OPERATOR {what} IF EXISTS {} USING {} CASCADE",
                qualified(schema, name),
                ident(method)
            ));
        }
        // Named `(source AS target)`, as the types print.
        ObjectKind::Cast => {
            return Some(format!("DROP CAST IF EXISTS {} CASCADE", item.name));
        }
        // Named `FOR role SERVER server`, already quoted; nothing depends on a user mapping.
        ObjectKind::UserMapping => {
            return Some(format!("DROP USER MAPPING IF EXISTS {}", item.name));
        }
        // The rest goes away with the object it belongs to (a configuration table with its
        // extension).
        ObjectKind::ExtensionTable
        | ObjectKind::TableAttach
        | ObjectKind::ColumnDefault
        | ObjectKind::SequenceOwnedBy
        | ObjectKind::SequenceSet
        | ObjectKind::Constraint
        | ObjectKind::ForeignKey
        | ObjectKind::Index
        | ObjectKind::IndexAttach
        | ObjectKind::ClusterOn
        | ObjectKind::MaterializedViewData
        | ObjectKind::Trigger
        | ObjectKind::Rule
        | ObjectKind::TableOption
        | ObjectKind::Policy
        | ObjectKind::PublicationMember
        | ObjectKind::Comment
        | ObjectKind::SecurityLabel
        | ObjectKind::Owner
        | ObjectKind::Acl
        | ObjectKind::DefaultAcl => return None,
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
            roles: vec![],
            via_index: None,
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
            (
                item(ObjectKind::Function, Some("s"), "f(a integer, b text)"),
                Some("DROP FUNCTION IF EXISTS s.f(a integer, b text) CASCADE"),
            ),
            (
                item(ObjectKind::Aggregate, Some("s"), "cnt()"),
                Some("DROP AGGREGATE IF EXISTS s.cnt(*) CASCADE"),
            ),
            (
                item(
                    ObjectKind::Aggregate,
                    Some("s"),
                    "pick(double precision ORDER BY anyelement)",
                ),
                Some(
                    "DROP AGGREGATE IF EXISTS s.pick(double precision ORDER BY anyelement) CASCADE",
                ),
            ),
            (
                item(
                    ObjectKind::Procedure,
                    Some("s"),
                    "p(OUT a integer, IN b integer)",
                ),
                Some("DROP PROCEDURE IF EXISTS s.p(OUT a integer, IN b integer) CASCADE"),
            ),
            (item(ObjectKind::SequenceSet, Some("s"), "q"), None),
            (
                item(ObjectKind::Operator, Some("S"), "~<<(text, text)"),
                Some("DROP OPERATOR IF EXISTS \"S\".~<<(text, text) CASCADE"),
            ),
            (
                item(ObjectKind::OperatorClass, Some("s"), "My Class USING btree"),
                Some("DROP OPERATOR CLASS IF EXISTS s.\"My Class\" USING btree CASCADE"),
            ),
            (
                item(ObjectKind::OperatorFamily, Some("s"), "f USING gist"),
                Some("DROP OPERATOR FAMILY IF EXISTS s.f USING gist CASCADE"),
            ),
            (
                item(
                    ObjectKind::Cast,
                    None,
                    "(timestamp with time zone AS interval)",
                ),
                Some("DROP CAST IF EXISTS (timestamp with time zone AS interval) CASCADE"),
            ),
            (
                item(ObjectKind::UserMapping, None, "FOR PUBLIC SERVER \"S 1\""),
                Some("DROP USER MAPPING IF EXISTS FOR PUBLIC SERVER \"S 1\""),
            ),
            (
                item(ObjectKind::Statistics, Some("s"), "st"),
                Some("DROP STATISTICS IF EXISTS s.st CASCADE"),
            ),
            (
                item(ObjectKind::ForeignServer, None, "s1"),
                Some("DROP SERVER IF EXISTS s1 CASCADE"),
            ),
        ];
        for (item, expected) in cases {
            assert_eq!(drop_statement(&item).as_deref(), expected, "{item:?}");
        }
    }
}
