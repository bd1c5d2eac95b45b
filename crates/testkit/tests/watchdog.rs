//! A test process killed with SIGKILL leaves no server and no directory behind.
//!
//! The test runs the helper binary `pgark-testkit-holder`, which starts the shared server and
//! waits; it kills the helper and then reads the helper's stderr to its end. The watchdog inherits
//! that stderr and holds it until it has stopped the server and removed its directory, so end of
//! file means the clean-up is over — no sleeping or polling.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};

const DATA_DIR_PREFIX: &str = "PGARK_TESTKIT_DATA_DIR=";

#[test]
fn killed_test_process_leaves_no_server_behind() {
    let mut helper = Command::new(env!("CARGO_BIN_EXE_pgark-testkit-holder"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn helper");
    let stdout = BufReader::new(helper.stdout.take().expect("stdout"));
    let data_dir = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix(DATA_DIR_PREFIX).map(PathBuf::from));
    // (If the helper dies first, its stdout ends and `data_dir` is None.)
    let mut stderr = helper.stderr.take().expect("stderr");
    let Some(data_dir) = data_dir else {
        let _ = helper.kill();
        let _ = helper.wait();
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        panic!("the helper did not report a server:\n{text}");
    };
    let pid_file =
        std::fs::read_to_string(data_dir.join("postmaster.pid")).expect("postmaster.pid");
    let postmaster: u32 = pid_file
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("postmaster pid");
    assert!(process_alive(postmaster));

    helper.kill().expect("kill helper");
    helper.wait().expect("wait helper");
    let mut text = String::new();
    stderr.read_to_string(&mut text).expect("read stderr");

    assert!(
        !data_dir.exists(),
        "{} still exists; stderr:\n{text}",
        data_dir.display()
    );
    assert!(
        !process_alive(postmaster),
        "postmaster {postmaster} still runs"
    );
}

/// Whether process `pid` exists and is not a zombie (an exited child not yet reaped, which is what
/// an orphaned postmaster may stay as in a container without an init process).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}
