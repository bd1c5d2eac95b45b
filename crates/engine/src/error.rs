//! The engine's one error type, and the rules its variants follow:
//!
//! - A variant says what happened in the engine's terms and names its subject (backup location,
//!   `schema.table`, database); it never names a command-line option: the binary words the way
//!   forward (`src/cli/hints.rs`).
//! - A failure of another layer keeps its own error as the `source` ([`PgError`], [`StoreError`],
//!   [`ArchiveError`], a worker's join error); causes are never flattened into strings.
//! - Every variant belongs to one [`ErrorClass`], decided in one place ([`EngineError::class`]),
//!   which tells a caller whether running again may help.

use pgark_archive::ArchiveError;
use pgark_keys::KeyError;
use pgark_pg::PgError;
use pgark_storage::StoreError;

/// What kind of failure an [`EngineError`] is, for callers that act on it (exit codes, retries,
/// alerts) rather than print it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorClass {
    /// What was asked for cannot be done as asked: a connection string, table pattern, key or
    /// row condition, or combination of options is wrong, or names what the backup does not
    /// hold. Nothing was changed.
    Request,
    /// The target or the destination refuses the operation in its present state: a database
    /// that is not empty, exists already or carries an interrupted restore's mark, missing
    /// roles, rows that conflict, columns that differ, credentials the server rejects. Nothing
    /// was changed.
    Refused,
    /// A server or store failed in a way that may pass: a lost or unreachable connection, a
    /// stalled backend, a lock not granted in time, a store that timed out or throttled. What was
    /// written was removed or put back; running again later may succeed.
    Transient,
    /// A backup is damaged or incomplete, or data read back differs from what the backup
    /// recorded.
    Damaged,
    /// The operation was cancelled (a signal or a time limit).
    Interrupted,
    /// Any other failure: a statement the server refused, a local file that could not be
    /// written, a bug.
    Failed,
}

impl ErrorClass {
    /// The class of an error from any layer the engine is built on, or `None` for an error that
    /// is not the engine's nor one of its layers'.
    pub fn of(error: &(dyn std::error::Error + 'static)) -> Option<ErrorClass> {
        if let Some(e) = error.downcast_ref::<EngineError>() {
            Some(e.class())
        } else if let Some(e) = error.downcast_ref::<PgError>() {
            Some(pg_class(e))
        } else if let Some(e) = error.downcast_ref::<StoreError>() {
            Some(store_class(e))
        } else if let Some(e) = error.downcast_ref::<KeyError>() {
            Some(key_class(e))
        } else {
            error.downcast_ref::<ArchiveError>().map(archive_class)
        }
    }

    /// The class's name in machine-readable output (`request`, `refused`, `transient`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Request => "request",
            ErrorClass::Refused => "refused",
            ErrorClass::Transient => "transient",
            ErrorClass::Damaged => "damaged",
            ErrorClass::Interrupted => "interrupted",
            ErrorClass::Failed => "failed",
        }
    }
}

/// What can stop a dump or restore. Each message names its subject; see the module's rules.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error(transparent)]
    Pg(#[from] PgError),

    #[error(transparent)]
    Store(#[from] StoreError),

    #[error(transparent)]
    Archive(#[from] ArchiveError),

    #[error(transparent)]
    Key(#[from] KeyError),

    #[error(
        "backup {location} does not exist: check the path, or run `pgark ls` on its parent to see the backups there"
    )]
    BackupNotFound { location: String },

    #[error(
        "no complete backup under {location}: `latest` needs at least one backup with a manifest"
    )]
    NoCompleteBackup { location: String },

    #[error(
        "backup {location} is incomplete: it has no manifest, so the dump that wrote it did not finish; restore another backup (see `pgark ls`)"
    )]
    IncompleteBackup { location: String },

    #[error(
        "backup {location} already exists, and so do the 99 ids after it (backups started in the same second): refusing to overwrite them; wait a second or choose another destination"
    )]
    BackupExists { location: String },

    #[error("PostgreSQL {version} is not supported: pgark works with PostgreSQL 13 and later")]
    UnsupportedServer { version: String },

    #[error("target database {database:?} is not empty ({objects})")]
    TargetNotEmpty { database: String, objects: String },

    #[error("the target lacks roles that the backup's owners and privileges name: {roles}")]
    MissingRoles { roles: String },

    #[error("database {database:?} already exists")]
    DatabaseExists { database: String },

    #[error(
        "database {database:?} is what an interrupted restore left ({restore}), not a usable database"
    )]
    DatabaseIncomplete { database: String, restore: String },

    #[error(
        "database {database:?} carries the mark of an interrupted restore ({restore}), so it may hold part of a backup"
    )]
    TargetIncomplete { database: String, restore: String },

    #[error(
        "another restore into database {database:?} is running (it still held the lock on that name after 10 seconds): wait for it to finish"
    )]
    RestoreRunning { database: String },

    #[error("table {table}: restored {actual} rows but the backup recorded {expected}")]
    RowCountMismatch {
        table: String,
        expected: u64,
        actual: u64,
    },

    #[error(
        "could not lock table {table} within the lock wait timeout ({timeout}): another session holds a conflicting lock"
    )]
    LockTimeout { table: String, timeout: String },

    #[error(
        "the dump must lock {tables} tables in one transaction, but the server's lock table holds about {capacity} locks (max_locks_per_transaction {max_locks_per_transaction} × (max_connections {max_connections} + max_prepared_transactions {max_prepared_transactions})), {in_use} of them taken now: nothing was read; set max_locks_per_transaction to at least {needed_setting} (the server must be restarted)"
    )]
    LockTableTooSmall {
        tables: usize,
        capacity: u64,
        in_use: u64,
        max_locks_per_transaction: u64,
        max_connections: u64,
        max_prepared_transactions: u64,
        needed_setting: u64,
    },

    #[error("the backup has no table {table}; it has {known}")]
    UnknownTable { table: String, known: String },

    #[error(
        "table name {table} is ambiguous: it could be {candidates}; qualify it with its schema"
    )]
    AmbiguousTable { table: String, candidates: String },

    #[error("invalid key condition {expression:?}: {reason}")]
    InvalidKeyFilter { expression: String, reason: String },

    #[error("table {table} has no primary key in the backup, so it cannot be searched by key")]
    NoKey { table: String },

    #[error("the key condition names column {column}, but the key of table {table} is {key}")]
    WrongKeyColumn {
        table: String,
        column: String,
        key: String,
    },

    #[error(
        "splitting tables by block ranges needs PostgreSQL 14 or later (TID range scans) and the source runs {major}"
    )]
    SplitUnsupported { major: u32 },

    #[error(
        "invalid table pattern {pattern:?}: write name or schema.name, quoted like SQL for odd names (\"Odd Schema\".\"Tasks\"), with * and ? as wildcards"
    )]
    InvalidPattern { pattern: String },

    #[error("the table selection and its exclusions together select no table")]
    NothingSelected,

    #[error("the columns of table {table} differ between the backup and the target: {differences}")]
    ColumnMismatch { table: String, differences: String },

    #[error(
        "column {column} of table {table} is {from} in the backup but {to} in the target, and {from} cannot be cast to {to} ({reason}); nothing was written"
    )]
    UncastableColumn {
        table: String,
        column: String,
        from: String,
        to: String,
        reason: String,
    },

    #[error(
        "the backup's rows of table {table} do not convert to the target's column types ({reason}); nothing was written"
    )]
    RowsDoNotConvert { table: String, reason: String },

    #[error("rows of the backup already exist in table {table} ({reason})")]
    RowsExist { table: String, reason: String },

    #[error(
        "rows of the backup have no partition in table {table} of the target ({reason}): its partitioning has changed since the backup (a partition detached, or none created for these rows)"
    )]
    NoPartitionForRows { table: String, reason: String },

    #[error(
        "table {table} has no primary key in the target, so an upsert cannot tell which row to update"
    )]
    NoPrimaryKey { table: String },

    #[error(
        "putting back referencing rows cannot be combined with replacing rows (which would delete referencing rows it did not select)"
    )]
    ReferencingWithReplace,

    #[error(
        "the rows of table {table} that reference restored rows through foreign key {constraint} cannot be put back: {reason}"
    )]
    ReferencingNotRestorable {
        table: String,
        constraint: String,
        reason: String,
    },

    #[error("invalid row condition {predicate:?}: {reason}")]
    InvalidWhere { predicate: String, reason: String },

    #[error(
        "could not lock {tables} within the lock timeout {timeout}: another session holds a conflicting lock"
    )]
    TargetLockTimeout { tables: String, timeout: String },

    #[error(
        "a restore into one named table needs one selected table, but the selection has {count} ({tables})"
    )]
    IntoTableNeedsOneTable { count: usize, tables: String },

    #[error(
        "the PostgreSQL server sent nothing for {waited} while {what}: its backend may be stopped or hung (a SIGSTOPped process, a stuck disk); giving up"
    )]
    ServerStalled { what: String, waited: String },

    #[error(
        "the dump's snapshot {snapshot} is gone (the session that exported it ended: terminated, or the server restarted), so the dump cannot go on consistently: {cause}; run the dump again"
    )]
    SnapshotLost {
        snapshot: String,
        #[source]
        cause: Box<EngineError>,
    },

    #[error("writing the output: {0}")]
    Output(#[source] std::io::Error),

    #[error("interrupted")]
    Interrupted,

    #[error("{cause}; {cleanup}")]
    RestoreFailed {
        #[source]
        cause: Box<EngineError>,
        /// What was done to put the target back, e.g. "the target was left as it was".
        cleanup: String,
    },

    #[error("{object} was stored with {stored} bytes, but {written} were written to it")]
    StoredSizeMismatch {
        object: String,
        stored: u64,
        written: u64,
    },

    #[error("the snapshot's catalog lists {listed} large objects, but {read} were read from it")]
    LargeObjectsChanged { listed: u64, read: u64 },

    #[error("table {table} was created but is not there (was it dropped at the same time?)")]
    TableVanished { table: String },

    #[error("{task} failed (a bug in pgark: the worker panicked or was stopped)")]
    TaskFailed {
        task: &'static str,
        #[source]
        source: Option<tokio::task::JoinError>,
    },

    #[error("cannot start {threads} CPU worker threads")]
    CpuPool {
        threads: usize,
        #[source]
        source: rayon::ThreadPoolBuildError,
    },

    #[error("backup {location} is not encrypted: there is no key to rewrap")]
    NotEncrypted { location: String },

    #[error("{recipient} is not a recipient of backup {location}; its recipients are {recipients}")]
    NotARecipient {
        location: String,
        recipient: String,
        recipients: String,
    },

    #[error(
        "removing those recipients would leave backup {location} with none, and nobody could open it"
    )]
    NoRecipientLeft { location: String },

    #[error(
        "{object} reads back different from what was just written: the store is not keeping writes"
    )]
    ReadBackDiffers { object: String },

    /// The dumping role cannot read every table or sequence whole; found before anything is
    /// read.
    #[error("{}", describe_unreadable(.0))]
    SourceNotReadable(pgark_pg::Unreadable),

    /// `--disable-triggers` as a role that may not set `session_replication_role` and does not
    /// own every table whose triggers would fire.
    #[error(
        "triggers cannot be switched off: role {role} may not set session_replication_role, and it does not own {tables}, so it cannot disable their triggers with ALTER TABLE either; nothing was changed"
    )]
    TriggersNotDisableable { role: String, tables: String },

    /// A data-only restore as a role that may not set `session_replication_role`, into tables
    /// whose triggers or foreign keys would act on rows loaded in parallel.
    #[error(
        "a data-only restore loads tables in parallel with their triggers and foreign keys switched off, which role {role} may not do (session_replication_role is a superuser's setting); {guards}; nothing was changed"
    )]
    DataOnlyNeedsReplicaRole { role: String, guards: String },

    /// The restoring role cannot do everything the restore needs (found before anything was
    /// written): extensions the target lacks or the role may not create, objects only a
    /// superuser creates that others need, owners the role may not set.
    #[error(
        "a restore as role {role} cannot succeed, so nothing was changed: {}",
        problems.join("; ")
    )]
    RestoreNotPermitted {
        role: String,
        problems: Vec<String>,
        /// Whether owners the role may not set are among the problems.
        unsettable_owners: bool,
    },

    /// A globals restore asked to be strict met a statement the server refused.
    #[error(
        "restoring the instance's roles as role {role} stopped at {refusal}; the roles and memberships were left as they were"
    )]
    GlobalsRefused { role: String, refusal: String },

    /// A database pattern of a whole-instance dump matches no database.
    #[error("no database on the server matches {pattern:?} (it has: {databases})")]
    NoSuchDatabase { pattern: String, databases: String },

    /// The destination of a copy holds a different backup with the same id.
    #[error(
        "{location} already holds a different backup with this id: the copy would not be this backup"
    )]
    CopyConflict { location: String },

    /// An invariant of the engine's own making did not hold.
    #[error("internal error (a bug in pgark; please report it): {what}")]
    Bug { what: String },
}

impl EngineError {
    pub(crate) fn output(e: std::io::Error) -> Self {
        EngineError::Output(e)
    }

    pub(crate) fn bug(what: impl Into<String>) -> Self {
        EngineError::Bug { what: what.into() }
    }

    /// The class of this failure: the one place each variant is classified.
    pub fn class(&self) -> ErrorClass {
        use ErrorClass as C;
        match self {
            EngineError::Pg(e) => pg_class(e),
            EngineError::Store(e) => store_class(e),
            EngineError::Archive(e) => archive_class(e),
            EngineError::Key(e) => key_class(e),
            EngineError::BackupNotFound { .. }
            | EngineError::UnknownTable { .. }
            | EngineError::AmbiguousTable { .. }
            | EngineError::InvalidKeyFilter { .. }
            | EngineError::NoKey { .. }
            | EngineError::WrongKeyColumn { .. }
            | EngineError::InvalidPattern { .. }
            | EngineError::NothingSelected
            | EngineError::ReferencingWithReplace
            | EngineError::InvalidWhere { .. }
            | EngineError::IntoTableNeedsOneTable { .. }
            | EngineError::SplitUnsupported { .. }
            | EngineError::NotEncrypted { .. }
            | EngineError::NotARecipient { .. }
            | EngineError::NoRecipientLeft { .. } => C::Request,
            EngineError::NoCompleteBackup { .. }
            | EngineError::BackupExists { .. }
            | EngineError::UnsupportedServer { .. }
            | EngineError::TargetNotEmpty { .. }
            | EngineError::MissingRoles { .. }
            | EngineError::DatabaseExists { .. }
            | EngineError::DatabaseIncomplete { .. }
            | EngineError::TargetIncomplete { .. }
            | EngineError::ColumnMismatch { .. }
            | EngineError::UncastableColumn { .. }
            | EngineError::RowsDoNotConvert { .. }
            | EngineError::RowsExist { .. }
            | EngineError::NoPartitionForRows { .. }
            | EngineError::NoPrimaryKey { .. }
            | EngineError::ReferencingNotRestorable { .. }
            | EngineError::LockTableTooSmall { .. }
            | EngineError::CopyConflict { .. }
            | EngineError::SourceNotReadable(_)
            | EngineError::TriggersNotDisableable { .. }
            | EngineError::DataOnlyNeedsReplicaRole { .. }
            | EngineError::RestoreNotPermitted { .. }
            | EngineError::GlobalsRefused { .. } => C::Refused,
            EngineError::NoSuchDatabase { .. } => C::Request,
            EngineError::RestoreRunning { .. }
            | EngineError::LockTimeout { .. }
            | EngineError::TargetLockTimeout { .. }
            | EngineError::ServerStalled { .. }
            | EngineError::SnapshotLost { .. } => C::Transient,
            EngineError::IncompleteBackup { .. }
            | EngineError::RowCountMismatch { .. }
            | EngineError::StoredSizeMismatch { .. } => C::Damaged,
            EngineError::Interrupted => C::Interrupted,
            EngineError::RestoreFailed { cause, .. } => cause.class(),
            EngineError::Output(_)
            | EngineError::LargeObjectsChanged { .. }
            | EngineError::TableVanished { .. }
            | EngineError::TaskFailed { .. }
            | EngineError::CpuPool { .. }
            | EngineError::ReadBackDiffers { .. }
            | EngineError::Bug { .. } => C::Failed,
        }
    }

    /// Whether work that ran in a transaction of its own may succeed on a new session: the
    /// session was lost, or a remote store failed in a way that may pass.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            EngineError::Pg(e) => e.is_connection_lost(),
            EngineError::Store(e) => e.is_transient(),
            _ => false,
        }
    }

    /// True when the error was caused by a cancellation request rather than a failure.
    pub fn is_interrupted(&self) -> bool {
        match self {
            EngineError::Interrupted => true,
            EngineError::RestoreFailed { cause, .. } => cause.is_interrupted(),
            _ => false,
        }
    }
}

fn pg_class(error: &PgError) -> ErrorClass {
    match error {
        _ if error.is_transient() => ErrorClass::Transient,
        PgError::InvalidConfig { .. } | PgError::PasswordMissing { .. } => ErrorClass::Request,
        PgError::AuthFailed { .. }
        | PgError::DatabaseNotFound { .. }
        | PgError::PasswordsHidden { .. } => ErrorClass::Refused,
        _ => ErrorClass::Failed,
    }
}

fn store_class(error: &StoreError) -> ErrorClass {
    match error {
        StoreError::Unavailable { .. } => ErrorClass::Transient,
        StoreError::InvalidKey { .. } | StoreError::InvalidLocation { .. } => ErrorClass::Request,
        StoreError::AccessDenied { .. }
        | StoreError::NoSuchBucket { .. }
        | StoreError::AlreadyExists { .. } => ErrorClass::Refused,
        // A backup's object missing or shorter than its manifest says.
        StoreError::NotFound { .. } | StoreError::RangeNotSatisfiable { .. } => ErrorClass::Damaged,
        _ => ErrorClass::Failed,
    }
}

fn key_class(error: &KeyError) -> ErrorClass {
    match error {
        _ if error.is_transient() => ErrorClass::Transient,
        KeyError::InvalidRecipient { .. } | KeyError::IdentityFile { .. } => ErrorClass::Request,
        KeyError::NoKeyOpens { .. } | KeyError::Kms { .. } => ErrorClass::Refused,
        KeyError::Archive(e) => archive_class(e),
        _ => ErrorClass::Failed,
    }
}

fn archive_class(error: &ArchiveError) -> ErrorClass {
    match error {
        ArchiveError::Compress(_) | ArchiveError::Crypto { .. } => ErrorClass::Failed,
        ArchiveError::UnsupportedFormatVersion { .. } => ErrorClass::Refused,
        _ => ErrorClass::Damaged,
    }
}

/// "role backup cannot read ...: GRANT ...", one sentence per kind of obstacle.
fn describe_unreadable(unreadable: &pgark_pg::Unreadable) -> String {
    let role = pgark_pg::quote::ident(&unreadable.role);
    let mut parts = Vec::new();
    if !unreadable.no_select.is_empty() {
        let list = unreadable.no_select.join(", ");
        parts.push(format!(
            "role {role} has no SELECT on {list} (GRANT SELECT ON {list} TO {role})"
        ));
    }
    if !unreadable.row_security.is_empty() {
        parts.push(format!(
            "row-level security would hide rows of {} from role {role}, so a dump of them would \
             be incomplete (ALTER ROLE {role} BYPASSRLS, or dump as their owner)",
            unreadable.row_security.join(", ")
        ));
    }
    format!(
        "the dump cannot read every table whole, nothing was written: {}",
        parts.join("; ")
    )
}
