//! Connection configuration, understood the way libpq understands it — the one place in pgark
//! where connection strings are read.
//!
//! tokio-postgres alone ignores `PGHOST`, `PGUSER`, `PGPASSWORD` and libpq's defaults, so a string
//! that works with psql could reach a different server, or none, through it. [`ConnConfig`]
//! resolves everything up front (string, then service file, then environment, then defaults) and
//! the connect code only reads the result. Files that are read per connection (`~/.pgpass`, TLS
//! certificates and keys) are only located here.

mod conninfo;
mod defaults;
mod service;
mod settings;
mod ssl;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::PgError;
use defaults::Defaults;
use settings::{Key, Setting, Settings};
pub use ssl::{RootCert, SslMode};

const DEFAULT_PORT: u16 = 5432;
const DEFAULT_APPLICATION_NAME: &str = "pgark";

/// Where a server listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A host name or IP address, reached over TCP.
    Tcp(String),
    /// A directory holding the server's Unix socket `.s.PGSQL.<port>`. libpq reads any host
    /// starting with `/` this way.
    Socket(PathBuf),
}

impl Host {
    fn from_setting(text: &str, defaults: &Defaults) -> Host {
        if text.is_empty() {
            Host::Socket(defaults.socket_dir.clone())
        } else if text.starts_with('/') {
            Host::Socket(PathBuf::from(text))
        } else {
            Host::Tcp(text.to_owned())
        }
    }
}

/// A fully resolved connection configuration.
///
/// Invariants: at least one host; either one port for all hosts or one per host; `user` and
/// `dbname` are non-empty. `Debug` and `Display` never show the password, so a config may be
/// logged or put in an error as is.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnConfig {
    hosts: Vec<Host>,
    ports: Vec<u16>,
    user: String,
    password: Option<String>,
    dbname: String,
    application_name: String,
    connect_timeout: Option<Duration>,
    sslmode: SslMode,
    options: Option<String>,
    /// One entry per host: the IP address to connect to instead of resolving the host name.
    hostaddrs: Vec<Option<IpAddr>>,
    sslrootcert: Option<RootCert>,
    sslcert: Option<PathBuf>,
    sslkey: Option<PathBuf>,
    passfile: Option<PathBuf>,
    /// The socket directory libpq treats as `localhost` when matching `.pgpass` lines.
    default_socket_dir: PathBuf,
    aws_iam: bool,
    role: Option<String>,
    tcp: TcpSettings,
    /// How long a session may wait for a server that sends nothing while data is expected (see
    /// [`ConnConfig::stall_timeout`]).
    stall_timeout: Option<Duration>,
}

/// How long one host's connection attempt (name lookup, TCP, TLS, startup) may take when
/// `connect_timeout` is not set: pgark's default, where libpq waits forever.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The default of [`ConnConfig::stall_timeout`].
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(300);

/// How a TCP connection notices a peer that went away without closing it (a host that lost
/// power, a dropped NAT entry): libpq's `keepalives*` and `tcp_user_timeout`, with defaults
/// that bound a dead peer to a few minutes where libpq leaves the system's (about two hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSettings {
    /// `keepalives=0` turns them off.
    pub keepalives: bool,
    /// Idle time before the first probe (`keepalives_idle`, default 60 s).
    pub idle: Duration,
    /// Between probes (`keepalives_interval`, default 10 s).
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped (`keepalives_count`, default 6).
    pub count: u32,
    /// How long sent data may stay unacknowledged (`tcp_user_timeout`, default 2 minutes).
    pub user_timeout: Duration,
}

impl Default for TcpSettings {
    fn default() -> Self {
        TcpSettings {
            keepalives: true,
            idle: Duration::from_secs(60),
            interval: Duration::from_secs(10),
            count: 6,
            user_timeout: Duration::from_secs(120),
        }
    }
}

impl ConnConfig {
    /// Parses a URL or `key=value` connection string, filling what it leaves unset from the
    /// service it names (`service=`, `PGSERVICE`), then the process environment (`PGHOST`,
    /// `PGHOSTADDR`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`,
    /// `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`, `PGAPPNAME`, `PGCONNECT_TIMEOUT`, `PGOPTIONS`,
    /// `PGPASSFILE`) and then libpq's defaults. An empty string means "all defaults".
    pub fn parse(s: &str) -> Result<ConnConfig, PgError> {
        Self::parse_with_env(s, &|name| std::env::var(name).ok())
    }

    /// Like [`parse`](Self::parse), reading environment variables through `env` instead of the
    /// process environment, so tests do not depend on (or change) it. The default socket
    /// directory is still chosen by looking at this machine.
    pub fn parse_with_env(
        s: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ConnConfig, PgError> {
        Self::parse_with(s, env, &Defaults::system(env))
    }

    fn parse_with(
        s: &str,
        env: &dyn Fn(&str) -> Option<String>,
        defaults: &Defaults,
    ) -> Result<ConnConfig, PgError> {
        let mut settings = conninfo::parse(s)?;
        service::apply(&mut settings, env, defaults)?;
        settings.fill_from_env(env);
        Self::resolve(&settings, defaults)
    }

    /// Turns the gathered settings into checked values, applying defaults where a setting is
    /// absent or empty.
    fn resolve(settings: &Settings, defaults: &Defaults) -> Result<ConnConfig, PgError> {
        let Endpoints {
            hosts,
            hostaddrs,
            ports,
        } = resolve_endpoints(settings, defaults)?;
        let (user, dbname, application_name) = resolve_names(settings, defaults)?;
        let connect_timeout = match settings.get(Key::ConnectTimeout) {
            Some(setting) if !setting.value.trim().is_empty() => connect_timeout(setting)?,
            // libpq waits forever; a run must not hang on a name that never resolves or a
            // server that accepts the connection and never answers the startup.
            _ => Some(DEFAULT_CONNECT_TIMEOUT),
        };
        let home_file = |name: &str| defaults.home_dir.as_ref().map(|home| home.join(name));
        let path_setting = |key: Key, default: Option<PathBuf>| {
            settings.non_empty(key).map(PathBuf::from).or(default)
        };
        let password = settings.non_empty(Key::Password).map(str::to_owned);
        let security = resolve_security(settings, defaults, password.is_some())?;
        Ok(ConnConfig {
            hosts,
            ports,
            user,
            password,
            dbname,
            application_name,
            connect_timeout,
            sslmode: security.sslmode,
            options: settings.non_empty(Key::Options).map(str::to_owned),
            hostaddrs,
            sslrootcert: security.sslrootcert,
            sslcert: path_setting(Key::SslCert, home_file(".postgresql/postgresql.crt")),
            sslkey: path_setting(Key::SslKeyFile, home_file(".postgresql/postgresql.key")),
            passfile: path_setting(Key::Passfile, home_file(".pgpass")),
            default_socket_dir: defaults.socket_dir.clone(),
            aws_iam: security.aws_iam,
            role: None,
            tcp: tcp_settings(settings)?,
            stall_timeout: Some(DEFAULT_STALL_TIMEOUT),
        })
    }

    /// The same connection, with every session switching to `role` (`SET ROLE`) right after
    /// connecting — like pg_dump's `--role`. `None` keeps the login role.
    pub fn with_role(mut self, role: Option<String>) -> ConnConfig {
        self.role = role;
        self
    }

    /// The same connection authenticating with an RDS IAM token (`aws_iam=1`), generated from the
    /// AWS credential chain for every connection attempt. Fails like `aws_iam=1` in the string
    /// would: a configured password or an sslmode weaker than `require` is refused.
    pub fn with_aws_iam(mut self) -> Result<ConnConfig, PgError> {
        if self.aws_iam {
            return Ok(self);
        }
        if self.password.is_some() {
            return Err(invalid(
                "--aws-iam-auth generates the password; remove the password from the connection \
                 string and PGPASSWORD",
            ));
        }
        match self.sslmode {
            SslMode::Prefer => self.sslmode = SslMode::Require,
            mode if mode.requires_tls() => {}
            weak => {
                return Err(invalid(format!(
                    "sslmode={weak} could send the IAM authentication token unencrypted; use \
                     sslmode=require or stronger (verify-full with the RDS CA bundle is \
                     recommended)"
                )));
            }
        }
        self.aws_iam = true;
        Ok(self)
    }

    /// The same server and credentials, another database — e.g. the maintenance database used to
    /// run `CREATE DATABASE` before restoring into it.
    pub fn with_dbname(&self, dbname: impl Into<String>) -> ConnConfig {
        ConnConfig {
            dbname: dbname.into(),
            ..self.clone()
        }
    }

    /// The hosts to try, in order.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Either one port for every host, or one per host; see [`endpoints`](Self::endpoints).
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// Each host with its port, in the order libpq tries them.
    pub fn endpoints(&self) -> impl Iterator<Item = (&Host, u16)> + '_ {
        self.hosts
            .iter()
            .enumerate()
            .map(|(i, host)| (host, self.port_at(i)))
    }

    fn port_at(&self, index: usize) -> u16 {
        let port = if self.ports.len() == 1 {
            self.ports.first()
        } else {
            self.ports.get(index)
        };
        port.copied().unwrap_or(DEFAULT_PORT)
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// Whether a password was given (in the string or `PGPASSWORD`); the password itself stays
    /// inside this crate.
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    pub(crate) fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    pub fn application_name(&self) -> &str {
        &self.application_name
    }

    /// TCP keepalives and the user timeout (see [`TcpSettings`]).
    pub fn tcp(&self) -> TcpSettings {
        self.tcp
    }

    /// How long a session waits for the next rows of a COPY (out or in) from a server that
    /// sends or takes nothing, before giving up on it. Keepalives cannot see this: a backend
    /// that is stopped (SIGSTOP, a hung storage device) still has a kernel that acknowledges
    /// them. `None` waits forever. Not a libpq parameter: pgark's own.
    pub fn stall_timeout(&self) -> Option<Duration> {
        self.stall_timeout
    }

    /// The same connection with another [`ConnConfig::stall_timeout`].
    pub fn with_stall_timeout(mut self, timeout: Option<Duration>) -> ConnConfig {
        self.stall_timeout = timeout;
        self
    }

    /// `None` waits indefinitely, like libpq's `connect_timeout=0`; unset, it is
    /// [`DEFAULT_CONNECT_TIMEOUT`].
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    pub fn sslmode(&self) -> SslMode {
        self.sslmode
    }

    /// Command-line options sent to the server at startup (`-c name=value ...`).
    pub fn options(&self) -> Option<&str> {
        self.options.as_deref()
    }

    /// The numeric address to connect to for the host at `index`, if `hostaddr` gave one.
    pub(crate) fn hostaddr_at(&self, index: usize) -> Option<IpAddr> {
        self.hostaddrs.get(index).copied().flatten()
    }

    /// Trusted CAs (`sslrootcert`, default `~/.postgresql/root.crt`).
    pub fn sslrootcert(&self) -> Option<&RootCert> {
        self.sslrootcert.as_ref()
    }

    /// The client certificate offered when the server asks for one (`sslcert`, default
    /// `~/.postgresql/postgresql.crt`; skipped when the file does not exist).
    pub fn sslcert(&self) -> Option<&Path> {
        self.sslcert.as_deref()
    }

    /// The client certificate's private key (`sslkey`, default `~/.postgresql/postgresql.key`).
    pub fn sslkey(&self) -> Option<&Path> {
        self.sslkey.as_deref()
    }

    /// The password file consulted when no password is given (`passfile`, `PGPASSFILE`, default
    /// `~/.pgpass`).
    pub fn passfile(&self) -> Option<&Path> {
        self.passfile.as_deref()
    }

    /// The host name `.pgpass` lines are matched against for `host`: libpq's rule turns the
    /// default socket directory into `localhost`, any other socket into its path.
    pub(crate) fn pgpass_host(&self, host: &Host) -> String {
        match host {
            Host::Tcp(name) => name.clone(),
            Host::Socket(dir) if *dir == self.default_socket_dir => "localhost".to_owned(),
            Host::Socket(dir) => dir.to_string_lossy().into_owned(),
        }
    }

    /// Whether the password is an RDS IAM token generated per connection.
    pub fn aws_iam(&self) -> bool {
        self.aws_iam
    }

    /// The role every session switches to after connecting.
    pub fn role(&self) -> Option<&str> {
        self.role.as_deref()
    }

    /// The password-free URL form used in logs and errors: `postgres://user@host:port/dbname`.
    pub fn redacted(&self) -> String {
        self.to_string()
    }

    /// The redacted URL of one endpoint, naming exactly what a connection attempt tried.
    pub(crate) fn endpoint_url(&self, host: &Host, port: u16) -> String {
        let mut out = String::new();
        self.write_url(&mut out, std::iter::once((host, port)))
            .map_or_else(|_| self.redacted(), |()| out)
    }

    fn write_url<'a>(
        &self,
        out: &mut dyn fmt::Write,
        endpoints: impl Iterator<Item = (&'a Host, u16)>,
    ) -> fmt::Result {
        out.write_str("postgres://")?;
        write_encoded(out, &self.user, b"")?;
        out.write_char('@')?;
        for (i, (host, port)) in endpoints.enumerate() {
            if i > 0 {
                out.write_char(',')?;
            }
            match host {
                Host::Tcp(name) if name.contains(':') => {
                    out.write_char('[')?;
                    write_encoded(out, name, b":")?;
                    out.write_char(']')?;
                }
                Host::Tcp(name) => write_encoded(out, name, b"")?,
                Host::Socket(dir) => write_encoded(out, &dir.to_string_lossy(), b"")?,
            }
            write!(out, ":{port}")?;
        }
        out.write_char('/')?;
        write_encoded(out, &self.dbname, b"")
    }
}

impl FromStr for ConnConfig {
    type Err = PgError;

    fn from_str(s: &str) -> Result<ConnConfig, PgError> {
        ConnConfig::parse(s)
    }
}

/// The redacted URL form; parsing it back gives the same hosts, ports, user and database.
impl fmt::Display for ConnConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_url(f, self.endpoints())
    }
}

impl fmt::Debug for ConnConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnConfig")
            .field("hosts", &self.hosts)
            .field("ports", &self.ports)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| Redacted))
            .field("dbname", &self.dbname)
            .field("application_name", &self.application_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("sslmode", &self.sslmode)
            .field("options", &self.options)
            .field("hostaddrs", &self.hostaddrs)
            .field("sslrootcert", &self.sslrootcert)
            .field("sslcert", &self.sslcert)
            .field("sslkey", &self.sslkey)
            .field("passfile", &self.passfile)
            .field("aws_iam", &self.aws_iam)
            .field("role", &self.role)
            .finish()
    }
}

/// Stands in for a secret in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"********\"")
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `keep`.
fn write_encoded(out: &mut dyn fmt::Write, s: &str, keep: &[u8]) -> fmt::Result {
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.write_char(char::from(b))?;
        } else {
            write!(out, "%{b:02X}")?;
        }
    }
    Ok(())
}

/// A TCP port as libpq accepts it: an integer from 1 to 65535, blanks around it allowed.
pub(crate) fn parse_port(text: &str) -> Option<u16> {
    text.trim().parse::<u16>().ok().filter(|&port| port != 0)
}

/// A boolean option as PostgreSQL spells them.
fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Some(true),
        "0" | "false" | "off" | "no" | "" => Some(false),
        _ => None,
    }
}

/// `keepalives*` and `tcp_user_timeout`: whole numbers, as libpq takes them (seconds; a count;
/// milliseconds); an unset or zero value keeps pgark's default, where libpq would keep the
/// system's.
/// The servers to try, as the connection settings give them.
struct Endpoints {
    hosts: Vec<Host>,
    /// Empty, or one numeric address per host.
    hostaddrs: Vec<Option<IpAddr>>,
    /// One port for every host, or one per host.
    ports: Vec<u16>,
}

/// The hosts (with their numeric addresses, if given) and ports, checked to match up as libpq
/// matches them.
fn resolve_endpoints(settings: &Settings, defaults: &Defaults) -> Result<Endpoints, PgError> {
    let hostaddrs: Vec<Option<IpAddr>> = match settings.get(Key::Hostaddr) {
        Some(setting) if !setting.value.is_empty() => setting
            .value
            .split(',')
            .map(|text| {
                let text = text.trim();
                if text.is_empty() {
                    return Ok(None);
                }
                text.parse().map(Some).map_err(|_| {
                    invalid(format!(
                        "invalid hostaddr \"{text}\" in {setting} (expected a numeric IPv4 or \
                             IPv6 address; put host names in host=)"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
        _ => Vec::new(),
    };
    let host_text = settings.get(Key::Host).map_or("", |s| s.value.as_str());
    let hosts: Vec<Host> = if host_text.is_empty() && !hostaddrs.is_empty() {
        // libpq: hostaddr alone names the servers; each is reached (and named) by address.
        hostaddrs
            .iter()
            .map(|addr| match addr {
                Some(addr) => Host::Tcp(addr.to_string()),
                None => Host::Socket(defaults.socket_dir.clone()),
            })
            .collect()
    } else {
        host_text
            .split(',')
            .map(|text| Host::from_setting(text, defaults))
            .collect()
    };
    if !hostaddrs.is_empty() && hostaddrs.len() != hosts.len() {
        return Err(invalid(format!(
            "could not match {} host names to {} hostaddr values",
            hosts.len(),
            hostaddrs.len()
        )));
    }

    let ports = match settings.get(Key::Port) {
        None => vec![DEFAULT_PORT],
        Some(setting) => setting
            .value
            .split(',')
            .map(|text| {
                if text.trim().is_empty() {
                    Ok(DEFAULT_PORT)
                } else {
                    parse_port(text).ok_or_else(|| {
                        invalid(format!(
                            "invalid port \"{text}\" in {setting} (expected a number from 1 \
                                 to 65535)"
                        ))
                    })
                }
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    if ports.len() > 1 && ports.len() != hosts.len() {
        return Err(invalid(format!(
            "could not match {} port numbers to {} hosts",
            ports.len(),
            hosts.len()
        )));
    }

    Ok(Endpoints {
        hosts,
        hostaddrs,
        ports,
    })
}

/// The user (the operating-system user by default), the database (the user's name by default)
/// and the application name.
fn resolve_names(
    settings: &Settings,
    defaults: &Defaults,
) -> Result<(String, String, String), PgError> {
    let user = match settings.non_empty(Key::User) {
        Some(user) => user.to_owned(),
        None => defaults.os_user.clone().ok_or_else(|| {
            invalid(
                "could not determine the operating-system user name to connect as; set \
                     user= in the connection string or PGUSER",
            )
        })?,
    };
    let dbname = settings
        .non_empty(Key::Dbname)
        .map_or_else(|| user.clone(), str::to_owned);
    let application_name = settings
        .non_empty(Key::ApplicationName)
        .or_else(|| settings.non_empty(Key::FallbackApplicationName))
        .unwrap_or(DEFAULT_APPLICATION_NAME)
        .to_owned();

    Ok((user, dbname, application_name))
}

/// The TLS settings and IAM authentication, resolved together because each constrains the
/// other.
struct Security {
    sslmode: SslMode,
    sslrootcert: Option<RootCert>,
    aws_iam: bool,
}

/// The sslmode, root certificate and IAM authentication: `sslrootcert=system` means
/// `verify-full` and refuses weaker modes (as libpq does); an IAM token is a bearer credential,
/// so IAM authentication needs TLS and no configured password.
fn resolve_security(
    settings: &Settings,
    defaults: &Defaults,
    has_password: bool,
) -> Result<Security, PgError> {
    let home_file = |name: &str| defaults.home_dir.as_ref().map(|home| home.join(name));
    let explicit_sslmode = match settings.get(Key::SslMode) {
        Some(setting) if !setting.value.is_empty() => {
            Some(SslMode::from_libpq(&setting.value).ok_or_else(|| {
                invalid(format!(
                    "invalid sslmode \"{}\" in {setting} (expected disable, allow, prefer, \
                         require, verify-ca or verify-full)",
                    setting.value
                ))
            })?)
        }
        _ => None,
    };

    let sslrootcert = match settings.non_empty(Key::SslRootCert) {
        Some("system") => Some(RootCert::System),
        Some(path) => Some(RootCert::File(PathBuf::from(path))),
        None => home_file(".postgresql/root.crt").map(RootCert::File),
    };
    let aws_iam = match settings.get(Key::AwsIam) {
        Some(setting) => parse_bool(&setting.value).ok_or_else(|| {
            invalid(format!(
                "invalid value \"{}\" for {setting} (expected 1 or 0)",
                setting.value
            ))
        })?,
        None => false,
    };

    // libpq: sslrootcert=system means verify-full, and refuses anything weaker.
    let mut sslmode = explicit_sslmode.unwrap_or_default();
    if sslrootcert == Some(RootCert::System) {
        match explicit_sslmode {
            None => sslmode = SslMode::VerifyFull,
            Some(SslMode::VerifyFull) => {}
            Some(weak) => {
                return Err(invalid(format!(
                    "weak sslmode \"{weak}\" may not be used with sslrootcert=system (use \
                         \"verify-full\")"
                )));
            }
        }
    }
    if aws_iam {
        if has_password {
            return Err(invalid(
                "aws_iam=1 (--aws-iam-auth) generates the password; remove the password from \
                     the connection string and PGPASSWORD",
            ));
        }
        // An IAM token is a bearer credential: never send it unencrypted.
        match explicit_sslmode {
            None => sslmode = sslmode.max_with(SslMode::Require),
            Some(mode) if mode.requires_tls() => {}
            Some(weak) => {
                return Err(invalid(format!(
                    "sslmode={weak} could send the IAM authentication token unencrypted; \
                         use sslmode=require or stronger (verify-full with the RDS CA bundle \
                         is recommended)"
                )));
            }
        }
    }

    Ok(Security {
        sslmode,
        sslrootcert,
        aws_iam,
    })
}

fn tcp_settings(settings: &Settings) -> Result<TcpSettings, PgError> {
    let mut tcp = TcpSettings::default();
    let number = |key: Key| -> Result<Option<u64>, PgError> {
        match settings.non_empty(key) {
            None => Ok(None),
            Some(text) => text
                .trim()
                .parse::<u64>()
                .map(|n| Some(n).filter(|&n| n > 0))
                .map_err(|_| {
                    invalid(format!(
                        "invalid {} \"{text}\" (expected a whole number)",
                        key.name()
                    ))
                }),
        }
    };
    if let Some(text) = settings.non_empty(Key::Keepalives) {
        tcp.keepalives = match text.trim() {
            "1" => true,
            "0" => false,
            _ => {
                return Err(invalid(format!(
                    "invalid keepalives \"{text}\" (expected 0 or 1)"
                )));
            }
        };
    }
    if let Some(seconds) = number(Key::KeepalivesIdle)? {
        tcp.idle = Duration::from_secs(seconds);
    }
    if let Some(seconds) = number(Key::KeepalivesInterval)? {
        tcp.interval = Duration::from_secs(seconds);
    }
    if let Some(count) = number(Key::KeepalivesCount)? {
        tcp.count = u32::try_from(count).unwrap_or(u32::MAX);
    }
    if let Some(ms) = number(Key::TcpUserTimeout)? {
        tcp.user_timeout = Duration::from_millis(ms);
    }
    Ok(tcp)
}

/// libpq's rules: whole seconds; zero or negative waits forever; 1 is raised to 2, the minimum.
fn connect_timeout(setting: &Setting) -> Result<Option<Duration>, PgError> {
    let seconds: i64 = setting.value.trim().parse().map_err(|_| {
        invalid(format!(
            "invalid connect_timeout \"{}\" in {setting} (expected whole seconds)",
            setting.value
        ))
    })?;
    Ok(u64::try_from(seconds)
        .ok()
        .filter(|&s| s > 0)
        .map(|s| Duration::from_secs(s.max(2))))
}

fn invalid(reason: impl Into<String>) -> PgError {
    PgError::InvalidConfig {
        reason: reason.into(),
    }
}
