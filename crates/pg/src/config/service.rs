//! Connection service files (`pg_service.conf`): named groups of connection options, selected
//! with `service=name` or `PGSERVICE`. Their values rank below the connection string and above
//! the environment, as in libpq.
//!
//! Files are searched like libpq: `servicefile=`/`PGSERVICEFILE`, else `~/.pg_service.conf`; a
//! service not defined there is looked up in `PGSYSCONFDIR/pg_service.conf`.

use std::path::{Path, PathBuf};

use super::defaults::Defaults;
use super::settings::{Key, Settings};
use crate::PgError;

/// Applies the service named in `settings` or `PGSERVICE`, if any.
pub(crate) fn apply(
    settings: &mut Settings,
    env: &dyn Fn(&str) -> Option<String>,
    defaults: &Defaults,
) -> Result<(), PgError> {
    let name = match settings.get(Key::Service) {
        Some(setting) => setting.value.clone(),
        None => env("PGSERVICE").unwrap_or_default(),
    };
    if name.is_empty() {
        return Ok(());
    }

    let explicit_file = settings
        .non_empty(Key::Servicefile)
        .map(str::to_owned)
        .or_else(|| env("PGSERVICEFILE").filter(|f| !f.is_empty()));
    let mut searched = Vec::new();
    let user_file = match &explicit_file {
        Some(file) => {
            let path = PathBuf::from(file);
            if !path.exists() {
                return Err(invalid(format!(
                    "service file \"{}\" not found (servicefile=, PGSERVICEFILE)",
                    path.display()
                )));
            }
            Some(path)
        }
        None => defaults
            .home_dir
            .as_ref()
            .map(|home| home.join(".pg_service.conf"))
            .filter(|path| path.exists()),
    };
    let system_file = env("PGSYSCONFDIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| defaults.sysconf_dir.clone())
        .map(|dir| dir.join("pg_service.conf"))
        .filter(|path| path.exists());

    for file in user_file.into_iter().chain(system_file) {
        let text = std::fs::read_to_string(&file).map_err(|e| {
            invalid(format!(
                "could not read service file \"{}\": {e}",
                file.display()
            ))
        })?;
        searched.push(file.display().to_string());
        if let Some(values) = find_service(&text, &name, &file)? {
            settings.fill_from_service(&name, &file, &values);
            return Ok(());
        }
    }
    let searched = if searched.is_empty() {
        "no service file exists (~/.pg_service.conf, PGSERVICEFILE, PGSYSCONFDIR/pg_service.conf)"
            .to_owned()
    } else {
        format!("searched {}", searched.join(", "))
    };
    Err(invalid(format!(
        "definition of service \"{name}\" not found — {searched}"
    )))
}

/// The options of service `name` in `text` (the contents of `file`), or `None` if it is not
/// defined there. Errors name the file and line, never the value (it may be a password).
pub(crate) fn find_service(
    text: &str,
    name: &str,
    file: &Path,
) -> Result<Option<Vec<(Key, String)>>, PgError> {
    let mut in_service = false;
    let mut found = false;
    let mut values = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            if found {
                break;
            }
            in_service = section.strip_suffix(']').map(str::trim) == Some(name);
            found = in_service;
            continue;
        }
        if !in_service {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(invalid(format!(
                "syntax error in service file \"{}\", line {} (expected key=value)",
                file.display(),
                index + 1
            )));
        };
        let key = key.trim();
        let key = Key::lookup(key).map_err(|e| {
            invalid(format!(
                "in service file \"{}\", line {}: {}",
                file.display(),
                index + 1,
                match e {
                    PgError::InvalidConfig { reason } => reason,
                    other => other.to_string(),
                }
            ))
        })?;
        if matches!(key, Key::Service | Key::Servicefile) {
            return Err(invalid(format!(
                "nested service specifications are not supported in service file \"{}\", line {}",
                file.display(),
                index + 1
            )));
        }
        values.push((key, value.trim().to_owned()));
    }
    Ok(found.then_some(values))
}

fn invalid(reason: impl Into<String>) -> PgError {
    PgError::InvalidConfig {
        reason: reason.into(),
    }
}

/// Any service file text: the service's options, none, or an error naming the line.
#[cfg(test)]
mod fuzzed {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_service_file_text_is_read(
            text in "(\\PC|[\\[\\]=#\n ]|host|port|service|dbname){0,120}",
            name in "[a-z]{0,4}",
        ) {
            let _ = find_service(&text, &name, Path::new("pg_service.conf"));
        }
    }
}
