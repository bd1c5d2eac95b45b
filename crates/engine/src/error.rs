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

    #[error(
        "target database {database:?} is not empty ({objects}): restore into an empty database, or pass --create with a new database name"
    )]
    TargetNotEmpty { database: String, objects: String },

    #[error(
        "the target lacks roles that the backup's owners and privileges name: {roles}. Create \
         them, restore with --create-roles, or leave owners and privileges out with --no-owner \
         --no-acl"
    )]
    MissingRoles { roles: String },

    #[error(
        "database {database:?} already exists: drop it first, or restore into it without --create if it is empty"
    )]
    DatabaseExists { database: String },

    #[error(
        "database {database:?} is what an interrupted restore left ({restore}), not a usable database: drop it, or pass --force to have this restore drop it"
    )]
    DatabaseIncomplete { database: String, restore: String },

    #[error(
        "database {database:?} carries the mark of an interrupted restore ({restore}), so it may hold part of a backup: recreate it empty, or pass --force to restore into it anyway (what a restore of the same backup created is removed first)"
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
        "could not lock table {table} within the lock wait timeout ({timeout}): another session holds a conflicting lock; retry later or raise --lock-wait-timeout"
    )]
    LockTimeout { table: String, timeout: String },

    #[error("the backup has no table {table}; it has {known}")]
    UnknownTable { table: String, known: String },

    #[error(
        "table name {table} is ambiguous: it could be {candidates}; qualify it with its schema"
    )]
    AmbiguousTable { table: String, candidates: String },

    #[error(
        "invalid --where-key {expression:?}: {reason}; write e.g. \"id BETWEEN 1000 AND 2000\", \"id IN (1, 2)\", \"tenant = 42 AND seq = 7\" or \"id = '550e8400-e29b-41d4-a716-446655440000'\""
    )]
    InvalidKeyFilter { expression: String, reason: String },

    #[error(
        "table {table} has no primary key in the backup, so --where-key cannot be used; read it whole"
    )]
    NoKey { table: String },

    #[error("--where-key names column {column}, but the key of table {table} is {key}")]
    WrongKeyColumn {
        table: String,
        column: String,
        key: String,
    },

    #[error(
        "--split blocks needs PostgreSQL 14 or later (TID range scans) and the source runs {major}: use --split keys or --split auto"
    )]
    SplitUnsupported { major: u32 },

    #[error(
        "invalid table pattern {pattern:?}: write name or schema.name, quoted like SQL for odd names (\"Odd Schema\".\"Tasks\"), with * and ? as wildcards"
    )]
    InvalidPattern { pattern: String },

    #[error(
        "--table, --schema and --exclude-table together select no table; loosen --exclude-table"
    )]
    NothingSelected,

    #[error(
        "the columns of table {table} differ between the backup and the target: {differences}; restore with --ignore-missing-columns to restore the common columns only (target-only columns get their defaults), or beside with --into-schema NAME"
    )]
    ColumnMismatch { table: String, differences: String },

    #[error(
        "column {column} of table {table} is {from} in the backup but {to} in the target, and {from} cannot be cast to {to} ({reason}); nothing was written; restore it beside with --into-schema NAME"
    )]
    UncastableColumn {
        table: String,
        column: String,
        from: String,
        to: String,
        reason: String,
    },

    #[error(
        "the backup's rows of table {table} do not convert to the target's column types ({reason}); nothing was written; restore them beside with --into-schema NAME and convert by hand"
    )]
    RowsDoNotConvert { table: String, reason: String },

    #[error(
        "rows of the backup already exist in table {table} ({reason}); choose what to do with them: --conflict skip keeps the target's rows, upsert overwrites them, replace deletes the target's rows matching --where first"
    )]
    RowsExist { table: String, reason: String },

    #[error(
        "rows of the backup have no partition in table {table} of the target ({reason}): its partitioning has changed since the backup (a partition detached, or none created for these rows); attach or create a partition that holds them, or leave them out with --where"
    )]
    NoPartitionForRows { table: String, reason: String },

    #[error(
        "table {table} has no primary key in the target, so --conflict upsert cannot tell which row to update; use --conflict skip, error or replace"
    )]
    NoPrimaryKey { table: String },

    #[error(
        "--with-referencing cannot be combined with --conflict replace (which would delete referencing rows it did not select); use --conflict error, skip or upsert"
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

    #[error(
        "invalid --where {predicate:?}: {reason}; it is an SQL condition on the table's columns, e.g. \"id IN (1, 2, 3)\" or \"created_at > '2026-11-01'\" (other names must be schema-qualified)"
    )]
    InvalidWhere { predicate: String, reason: String },

    #[error(
        "could not lock {tables} within --lock-timeout {timeout}: another session holds a conflicting lock; retry later or raise --lock-timeout"
    )]
    TargetLockTimeout { tables: String, timeout: String },

    #[error(
        "--into-table names one table, but the selection has {count} ({tables}); select one table with --table, or use --into-schema"
    )]
    IntoTableNeedsOneTable { count: usize, tables: String },

    #[error(
        "the PostgreSQL server sent nothing for {waited} while {what}: its backend may be stopped or hung (a SIGSTOPped process, a stuck disk); giving up (raise --stall-timeout if the server is only slow)"
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
