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
    /// In the managed profile ([`crate::profile`]) the database and everything in it end up the
    /// admin's, as if the admin had restored them there: the script runs as a superuser made for
    /// this load (the corpora's scripts were written for one: pagila changes the `public`
    /// schema, postgrest comments on `plpgsql`), which then hands everything it owns to the
    /// admin and is dropped.
    pub async fn load_corpus(&self, name: &str, db: &str) -> TestDb {
        if crate::profile() == crate::Profile::Superuser {
            self.run_load_script(name, db, crate::profile().user())
                .await;
            return self.database(db);
        }
        let loader = crate::unique_name("pgark_corpus_loader");
        let postgres = self.database("postgres").as_superuser();
        postgres
            .execute(&format!("CREATE ROLE {loader} SUPERUSER LOGIN"))
            .await;
        self.run_load_script(name, db, &loader).await;
        let admin = crate::profile().managed_admin();
        self.database(db)
            .as_superuser()
            .execute(&format!(
                "REASSIGN OWNED BY {loader} TO {admin}; DROP OWNED BY {loader};"
            ))
            .await;
        postgres
            .execute(&format!(
                "ALTER DATABASE \"{db}\" OWNER TO {admin}; DROP ROLE {loader};"
            ))
            .await;
        self.database(db)
    }

    /// Runs `load.sh NAME DB` as `user`.
    async fn run_load_script(&self, name: &str, db: &str, user: &str) {
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
            .envs(self.libpq_env_as(user))
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
    }
}
