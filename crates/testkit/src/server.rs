//! Starting, sharing and stopping test servers.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tokio_postgres::NoTls;

use crate::bin::find_bin_dir;
use crate::config::{PASSWORD_ROLE, append_conf, write_conf, write_hba, write_private_file};
use crate::db::{TestDb, conninfo, unique_name};
use crate::process::{RunAs, run};
use crate::profile::{managed_roles_sql, profile};
use crate::watchdog::Watchdog;

/// The port of servers that listen on their private socket only (the socket directory is ours
/// alone, so any fixed port is free).
const SOCKET_ONLY_PORT: u16 = 5432;

/// How many ports a TCP server tries before giving up (another process may take the free port we
/// picked before the server binds it).
const TCP_PORT_ATTEMPTS: usize = 5;

/// Unix socket paths longer than this do not fit in `sockaddr_un` (108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The test process's shared server. Never dropped: the watchdog stops it when the process exits.
/// A failed start is remembered, so every test reports the same cause instead of retrying initdb.
static SHARED: OnceLock<Result<PgServer, String>> = OnceLock::new();

/// The server shared by all tests of this process, started on first use.
///
/// Callable from inside a tokio runtime (the first call blocks while the server starts). Panics
/// if the server cannot be started, saying why.
#[track_caller]
pub fn server() -> &'static PgServer {
    match SHARED.get_or_init(|| PgServer::try_start(&ServerOptions::default())) {
        Ok(server) => server,
        Err(e) => panic!("{e}"),
    }
}

/// Extra settings for a dedicated server ([`PgServer::start`]).
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Lines appended to `postgresql.conf` after the test kit's own (so they override them), e.g.
    /// `"ssl = on"`.
    pub conf: Vec<String>,
    /// Lines placed at the top of `pg_hba.conf`, before the defaults (so they take precedence),
    /// e.g. `"hostssl all all 127.0.0.1/32 scram-sha-256"`.
    pub hba: Vec<String>,
    /// Files written into the data directory before start, readable by the server only (mode
    /// 0600), as (name relative to the data directory, contents) — e.g. `server.crt` and
    /// `server.key` for `ssl = on`, which the server finds there by default.
    pub files: Vec<(String, Vec<u8>)>,
    /// Also listen on TCP at `127.0.0.1:`[`PgServer::port`] (a free port), with the same default
    /// authentication as the socket: SCRAM for members of `pgark_password_users`, trust otherwise.
    pub tcp: bool,
    /// The server binaries to use instead of `PGARK_PG_BIN` or the installed ones (a test that
    /// needs two versions at once).
    pub bin_dir: Option<PathBuf>,
}

/// A running PostgreSQL server in a temporary directory, reachable as the superuser `postgres`
/// over a private Unix socket (and over TCP on 127.0.0.1 if asked for).
///
/// Dropping it stops the server and removes its directory; so does the end of the test process.
#[derive(Debug)]
pub struct PgServer {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_path: PathBuf,
    port: u16,
    version_num: i32,
    run_as: RunAs,
    /// Stops the server and removes its directory when dropped or when the process ends.
    #[expect(
        dead_code,
        reason = "held only for its Drop and for the pipe it keeps open"
    )]
    watchdog: Watchdog,
}

impl PgServer {
    /// Starts a dedicated server with `options`. Panics if it cannot be started, saying why.
    #[track_caller]
    pub fn start(options: ServerOptions) -> PgServer {
        match Self::try_start(&options) {
            Ok(server) => server,
            Err(e) => panic!("{e}"),
        }
    }

    fn try_start(options: &ServerOptions) -> Result<PgServer, String> {
        let bin_dir = match &options.bin_dir {
            Some(dir) => dir.clone(),
            None => find_bin_dir()?,
        };
        let run_as = RunAs::detect()?;
        let dir = make_server_dir()?;
        // From here on the watchdog owns the directory: any early return drops it, which stops
        // whatever was started and removes the directory.
        let data_dir = dir.join("data");
        let socket_dir = dir.join("sock");
        let log_path = dir.join("server.log");
        let watchdog = Watchdog::spawn(&dir, &bin_dir.join("pg_ctl"), &data_dir, run_as)?;

        std::fs::create_dir(&socket_dir)
            .map_err(|e| format!("could not create {}: {e}", socket_dir.display()))?;
        run_as.give(&dir)?;
        run_as.check_access(&bin_dir, &dir)?;

        let mut initdb = run_as.command(&bin_dir.join("initdb"), &dir);
        initdb.arg("-D").arg(&data_dir).args([
            "-U",
            profile().superuser(),
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        run(&mut initdb, "initialize a test cluster with initdb")?;

        for (name, contents) in &options.files {
            write_private_file(&data_dir.join(name), contents, run_as)?;
        }
        write_hba(&data_dir, options)?;

        let mut port = if options.tcp {
            free_tcp_port()?
        } else {
            SOCKET_ONLY_PORT
        };
        write_conf(&data_dir, &socket_dir, port, options)?;
        let mut attempt = 1;
        loop {
            let mut pg_ctl = run_as.command(&bin_dir.join("pg_ctl"), &dir);
            pg_ctl
                .arg("-D")
                .arg(&data_dir)
                .arg("-l")
                .arg(&log_path)
                .args(["-w", "-t", "120", "start"]);
            match run(&mut pg_ctl, "start the test server with pg_ctl") {
                Ok(_) => break,
                Err(e) => {
                    let log = log_tail(&log_path);
                    let port_taken = log.contains("could not bind")
                        || log.contains("could not create any TCP/IP sockets");
                    if options.tcp && port_taken && attempt < TCP_PORT_ATTEMPTS {
                        attempt += 1;
                        port = free_tcp_port()?;
                        append_conf(&data_dir, &format!("port = {port}\n"))?;
                        continue;
                    }
                    return Err(format!(
                        "{e}\n--- server log {} (tail) ---\n{log}",
                        log_path.display()
                    ));
                }
            }
        }

        let version_num = bootstrap(&socket_dir, port).map_err(|e| {
            format!(
                "the test server started but could not be set up: {e}\n--- server log {} \
                 (tail) ---\n{}",
                log_path.display(),
                log_tail(&log_path)
            )
        })?;

        Ok(PgServer {
            bin_dir,
            data_dir,
            socket_dir,
            log_path,
            port,
            version_num,
            run_as,
            watchdog,
        })
    }

    /// The directory of the server binaries used: `$PGARK_PG_BIN` if set, else the newest
    /// `/usr/lib/postgresql/*/bin`, else that of `initdb` on `PATH`. It also holds `pg_dump`,
    /// `psql` etc. when the installation has them.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The directory of the server's Unix socket (the libpq `host`).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The server's port: part of the socket's name, and its TCP port if it listens on TCP.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log file, for diagnosing failures.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The server's `server_version_num`, e.g. 150014 for 15.14.
    pub fn version_num(&self) -> i32 {
        self.version_num
    }

    /// Whether the server process runs as the `postgres` system user rather than as the test
    /// process's user (the case when the tests run as root); files the server must read, such as
    /// certificates, must then be readable by that user.
    pub fn runs_as_postgres_user(&self) -> bool {
        self.run_as.is_server_user()
    }

    /// A libpq key=value connection string for `dbname` over the socket, as the test profile's
    /// role ([`crate::profile`]).
    pub fn url(&self, dbname: &str) -> String {
        conninfo(&self.socket_dir, self.port, dbname, profile().user())
    }

    /// The libpq environment (`PGHOST`, `PGPORT`, `PGUSER`) that points `psql`, `pg_dump` or a
    /// script at this server as the test profile's role.
    pub fn libpq_env(&self) -> Vec<(String, String)> {
        self.libpq_env_as(profile().user())
    }

    /// [`PgServer::libpq_env`] as `user`.
    pub fn libpq_env_as(&self, user: &str) -> Vec<(String, String)> {
        vec![
            (
                "PGHOST".to_owned(),
                self.socket_dir.to_string_lossy().into_owned(),
            ),
            ("PGPORT".to_owned(), self.port.to_string()),
            ("PGUSER".to_owned(), user.to_owned()),
        ]
    }

    /// A handle to the existing (or yet to be created) database `name`; nothing is checked.
    pub fn database(&self, name: &str) -> TestDb {
        TestDb::new(name, &self.socket_dir, self.port, &self.log_path)
    }

    /// Installs the extension whose control and script files are in `dir` into this server's
    /// extension directory (`SHAREDIR/extension`, as the server reports it), so that
    /// `CREATE EXTENSION` finds it. Each file is written beside its destination and renamed into
    /// place, so that test processes installing the same files at once never see half of one.
    /// Panics, saying why, if the directory is not writable.
    pub async fn install_extension(&self, dir: &Path) {
        let client = self.database("postgres").as_superuser().client().await;
        let row = client
            .query_one(
                "SELECT setting FROM pg_catalog.pg_config WHERE name = 'SHAREDIR'",
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("cannot read the test server's SHAREDIR: {e}"));
        let target = Path::new(&row.get::<_, String>(0)).join("extension");
        let entries = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot read extension files in {}: {e}", dir.display()));
        for entry in entries {
            let source = entry
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
                .path();
            let Some(file_name) = source.file_name() else {
                continue;
            };
            let contents = std::fs::read(&source)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", source.display()));
            let destination = target.join(file_name);
            if std::fs::read(&destination).is_ok_and(|current| current == contents) {
                continue;
            }
            let staged = target.join(format!(
                ".{}.{}",
                file_name.to_string_lossy(),
                std::process::id()
            ));
            std::fs::write(&staged, &contents)
                .and_then(|()| std::fs::rename(&staged, &destination))
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot install the test extension file {} into {}: {e}\nThe test \
                         server's extension directory must be writable by the tests (run them \
                         as root, as CI does, or point PGARK_PG_BIN at a server installation \
                         you own)",
                        source.display(),
                        target.display()
                    )
                });
        }
    }

    /// Creates a new empty database named [`unique_name`]`(prefix)`, from `template0` in UTF8,
    /// as the test profile's role (which then owns it). Panics on failure.
    pub async fn create_database(&self, prefix: &str) -> TestDb {
        let db = self.database(&unique_name(prefix));
        // The name is a plain lower-case identifier (see unique_name), so quoting is trivial.
        let sql = format!(
            "CREATE DATABASE \"{}\" TEMPLATE template0 ENCODING 'UTF8'",
            db.name()
        );
        self.database("postgres").execute(&sql).await;
        db
    }
}

/// Creates the server's private temporary directory, short enough for a socket path inside it.
fn make_server_dir() -> Result<PathBuf, String> {
    let mut base = std::env::temp_dir();
    // "<dir>/sock/.s.PGSQL.NNNNN" must fit in a socket address; fall back to /tmp if TMPDIR is deep.
    if base.as_os_str().len() + "/pgark-pg-XXXXXX/sock/.s.PGSQL.65535".len() > MAX_SOCKET_PATH {
        base = PathBuf::from("/tmp");
    }
    tempfile::Builder::new()
        .prefix("pgark-pg-")
        .tempdir_in(&base)
        .map(tempfile::TempDir::keep)
        .map_err(|e| {
            format!(
                "could not create a temporary directory for a test server in {}: {e}",
                base.display()
            )
        })
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_tcp_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("could not find a free TCP port on 127.0.0.1: {e}"))
}

/// The last lines of the server log, or why it cannot be read.
fn log_tail(log_path: &Path) -> String {
    const LINES: usize = 40;
    match std::fs::read(log_path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(LINES)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", log_path.display()),
    }
}

/// Creates the password role and the managed roles ([`crate::profile`]) and reads
/// `server_version_num`, on a runtime of its own in a thread of its own, so that starting a
/// server works both inside and outside a tokio runtime.
fn bootstrap(socket_dir: &Path, port: u16) -> Result<i32, String> {
    let mut config = tokio_postgres::Config::new();
    config
        .host_path(socket_dir)
        .port(port)
        .user(profile().superuser())
        .dbname("postgres");
    let thread = std::thread::spawn(move || -> Result<i32, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("could not build a tokio runtime: {e}"))?;
        runtime.block_on(async {
            let (client, connection) = config
                .connect(NoTls)
                .await
                .map_err(|e| format!("could not connect as {}: {e}", profile().superuser()))?;
            let connection = tokio::spawn(connection);
            client
                .batch_execute(&format!("CREATE ROLE {PASSWORD_ROLE} NOLOGIN"))
                .await
                .map_err(|e| format!("could not create role {PASSWORD_ROLE}: {e}"))?;
            let version: String = client
                .query_one("SELECT current_setting('server_version_num')", &[])
                .await
                .map_err(|e| format!("could not read server_version_num: {e}"))?
                .get(0);
            let version_num: i32 = version
                .parse()
                .map_err(|e| format!("server_version_num {version:?} is not a number: {e}"))?;
            client
                .batch_execute(&managed_roles_sql(version_num))
                .await
                .map_err(|e| format!("could not create the managed-service roles: {e}"))?;
            drop(client);
            let _ = connection.await;
            Ok(version_num)
        })
    });
    thread
        .join()
        .unwrap_or_else(|_| Err("the set-up thread panicked".to_owned()))
}
