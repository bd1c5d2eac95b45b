//! How statements that act on any object (`COMMENT ON`, `SECURITY LABEL ON`, `ALTER ... OWNER
//! TO`, `GRANT ... ON`) name it, from the type and identity `pg_identify_object` gives. The
//! identity is already quoted and qualified by the server.

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
