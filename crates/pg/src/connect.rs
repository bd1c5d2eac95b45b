//! Opening connections from a [`ConnConfig`] the way libpq does: hosts are tried in order, a host
//! that cannot be reached passes the turn to the next one, and a server that answers with an error
//! (bad password, missing database) ends the attempt. Failures become [`PgError`] variants that
//! name the redacted target and say what to check.
//!
//! Per host, `sslmode` decides the attempts: `disable` plaintext only; `allow` plaintext, then TLS
//! if the server refused; `prefer` TLS (plaintext if the server has none), then plaintext if the
//! TLS session failed or was refused; `require` and the `verify-*` modes TLS only. Unix sockets are
//! always plaintext, as in libpq. The password is the configured one, else an RDS IAM token made
//! for this attempt, else the matching `~/.pgpass` line.

use std::error::Error as _;
use std::fmt;
use std::io;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{CancelToken, Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::PgError;
use crate::config::{ConnConfig, Host, SslMode};
use crate::copy_out::{CopyOutBuffers, RowBuffers, RowSink, Tap, TapStream, TapTls};
use crate::error::ServerMessage;
use crate::socket::{Endpoint, Socket};
use crate::{iam, pgpass, quote, tls};

/// An open session: the client, the task driving its socket, and the means to cancel its
/// running query.
///
/// Dropping it closes the socket at once (the task is aborted): otherwise a dropped COPY OUT
/// would keep the server streaming rows to a connection nobody reads, and a dropped session would
/// keep its transaction and locks until the server noticed.
pub struct Connection {
    client: Client,
    canceller: Canceller,
    /// The COPY tap in the session's stream (see `copy_out`).
    tap: Arc<Tap>,
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

    /// Sends `statements` (each a `COPY ... TO STDOUT`) as one query and returns their rows in
    /// buffers of whole rows of at most `buffer_size` bytes each (a longer row is a buffer of its
    /// own), each COPY's followed by [`CopyOutItem::Done`](crate::CopyOutItem::Done), read off
    /// the stream in large pieces rather than a message at a time. One round trip for them all:
    /// many small tables cost no more waiting than one.
    pub async fn copy_out_buffers(
        &self,
        statements: &[String],
        buffer_size: usize,
    ) -> Result<CopyOutBuffers, tokio_postgres::Error> {
        self.copy_out_into(statements, RowBuffers::new(buffer_size))
            .await
    }

    /// Sends `statements` (each a `COPY ... TO STDOUT`) as one query, as
    /// [`Self::copy_out_buffers`] does, and gives their rows to `sink` as they arrive, on the
    /// thread that reads them; returns the sink's items, each COPY's followed by
    /// [`CopyOutItem::Done`](crate::CopyOutItem::Done).
    pub async fn copy_out_into<K: RowSink>(
        &self,
        statements: &[String],
        sink: K,
    ) -> Result<CopyOutBuffers<K::Item>, tokio_postgres::Error> {
        let receiver = self.tap.arm(sink);
        // Should the query not be sent (this future dropped, or the session gone), the tap must
        // not capture the next statement's answer.
        let mut armed = Armed {
            tap: &self.tap,
            started: false,
        };
        let query = self
            .client
            .simple_query_raw(&statements.join(";\n"))
            .await?;
        armed.started = true;
        Ok(CopyOutBuffers::new(receiver, query, self.tap.bytes_read()))
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

/// Disarms the tap when dropped before its query was sent.
struct Armed<'t> {
    tap: &'t Tap,
    started: bool,
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        if !self.started {
            self.tap.disarm();
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
    /// Where the session connected: the cancel request goes to the same address.
    endpoint: Endpoint,
    /// The TLS connector the session itself used (`None`: plaintext), so the cancel request is
    /// as protected, and as verified, as the session.
    tls: Option<MakeRustlsConnect>,
}

impl Canceller {
    /// Sends a cancel request over a new connection to the same server. The server does not say
    /// whether a query was cancelled; an error means the request could not be sent.
    pub async fn cancel(&self) -> Result<(), PgError> {
        let failed = |reason: String| PgError::CancelFailed {
            target: self.target.clone(),
            reason,
            source: None,
        };
        let socket = self.endpoint.open().await.map_err(|e| {
            failed(unreachable_reason(
                &e,
                &self.endpoint.host,
                self.endpoint.port,
            ))
        })?;
        let result = match &self.tls {
            Some(tls) => {
                let connector =
                    tls_connector::<Socket>(tls, &self.endpoint.host).map_err(failed)?;
                self.token.cancel_query_raw(socket, connector).await
            }
            None => self.token.cancel_query_raw(socket, NoTls).await,
        };
        result.map_err(|source| PgError::CancelFailed {
            target: self.target.clone(),
            reason: describe(&source),
            source: Some(source),
        })
    }
}

/// The name a TLS session checks the server's certificate against: the host as configured
/// (also when `hostaddr` says where to connect), as libpq does.
fn tls_name(host: &Host) -> String {
    match host {
        Host::Tcp(name) => name.clone(),
        Host::Socket(dir) => dir.display().to_string(),
    }
}

/// The TLS connector for one stream of a session (its own, or its cancel request's), checking
/// the server's certificate against `host`; why not, when that name cannot be used.
fn tls_connector<S>(
    make: &MakeRustlsConnect,
    host: &Host,
) -> Result<<MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect, String>
where
    MakeRustlsConnect: MakeTlsConnect<S, Error: fmt::Display>,
{
    MakeTlsConnect::<S>::make_tls_connect(&mut make.clone(), &tls_name(host))
        .map_err(|e| format!("invalid host name for TLS: {e}"))
}

impl fmt::Debug for Canceller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Canceller")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Connects to the first host of `cfg` that answers, as libpq would, then switches to the
/// configured role (`SET ROLE`), if any.
pub async fn connect(cfg: &ConnConfig) -> Result<Connection, PgError> {
    // Certificate files are read once per connect, so that a replaced file (a renewed client
    // certificate) is picked up by the next session.
    let tls = match cfg.sslmode() {
        SslMode::Disable => None,
        _ if cfg.hosts().iter().all(|h| matches!(h, Host::Socket(_))) => None,
        _ => Some(tls::connector(cfg)?),
    };
    let connection = connect_hosts(cfg, tls.as_ref()).await?;
    if let Some(role) = cfg.role() {
        connection
            .client()
            .batch_execute(&format!("SET ROLE {}", quote::ident(role)))
            .await
            .map_err(|e| {
                PgError::query(
                    format!(
                        "switching to role \"{role}\" (--role) on {}",
                        connection.target()
                    ),
                    e,
                )
            })?;
    }
    Ok(connection)
}

/// One way of securing an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encryption {
    Plain,
    /// TLS if the server offers it, else plaintext (tokio-postgres's `prefer`).
    TlsIfOffered,
    /// TLS or nothing.
    Tls,
}

/// The attempts libpq makes against one host for `mode`, in order.
fn attempts(mode: SslMode, host: &Host) -> &'static [Encryption] {
    match (host, mode) {
        (Host::Socket(_), _) | (_, SslMode::Disable) => &[Encryption::Plain],
        (_, SslMode::Allow) => &[Encryption::Plain, Encryption::Tls],
        (_, SslMode::Prefer) => &[Encryption::TlsIfOffered, Encryption::Plain],
        (_, SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull) => &[Encryption::Tls],
    }
}

/// What one host's attempt left us with when it did not connect.
enum Failure {
    /// Nothing usable answered; libpq moves on to the next host. Holds the explanation.
    TryNext(String),
    /// The server answered with an error; libpq stops here.
    Fatal(PgError),
}

async fn connect_hosts(
    cfg: &ConnConfig,
    tls: Option<&MakeRustlsConnect>,
) -> Result<Connection, PgError> {
    let mut failures = Vec::new();
    for (index, (host, port)) in cfg.endpoints().enumerate() {
        let target = cfg.endpoint_url(host, port);
        match connect_endpoint(cfg, index, host, port, tls, &target).await {
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

/// Where the password for an attempt comes from, to say so when it is rejected.
enum PasswordSource {
    None,
    Config,
    Iam,
    File(std::path::PathBuf),
}

async fn connect_endpoint(
    cfg: &ConnConfig,
    index: usize,
    host: &Host,
    port: u16,
    tls: Option<&MakeRustlsConnect>,
    target: &str,
) -> Result<Connection, Failure> {
    let (password, source) = password_for(cfg, host, port, target).await?;
    let plan = attempts(cfg.sslmode(), host);
    let mut last = None;
    for (i, &encryption) in plan.iter().enumerate() {
        let mut pg = endpoint_config(cfg, encryption);
        if let Some(password) = &password {
            pg.password(password);
        }
        let endpoint = Endpoint {
            host: host.clone(),
            port,
            hostaddr: cfg.hostaddr_at(index),
            tcp: cfg.tcp(),
        };
        let tls = match encryption {
            Encryption::Plain => None,
            Encryption::TlsIfOffered | Encryption::Tls => tls,
        };
        let result = attempt(cfg, &pg, endpoint, tls, target, &source).await;
        match result {
            Err(Failure::Fatal(e)) if i + 1 < plan.len() => {
                // libpq's allow/prefer: a server that refused this kind of session may accept
                // the other kind.
                tracing::debug!(server = %target, error = %e, ?encryption, "retrying with the other encryption");
                last = Some(Failure::Fatal(e));
            }
            other => return other,
        }
    }
    Err(last.unwrap_or_else(|| Failure::TryNext("no connection attempt was made".to_owned())))
}

/// The password for one host: configured, an IAM token made now, or from the password file.
async fn password_for(
    cfg: &ConnConfig,
    host: &Host,
    port: u16,
    target: &str,
) -> Result<(Option<String>, PasswordSource), Failure> {
    if let Some(password) = cfg.password() {
        return Ok((Some(password.to_owned()), PasswordSource::Config));
    }
    if cfg.aws_iam() {
        let Host::Tcp(name) = host else {
            return Err(Failure::Fatal(PgError::IamToken {
                target: target.to_owned(),
                reason: "IAM authentication needs a TCP host (the RDS endpoint name), not a \
                         Unix socket"
                    .to_owned(),
            }));
        };
        let token = iam::token(name, port, cfg.user()).await.map_err(|reason| {
            Failure::Fatal(PgError::IamToken {
                target: target.to_owned(),
                reason,
            })
        })?;
        return Ok((Some(token), PasswordSource::Iam));
    }
    if let Some(file) = cfg.passfile() {
        let query = pgpass::Query {
            host: &cfg.pgpass_host(host),
            port,
            dbname: cfg.dbname(),
            user: cfg.user(),
        };
        if let Some(password) = pgpass::lookup(file, query) {
            return Ok((Some(password), PasswordSource::File(file.to_owned())));
        }
    }
    Ok((None, PasswordSource::None))
}

/// One attempt at one endpoint: opens the socket, puts the COPY tap in it (and above TLS when
/// `tls` is given), and starts the session.
async fn attempt(
    cfg: &ConnConfig,
    pg: &tokio_postgres::Config,
    endpoint: Endpoint,
    tls: Option<&MakeRustlsConnect>,
    target: &str,
    source: &PasswordSource,
) -> Result<Connection, Failure> {
    let host = &endpoint.host;
    let port = endpoint.port;
    let connect = async {
        let socket = endpoint
            .open()
            .await
            .map_err(|e| Failure::TryNext(unreachable_reason(&e, host, port)))?;
        let tap = Arc::new(Tap::default());
        let stream = TapStream::socket(socket, tap.clone());
        let failed = |e| classify(e, cfg, host, port, target, source);
        let (client, task) = match tls {
            None => {
                let (client, connection) = pg.connect_raw(stream, NoTls).await.map_err(failed)?;
                (client, drive(connection, target))
            }
            Some(make) => {
                let connector =
                    tls_connector::<TapStream<Socket>>(make, host).map_err(|reason| {
                        Failure::Fatal(PgError::Tls {
                            target: target.to_owned(),
                            reason,
                        })
                    })?;
                let (client, connection) = pg
                    .connect_raw(stream, TapTls::new(connector, tap.clone()))
                    .await
                    .map_err(failed)?;
                (client, drive(connection, target))
            }
        };
        Ok((client, task, tap))
    };
    // libpq's connect_timeout bounds each host's whole attempt, startup included.
    let (client, task, tap) = match cfg.connect_timeout() {
        Some(limit) => tokio::time::timeout(limit, connect).await.map_err(|_| {
            Failure::TryNext(format!(
                "timed out after {} s (connect_timeout) — is the host reachable, and is the port \
                 open through any firewall?",
                limit.as_secs()
            ))
        })??,
        None => connect.await?,
    };
    let canceller = Canceller {
        token: client.cancel_token(),
        target: target.to_owned(),
        endpoint,
        tls: tls.cloned(),
    };
    Ok(Connection {
        client,
        canceller,
        tap,
        task: Some(task),
    })
}

/// Runs a session's connection (the task that reads and writes its stream) until it ends.
fn drive<S, T>(
    connection: tokio_postgres::Connection<S, T>,
    target: &str,
) -> JoinHandle<Result<(), tokio_postgres::Error>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let target = target.to_owned();
    tokio::spawn(async move {
        let result = connection.await;
        if let Err(e) = &result {
            tracing::debug!(server = %target, error = %describe(e), "connection ended with an error");
        }
        result
    })
}

/// tokio-postgres settings for one attempt of `cfg` (without the password). The socket is
/// opened here (`socket`), so only what the startup uses is set.
fn endpoint_config(cfg: &ConnConfig, encryption: Encryption) -> tokio_postgres::Config {
    use tokio_postgres::config::SslMode as PgSslMode;
    let mut pg = tokio_postgres::Config::new();
    pg.user(cfg.user())
        .dbname(cfg.dbname())
        .application_name(cfg.application_name())
        .ssl_mode(match encryption {
            Encryption::Plain => PgSslMode::Disable,
            Encryption::TlsIfOffered => PgSslMode::Prefer,
            Encryption::Tls => PgSslMode::Require,
        });
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
    source: &PasswordSource,
) -> Failure {
    let target = target.to_owned();
    let user = cfg.user().to_owned();
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let message = db.message();
        return Failure::Fatal(if *code == SqlState::INVALID_PASSWORD {
            let check = match source {
                PasswordSource::Iam => "check that IAM authentication is enabled on the database, \
                     that the user has the rds_iam role, and that the AWS identity may \
                     rds-db:connect as this user"
                    .to_owned(),
                PasswordSource::File(file) => format!(
                    "the password came from the password file \"{}\"; check it",
                    file.display()
                ),
                PasswordSource::Config | PasswordSource::None => {
                    "check the password in the connection string, PGPASSWORD or ~/.pgpass"
                        .to_owned()
                }
            };
            PgError::AuthFailed {
                target,
                user,
                reason: format!("{} — {check}", ServerMessage(&e)),
            }
        } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            PgError::AuthFailed {
                target,
                user,
                reason: format!("{} — {}", ServerMessage(&e), auth_hint(message)),
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
    if let Some(reason) = tls::explain_failure(&e, cfg, &tls_name(host)) {
        return Failure::Fatal(PgError::Tls { target, reason });
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
    if message.contains("pg_hba.conf") && message.contains("no encryption") {
        "the server requires TLS for this connection; use sslmode=require or stronger \
         (verify-full with sslrootcert= is recommended)"
    } else if message.contains("pg_hba.conf") {
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
    fn each_sslmode_makes_the_attempts_libpq_makes() {
        use Encryption::{Plain, Tls, TlsIfOffered};
        let tcp = Host::Tcp("db".into());
        let socket = Host::Socket("/run/pg".into());
        let cases = [
            (SslMode::Disable, &tcp, &[Plain][..]),
            (SslMode::Allow, &tcp, &[Plain, Tls][..]),
            (SslMode::Prefer, &tcp, &[TlsIfOffered, Plain][..]),
            (SslMode::Require, &tcp, &[Tls][..]),
            (SslMode::VerifyCa, &tcp, &[Tls][..]),
            (SslMode::VerifyFull, &tcp, &[Tls][..]),
            // libpq never uses TLS over a Unix socket, whatever the mode.
            (SslMode::VerifyFull, &socket, &[Plain][..]),
            (SslMode::Prefer, &socket, &[Plain][..]),
        ];
        for (mode, host, want) in cases {
            assert_eq!(attempts(mode, host), want, "{mode} {host:?}");
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
