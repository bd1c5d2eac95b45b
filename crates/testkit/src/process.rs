//! Running the server's programs, as the `postgres` system user when the tests run as root.

use std::path::Path;
use std::process::{Command, Output};

/// The system user the server runs as when the tests run as root (initdb refuses root).
const SERVER_USER: &str = "postgres";

/// How the server's programs are run: directly, or through `runuser -u postgres --` when root.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunAs {
    as_server_user: bool,
}

impl RunAs {
    /// Decides for this process: root runs the server as `postgres`, anyone else as themselves.
    pub(crate) fn detect() -> Result<Self, String> {
        let as_server_user = effective_uid() == 0;
        if as_server_user {
            let mut id = Command::new("id");
            id.args(["-u", SERVER_USER]);
            if run(&mut id, "look up the postgres system user").is_err() {
                return Err(format!(
                    "The tests run as root, initdb refuses to run as root, and there is no \
                     `{SERVER_USER}` system user to run the server as. Create one (`useradd \
                     --system --user-group {SERVER_USER}`, or install the `postgresql` package, \
                     which does) or run the tests as a normal user."
                ));
            }
        }
        Ok(Self { as_server_user })
    }

    /// Whether the server's programs run as the `postgres` system user.
    pub(crate) fn is_server_user(self) -> bool {
        self.as_server_user
    }

    /// A command running `program` as the server's user, with no `PG*` variables of ours leaking
    /// into it and `cwd` as its working directory (the server user may not be able to enter ours).
    pub(crate) fn command(self, program: &Path, cwd: &Path) -> Command {
        let mut cmd = if self.as_server_user {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", SERVER_USER, "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        clear_pg_env(&mut cmd);
        // English, deterministic messages from the programs and the server, whatever our locale.
        cmd.env("LC_ALL", "C").current_dir(cwd);
        cmd
    }

    /// The argument prefix that runs a program as the server's user (for scripts).
    pub(crate) fn prefix(self) -> &'static [&'static str] {
        if self.as_server_user {
            &["runuser", "-u", SERVER_USER, "--"]
        } else {
            &[]
        }
    }

    /// Gives `path` (recursively) to the server's user, if the server runs as another user.
    pub(crate) fn give(self, path: &Path) -> Result<(), String> {
        if self.as_server_user {
            let mut chown = Command::new("chown");
            chown.arg("-R").arg(format!("{SERVER_USER}:")).arg(path);
            run(
                &mut chown,
                &format!("chown {} to {SERVER_USER}", path.display()),
            )?;
        }
        Ok(())
    }

    /// Checks that the server's user can run `bin_dir`'s programs and write `dir`, so that a
    /// permission problem is reported as such rather than as a puzzling initdb failure.
    pub(crate) fn check_access(self, bin_dir: &Path, dir: &Path) -> Result<(), String> {
        if !self.as_server_user {
            return Ok(());
        }
        let mut test = self.command(Path::new("sh"), dir);
        test.args([
            "-c",
            r#"test -x "$1/initdb" && test -x "$1/postgres" && test -w "$2""#,
            "sh",
        ])
        .arg(bin_dir)
        .arg(dir);
        run(&mut test, "check the postgres user's access").map_err(|e| {
            format!(
                "The tests run as root, so the server runs as the `{SERVER_USER}` system user, but \
                 that user cannot execute {bin}/initdb and {bin}/postgres or cannot write {dir}. \
                 Put the binaries (PGARK_PG_BIN) and the temporary directory (TMPDIR) where \
                 `{SERVER_USER}` can reach them (every parent directory needs o+x).\n{e}",
                bin = bin_dir.display(),
                dir = dir.display(),
            )
        })?;
        Ok(())
    }
}

/// Removes the libpq/server variables (`PGDATA`, `PGPORT`, `PGHOST`…) the caller may have set, so
/// they cannot redirect the programs we run; the ones a program needs are set explicitly. (Our own
/// `PGARK_*` variables mean nothing to them and stay.)
pub(crate) fn clear_pg_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key
            .to_str()
            .is_some_and(|k| k.starts_with("PG") && !k.starts_with("PGARK_"))
        {
            cmd.env_remove(&key);
        }
    }
}

/// Runs `cmd` to completion; a failure to start or a non-zero exit becomes an error that says
/// what we were trying to do, the command line, and its output.
pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<Output, String> {
    let output = cmd
        .output()
        .map_err(|e| format!("could not {what}: failed to run {cmd:?}: {e}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "could not {what}: {cmd:?} failed ({})\n{}",
            output.status,
            describe_output(&output)
        ))
    }
}

/// The stdout and stderr of a finished program, labelled, for error messages.
pub(crate) fn describe_output(output: &Output) -> String {
    let mut text = String::new();
    for (label, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let s = String::from_utf8_lossy(bytes);
        let s = s.trim_end();
        if !s.is_empty() {
            text.push_str(&format!("--- {label} ---\n{s}\n"));
        }
    }
    text
}

/// The effective user id of this process.
#[allow(unsafe_code)]
fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no arguments, touches no memory of ours and cannot fail.
    unsafe { libc::geteuid() }
}
