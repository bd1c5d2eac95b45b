//! Connection configuration, understood the way libpq understands it — the one place in pgark
//! where connection strings are read.
//!
//! tokio-postgres alone ignores `PGHOST`, `PGUSER`, `PGPASSWORD` and libpq's defaults, so a string
//! that works with psql could reach a different server, or none, through it. [`ConnConfig`]
//! resolves everything up front (string, then environment, then defaults) and the connect code
//! only reads the result.

mod conninfo;
mod defaults;
mod settings;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::PgError;
use defaults::Defaults;
use settings::{Key, Setting, Settings};

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

/// libpq's `sslmode`. Only parsed and stored here; what each mode requires of the transport is
/// decided at connect time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Try without TLS first, then with it.
    Allow,
    /// Try TLS first, then without it (libpq's default).
    #[default]
    Prefer,
    /// TLS, without checking the server certificate.
    Require,
    /// TLS, with a certificate signed by a trusted CA.
    VerifyCa,
    /// TLS, with a trusted certificate whose name matches the host.
    VerifyFull,
}

impl SslMode {
    /// The libpq spelling, e.g. `verify-full`.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the mode refuses a plaintext connection.
    pub fn requires_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }

    fn from_libpq(s: &str) -> Option<SslMode> {
        [
            SslMode::Disable,
            SslMode::Allow,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ]
        .into_iter()
        .find(|mode| mode.as_str() == s)
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
}

impl ConnConfig {
    /// Parses a URL or `key=value` connection string, filling what it leaves unset from the
    /// process environment (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`,
    /// `PGSSLMODE`, `PGAPPNAME`, `PGCONNECT_TIMEOUT`, `PGOPTIONS`) and then libpq's defaults.
    /// An empty string means "all defaults".
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
        settings.fill_from_env(env);
        Self::resolve(&settings, defaults)
    }

    /// Turns the gathered settings into checked values, applying defaults where a setting is
    /// absent or empty.
    fn resolve(settings: &Settings, defaults: &Defaults) -> Result<ConnConfig, PgError> {
        let hosts: Vec<Host> = settings
            .get(Key::Host)
            .map_or("", |s| s.value.as_str())
            .split(',')
            .map(|text| Host::from_setting(text, defaults))
            .collect();

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

        let connect_timeout = match settings.get(Key::ConnectTimeout) {
            Some(setting) if !setting.value.trim().is_empty() => connect_timeout(setting)?,
            _ => None,
        };
        let sslmode = match settings.get(Key::SslMode) {
            Some(setting) if !setting.value.is_empty() => SslMode::from_libpq(&setting.value)
                .ok_or_else(|| {
                    invalid(format!(
                        "invalid sslmode \"{}\" in {setting} (expected disable, allow, prefer, \
                         require, verify-ca or verify-full)",
                        setting.value
                    ))
                })?,
            _ => SslMode::default(),
        };

        Ok(ConnConfig {
            hosts,
            ports,
            user,
            password: settings.non_empty(Key::Password).map(str::to_owned),
            dbname,
            application_name,
            connect_timeout,
            sslmode,
            options: settings.non_empty(Key::Options).map(str::to_owned),
        })
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

    /// `None` waits indefinitely, like libpq's `connect_timeout=0`.
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
