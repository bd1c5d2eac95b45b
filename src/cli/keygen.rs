use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::output::Output;

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Write the identity to this new file (mode 0600; never over an existing file) and print
    /// only its public key. Without it, the identity file's text is printed.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(args: KeygenArgs, output: &Output) -> anyhow::Result<()> {
    let (secret, public) = pgark_engine::generate_identity();
    let text = format!(
        "# created by pgark {}\n# public key: {public}\n{secret}\n",
        env!("CARGO_PKG_VERSION")
    );
    match &args.output {
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
            file.write_all(text.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            output.summary(&public);
        }
        None => output.summary(text.trim_end()),
    }
    Ok(())
}
