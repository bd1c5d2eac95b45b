//! The process that stops a server and removes its directory when the test process is gone.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::process::RunAs;

/// A child process that stops the server and removes its directory as soon as its stdin reaches
/// end-of-file, i.e. when we drop our end of the pipe or when the test process dies in any way.
/// Our end is close-on-exec (as are all pipes `std` creates), so no other child inherits it.
///
/// It shares the test process's stderr, so that a failed clean-up is reported, and so that whoever
/// reads that stderr to its end has also waited for the clean-up.
#[derive(Debug)]
pub(crate) struct Watchdog {
    child: Child,
}

impl Watchdog {
    pub(crate) fn spawn(
        dir: &Path,
        pg_ctl: &Path,
        data_dir: &Path,
        run_as: RunAs,
    ) -> Result<Self, String> {
        // Arguments: the server directory, the data directory, then the command that runs pg_ctl.
        // A server that never started (no postmaster.pid) needs no stopping.
        let script = r#"trap '' INT HUP
cat >/dev/null
dir=$1 data=$2
shift 2
if [ -e "$data/postmaster.pid" ]; then "$@" -D "$data" stop -m immediate -w >/dev/null; fi
rm -rf "$dir""#;
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script, "pgark-testkit-watchdog"])
            .arg(dir)
            .arg(data_dir)
            .args(run_as.prefix())
            .arg(pg_ctl)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            // Own process group: a Ctrl-C aimed at `cargo test` must not kill it before it cleans up.
            .process_group(0);
        let child = cmd.spawn().map_err(|e| {
            // Nobody will remove the directory now; do it here.
            let _ = std::fs::remove_dir_all(dir);
            format!("could not start the test server's watchdog {cmd:?}: {e}")
        })?;
        Ok(Self { child })
    }

    /// Closes the pipe and waits until the server is stopped and its directory removed.
    fn finish(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.finish();
    }
}
