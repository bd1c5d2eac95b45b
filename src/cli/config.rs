//! Options without long command lines: every option of every command also comes from an
//! environment variable, `PGARK_` and its long name in upper case with `_` for `-`
//! (`--jobs` → `PGARK_JOBS`, `--s3-endpoint` → `PGARK_S3_ENDPOINT`, the DEST argument →
//! `PGARK_DEST`), and from an optional TOML config file (`--config PATH` or `PGARK_CONFIG`):
//! keys at the top apply to every command that has the option, a `[dump]`, `[restore]`, ...
//! table to that command only, named like the long options (`jobs = 4`, `s3-endpoint = "..."`;
//! `_` and `-` alike). Precedence: command line, then environment, then file, then the built-in
//! default — the file's values become the options' defaults, which clap's own order then puts
//! below the flags and their variables.
//!
//! Secrets are never taken inline from the file: a key naming one (a password, secret, token or
//! private key) or a connection string carrying a password is refused, naming the key and the
//! way to pass it by reference (a file path option, an environment variable, `.pgpass`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{ArgAction, Command};

/// The variable naming the config file, for runs that do not pass `--config`.
pub const CONFIG_ENV: &str = "PGARK_CONFIG";

/// The variable an option reads: `PGARK_` and its long name (or its id, for a positional
/// argument), upper case, `-` as `_`.
pub fn env_name(arg: &clap::Arg) -> String {
    let name = arg
        .get_long()
        .map(str::to_owned)
        .unwrap_or_else(|| arg.get_id().to_string());
    format!("PGARK_{}", name.to_uppercase().replace('-', "_"))
}

/// Whether an option may be set from the environment or the file: not help, version or a
/// counter (`-vv`).
fn settable(arg: &clap::Arg) -> bool {
    !matches!(
        arg.get_action(),
        ArgAction::Help
            | ArgAction::HelpShort
            | ArgAction::HelpLong
            | ArgAction::Version
            | ArgAction::Count
    )
}

/// Whether an option gets the variable of its name: settable, and not naming its own variable
/// already.
fn configurable(arg: &clap::Arg) -> bool {
    settable(arg) && arg.get_env().is_none()
}

/// `cmd` with an environment variable on every configurable option of it and of its
/// subcommands.
pub fn with_env_vars(cmd: Command) -> Command {
    let mut cmd = cmd;
    let ids: Vec<String> = cmd
        .get_arguments()
        .filter(|a| configurable(a))
        .map(|a| a.get_id().to_string())
        .collect();
    for id in ids {
        cmd = cmd.mut_arg(id, |arg| {
            let name = env_name(&arg);
            arg.env(name)
        });
    }
    let subcommands: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in subcommands {
        cmd = cmd.mut_subcommand(name, with_env_vars);
    }
    cmd
}

/// The config file's path: `--config PATH` (or `--config=PATH`) among `args`, else
/// [`CONFIG_ENV`].
pub fn config_path(args: &[String]) -> Option<PathBuf> {
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        }
        if word == "--config" {
            return words.next().map(PathBuf::from);
        }
        if let Some(path) = word.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os(CONFIG_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The subcommand `args` (the command line, program name first) runs: the first word that is
/// neither an option nor the value of a global option that takes one.
fn subcommand_of(cmd: &Command, args: &[String]) -> Option<String> {
    let takes_value = |word: &str| {
        cmd.get_arguments().any(|a| {
            a.get_long().is_some_and(|l| word == format!("--{l}")) && a.get_action().takes_values()
        })
    };
    let mut words = args.iter().skip(1);
    while let Some(word) = words.next() {
        if word.starts_with('-') {
            if takes_value(word) {
                words.next();
            }
            continue;
        }
        return Some(word.clone());
    }
    None
}

/// Makes the values of the config file at `path` the defaults of the options of `cmd` that
/// `args` runs. Fails, naming the file and the key, on a file that does not parse, a key that is
/// no option, or a secret given inline.
pub fn apply_file(cmd: Command, path: &Path, args: &[String]) -> anyhow::Result<Command> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the config file {}: {e}", path.display()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        anyhow::anyhow!(
            "the config file {} is not valid TOML: {}",
            path.display(),
            e.message()
        )
    })?;
    let file = path.display().to_string();
    let subcommand = subcommand_of(&cmd, args);
    let subcommand_names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    // (0 for the top level, 1 for the command's own table, which wins; option) → values.
    let mut settings: BTreeMap<(u8, String), Vec<String>> = BTreeMap::new();
    for (key, value) in &table {
        match value {
            toml::Value::Table(section) => {
                if !subcommand_names.contains(key) {
                    anyhow::bail!(
                        "the config file {file} has a table [{key}], which is no pgark command \
                         (tables are named after commands: [dump], [restore], ...)"
                    );
                }
                for (option, value) in section {
                    let values = plain_values(&file, &format!("{key}.{option}"), value)?;
                    refuse_secrets(&file, &format!("{key}.{option}"), option, &values)?;
                    if !has_option(&cmd, Some(key), option) {
                        anyhow::bail!(
                            "the config file {file} sets {key}.{option}, but `pgark {key}` has \
                             no option --{}",
                            option.replace('_', "-")
                        );
                    }
                    if subcommand.as_deref() == Some(key.as_str()) {
                        settings.insert((1, normalize(option)), values);
                    }
                }
            }
            _ => {
                let values = plain_values(&file, key, value)?;
                refuse_secrets(&file, key, key, &values)?;
                if !has_option(&cmd, None, key)
                    && !subcommand_names
                        .iter()
                        .any(|s| has_option(&cmd, Some(s), key))
                {
                    anyhow::bail!(
                        "the config file {file} sets {key}, which is no option of any pgark \
                         command"
                    );
                }
                settings.insert((0, normalize(key)), values);
            }
        }
    }
    let mut cmd = cmd;
    for ((_, option), values) in settings {
        cmd = set_default(cmd, subcommand.as_deref(), &option, values);
    }
    Ok(cmd)
}

/// A long option's name as the file may write it (`compress_level` or `compress-level`).
fn normalize(key: &str) -> String {
    key.replace('_', "-")
}

/// The configurable arguments of `subcommand` (or of the top level), by long name or id.
fn find_arg<'a>(cmd: &'a Command, subcommand: Option<&str>, key: &str) -> Option<&'a clap::Arg> {
    let scope = match subcommand {
        Some(name) => cmd.find_subcommand(name)?,
        None => cmd,
    };
    let key = normalize(key);
    scope.get_arguments().find(|a| {
        settable(a)
            && (a.get_long() == Some(key.as_str())
                || (a.get_long().is_none() && normalize(a.get_id().as_str()) == key))
    })
}

fn has_option(cmd: &Command, subcommand: Option<&str>, key: &str) -> bool {
    find_arg(cmd, subcommand, key).is_some()
}

/// A value as the command line would give it: strings, numbers and booleans as written, an
/// array as one value per element.
fn plain_values(file: &str, key: &str, value: &toml::Value) -> anyhow::Result<Vec<String>> {
    let one = |value: &toml::Value| -> anyhow::Result<String> {
        Ok(match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => anyhow::bail!(
                "the config file {file} sets {key} to a table or date: give a string, number, \
                 boolean or array of them"
            ),
        })
    };
    match value {
        toml::Value::Array(items) => items.iter().map(one).collect(),
        value => Ok(vec![one(value)?]),
    }
}

/// Key names that hold a secret when their value is inline.
const SECRET_WORDS: [&str; 5] = ["password", "secret", "token", "private", "passphrase"];

/// Refuses a secret written into the file: a key named for one, or a connection string with a
/// password in it. The message names the key, never the value.
fn refuse_secrets(file: &str, key: &str, option: &str, values: &[String]) -> anyhow::Result<()> {
    let lower = option.to_lowercase();
    if SECRET_WORDS.iter().any(|w| lower.contains(w)) {
        anyhow::bail!(
            "the config file {file} holds a secret inline ({key}): secrets are taken only by \
             reference — a file path option, an environment variable, or ~/.pgpass — never \
             from the config file"
        );
    }
    if values.iter().any(|v| carries_password(v)) {
        anyhow::bail!(
            "the config file {file} holds a password inline in the connection string of {key}: \
             leave it out and give it by reference (PGPASSWORD, PGPASSFILE or ~/.pgpass, or a \
             service file)"
        );
    }
    Ok(())
}

/// Whether a connection string (URL or `key=value` words) has a password in it.
fn carries_password(value: &str) -> bool {
    let lower = value.to_lowercase();
    if let Some(rest) = lower
        .strip_prefix("postgres://")
        .or_else(|| lower.strip_prefix("postgresql://"))
    {
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let userinfo = authority
            .rsplit_once('@')
            .map(|(u, _)| u)
            .unwrap_or_default();
        return userinfo.contains(':') || lower.contains("password=");
    }
    lower
        .split_whitespace()
        .any(|word| word.trim_start().starts_with("password") && word.contains('='))
}

/// Makes `values` the default of option `key` of `subcommand` (or of a global option).
fn set_default(cmd: Command, subcommand: Option<&str>, key: &str, values: Vec<String>) -> Command {
    let global = find_arg(&cmd, None, key).map(|a| a.get_id().to_string());
    if let Some(id) = global {
        return cmd.mut_arg(id, |arg| arg.default_values(values).required(false));
    }
    let Some(name) = subcommand else {
        return cmd;
    };
    let Some(id) = find_arg(&cmd, Some(name), key).map(|a| a.get_id().to_string()) else {
        return cmd;
    };
    cmd.mut_subcommand(name, |sub| {
        sub.mut_arg(id, |arg| arg.default_values(values).required(false))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_connection_strings_are_found() {
        assert!(carries_password("postgres://app:s3cret@db/prod"));
        assert!(carries_password("postgresql://db/prod?password=x"));
        assert!(carries_password("host=db password=x dbname=prod"));
        assert!(!carries_password("postgres://app@db/prod"));
        assert!(!carries_password("host=db user=app dbname=prod"));
        assert!(!carries_password("s3://bucket/prefix"));
    }
}
