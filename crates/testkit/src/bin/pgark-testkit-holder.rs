//! Helper process for the test kit's own watchdog test: starts the shared server, prints its data
//! directory on stdout, and waits for stdin to close. The test kills it with SIGKILL and checks
//! that the watchdog removed the server.

use std::io::Read;

fn main() {
    let data_dir = pgark_testkit::server().data_dir();
    println!("PGARK_TESTKIT_DATA_DIR={}", data_dir.display());
    let mut rest = Vec::new();
    // Nothing to do with the input: it only blocks until the test kills this process.
    let _ = std::io::stdin().read_to_end(&mut rest);
}
