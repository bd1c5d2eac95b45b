//! Shell integration generated from the command-line definition itself: completions for bash,
//! zsh and fish (`pgark completions SHELL`) and man pages (`pgark man DIR`), so that neither can
//! fall out of step with the options. `scripts/install.sh` puts them where shells and `man` look.

use std::path::PathBuf;

use clap::{Args, Command};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write the pages into (created if missing): pgark.1 and pgark-COMMAND.1.
    dir: PathBuf,
}

/// Prints the completion script for `args.shell` on stdout.
pub fn completions(args: CompletionsArgs, mut command: Command) -> anyhow::Result<()> {
    clap_complete::generate(args.shell, &mut command, "pgark", &mut std::io::stdout());
    Ok(())
}

/// Writes one man page for pgark and one for each command into `args.dir`.
pub fn man(args: ManArgs, command: Command) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", args.dir.display()))?;
    let mut written = Vec::new();
    let mut write = |name: String, page: Command| -> anyhow::Result<()> {
        let path = args.dir.join(format!("{name}.1"));
        let mut bytes = Vec::new();
        clap_mangen::Man::new(page).render(&mut bytes)?;
        std::fs::write(&path, bytes)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        written.push(path);
        Ok(())
    };
    let command = command.name("pgark");
    for sub in command.get_subcommands() {
        let name = format!("pgark-{}", sub.get_name());
        write(name.clone(), sub.clone().name(name))?;
    }
    write("pgark".to_owned(), command)?;
    Ok(written)
}
