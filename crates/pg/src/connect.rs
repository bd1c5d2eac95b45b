//! Opening connections from a [`ConnConfig`] the way libpq does: hosts are tried in order, a host
//! that cannot be reached passes the turn to the next one, and a server that answers with an error
//! (bad password, missing database) ends the attempt. Failures become [`PgError`] variants that
//! name the redacted target and say what to check.

use std::error::Error as _;
use std::fmt;
use std::io;

use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{CancelToken, Client, NoTls, Socket};

use crate::PgError;
use crate::config::{ConnConfig, Host};
use crate::error::ServerMessage;

/// An open session: the client, the task driving its socket, and the means to cancel its
/// running query.
///
/// Dropping it closes the socket at once (the task is aborted): otherwise a dropped COPY OUT
/// would keep the server streaming rows to a connection nobody reads, and a dropped session would
/// keep its transaction and locks until the server noticed.
pub struct Connection {
    client: Client,
    canceller: Canceller,
    /// `None` only once `close` has taken it.
    task: Option<JoinHandle<Result<(), tokio_postgres::Error>>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Connection {
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Mutable access, needed for transactions.
    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The redacted URL of the server this connection reached.
    pub fn target(&self) -> &str {
        &self.canceller.target
    }

    /// A handle that can cancel this connection's running query from elsewhere (a signal
    /// handler, say) while the connection itself is busy.
    pub fn canceller(&self) -> Canceller {
        self.canceller.clone()
    }

    /// Asks the server to cancel the query running on this connection, if any.
    pub async fn cancel(&self) -> Result<(), PgError> {
        self.canceller.cancel().await
    }

    /// Closes the session and waits for the socket to shut down, reporting an error the
    /// connection hit on the way (dropping the connection would lose it).
    pub async fn close(mut self) -> Result<(), PgError> {
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        let target = self.canceller.target.clone();
        // Dropping the client (with `self`) lets the task send Terminate and finish.
        drop(self);
        match task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(PgError::query(
                format!("closing the connection to {target}"),
                e,
            )),
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            // The runtime is shutting down; the socket goes with it.
            Err(_) => Ok(()),
        }
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("target", &self.canceller.target)
            .finish_non_exhaustive()
    }
}

/// Sends cancel requests for one connection's queries. Cheap to clone.
#[derive(Clone)]
pub struct Canceller {
    token: CancelToken,
    target: String,
}

impl Canceller {
    /// Sends a cancel request over a new connection to the same server. The server does not say
    /// whether a query was cancelled; an error means the request could not be sent.
    pub async fn cancel(&self) -> Result<(), PgError> {
        self.token
            .cancel_query(NoTls)
            .await
            .map_err(|source| PgError::CancelFailed {
                target: self.target.clone(),
                reason: describe(&source),
                source,
            })
    }
}

impl fmt::Debug for Canceller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Canceller")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Connects to the first host of `cfg` that answers, as libpq would.
pub async fn connect(cfg: &ConnConfig) -> Result<Connection, PgError> {
    let transport = transport(cfg)?;
    connect_with(cfg, transport).await
}

/// How connections are secured: the TLS connector and the mode tokio-postgres runs it in.
struct Transport<T> {
    tls: T,
    mode: tokio_postgres::config::SslMode,
}

/// Chooses the transport for `cfg`. This build speaks plaintext only, so modes that insist on TLS
/// are refused before anything is sent, and `allow`/`prefer` fall back to plaintext as libpq does
/// when the server has no TLS. TLS support replaces this function.
fn transport(cfg: &ConnConfig) -> Result<Transport<NoTls>, PgError> {
    if cfg.sslmode().requires_tls() {
        return Err(PgError::TlsUnsupported {
            target: cfg.redacted(),
            sslmode: cfg.sslmode().as_str().to_owned(),
        });
    }
    Ok(Transport {
        tls: NoTls,
        mode: tokio_postgres::config::SslMode::Disable,
    })
}

/// What one host's attempt left us with when it did not connect.
enum Failure {
    /// Nothing usable answered; libpq moves on to the next host. Holds the explanation.
    TryNext(String),
    /// The server answered with an error; libpq stops here.
    Fatal(PgError),
}

async fn connect_with<T>(cfg: &ConnConfig, transport: Transport<T>) -> Result<Connection, PgError>
where
    T: MakeTlsConnect<Socket> + Clone,
    T::Stream: Send + 'static,
{
    let mut failures = Vec::new();
    for (host, port) in cfg.endpoints() {
        let target = cfg.endpoint_url(host, port);
        match connect_endpoint(cfg, host, port, &transport, &target).await {
            Ok(connection) => {
                tracing::debug!(server = %target, "connected");
                return Ok(connection);
            }
            Err(Failure::TryNext(reason)) => {
                tracing::debug!(server = %target, %reason, "could not connect");
                failures.push((endpoint_label(host, port), target, reason));
            }
            Err(Failure::Fatal(e)) => return Err(e),
        }
    }
    Err(match <[_; 1]>::try_from(failures) {
        Ok([(_, target, reason)]) => PgError::Unreachable { target, reason },
        Err(failures) => PgError::Unreachable {
            target: cfg.redacted(),
            reason: failures
                .into_iter()
                .map(|(label, _, reason)| format!("{label}: {reason}"))
                .collect::<Vec<_>>()
                .join("; "),
        },
    })
}

async fn connect_endpoint<T>(
    cfg: &ConnConfig,
    host: &Host,
    port: u16,
    transport: &Transport<T>,
    target: &str,
) -> Result<Connection, Failure>
where
    T: MakeTlsConnect<Socket> + Clone,
    T::Stream: Send + 'static,
{
    let pg = endpoint_config(cfg, host, port, transport.mode);
    let attempt = pg.connect(transport.tls.clone());
    // libpq's connect_timeout bounds each host's whole attempt, startup included, not just the
    // socket connect that tokio-postgres's own timeout covers.
    let result = match cfg.connect_timeout() {
        Some(limit) => tokio::time::timeout(limit, attempt).await.map_err(|_| {
            Failure::TryNext(format!(
                "timed out after {} s (connect_timeout) — is the host reachable, and is the port \
                 open through any firewall?",
                limit.as_secs()
            ))
        })?,
        None => attempt.await,
    };
    let (client, connection) = result.map_err(|e| classify(e, cfg, host, port, target))?;

    let canceller = Canceller {
        token: client.cancel_token(),
        target: target.to_owned(),
    };
    let task_target = target.to_owned();
    let task = tokio::spawn(async move {
        let result = connection.await;
        if let Err(e) = &result {
            tracing::debug!(server = %task_target, error = %describe(e), "connection ended with an error");
        }
        result
    });
    Ok(Connection {
        client,
        canceller,
        task: Some(task),
    })
}

/// tokio-postgres settings for one host of `cfg`.
fn endpoint_config(
    cfg: &ConnConfig,
    host: &Host,
    port: u16,
    mode: tokio_postgres::config::SslMode,
) -> tokio_postgres::Config {
    let mut pg = tokio_postgres::Config::new();
    pg.user(cfg.user())
        .dbname(cfg.dbname())
        .application_name(cfg.application_name())
        .ssl_mode(mode)
        .port(port);
    match host {
        Host::Tcp(name) => pg.host(name),
        Host::Socket(dir) => pg.host_path(dir),
    };
    if let Some(password) = cfg.password() {
        pg.password(password);
    }
    if let Some(options) = cfg.options() {
        pg.options(options);
    }
    pg
}

/// Sorts a failed attempt into "try the next host" or "stop", with a message saying what to fix.
fn classify(
    e: tokio_postgres::Error,
    cfg: &ConnConfig,
    host: &Host,
    port: u16,
    target: &str,
) -> Failure {
    let target = target.to_owned();
    let user = cfg.user().to_owned();
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let message = db.message();
        return Failure::Fatal(if *code == SqlState::INVALID_PASSWORD {
            PgError::AuthFailed {
                target,
                user,
                reason: format!(
                    "{message} — check the password in the connection string, PGPASSWORD or \
                     ~/.pgpass"
                ),
            }
        } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            PgError::AuthFailed {
                target,
                user,
                reason: format!("{message} — {}", auth_hint(message)),
            }
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            PgError::DatabaseNotFound {
                target,
                dbname: cfg.dbname().to_owned(),
            }
        } else {
            PgError::Connect {
                target,
                reason: describe(&e),
                source: e,
            }
        });
    }
    if e.source()
        .is_some_and(|source| source.to_string() == "password missing")
    {
        return Failure::Fatal(PgError::PasswordMissing { target, user });
    }
    if let Some(io) = transport_failure(&e) {
        return Failure::TryNext(unreachable_reason(io, host, port));
    }
    Failure::Fatal(PgError::Connect {
        target,
        reason: describe(&e),
        source: e,
    })
}

/// The I/O error behind `e` when the socket could not be opened or broke during startup — the
/// failures after which libpq tries the next host. Protocol errors are not among them.
fn transport_failure(e: &tokio_postgres::Error) -> Option<&io::Error> {
    // tokio-postgres keeps its error kinds private; these are its messages for `Connect` and `Io`.
    let kind = e.to_string();
    if kind != "error connecting to server" && kind != "error communicating with the server" {
        return None;
    }
    e.source()?.downcast_ref::<io::Error>()
}

/// What to check for a 28000 error, which covers both pg_hba.conf rejections and unknown roles.
fn auth_hint(message: &str) -> &'static str {
    if message.contains("pg_hba.conf") {
        "the server's pg_hba.conf has no rule admitting this user, database and client address \
         with this sslmode; check user=, dbname= and sslmode=, or ask the server's administrator"
    } else if message.contains("does not exist") {
        "check the user name (user=, PGUSER)"
    } else {
        "check the user name and credentials"
    }
}

/// The OS error without its "(os error N)" suffix, plus what to check.
fn unreachable_reason(io: &io::Error, host: &Host, port: u16) -> String {
    let full = io.to_string();
    let detail = full.split(" (os error ").next().unwrap_or(&full);
    let hint = match host {
        Host::Socket(_) if io.kind() == io::ErrorKind::PermissionDenied => {
            "check that this user may open that socket".to_owned()
        }
        Host::Socket(dir) => format!(
            "is the server running locally and accepting connections on socket \"{}\"?",
            dir.join(format!(".s.PGSQL.{port}")).display()
        ),
        Host::Tcp(_) if io.kind() == io::ErrorKind::TimedOut => {
            "is the host reachable, and is the port open through any firewall?".to_owned()
        }
        Host::Tcp(name) if detail.contains("lookup address") || detail.contains("resolve") => {
            format!("check the host name \"{name}\"")
        }
        Host::Tcp(_) => {
            "is the server running and accepting connections on that host and port?".to_owned()
        }
    };
    format!("{detail} — {hint}")
}

/// `host:port` or the socket path, to tell hosts apart when several failed.
fn endpoint_label(host: &Host, port: u16) -> String {
    match host {
        Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
        Host::Tcp(name) => format!("{name}:{port}"),
        Host::Socket(dir) => dir.join(format!(".s.PGSQL.{port}")).display().to_string(),
    }
}

/// A tokio-postgres error in one line: the server's message with SQLSTATE and hint, or the
/// client-side error with its cause (tokio-postgres's own `Display` omits the cause).
fn describe(e: &tokio_postgres::Error) -> String {
    if e.as_db_error().is_some() {
        return ServerMessage(e).to_string();
    }
    match e.source() {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(s: &str) -> ConnConfig {
        ConnConfig::parse_with_env(s, &|_| None).expect("valid test connection string")
    }

    #[test]
    fn sslmodes_that_insist_on_tls_are_refused_before_connecting() {
        for mode in ["require", "verify-ca", "verify-full"] {
            let cfg = config(&format!("host=db user=u password=secret sslmode={mode}"));
            let err = transport(&cfg).err().expect("TLS mode must be refused");
            let message = err.to_string();
            assert!(
                matches!(err, PgError::TlsUnsupported { .. }),
                "{mode}: {err:?}"
            );
            assert!(message.contains(&format!("sslmode={mode}")), "{message}");
            assert!(
                message.contains("sslmode=disable or sslmode=prefer"),
                "{message}"
            );
            assert!(message.contains("postgres://u@db:5432/u"), "{message}");
            assert!(!message.contains("secret"), "{message}");
        }
        for mode in ["disable", "allow", "prefer"] {
            let cfg = config(&format!("host=db user=u sslmode={mode}"));
            assert!(transport(&cfg).is_ok(), "{mode}");
        }
    }

    #[test]
    fn unreachable_reasons_drop_the_os_error_number_and_say_what_to_check() {
        let refused = io::Error::from_raw_os_error(111);
        let tcp = Host::Tcp("db".into());
        assert_eq!(
            unreachable_reason(&refused, &tcp, 5432),
            "Connection refused — is the server running and accepting connections on that host \
             and port?"
        );
        let missing = io::Error::from_raw_os_error(2);
        let socket = Host::Socket("/run/pg".into());
        assert_eq!(
            unreachable_reason(&missing, &socket, 5433),
            "No such file or directory — is the server running locally and accepting \
             connections on socket \"/run/pg/.s.PGSQL.5433\"?"
        );
    }

    #[test]
    fn endpoint_labels_bracket_ipv6_and_name_the_socket_file() {
        assert_eq!(endpoint_label(&Host::Tcp("::1".into()), 5432), "[::1]:5432");
        assert_eq!(endpoint_label(&Host::Tcp("db".into()), 6432), "db:6432");
        assert_eq!(
            endpoint_label(&Host::Socket("/tmp".into()), 5432),
            "/tmp/.s.PGSQL.5432"
        );
    }

    #[tokio::test]
    async fn a_missing_socket_is_unreachable_and_every_host_is_tried() {
        let dir = "/nonexistent-pgark-test-dir";
        let err = connect(&config(&format!(
            "host={dir},{dir}/b port=5432 user=u password=secret"
        )))
        .await
        .expect_err("nothing listens there");
        let message = err.to_string();
        assert!(matches!(err, PgError::Unreachable { .. }), "{err:?}");
        assert!(
            message.contains("/nonexistent-pgark-test-dir/.s.PGSQL.5432: No such file"),
            "{message}"
        );
        assert!(
            message.contains("/nonexistent-pgark-test-dir/b/.s.PGSQL.5432: No such file"),
            "{message}"
        );
        assert!(
            message.contains("is the server running locally"),
            "{message}"
        );
        assert!(!message.contains("secret"), "{message}");
    }
}
