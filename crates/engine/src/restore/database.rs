//! The properties of a database a restore creates (`--create`): the locale it is created
//! with, and the owner, connection limit, privileges, settings and comment it is given when it
//! takes its name.

use pgark_archive::{DatabaseEntry, DatabaseGrant};
use pgark_pg::quote::{ident, literal};

use super::RestoreParts;

/// The options of `CREATE DATABASE` that fix the database's locale, for a server of
/// `target_version`. A provider the target lacks (ICU or builtin before 15) is left out, saying
/// so in the warning returned.
pub(super) fn locale_options(
    database: &DatabaseEntry,
    target_version: i32,
) -> (String, Option<String>) {
    let mut options = format!(
        " LC_COLLATE {} LC_CTYPE {}",
        literal(&database.collate),
        literal(&database.ctype)
    );
    let locale = database.locale.as_deref().unwrap_or_default();
    match database.locale_provider.as_str() {
        "libc" => {}
        provider if target_version < 150_000 => {
            return (
                options,
                Some(format!(
                    "database {:?} used the {provider} locale provider ({locale}), which the \
                     target server (before PostgreSQL 15) lacks: created with the libc locale \
                     {} instead",
                    database.name, database.collate
                )),
            );
        }
        "icu" => {
            options.push_str(&format!(
                " LOCALE_PROVIDER icu ICU_LOCALE {}",
                literal(locale)
            ));
            if let Some(rules) = &database.icu_rules
                && target_version >= 160_000
            {
                options.push_str(&format!(" ICU_RULES {}", literal(rules)));
            }
        }
        "builtin" if target_version >= 170_000 => {
            options.push_str(&format!(
                " LOCALE_PROVIDER builtin BUILTIN_LOCALE {}",
                literal(locale)
            ));
        }
        provider => {
            return (
                options,
                Some(format!(
                    "database {:?} used the {provider} locale provider ({locale}), which the \
                     target server lacks: created with the libc locale {} instead",
                    database.name, database.collate
                )),
            );
        }
    }
    (options, None)
}

/// What gives database `name` the recorded properties, in order: the owner first (the
/// privileges are relative to it), then the connection limit, privileges, settings and
/// comment. Owners and privileges follow `parts` (`--no-owner`, `--no-acl`).
pub(super) fn property_statements(
    database: &DatabaseEntry,
    name: &str,
    parts: &RestoreParts,
    set_owner: bool,
) -> Vec<String> {
    let db = ident(name);
    let mut statements = Vec::new();
    if set_owner && !parts.no_owner {
        statements.push(format!(
            "ALTER DATABASE {db} OWNER TO {}",
            ident(&database.owner)
        ));
    }
    if database.connection_limit != -1 {
        statements.push(format!(
            "ALTER DATABASE {db} CONNECTION LIMIT {}",
            database.connection_limit
        ));
    }
    if !parts.no_acl {
        for revoke in &database.revokes {
            statements.push(format!(
                "REVOKE {} ON DATABASE {db} FROM {}",
                revoke.privilege,
                grantee(revoke)
            ));
        }
        for grant in &database.grants {
            let option = if grant.grantable {
                " WITH GRANT OPTION"
            } else {
                ""
            };
            statements.push(format!(
                "GRANT {} ON DATABASE {db} TO {}{option}",
                grant.privilege,
                grantee(grant)
            ));
        }
    }
    for setting in &database.settings {
        statements.push(format!("ALTER DATABASE {db} SET {}", set_clause(setting)));
    }
    for role in &database.role_settings {
        statements.push(format!(
            "ALTER ROLE {} IN DATABASE {db} SET {}",
            ident(&role.role),
            set_clause(&role.setting)
        ));
    }
    if let Some(comment) = &database.comment {
        statements.push(format!("COMMENT ON DATABASE {db} IS {}", literal(comment)));
    }
    statements
}

fn grantee(grant: &DatabaseGrant) -> String {
    if grant.grantee.is_empty() {
        "PUBLIC".to_owned()
    } else {
        ident(&grant.grantee)
    }
}

/// The settings whose values are lists of names, stored with each name quoted as an identifier
/// where it needs it (`GUC_LIST_QUOTE`): set again as a list of literals.
const NAME_LIST_SETTINGS: [&str; 5] = [
    "search_path",
    "temp_tablespaces",
    "session_preload_libraries",
    "local_preload_libraries",
    "shared_preload_libraries",
];

/// `name = value` for `ALTER ... SET`, from the catalog's `name=value`.
pub fn set_clause(setting: &str) -> String {
    let (name, value) = setting.split_once('=').unwrap_or((setting, ""));
    if NAME_LIST_SETTINGS.contains(&name.to_ascii_lowercase().as_str()) {
        let names: Vec<String> = split_name_list(value).iter().map(|n| literal(n)).collect();
        if names.is_empty() {
            return format!("{} = ''", ident(name));
        }
        return format!("{} = {}", ident(name), names.join(", "));
    }
    format!("{} = {}", ident(name), literal(value))
}

/// The names of a `GUC_LIST_QUOTE` setting's value: separated by commas, each double-quoted
/// where it must be (`""` inside quotes is one `"`), spaces around them dropped.
pub fn split_name_list(value: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut name = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        name.push('"');
                    } else {
                        break;
                    }
                } else {
                    name.push(c);
                }
            }
            while chars.peek().is_some_and(|&c| c != ',') {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                name.push(c);
                chars.next();
            }
            name = name.trim_end().to_owned();
        }
        if !name.is_empty() {
            names.push(name);
        }
        if chars.next().is_none() {
            return names;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_set_again_as_the_catalog_holds_them() {
        assert_eq!(set_clause("work_mem=64MB"), "work_mem = '64MB'");
        assert_eq!(
            set_clause("search_path=app, \"My Schema\", public"),
            "search_path = 'app', 'My Schema', 'public'"
        );
        assert_eq!(set_clause("search_path=\"\""), "search_path = ''");
        assert_eq!(
            set_clause("DateStyle=ISO, MDY"),
            "\"DateStyle\" = 'ISO, MDY'"
        );
        assert_eq!(
            split_name_list(" a ,\"b\"\"c\", \"d,e\" "),
            vec!["a", "b\"c", "d,e"]
        );
        assert!(split_name_list("").is_empty());
    }

    #[test]
    fn owners_and_privileges_follow_the_parts_asked_for() {
        let database = DatabaseEntry {
            name: "shop".into(),
            owner: "app".into(),
            connection_limit: 5,
            comment: Some("it's ours".into()),
            revokes: vec![DatabaseGrant {
                grantee: String::new(),
                privilege: "CONNECT".into(),
                grantable: false,
            }],
            grants: vec![DatabaseGrant {
                grantee: "reader".into(),
                privilege: "CONNECT".into(),
                grantable: true,
            }],
            settings: vec!["work_mem=64MB".into()],
            ..DatabaseEntry::default()
        };
        assert_eq!(
            property_statements(&database, "Shop", &RestoreParts::default(), true),
            vec![
                "ALTER DATABASE \"Shop\" OWNER TO app",
                "ALTER DATABASE \"Shop\" CONNECTION LIMIT 5",
                "REVOKE CONNECT ON DATABASE \"Shop\" FROM PUBLIC",
                "GRANT CONNECT ON DATABASE \"Shop\" TO reader WITH GRANT OPTION",
                "ALTER DATABASE \"Shop\" SET work_mem = '64MB'",
                "COMMENT ON DATABASE \"Shop\" IS 'it''s ours'",
            ]
        );
        let bare = RestoreParts {
            no_owner: true,
            no_acl: true,
            ..RestoreParts::default()
        };
        assert_eq!(property_statements(&database, "shop", &bare, true).len(), 3);
    }
}
