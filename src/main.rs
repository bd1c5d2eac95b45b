//! The `pgark` command. `main` only maps the outcome of [`cli::run`] to an exit code.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
