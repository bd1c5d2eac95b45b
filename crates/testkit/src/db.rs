//! Databases on a test server, and connecting to them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_postgres::{Client, Config, NoTls};

use crate::profile::profile;

/// A database on a test server, and the role that reaches it: the test profile's
/// ([`crate::profile`]: the superuser `postgres`, or the managed admin), or another one chosen
/// with [`TestDb::as_superuser`] / [`TestDb::as_role`].
///
/// Only a handle: dropping it leaves the database in place (the server is thrown away anyway).
#[derive(Debug, Clone)]
pub struct TestDb {
    name: String,
    user: String,
    socket_dir: PathBuf,
    port: u16,
    log_path: PathBuf,
}

impl TestDb {
    pub(crate) fn new(name: &str, socket_dir: &Path, port: u16, log_path: &Path) -> Self {
        Self {
            name: name.to_owned(),
            user: profile().user().to_owned(),
            socket_dir: socket_dir.to_owned(),
            port,
            log_path: log_path.to_owned(),
        }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The role this handle connects as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The same database, reached as `role` (which must be able to log in without a password:
    /// the test servers trust local connections of every role but the password users').
    pub fn as_role(&self, role: &str) -> TestDb {
        TestDb {
            user: role.to_owned(),
            ..self.clone()
        }
    }

    /// The same database, reached as the superuser (`postgres`, or the managed profile's
    /// provider superuser): for what only a superuser may do.
    pub fn as_superuser(&self) -> TestDb {
        self.as_role(profile().superuser())
    }

    /// A libpq key=value connection string for this database, as [`TestDb::user`].
    pub fn url(&self) -> String {
        conninfo(&self.socket_dir, self.port, &self.name, &self.user)
    }

    /// A connection configuration for this database as [`TestDb::user`], to adjust before
    /// connecting.
    pub fn config(&self) -> Config {
        let mut config = Config::new();
        config
            .host_path(&self.socket_dir)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.name);
        config
    }

    /// A new connection to this database as [`TestDb::user`]; its connection task is spawned on
    /// the current tokio runtime. Panics if the connection fails.
    pub async fn client(&self) -> Client {
        let (client, connection) = self.config().connect(NoTls).await.unwrap_or_else(|e| {
            panic!(
                "could not connect to test database {:?} as {} ({}): {e}\nIs the test server \
                 still running? Its log is {}",
                self.name,
                self.user,
                self.url(),
                self.log_path.display()
            )
        });
        let name = self.name.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("pgark-testkit: connection to test database {name:?} failed: {e}");
            }
        });
        client
    }

    /// Runs `sql` (any number of statements) on a new connection. Panics on error.
    pub async fn execute(&self, sql: &str) {
        if let Err(e) = self.client().await.batch_execute(sql).await {
            // The server's message (`{e}` alone says only "db error").
            let detail = e
                .as_db_error()
                .map_or_else(String::new, |d| format!(": {d}"));
            panic!(
                "SQL failed in test database {:?} as {}: {e}{detail}\n--- SQL ---\n{sql}",
                self.name, self.user
            );
        }
    }
}

/// A database name no other call in this process returns: `prefix` made into a lower-case
/// identifier, then a counter and the process id (`chinook_3_41234`). Fits PostgreSQL's 63 bytes.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut base: String = prefix
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_') => c,
            _ => '_',
        })
        .take(40)
        .collect();
    if !base.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') {
        base.insert_str(0, "db_");
    }
    format!("{base}_{n}_{}", std::process::id())
}

/// The libpq key=value connection string for `dbname` as `user` on the socket in `socket_dir`.
pub(crate) fn conninfo(socket_dir: &Path, port: u16, dbname: &str, user: &str) -> String {
    format!(
        "host={} port={port} user={} dbname={}",
        conninfo_value(&socket_dir.to_string_lossy()),
        conninfo_value(user),
        conninfo_value(dbname)
    )
}

/// A value for a libpq key=value string: as is when plain, else single-quoted with `'` and `\`
/// backslash-escaped.
fn conninfo_value(value: &str) -> String {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == '\'' || c == '\\');
    if plain {
        value.to_owned()
    } else {
        let mut quoted = String::with_capacity(value.len() + 2);
        quoted.push('\'');
        for c in value.chars() {
            if c == '\'' || c == '\\' {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        quoted.push('\'');
        quoted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conninfo_values_are_quoted_only_when_needed() {
        for (value, expected) in [
            ("/tmp/pgark-x/sock", "/tmp/pgark-x/sock"),
            ("", "''"),
            ("a b", "'a b'"),
            ("it's", r"'it\'s'"),
            (r"back\slash", r"'back\\slash'"),
        ] {
            assert_eq!(conninfo_value(value), expected, "value {value:?}");
        }
    }

    #[test]
    fn conninfo_parses_back_with_tokio_postgres() {
        let url = conninfo(Path::new("/tmp/with space"), 5432, "it's", "postgres");
        let config: Config = url.parse().expect("parses");
        assert_eq!(config.get_dbname(), Some("it's"));
        assert_eq!(config.get_user(), Some("postgres"));
        assert_eq!(config.get_ports(), [5432]);
        assert_eq!(
            config.get_hosts(),
            [tokio_postgres::config::Host::Unix(PathBuf::from(
                "/tmp/with space"
            ))]
        );
    }

    #[test]
    fn unique_names_are_distinct_lower_case_identifiers() {
        let a = unique_name("Restore-Test");
        let b = unique_name("Restore-Test");
        assert_ne!(a, b);
        assert!(a.starts_with("restore_test_"), "{a}");
        assert!(unique_name("1st").starts_with("db_1st_"));
        let long = unique_name(&"x".repeat(200));
        assert!(long.len() <= 63, "{long}");
        assert!(
            long.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
    }
}
