//! Command-line interface: one module per subcommand, each a clap `Args` struct and a `run` that
//! turns validated arguments into engine options. No SQL, key layout or format parsing here.

mod args;
mod cat;
mod check;
mod config;
mod conn_args;
mod copy;
mod dump;
mod hints;
mod key_args;
mod keygen;
mod ls;
mod notify;
mod output;
mod prune;
mod rekey;
mod restore;
mod shell;
mod show;
mod store_args;
mod verify;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use pgark_engine::{Cancel, CancelHandle, EngineError, ErrorClass};

/// Exit codes, documented in the README.
pub mod exit {
    pub const SUCCESS: u8 = 0;
    /// The operation failed; the message says why.
    pub const FAILURE: u8 = 1;
    /// The command line was wrong (clap's own code).
    pub const USAGE: u8 = 2;
    /// A check ran and failed: `verify` found damage, `ls --check-max-age` found no recent backup.
    pub const CHECK_FAILED: u8 = 3;
    /// Interrupted by SIGINT or SIGTERM; nothing half-done was left behind.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug, Parser)]
#[command(
    name = "pgark",
    version,
    about = "Logical backup and restore for PostgreSQL"
)]
struct Cli {
    #[command(flatten)]
    output: output::OutputArgs,

    /// Stop the run if it has not finished after this long (e.g. 2h), cleaning up as on SIGTERM
    /// (a dump removes what it wrote, a restore puts the target back), so that a stuck night's
    /// run never collides with the next one. No limit by default.
    #[arg(long, global = true, value_name = "DURATION", value_parser = args::parse_duration)]
    timeout: Option<std::time::Duration>,

    /// A TOML file of options: keys at the top for every command, [dump], [restore], ...
    /// tables for one. The command line wins over the environment (PGARK_JOBS, PGARK_DEST, ...:
    /// PGARK_ and the long name), which wins over the file. Never secrets.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<std::path::PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Dump one database (schema and data, one consistent snapshot) into a new backup under DEST.
    Dump(dump::DumpArgs),
    /// Restore a backup into an empty database (or a new one with --create), or some tables or
    /// rows of it into a live database in one transaction (--table, --where, --conflict).
    Restore(restore::RestoreArgs),
    /// List the backups under DEST: id, time, age, database, sizes, tables, rows, state.
    Ls(ls::LsArgs),
    /// Show what one backup holds: tables, rows, sizes, snapshot, versions, durations.
    Show(show::ShowArgs),
    /// Check every chunk of a backup; optionally restore it and compare every table.
    Verify(verify::VerifyArgs),
    /// Print one table's rows from a backup, with no database.
    Cat(cat::CatArgs),
    /// Delete backups outside a retention policy, and abandoned incomplete ones.
    Prune(prune::PruneArgs),
    /// Change who can open an encrypted backup (or every one under DEST) without rewriting its
    /// data: rewraps its data key for the recipients added and without those removed.
    Rekey(rekey::RekeyArgs),
    /// Make an age identity (private key file) and print its public key, for --encrypt-to.
    Keygen(keygen::KeygenArgs),
    /// Copy a backup (or every one since a time) to another bucket, region, endpoint or
    /// directory, every chunk's checksum checked on the way and the manifest written last.
    Copy(copy::CopyArgs),
    /// Print a completion script for bash, zsh or fish (see scripts/install.sh).
    Completions(shell::CompletionsArgs),
    /// Write the man pages (pgark.1, pgark-dump.1, ...) into a directory.
    Man(shell::ManArgs),
}

pub fn main() -> ExitCode {
    let cli = match parse_command_line() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let output = match output::Output::init(&cli.output) {
        Ok(output) => output,
        Err(e) => {
            eprintln!("pgark: error: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("pgark: error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let timed_out = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let result = runtime.block_on(async {
        let (handle, cancel) = Cancel::new();
        watch_signals(handle.clone());
        if let Some(limit) = cli.timeout {
            // The engines stop and clean up as on SIGTERM; commands that only read stop at once.
            let timed_out = timed_out.clone();
            tokio::spawn(async move {
                tokio::time::sleep(limit).await;
                timed_out.store(true, std::sync::atomic::Ordering::SeqCst);
                handle.cancel();
            });
        }
        let mut stopped = cancel.clone();
        let reading = async {
            match cli.timeout {
                Some(limit) => tokio::time::sleep(limit).await,
                None => stopped.cancelled().await,
            }
        };
        match cli.command {
            Command::Dump(args) => dump::run(args, &output, cancel).await,
            Command::Restore(args) => restore::run(args, &output, cancel).await,
            Command::Verify(args) => verify::run(args, &output, cancel).await,
            // Not stopped half-way by a signal: each step leaves a backup that opens.
            Command::Rekey(args) => rekey::run(args, &output).await,
            read_only => tokio::select! {
                result = async {
                    match read_only {
                        Command::Ls(args) => ls::run(args, &output).await,
                        Command::Show(args) => show::run(args, &output).await,
                        Command::Cat(args) => cat::run(args, &output).await,
                        Command::Prune(args) => prune::run(args, &output).await,
                        Command::Keygen(args) => keygen::run(args, &output),
                        Command::Completions(args) => shell::completions(args, cli_command()),
                        Command::Man(args) => shell::man(args, cli_command()).map(|pages| {
                            for page in pages {
                                output.summary(&format!("wrote {}", page.display()));
                            }
                        }),
                        // Interrupted at any point, the copy has no manifest yet.
                        Command::Copy(args) => copy::run(args, &output).await,
                        Command::Dump(_)
                        | Command::Restore(_)
                        | Command::Verify(_)
                        | Command::Rekey(_) => Ok(()),
                    }
                } => result,
                () = reading => Err(EngineError::Interrupted.into()),
            },
        }
    });
    let result = match (result, cli.timeout) {
        (Err(e), Some(limit))
            if timed_out.load(std::sync::atomic::Ordering::SeqCst)
                && e.downcast_ref::<EngineError>()
                    .is_some_and(EngineError::is_interrupted) =>
        {
            Err(TimedOut(limit).into())
        }
        (result, _) => result,
    };
    match result {
        Ok(()) => ExitCode::from(exit::SUCCESS),
        Err(e) => {
            let (code, class) = outcome(&e);
            output.error(&e, class);
            ExitCode::from(code)
        }
    }
}

/// The run was stopped by `--timeout`; what it wrote was cleaned up as on SIGTERM.
#[derive(Debug)]
struct TimedOut(std::time::Duration);

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stopped after --timeout {}: the run had not finished; what it had written was \
             cleaned up as on SIGTERM",
            pgark_engine::describe_duration(self.0)
        )
    }
}

impl std::error::Error for TimedOut {}

/// The exit code of a failed run and the class of its failure, as `--log-format json` reports it
/// (`check`, or one of [`ErrorClass`]'s names). The error's first cause that has a class decides.
fn outcome(error: &anyhow::Error) -> (u8, &'static str) {
    if error.downcast_ref::<check::CheckFailed>().is_some() {
        return (exit::CHECK_FAILED, "check");
    }
    if error.downcast_ref::<TimedOut>().is_some() {
        // Another night's run, or a longer limit, may finish.
        return (exit::FAILURE, ErrorClass::Transient.name());
    }
    let class = error
        .chain()
        .find_map(ErrorClass::of)
        .unwrap_or(ErrorClass::Failed);
    let code = match class {
        ErrorClass::Interrupted => exit::INTERRUPTED,
        _ => exit::FAILURE,
    };
    (code, class.name())
}

/// Opens a store that must already exist (for listing and pruning).
fn open_dest(
    dest: &str,
    store: &store_args::StoreArgs,
) -> anyhow::Result<std::sync::Arc<dyn pgark_storage::ObjectStore>> {
    match pgark_storage::open_location_with(dest, false, &store.options()?) {
        Err(pgark_storage::StoreError::NotFound { location }) => {
            anyhow::bail!("{location} does not exist: check the path")
        }
        other => Ok(other?),
    }
}

/// The command-line definition as it runs: every option with its environment variable, and
/// the version saying which archive formats this pgark reads and writes.
fn cli_command() -> clap::Command {
    use pgark_archive::seal::ENCRYPTED_FORMAT_VERSION;
    use pgark_archive::{FORMAT_VERSION, OLDEST_FORMAT_VERSION};
    let version = format!(
        "{} (backup formats: reads {OLDEST_FORMAT_VERSION} to {ENCRYPTED_FORMAT_VERSION}, writes \
         {FORMAT_VERSION}, {ENCRYPTED_FORMAT_VERSION} when encrypted)",
        env!("CARGO_PKG_VERSION")
    );
    config::with_env_vars(Cli::command().version(version))
}

/// The command line, with every option also from its environment variable and the config file
/// (see `config`); on a usage error, what was printed and the exit code.
fn parse_command_line() -> Result<Cli, ExitCode> {
    let words: Vec<String> = std::env::args_os()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    let mut command = cli_command();
    if let Some(path) = config::config_path(&words) {
        command = config::apply_file(command, &path, &words).map_err(|e| {
            eprintln!("pgark: error: {e:#}");
            ExitCode::from(exit::USAGE)
        })?;
    }
    let parsed = command
        .try_get_matches_from(std::env::args_os())
        .and_then(|matches| Cli::from_arg_matches(&matches));
    parsed.map_err(|e| {
        let _ = e.print();
        ExitCode::from(if e.use_stderr() {
            exit::USAGE
        } else {
            exit::SUCCESS
        })
    })
}

/// One destination of an instance's (`dump --all`) — `None` if it was never written (a local
/// directory not created because the database's first dump failed).
fn open_instance_part(
    location: &str,
    store: &store_args::StoreArgs,
) -> anyhow::Result<Option<std::sync::Arc<dyn pgark_storage::ObjectStore>>> {
    match pgark_storage::open_location_with(location, false, &store.options()?) {
        Err(pgark_storage::StoreError::NotFound { .. }) => Ok(None),
        other => Ok(Some(other?)),
    }
}

/// SIGINT and SIGTERM request cancellation; the engines then stop and clean up.
fn watch_signals(handle: CancelHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::spawn(async move {
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::warn!(
                "cannot install signal handlers; SIGINT/SIGTERM will stop pgark without cleanup"
            );
            return;
        };
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::warn!("signal received: stopping and cleaning up");
        handle.cancel();
    });
}
