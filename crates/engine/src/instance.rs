//! Whole instances (`dump --all`): which databases a run backs up, and where each one's backups
//! go under the instance's destination — `DEST/db/<database>/<id>` for every database and
//! `DEST/globals/<id>` for the roles, memberships and tablespaces. Each of those is an ordinary
//! destination: every command that takes one works on it, and `ls`, `prune` and
//! `--check-max-age` go through all of them when given `DEST`.

use pgark_pg::{ConnConfig, PgError};
use pgark_storage::{ObjectKey, ObjectStore};

use crate::surgical::select::glob;
use crate::{EngineError, session};

/// The folder under an instance's destination that holds one folder per database.
pub const DATABASES_FOLDER: &str = "db";
/// The folder under an instance's destination that holds the globals backups.
pub const GLOBALS_FOLDER: &str = "globals";

/// The folder of database `name` under [`DATABASES_FOLDER`]: the name with every byte outside
/// `A-Za-z0-9_.-` percent-encoded, so that any database name is one safe path segment (`.`
/// and `..` too).
pub fn database_folder(name: &str) -> String {
    let mut folder = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric()
            || b"_-".contains(&byte)
            || (byte == b'.' && !name.chars().all(|c| c == '.'))
        {
            folder.push(char::from(byte));
        } else {
            folder.push_str(&format!("%{byte:02X}"));
        }
    }
    folder
}

/// The database name a [`database_folder`] stands for, or `None` if it is not one.
pub fn database_of_folder(folder: &str) -> Option<String> {
    let bytes = folder.as_bytes();
    let mut name = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = folder.get(i + 1..i + 3)?;
            name.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            name.push(bytes[i]);
            i += 1;
        }
    }
    let name = String::from_utf8(name).ok()?;
    (database_folder(&name) == folder).then_some(name)
}

/// The databases `dump --all` backs up on the server `config` reaches: every one that accepts
/// connections and is not a template, those matching an `include` pattern if any are given
/// (`*` and `?` as wildcards), less those matching an `exclude` pattern; sorted. An `include`
/// pattern that matches no database is an error, naming it.
pub async fn databases(
    config: &ConnConfig,
    include: &[String],
    exclude: &[String],
) -> Result<Vec<String>, EngineError> {
    let connection = session::open(config).await?;
    let rows = connection
        .client()
        .query(
            "SELECT datname::text FROM pg_catalog.pg_database \
             WHERE datallowconn AND NOT datistemplate ORDER BY 1",
            &[],
        )
        .await
        .map_err(|e| PgError::query("listing the server's databases", e))?;
    let all: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    for pattern in include {
        if !all.iter().any(|name| glob(pattern, name)) {
            return Err(EngineError::NoSuchDatabase {
                pattern: pattern.clone(),
                databases: all.join(", "),
            });
        }
    }
    Ok(all
        .into_iter()
        .filter(|name| include.is_empty() || include.iter().any(|p| glob(p, name)))
        .filter(|name| !exclude.iter().any(|p| glob(p, name)))
        .collect())
}

/// What an instance's destination holds: the databases with a folder under
/// [`DATABASES_FOLDER`] (sorted) and whether there is a [`GLOBALS_FOLDER`]. Empty for a
/// destination of one database's backups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceLayout {
    pub databases: Vec<String>,
    pub globals: bool,
}

impl InstanceLayout {
    pub fn is_instance(&self) -> bool {
        self.globals || !self.databases.is_empty()
    }

    /// The destinations under `dest` (a location string), each with what it holds: `(label,
    /// location)`, the globals' labelled `(globals)`.
    pub fn destinations(&self, dest: &str) -> Vec<(String, String)> {
        let dest = dest.trim_end_matches('/');
        let mut found: Vec<(String, String)> = self
            .databases
            .iter()
            .map(|name| {
                (
                    name.clone(),
                    format!("{dest}/{DATABASES_FOLDER}/{}", database_folder(name)),
                )
            })
            .collect();
        if self.globals {
            found.push((GLOBALS_LABEL.to_owned(), format!("{dest}/{GLOBALS_FOLDER}")));
        }
        found
    }
}

/// How listings and metrics name the globals' backups.
pub const GLOBALS_LABEL: &str = "(globals)";

/// The object under an instance's destination naming the databases the last `dump --all`
/// backed up or tried to: a database whose first dump failed has no folder yet, and must still
/// count as missing its backup.
pub const DATABASES_RECORD: &str = "databases.json";

/// Records `databases` as those the instance's backups should cover (see
/// [`DATABASES_RECORD`]).
pub async fn record_databases(
    store: &dyn ObjectStore,
    databases: &[String],
) -> Result<(), EngineError> {
    let json = serde_json::json!({ "databases": databases });
    let key = ObjectKey::new(DATABASES_RECORD)?;
    store
        .put(&key, bytes::Bytes::from(json.to_string().into_bytes()))
        .await?;
    Ok(())
}

/// Reads what an instance's destination holds (see [`InstanceLayout`]): the databases with a
/// folder and those the last run recorded.
pub async fn layout(store: &dyn ObjectStore) -> Result<InstanceLayout, EngineError> {
    let mut layout = InstanceLayout::default();
    let record = ObjectKey::new(DATABASES_RECORD)?;
    // Asked with a HEAD first: most destinations are one database's, without the record.
    let recorded = match store.head(&record).await {
        Ok(_) => store.get(&record).await,
        Err(e) => Err(e),
    };
    match recorded {
        Ok(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(parsed) => {
                if let Some(names) = parsed.get("databases").and_then(|d| d.as_array()) {
                    layout
                        .databases
                        .extend(names.iter().filter_map(|n| n.as_str().map(str::to_owned)));
                }
            }
            // Only a hint: the folders still say what there is.
            Err(e) => tracing::warn!(
                "{} under {} is not the JSON pgark writes ({e}): ignored",
                DATABASES_RECORD,
                store.location()
            ),
        },
        Err(pgark_storage::StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let databases = ObjectKey::new(DATABASES_FOLDER)?;
    for object in store.list(Some(&databases)).await? {
        let rest = object
            .key
            .as_str()
            .strip_prefix(DATABASES_FOLDER)
            .and_then(|k| k.strip_prefix('/'))
            .unwrap_or_default();
        if let Some((folder, _)) = rest.split_once('/')
            && let Some(name) = database_of_folder(folder)
            && layout.databases.last() != Some(&name)
        {
            layout.databases.push(name);
        }
    }
    layout.databases.sort();
    layout.databases.dedup();
    let globals = ObjectKey::new(GLOBALS_FOLDER)?;
    layout.globals = !store.list(Some(&globals)).await?.is_empty();
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_database_name_is_one_safe_folder_and_back() {
        for name in [
            "shop", "My Shop", "a/b", "..", ".", "x.y", "ünï", "100%", "-",
        ] {
            let folder = database_folder(name);
            assert!(
                folder
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.%".contains(&b)),
                "{folder}"
            );
            assert!(folder != "." && folder != "..", "{folder}");
            assert_eq!(database_of_folder(&folder).as_deref(), Some(name));
        }
        assert_eq!(database_folder("My Shop"), "My%20Shop");
        assert_eq!(database_of_folder("bad%2"), None);
        assert_eq!(database_of_folder("a%2Fb%"), None);
    }
}
