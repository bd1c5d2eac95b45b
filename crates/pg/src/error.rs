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
}

/// Formats a tokio-postgres error the way psql would: severity, message, SQLSTATE, detail, hint.
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
    /// Wraps a server error with what pgark was doing when it happened.
    pub fn query(context: impl Into<String>, source: tokio_postgres::Error) -> Self {
        PgError::Query { context: context.into(), source }
    }
}
