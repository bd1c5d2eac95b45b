//! The values libpq uses when neither the connection string nor the environment sets an option.
//! They depend on the machine (which socket directory exists, who is running us), so they are
//! gathered in one struct that tests can build by hand.

use std::path::{Path, PathBuf};

/// Where Debian's and Ubuntu's libpq (and their server packages) put the socket.
const DEBIAN_SOCKET_DIR: &str = "/var/run/postgresql";
/// Upstream libpq's compiled-in default.
const UPSTREAM_SOCKET_DIR: &str = "/tmp";
/// Debian's libpq `sysconfdir`, where it looks for the system-wide `pg_service.conf`.
const DEBIAN_SYSCONF_DIR: &str = "/etc/postgresql-common";

/// Machine-dependent defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Defaults {
    /// The socket directory used for an empty or absent host.
    pub(crate) socket_dir: PathBuf,
    /// The operating-system user name, the default `user` (and through it `dbname`); `None` when
    /// it cannot be found.
    pub(crate) os_user: Option<String>,
    /// The home directory holding `.pgpass`, `.pg_service.conf` and `.postgresql/` (TLS files);
    /// `None` when it cannot be found.
    pub(crate) home_dir: Option<PathBuf>,
    /// Where the system-wide `pg_service.conf` lives when `PGSYSCONFDIR` is not set.
    pub(crate) sysconf_dir: Option<PathBuf>,
}

impl Defaults {
    /// Looks the defaults up on this machine: the Debian socket directory if it exists (a
    /// Debian-built libpq would use it), else `/tmp`; the user from `USER` or `LOGNAME` in `env`,
    /// else from `/etc/passwd` by our uid (containers often set neither variable).
    pub(crate) fn system(env: &dyn Fn(&str) -> Option<String>) -> Defaults {
        let socket_dir = if Path::new(DEBIAN_SOCKET_DIR).is_dir() {
            DEBIAN_SOCKET_DIR
        } else {
            UPSTREAM_SOCKET_DIR
        };
        let os_user = ["USER", "LOGNAME"]
            .into_iter()
            .find_map(|var| env(var).filter(|name| !name.is_empty()))
            .or_else(|| passwd_entry().map(|(name, _)| name));
        let home_dir = env("HOME")
            .filter(|home| !home.is_empty())
            .map(PathBuf::from)
            .or_else(|| passwd_entry().map(|(_, home)| home));
        Defaults {
            socket_dir: PathBuf::from(socket_dir),
            os_user,
            home_dir,
            sysconf_dir: Some(PathBuf::from(DEBIAN_SYSCONF_DIR)).filter(|dir| dir.is_dir()),
        }
    }
}

/// The name and home directory of our effective uid in `/etc/passwd`. The owner of `/proc/self`
/// is the effective uid, which spares us `getpwuid` (and the `unsafe` it would need).
#[cfg(target_os = "linux")]
fn passwd_entry() -> Option<(String, PathBuf)> {
    use std::os::unix::fs::MetadataExt;

    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let entry_uid: u32 = fields.nth(1)?.parse().ok()?;
        let home = fields.nth(2)?;
        (entry_uid == uid && !name.is_empty()).then(|| (name.to_owned(), PathBuf::from(home)))
    })
}

#[cfg(not(target_os = "linux"))]
fn passwd_entry() -> Option<(String, PathBuf)> {
    None
}
