//! The raw, unvalidated layer of a connection configuration: which libpq options were given, with
//! what text, and where each came from.
//!
//! Resolution fills unset options layer by layer — connection string first, then the service
//! named by `service=`/`PGSERVICE` in `pg_service.conf`, then the `PG*` environment variables —
//! exactly as libpq does. `~/.pgpass` is not a layer because it is consulted per host at connect
//! time.

use std::fmt;
use std::path::PathBuf;

use crate::PgError;

/// A libpq connection option that pgark implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    Host,
    Port,
    User,
    Password,
    Dbname,
    ApplicationName,
    FallbackApplicationName,
    ConnectTimeout,
    SslMode,
    Options,
    Hostaddr,
    Passfile,
    Service,
    Servicefile,
    SslRootCert,
    SslCert,
    SslKeyFile,
    Keepalives,
    KeepalivesIdle,
    KeepalivesInterval,
    KeepalivesCount,
    TcpUserTimeout,
    /// pgark's own option (libpq has none): authenticate with an RDS IAM token.
    AwsIam,
}

impl Key {
    const ALL: [Key; 23] = [
        Key::Host,
        Key::Port,
        Key::User,
        Key::Password,
        Key::Dbname,
        Key::ApplicationName,
        Key::FallbackApplicationName,
        Key::ConnectTimeout,
        Key::SslMode,
        Key::Options,
        Key::Hostaddr,
        Key::Passfile,
        Key::Service,
        Key::Servicefile,
        Key::SslRootCert,
        Key::SslCert,
        Key::SslKeyFile,
        Key::Keepalives,
        Key::KeepalivesIdle,
        Key::KeepalivesInterval,
        Key::KeepalivesCount,
        Key::TcpUserTimeout,
        Key::AwsIam,
    ];

    /// The option's name in connection strings.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Key::Host => "host",
            Key::Port => "port",
            Key::User => "user",
            Key::Password => "password",
            Key::Dbname => "dbname",
            Key::ApplicationName => "application_name",
            Key::FallbackApplicationName => "fallback_application_name",
            Key::ConnectTimeout => "connect_timeout",
            Key::SslMode => "sslmode",
            Key::Options => "options",
            Key::Hostaddr => "hostaddr",
            Key::Passfile => "passfile",
            Key::Service => "service",
            Key::Servicefile => "servicefile",
            Key::SslRootCert => "sslrootcert",
            Key::SslCert => "sslcert",
            Key::SslKeyFile => "sslkey",
            Key::Keepalives => "keepalives",
            Key::KeepalivesIdle => "keepalives_idle",
            Key::KeepalivesInterval => "keepalives_interval",
            Key::KeepalivesCount => "keepalives_count",
            Key::TcpUserTimeout => "tcp_user_timeout",
            Key::AwsIam => "aws_iam",
        }
    }

    /// The environment variable libpq falls back to when the option is not given.
    pub(crate) fn env_var(self) -> Option<&'static str> {
        match self {
            Key::Host => Some("PGHOST"),
            Key::Port => Some("PGPORT"),
            Key::User => Some("PGUSER"),
            Key::Password => Some("PGPASSWORD"),
            Key::Dbname => Some("PGDATABASE"),
            Key::ApplicationName => Some("PGAPPNAME"),
            Key::FallbackApplicationName => None,
            Key::ConnectTimeout => Some("PGCONNECT_TIMEOUT"),
            Key::SslMode => Some("PGSSLMODE"),
            Key::Options => Some("PGOPTIONS"),
            Key::Hostaddr => Some("PGHOSTADDR"),
            Key::Passfile => Some("PGPASSFILE"),
            Key::Service => Some("PGSERVICE"),
            Key::Servicefile => Some("PGSERVICEFILE"),
            Key::SslRootCert => Some("PGSSLROOTCERT"),
            Key::SslCert => Some("PGSSLCERT"),
            Key::SslKeyFile => Some("PGSSLKEY"),
            Key::Keepalives
            | Key::KeepalivesIdle
            | Key::KeepalivesInterval
            | Key::KeepalivesCount
            | Key::TcpUserTimeout => None,
            Key::AwsIam => None,
        }
    }

    /// Looks an option up by name. Options libpq knows but pgark does not implement yet are
    /// refused rather than ignored: silently dropping `sslrootcert` or `target_session_attrs`
    /// would connect somewhere, or somehow, other than the user asked.
    pub(crate) fn lookup(name: &str) -> Result<Key, PgError> {
        if let Some(key) = Key::ALL.into_iter().find(|k| k.name() == name) {
            return Ok(key);
        }
        if NOT_YET_SUPPORTED.contains(&name) {
            return Err(PgError::InvalidConfig {
                reason: format!("connection option \"{name}\" is not supported by pgark yet"),
            });
        }
        Err(PgError::InvalidConfig {
            reason: format!("invalid connection option \"{name}\""),
        })
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// libpq options that are valid but not implemented here yet.
const NOT_YET_SUPPORTED: &[&str] = &[
    "require_auth",
    "channel_binding",
    "client_encoding",
    "replication",
    "gssencmode",
    "gsslib",
    "gssdelegation",
    "krbsrvname",
    "requirepeer",
    "requiressl",
    "sslnegotiation",
    "sslcompression",
    "sslcertmode",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "min_protocol_version",
    "max_protocol_version",
    "target_session_attrs",
    "load_balance_hosts",
    "scram_client_key",
    "scram_server_key",
];

/// Where a setting's text came from, so that errors can point at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The connection string (either form).
    ConnString,
    /// An environment variable.
    Env(&'static str),
    /// A service definition in a `pg_service.conf` file.
    Service { name: String, file: PathBuf },
}

/// One option's text and origin.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Setting {
    pub(crate) value: String,
    pub(crate) origin: Origin,
    pub(crate) key: Key,
}

impl Setting {
    /// The text, or `None` when empty: libpq treats an empty value as "use the default" once an
    /// option is resolved, even though an explicit empty value still hides the environment.
    pub(crate) fn non_empty(&self) -> Option<&str> {
        (!self.value.is_empty()).then_some(self.value.as_str())
    }
}

/// Redacts the password's text, so that no `Debug` output in this module can leak it.
impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value: &dyn fmt::Debug = if self.key == Key::Password {
            &"********"
        } else {
            &self.value
        };
        f.debug_struct("Setting")
            .field("key", &self.key)
            .field("value", value)
            .field("origin", &self.origin)
            .finish()
    }
}

impl fmt::Display for Setting {
    /// Names where the value came from, for error messages ("connection option \"port\"").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::ConnString => write!(f, "connection option \"{}\"", self.key.name()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Service { name, file } => write!(
                f,
                "option \"{}\" of service \"{name}\" in {}",
                self.key.name(),
                file.display()
            ),
        }
    }
}

/// The options given so far, one slot per [`Key`]. Later values for the same layer replace
/// earlier ones (libpq: the last `dbname=` wins).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    slots: [Option<Setting>; Key::ALL.len()],
}

impl Settings {
    /// Records a value from the connection string.
    pub(crate) fn set(&mut self, key: Key, value: impl Into<String>) {
        self.slots[key.index()] = Some(Setting {
            value: value.into(),
            origin: Origin::ConnString,
            key,
        });
    }

    pub(crate) fn get(&self, key: Key) -> Option<&Setting> {
        self.slots[key.index()].as_ref()
    }

    /// The non-empty text for `key`, if any.
    pub(crate) fn non_empty(&self, key: Key) -> Option<&str> {
        self.get(key).and_then(Setting::non_empty)
    }

    /// Fills every option still unset from a service definition; `values` are (key, text) pairs
    /// in file order, so a later line for the same key wins, as in libpq.
    pub(crate) fn fill_from_service(
        &mut self,
        name: &str,
        file: &std::path::Path,
        values: &[(Key, String)],
    ) {
        let unset: Vec<bool> = self.slots.iter().map(Option::is_none).collect();
        for (key, value) in values {
            if unset[key.index()] {
                self.slots[key.index()] = Some(Setting {
                    value: value.clone(),
                    origin: Origin::Service {
                        name: name.to_owned(),
                        file: file.to_owned(),
                    },
                    key: *key,
                });
            }
        }
    }

    /// Fills every option still unset from its `PG*` variable. An unset or non-UTF-8 variable
    /// counts as absent.
    pub(crate) fn fill_from_env(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        for key in Key::ALL {
            let slot = &mut self.slots[key.index()];
            if slot.is_some() {
                continue;
            }
            if let Some(var) = key.env_var()
                && let Some(value) = env(var)
            {
                *slot = Some(Setting {
                    value,
                    origin: Origin::Env(var),
                    key,
                });
            }
        }
    }
}
