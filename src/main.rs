//! The `pgark` command. `main` only maps the outcome of [`cli::run`] to an exit code.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    return_large_buffers_to_the_system();
    cli::main()
}

/// Large buffers (chunks, rows of many megabytes) come and go at a high rate and from many
/// threads. glibc's default raises its mmap threshold to the largest block freed so far, after
/// which such buffers come from per-thread arenas that keep their memory: with 20 MB rows that
/// doubled peak memory. A fixed threshold keeps every buffer of 16 MiB or more (such rows, and
/// chunks larger than twice the default) mapped on its own and unmapped when freed, so peak memory
/// follows what is in use; chunk-sized buffers below it are reused from the heap (mapping each
/// anew cost a TPC-H dump about a tenth of its time in page faults).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn return_large_buffers_to_the_system() {
    const THRESHOLD: libc::c_int = 16 << 20;
    // SAFETY: mallopt only changes allocator parameters; it is called before any other thread
    // exists, and a failure (return 0) leaves the defaults, which are correct, only larger.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_buffers_to_the_system() {}
