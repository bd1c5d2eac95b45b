//! The password file (`~/.pgpass`, `PGPASSFILE`, `passfile=`), read the way libpq reads it.
//!
//! Each line is `hostname:port:database:username:password`; `*` in any of the first four fields
//! matches anything, `\:` and `\\` escape a colon and a backslash, and the first matching line
//! wins. A file that group or others may read is ignored with a warning — libpq's rule, so that a
//! password never sits in a file others can read. Nothing here ever logs a password.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Files already warned about: a dump opens many sessions, and one warning per file is enough.
static WARNED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// Logs `message` about `file` once per process.
fn warn_once(file: &Path, message: std::fmt::Arguments<'_>) {
    let mut warned = WARNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if warned
        .get_or_insert_with(HashSet::new)
        .insert(file.to_owned())
    {
        tracing::warn!("{message}");
    }
}

/// What one lookup asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Query<'a> {
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    pub(crate) dbname: &'a str,
    pub(crate) user: &'a str,
}

/// The password for `query` from `file`, if the file exists, is private, and has a matching line.
pub(crate) fn lookup(file: &Path, query: Query<'_>) -> Option<String> {
    let metadata = std::fs::metadata(file).ok()?;
    if !metadata.is_file() {
        warn_once(
            file,
            format_args!(
                "password file \"{}\" is not a plain file; ignoring it",
                file.display()
            ),
        );
        return None;
    }
    if let Some(mode) = loose_permissions(&metadata) {
        warn_once(
            file,
            format_args!(
                "password file \"{}\" has group or world access (mode {mode:04o}); permissions \
                 should be u=rw (0600) or less — ignoring it",
                file.display()
            ),
        );
        return None;
    }
    match std::fs::read_to_string(file) {
        Ok(text) => find(&text, query),
        Err(e) => {
            warn_once(
                file,
                format_args!("could not read password file \"{}\": {e}", file.display()),
            );
            None
        }
    }
}

#[cfg(unix)]
fn loose_permissions(metadata: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn loose_permissions(_: &std::fs::Metadata) -> Option<u32> {
    None
}

/// The password of the first line of `text` matching `query`.
pub(crate) fn find(text: &str, query: Query<'_>) -> Option<String> {
    let port = query.port.to_string();
    text.lines().find_map(|line| {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') {
            return None;
        }
        let rest = matches(line, query.host)?;
        let rest = matches(rest, &port)?;
        let rest = matches(rest, query.dbname)?;
        let rest = matches(rest, query.user)?;
        Some(unescape_password(rest))
    })
}

/// If the field at the start of `line` matches `value` (or is `*`), the text after its `:`.
fn matches<'a>(line: &'a str, value: &str) -> Option<&'a str> {
    if let Some(rest) = line.strip_prefix("*:") {
        return Some(rest);
    }
    let mut expected = value.chars();
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        let c = match c {
            ':' => {
                return expected.next().is_none().then(|| &line[i + 1..]);
            }
            '\\' => chars.next().map(|(_, c)| c)?,
            c => c,
        };
        if expected.next() != Some(c) {
            return None;
        }
    }
    // A line with fewer than five fields matches nothing.
    None
}

/// The password field: up to the next unescaped `:`, with escapes removed.
fn unescape_password(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        match c {
            ':' => break,
            '\\' => match chars.next() {
                Some(next) => out.push(next),
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUERY: Query<'static> = Query {
        host: "db.example.com",
        port: 5432,
        dbname: "app",
        user: "alice",
    };

    #[test]
    fn the_first_matching_line_wins_and_wildcards_match_anything() {
        let cases: &[(&str, Query<'_>, Option<&str>)] = &[
            ("db.example.com:5432:app:alice:s1", QUERY, Some("s1")),
            ("*:*:*:*:wild", QUERY, Some("wild")),
            (
                "db.example.com:*:*:alice:s2\n*:*:*:*:later",
                QUERY,
                Some("s2"),
            ),
            (
                "other:5432:app:alice:no\n*:5432:*:alice:yes",
                QUERY,
                Some("yes"),
            ),
            ("db.example.com:5433:app:alice:no", QUERY, None),
            ("db.example.com:5432:app:bob:no", QUERY, None),
            ("# db.example.com:5432:app:alice:commented\n", QUERY, None),
            // Fewer than five fields never match.
            ("db.example.com:5432:app:alice", QUERY, None),
            ("", QUERY, None),
            // Escapes in the fields and the password; the password ends at an unescaped ':'.
            (
                r"h\:1:5432:app:alice:pa\:ss\\word:ignored",
                Query {
                    host: "h:1",
                    ..QUERY
                },
                Some(r"pa:ss\word"),
            ),
            // A literal '*' must be written as a field of its own to be a wildcard.
            (
                "a*:5432:app:alice:x",
                Query {
                    host: "ab",
                    ..QUERY
                },
                None,
            ),
            // Windows line endings.
            (
                "db.example.com:5432:app:alice:crlf\r\n",
                QUERY,
                Some("crlf"),
            ),
        ];
        for (text, query, want) in cases {
            assert_eq!(find(text, *query).as_deref(), *want, "{text:?}");
        }
    }

    #[test]
    fn a_file_readable_by_others_is_ignored() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("pgpass");
        std::fs::write(&path, "*:*:*:*:secret\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(lookup(&path, QUERY), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(lookup(&path, QUERY).as_deref(), Some("secret"));
        assert_eq!(lookup(&dir.path().join("missing"), QUERY), None);
    }
}

/// Any file text and any query: a password or none, never a panic (escapes at line ends, `:` in
/// multi-byte text).
#[cfg(test)]
mod fuzzed {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_pgpass_text_is_read(
            text in "(\\PC|[:*\\\\\r\n#]){0,200}",
            host in "\\PC{0,8}",
            dbname in "\\PC{0,8}",
            user in "\\PC{0,8}",
            port in any::<u16>(),
        ) {
            let found = find(&text, Query { host: &host, port, dbname: &dbname, user: &user });
            if let Some(password) = found {
                prop_assert!(password.len() <= text.len());
            }
        }
    }
}
