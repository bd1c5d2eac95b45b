//! Connecting like libpq against real servers: TLS in every sslmode with certificates made in
//! the test, client certificates, and passwords from `.pgpass`, `PG*` variables and service files;
//! COPY OUT through the session's tap.

mod copy_out;
mod sources;
mod tls;

use pgark_pg::{ConnConfig, Connection};

/// Parses `s` with only `env` as the environment (nothing from the test process), so that no
/// `PG*` variable, `~/.pgpass` or `~/.postgresql/` of the machine running the tests takes part.
pub fn config(s: &str, env: &[(&str, &str)]) -> ConnConfig {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    ConnConfig::parse_with_env(s, &move |name| {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .expect("valid connection string")
}

/// One value from the session.
pub async fn query_text(connection: &Connection, sql: &str) -> String {
    connection
        .client()
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}
