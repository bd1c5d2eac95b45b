//! Which items only a superuser may run: a managed service's admin role (RDS, Cloud SQL, Azure)
//! cannot create them, so a restore as such a role reports them instead of failing halfway.
//! Decided from the statements the builders in this module write, next to them.

use pgark_archive::{DdlItem, ObjectKind};

/// Why `item` needs a superuser, or `None` when an ordinary role with the right privileges may
/// run it. `untrusted_languages` are the target's languages only a superuser may write functions
/// in (`c`, `internal`, `plpython3u`, ...).
pub fn superuser_only(item: &DdlItem, untrusted_languages: &[String]) -> Option<String> {
    let reason = match item.kind {
        ObjectKind::EventTrigger => "event triggers",
        ObjectKind::ForeignDataWrapper => "foreign-data wrappers",
        ObjectKind::TextSearchParser => "text search parsers",
        ObjectKind::TextSearchTemplate => "text search templates",
        ObjectKind::AccessMethod => "access methods",
        ObjectKind::Language => "procedural languages outside an extension",
        ObjectKind::OperatorClass => "operator classes",
        ObjectKind::OperatorFamily => "operator families",
        ObjectKind::Cast if item.sql.contains(" WITHOUT FUNCTION") => "binary-coercible casts",
        ObjectKind::Type if is_base_type(&item.sql) => "base types",
        ObjectKind::Publication if item.sql.contains(" FOR ALL TABLES") => {
            "publications FOR ALL TABLES"
        }
        ObjectKind::Function | ObjectKind::Procedure => {
            let language = routine_language(&item.sql)?;
            if !untrusted_languages.iter().any(|l| l == language) {
                return None;
            }
            return Some(format!("functions in the untrusted language {language}"));
        }
        _ => return None,
    };
    Some(reason.to_owned())
}

/// `CREATE TYPE name (INPUT = ...)`: not an enum, composite, range or shell type.
fn is_base_type(sql: &str) -> bool {
    sql.starts_with("CREATE TYPE ") && sql.contains(" (\n") && !sql.contains(" AS ")
}

/// The `LANGUAGE` line of a routine as `pg_get_functiondef` prints it (lower-case, unquoted for
/// plain names).
fn routine_language(sql: &str) -> Option<&str> {
    sql.lines()
        .find_map(|line| line.strip_prefix(" LANGUAGE "))
        .map(|language| language.trim().trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use pgark_archive::Section;

    use super::*;

    fn item(kind: ObjectKind, sql: &str) -> DdlItem {
        DdlItem {
            id: 1,
            kind,
            section: Section::PreData,
            schema: None,
            name: "x".into(),
            table: None,
            sql: sql.into(),
            deps: vec![],
            roles: vec![],
            via_index: None,
        }
    }

    #[test]
    fn superuser_only_items_are_told_apart_from_their_ordinary_kin() {
        let untrusted = vec!["c".to_owned(), "plpython3u".to_owned()];
        let only = |kind, sql: &str| superuser_only(&item(kind, sql), &untrusted);
        assert!(only(ObjectKind::EventTrigger, "CREATE EVENT TRIGGER e ...").is_some());
        assert!(only(ObjectKind::Cast, "CREATE CAST (a AS b) WITHOUT FUNCTION;").is_some());
        assert!(only(ObjectKind::Cast, "CREATE CAST (a AS b) WITH INOUT;").is_none());
        assert!(
            only(
                ObjectKind::Type,
                "CREATE TYPE public.t (\n    INPUT = public.t_in\n);"
            )
            .is_some()
        );
        assert!(only(ObjectKind::Type, "CREATE TYPE public.e AS ENUM (\n 'a'\n);").is_none());
        assert!(only(ObjectKind::Type, "CREATE TYPE public.t;").is_none());
        let function = |language: &str| {
            format!(
                "CREATE OR REPLACE FUNCTION public.f()\n RETURNS integer\n LANGUAGE {language}\n\
                 AS $function$select 1$function$\n"
            )
        };
        assert_eq!(
            only(ObjectKind::Function, &function("c")).as_deref(),
            Some("functions in the untrusted language c")
        );
        assert!(only(ObjectKind::Function, &function("sql")).is_none());
        assert!(only(ObjectKind::Function, &function("plpgsql")).is_none());
        assert!(
            only(
                ObjectKind::Publication,
                "CREATE PUBLICATION p FOR ALL TABLES WITH (publish = 'insert');"
            )
            .is_some()
        );
        assert!(only(ObjectKind::Publication, "CREATE PUBLICATION p WITH ();").is_none());
        assert!(only(ObjectKind::Table, "CREATE TABLE t ();").is_none());
    }
}
