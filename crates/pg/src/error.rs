use std::fmt;

/// Errors from the PostgreSQL side. Every variant names its subject (host, table, setting) so
/// that the message alone tells a user what went wrong and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// A connection string or environment setting could not be understood.
    #[error("invalid connection string: {reason}")]
    InvalidConfig { reason: String },
    /// A query failed on the server.
    #[error("{context}: {}", ServerMessage(.source))]
    Query {
        context: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// No server answered at any of the configured hosts (refused, no such socket, timed out,
    /// unknown host). `reason` says what happened at each and what to check.
    #[error("could not connect to {target}: {reason}")]
    Unreachable { target: String, reason: String },
    /// The server rejected the credentials (SQLSTATE 28P01 or 28000); `reason` has the server's
    /// message and what to check.
    #[error("authentication failed for user \"{user}\" on {target}: {reason}")]
    AuthFailed {
        target: String,
        user: String,
        reason: String,
    },
    /// The server asked for a password and none was configured.
    #[error(
        "the server at {target} asks for a password for user \"{user}\" but none was given — \
         set it in the connection string, PGPASSWORD or ~/.pgpass"
    )]
    PasswordMissing { target: String, user: String },
    /// The database named in the connection does not exist (SQLSTATE 3D000).
    #[error(
        "database \"{dbname}\" does not exist on {target} — check the database name \
         (dbname=, PGDATABASE)"
    )]
    DatabaseNotFound { target: String, dbname: String },
    /// Any other failure while connecting; `reason` has the SQLSTATE and hint when the server sent
    /// them.
    #[error("could not connect to {target}: {reason}")]
    Connect {
        target: String,
        reason: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// A cancel request could not be delivered.
    #[error("could not send a cancel request to {target}: {reason}")]
    CancelFailed {
        target: String,
        reason: String,
        /// `None` when the socket could not be opened.
        #[source]
        source: Option<tokio_postgres::Error>,
    },
    /// Password hashes were asked for, but only a superuser may read them (`pg_authid`), and
    /// managed services expose them to nobody.
    #[error("role {role} may not read password hashes (pg_authid needs a superuser)")]
    PasswordsHidden { role: String },
    /// The catalog said something pgark cannot turn into DDL, or was read outside the transaction
    /// that makes it consistent; `reason` names the object.
    #[error("reading the schema: {reason}")]
    Catalog { reason: String },
    /// An object must be created in an earlier restore phase than something it depends on.
    #[error(
        "the schema cannot be ordered: {item} ({section}) depends on {dependency}, which comes later"
    )]
    DependencyAcrossSections {
        item: String,
        section: String,
        dependency: String,
    },
    /// The TLS settings could not be used: a certificate or key file is missing, unreadable or
    /// not private. `reason` names the file and the setting to fix.
    #[error("cannot set up TLS for {target}: {reason}")]
    TlsSetup { target: String, reason: String },
    /// The TLS handshake failed or the server refused TLS; `reason` says which check failed
    /// (wrong CA, wrong host name, client certificate) and what to change.
    #[error("could not connect to {target} over TLS: {reason}")]
    Tls { target: String, reason: String },
    /// An RDS IAM authentication token could not be generated (no AWS credentials or region).
    #[error("cannot generate an RDS IAM authentication token for {target}: {reason}")]
    IamToken { target: String, reason: String },
}

/// Formats a tokio-postgres error the way psql would: severity, message, SQLSTATE, detail, hint.
#[derive(Debug)]
pub struct ServerMessage<'a>(pub &'a tokio_postgres::Error);

impl fmt::Display for ServerMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_db_error() {
            Some(db) => {
                write!(f, "{} (SQLSTATE {})", db.message(), db.code().code())?;
                if let Some(detail) = db.detail() {
                    write!(f, "; detail: {detail}")?;
                }
                if let Some(hint) = db.hint() {
                    write!(f, "; hint: {hint}")?;
                }
                Ok(())
            }
            None => write!(f, "{}", self.0),
        }
    }
}

impl PgError {
    /// Whether the session itself was lost (the server ended it, as `pg_terminate_backend` or a
    /// restart does, or its socket failed) rather than a statement failing in a live session:
    /// work that ran in a transaction of its own can be retried on a new session.
    pub fn is_connection_lost(&self) -> bool {
        use tokio_postgres::error::SqlState;
        let PgError::Query { source, .. } = self else {
            return false;
        };
        if source.is_closed() {
            return true;
        }
        if let Some(code) = source.code() {
            return [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
            ]
            .contains(code);
        }
        std::error::Error::source(source).is_some_and(|cause| cause.is::<std::io::Error>())
    }

    /// Whether running again later may succeed: the session was lost, or no server answered at
    /// any host (down, restarting, unreachable, timed out).
    pub fn is_transient(&self) -> bool {
        matches!(self, PgError::Unreachable { .. }) || self.is_connection_lost()
    }

    /// Wraps a server error with what pgark was doing when it happened.
    pub fn query(context: impl Into<String>, source: tokio_postgres::Error) -> Self {
        PgError::Query {
            context: context.into(),
            source,
        }
    }
}
