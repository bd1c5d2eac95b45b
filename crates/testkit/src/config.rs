//! The server's configuration files: `postgresql.conf`, `pg_hba.conf` and extra files.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::process::RunAs;
use crate::server::ServerOptions;

/// The role whose members must log in with a SCRAM password (everyone else is trusted).
pub(crate) const PASSWORD_ROLE: &str = "pgark_password_users";

/// Writes `pg_hba.conf`: the options' lines, then SCRAM for `pgark_password_users`, trust for all
/// others (and the same over TCP from 127.0.0.1 when TCP is on).
pub(crate) fn write_hba(data_dir: &Path, options: &ServerOptions) -> Result<(), String> {
    let mut hba = String::from("# written by pgark-testkit\n");
    for line in &options.hba {
        hba.push_str(line);
        hba.push('\n');
    }
    let mut sources = vec![("local", "")];
    if options.tcp {
        sources.push(("host", " 127.0.0.1/32"));
    }
    for (kind, address) in sources {
        let _ = writeln!(hba, "{kind} all +{PASSWORD_ROLE}{address} scram-sha-256");
        let _ = writeln!(hba, "{kind} all all{address} trust");
        let _ = writeln!(hba, "{kind} replication all{address} trust");
    }
    // Truncating keeps the file's owner (the server's user).
    let path = data_dir.join("pg_hba.conf");
    std::fs::write(&path, hba).map_err(|e| format!("could not write {}: {e}", path.display()))
}

/// Appends the test kit's settings and then the options' lines to `postgresql.conf`.
pub(crate) fn write_conf(
    data_dir: &Path,
    socket_dir: &Path,
    port: u16,
    options: &ServerOptions,
) -> Result<(), String> {
    let listen = if options.tcp { "127.0.0.1" } else { "" };
    let mut conf = format!(
        "\n# added by pgark-testkit: private socket, no durability, room for many connections\n\
         listen_addresses = '{listen}'\n\
         unix_socket_directories = {socket_dir}\n\
         port = {port}\n\
         fsync = off\n\
         full_page_writes = off\n\
         synchronous_commit = off\n\
         max_connections = 200\n\
         max_wal_senders = 10\n\
         max_replication_slots = 10\n\
         password_encryption = 'scram-sha-256'\n",
        socket_dir = conf_string(&socket_dir.to_string_lossy()),
    );
    for line in &options.conf {
        conf.push_str(line);
        conf.push('\n');
    }
    append_conf(data_dir, &conf)
}

pub(crate) fn append_conf(data_dir: &Path, text: &str) -> Result<(), String> {
    let path = data_dir.join("postgresql.conf");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("could not append to {}: {e}", path.display()))
}

/// A `postgresql.conf` string literal: single-quoted, with `'` doubled and `\` escaped.
fn conf_string(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// Writes a file only the server may read (the server refuses a key readable by others).
pub(crate) fn write_private_file(
    path: &Path,
    contents: &[u8],
    run_as: RunAs,
) -> Result<(), String> {
    std::fs::write(path, contents)
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)))
        .map_err(|e| format!("could not write {}: {e}", path.display()))?;
    run_as.give(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_strings_are_escaped() {
        assert_eq!(conf_string("/tmp/x"), "'/tmp/x'");
        assert_eq!(conf_string(r"a'b\c"), r"'a''b\\c'");
    }
}
