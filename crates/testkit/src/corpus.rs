//! The shared real-world corpora (`../shared/corpora`, loaded by its `load.sh NAME DB`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use crate::bin::find_in;
use crate::db::TestDb;
use crate::process::{clear_pg_env, describe_output};
use crate::server::PgServer;

/// The corpora directory: `$PGARK_CORPORA`, else `shared/corpora` beside the workspace
/// (`<workspace>/../shared/corpora`). Panics if it does not exist.
pub fn corpora_dir() -> PathBuf {
    let (dir, source) = match std::env::var_os("PGARK_CORPORA") {
        Some(dir) => (PathBuf::from(dir), "PGARK_CORPORA"),
        None => (
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora"),
            "the default location beside the workspace",
        ),
    };
    match dir.canonicalize() {
        Ok(dir) if dir.join("load.sh").is_file() => dir,
        _ => panic!(
            "corpora directory {} ({source}) does not exist or has no load.sh. Set PGARK_CORPORA \
             to the directory holding the corpora and their load.sh.",
            dir.display()
        ),
    }
}

impl PgServer {
    /// Creates database `db` and loads corpus `name` into it, with `<corpora>/load.sh NAME DB`
    /// (which uses `createdb` and `psql`). Panics with the script's output if it fails.
    ///
    /// It runs as the test profile's role ([`crate::profile`]): in the managed profile the
    /// database and everything in it are the admin's, and whatever needs a superuser fails as it
    /// would on a managed service.
    pub async fn load_corpus(&self, name: &str, db: &str) -> TestDb {
        let script = corpora_dir().join("load.sh");
        // The client programs: those on PATH first, else those beside the server binaries.
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        dirs.push(self.bin_dir().to_owned());
        let path: OsString = std::env::join_paths(dirs)
            .unwrap_or_else(|e| panic!("cannot build a PATH for load.sh: {e}"));
        for program in ["psql", "createdb"] {
            if find_in(&path, program).is_none() {
                panic!(
                    "{program} not found on PATH or in {}: load.sh needs the PostgreSQL client \
                     programs. Install them with `apt-get install -y postgresql-client`.",
                    self.bin_dir().display()
                );
            }
        }

        let mut cmd = Command::new("bash");
        clear_pg_env(&mut cmd);
        cmd.arg(&script)
            .args([name, db])
            .envs(self.libpq_env())
            .env("PATH", &path);
        let output = tokio::process::Command::from(cmd)
            .kill_on_drop(true)
            .output()
            .await
            .unwrap_or_else(|e| panic!("could not run bash {}: {e}", script.display()));
        if !output.status.success() {
            panic!(
                "loading corpus {name:?} into database {db:?} failed: bash {} {name} {db} exited \
                 with {}\n{}",
                script.display(),
                output.status,
                describe_output(&output)
            );
        }
        self.database(db)
    }
}
