//! How statements that act on any object (`COMMENT ON`, `SECURITY LABEL ON`, `ALTER ... OWNER
//! TO`, `GRANT ... ON`) name it, from the type and identity `pg_identify_object` gives. The
//! identity is already quoted and qualified by the server.

use crate::catalog::{Routine, RoutineDef};

/// What a statement uses a routine's name for: lookups by `GRANT ... ON FUNCTION` take plain
/// argument types, the others (`COMMENT ON`, `ALTER ... OWNER TO`, `SECURITY LABEL`, `DROP`)
/// take the aggregate forms too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RoutineUse {
    Name,
    Grant,
}

/// The identity (qualified name and arguments) statements name routine `r` by, when it must
/// differ from `pg_identify_object`'s type list: a zero-argument aggregate is `agg(*)`, an
/// ordered-set aggregate `agg(args ORDER BY args)`, and a procedure lists every argument with
/// its mode (`p(OUT a integer, IN b integer)`): without modes a procedure overloaded with OUT
/// arguments is ambiguous ("procedure name is not unique"), which `pg_dump` writes but an
/// all-or-nothing restore cannot carry on past. `None` keeps the server's identity.
pub(super) fn routine_identity(r: &Routine, usage: RoutineUse) -> Option<String> {
    let args = match (&r.def, usage) {
        // GRANT ON FUNCTION takes an aggregate's argument types as a function's.
        (RoutineDef::Aggregate(_), RoutineUse::Grant) => return None,
        (RoutineDef::Aggregate(_), RoutineUse::Name) => aggregate_args(&r.identity_args),
        _ => r.identity_args.as_str(),
    };
    Some(format!("{}({args})", r.name.sql()))
}

/// An aggregate's argument list as statements naming the aggregate write it: `*` for none.
pub(super) fn aggregate_args(identity_args: &str) -> &str {
    if identity_args.is_empty() {
        "*"
    } else {
        identity_args
    }
}

/// The SQL keyword for an object type, for `COMMENT ON` and `ALTER ... OWNER TO`.
fn keyword(object_type: &str) -> Option<&'static str> {
    Some(match object_type {
        "table" => "TABLE",
        "view" => "VIEW",
        "materialized view" => "MATERIALIZED VIEW",
        "foreign table" => "FOREIGN TABLE",
        "sequence" => "SEQUENCE",
        "index" => "INDEX",
        "type" | "composite type" => "TYPE",
        "domain" => "DOMAIN",
        "function" => "FUNCTION",
        "procedure" => "PROCEDURE",
        "aggregate" => "AGGREGATE",
        "schema" => "SCHEMA",
        "extension" => "EXTENSION",
        "collation" => "COLLATION",
        "conversion" => "CONVERSION",
        "language" => "LANGUAGE",
        "text search parser" => "TEXT SEARCH PARSER",
        "text search dictionary" => "TEXT SEARCH DICTIONARY",
        "text search template" => "TEXT SEARCH TEMPLATE",
        "text search configuration" => "TEXT SEARCH CONFIGURATION",
        "foreign-data wrapper" => "FOREIGN DATA WRAPPER",
        "server" => "SERVER",
        "event trigger" => "EVENT TRIGGER",
        "publication" => "PUBLICATION",
        "operator" => "OPERATOR",
        "operator class" => "OPERATOR CLASS",
        "operator family" => "OPERATOR FAMILY",
        "cast" => "CAST",
        "large object" => "LARGE OBJECT",
        "statistics object" => "STATISTICS",
        "access method" => "ACCESS METHOD",
        _ => return None,
    })
}

/// The object part of `COMMENT ON ...` / `SECURITY LABEL ... ON ...`, e.g. `TABLE public.t`,
/// `COLUMN public.t.c`, `CONSTRAINT c ON DOMAIN public.d`. `None` for types pgark does not
/// comment on (roles, databases).
pub(super) fn comment_target(object_type: &str, identity: &str) -> Option<String> {
    if object_type.ends_with(" column") {
        return Some(format!("COLUMN {identity}"));
    }
    let on = |what: &str, domain: bool| {
        let (name, relation) = split_on(identity)?;
        let domain = if domain { "DOMAIN " } else { "" };
        Some(format!("{what} {name} ON {domain}{relation}"))
    };
    match object_type {
        "table constraint" => on("CONSTRAINT", false),
        "domain constraint" => on("CONSTRAINT", true),
        "trigger" => on("TRIGGER", false),
        "rule" => on("RULE", false),
        "policy" => on("POLICY", false),
        _ => Some(format!("{} {identity}", keyword(object_type)?)),
    }
}

/// `ALTER <keyword> <identity>` for changing an owner; `None` for objects without owners of
/// their own (columns, constraints, casts).
pub(super) fn alter_target(object_type: &str, identity: &str) -> Option<String> {
    match object_type {
        "cast" | "extension" | "index" | "language" | "access method" => None,
        _ if object_type.contains(' ') && split_on(identity).is_some() => None,
        _ => Some(format!("{} {identity}", keyword(object_type)?)),
    }
}

/// The object part of `GRANT ... ON ...`: tables, views and foreign tables are all `TABLE`.
pub(super) fn grant_target(object_type: &str, identity: &str) -> Option<String> {
    let what = match object_type {
        "table" | "view" | "materialized view" | "foreign table" => "TABLE",
        "sequence" => "SEQUENCE",
        "function" | "aggregate" => "FUNCTION",
        "procedure" => "PROCEDURE",
        "schema" => "SCHEMA",
        "type" | "composite type" => "TYPE",
        "domain" => "DOMAIN",
        "foreign-data wrapper" => "FOREIGN DATA WRAPPER",
        "server" => "FOREIGN SERVER",
        "large object" => "LARGE OBJECT",
        "language" => "LANGUAGE",
        _ => return None,
    };
    Some(format!("{what} {identity}"))
}

/// Splits `name on relation` where `name` is one (possibly quoted) identifier.
fn split_on(identity: &str) -> Option<(&str, &str)> {
    let end = if let Some(rest) = identity.strip_prefix('"') {
        // A quoted identifier ends at a quote not followed by another.
        let mut chars = rest.char_indices().peekable();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if chars.peek().is_some_and(|&(_, n)| n == '"') {
                    chars.next();
                } else {
                    end = Some(i + 2);
                    break;
                }
            }
        }
        end?
    } else {
        identity.find(' ')?
    };
    let name = &identity[..end];
    let relation = identity[end..].strip_prefix(" on ")?;
    Some((name, relation))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::catalog::{Aggregate, QualName};

    fn routine(def: RoutineDef, args: &str) -> Routine {
        Routine {
            oid: 1,
            name: QualName::new("public".into(), "r".into()),
            identity_args: args.into(),
            def,
        }
    }

    #[test]
    fn routines_are_named_unambiguously_in_every_form() {
        let function = || RoutineDef::Function(String::new());
        let procedure = || RoutineDef::Procedure(String::new());
        let aggregate = || RoutineDef::Aggregate(Aggregate::default());
        use RoutineUse::{Grant, Name};
        let cases: &[(RoutineDef, &str, RoutineUse, Option<&str>)] = &[
            (function(), "", Name, Some("public.r()")),
            (
                function(),
                "a integer, VARIADIC b text[]",
                Name,
                Some("public.r(a integer, VARIADIC b text[])"),
            ),
            (function(), "a integer", Grant, Some("public.r(a integer)")),
            (
                procedure(),
                "OUT a integer, IN b integer, IN c integer",
                Name,
                Some("public.r(OUT a integer, IN b integer, IN c integer)"),
            ),
            (
                procedure(),
                "INOUT a anyelement, OUT b anyelement",
                Grant,
                Some("public.r(INOUT a anyelement, OUT b anyelement)"),
            ),
            (
                procedure(),
                "OUT a integer, VARIADIC b integer[]",
                Name,
                Some("public.r(OUT a integer, VARIADIC b integer[])"),
            ),
            (aggregate(), "", Name, Some("public.r(*)")),
            (aggregate(), "\"any\"", Name, Some("public.r(\"any\")")),
            (
                aggregate(),
                "double precision ORDER BY anyelement",
                Name,
                Some("public.r(double precision ORDER BY anyelement)"),
            ),
            (
                aggregate(),
                "VARIADIC \"any\" ORDER BY VARIADIC \"any\"",
                Name,
                Some("public.r(VARIADIC \"any\" ORDER BY VARIADIC \"any\")"),
            ),
            (aggregate(), "", Grant, None),
            (
                aggregate(),
                "double precision ORDER BY anyelement",
                Grant,
                None,
            ),
        ];
        for (def, args, usage, expected) in cases {
            let r = routine(def.clone(), args);
            assert_eq!(
                routine_identity(&r, *usage).as_deref(),
                *expected,
                "{def:?} ({args}) for {usage:?}"
            );
        }
    }

    #[test]
    fn targets_follow_the_object_type() {
        assert_eq!(
            comment_target("table", "public.t").as_deref(),
            Some("TABLE public.t")
        );
        assert_eq!(
            comment_target("table column", "public.t.\"C\"").as_deref(),
            Some("COLUMN public.t.\"C\"")
        );
        assert_eq!(
            comment_target("table constraint", "\"a on b\" on public.t").as_deref(),
            Some("CONSTRAINT \"a on b\" ON public.t")
        );
        assert_eq!(
            comment_target("domain constraint", "c on public.d").as_deref(),
            Some("CONSTRAINT c ON DOMAIN public.d")
        );
        assert_eq!(comment_target("role", "alice"), None);
        assert_eq!(alter_target("table constraint", "c on public.t"), None);
        assert_eq!(
            alter_target("function", "public.f(integer)").as_deref(),
            Some("FUNCTION public.f(integer)")
        );
        assert_eq!(
            grant_target("view", "public.v").as_deref(),
            Some("TABLE public.v")
        );
    }
}
