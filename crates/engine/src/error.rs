use pgark_archive::ArchiveError;
use pgark_pg::PgError;
use pgark_storage::StoreError;

/// What can stop a dump or restore. Each message names its subject and, where there is one, the
/// way forward.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error(transparent)]
    Pg(#[from] PgError),

    #[error(transparent)]
    Store(#[from] StoreError),

    #[error(transparent)]
    Archive(#[from] ArchiveError),

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

    #[error("internal error: {0}")]
    Internal(String),
}

impl EngineError {
    pub(crate) fn output(e: std::io::Error) -> Self {
        EngineError::Output(e)
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
