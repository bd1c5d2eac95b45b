//! What an engine error says to a person at the command line: the engine's message in its own
//! terms, and — where the way forward is a command-line option — that option. The one table
//! mapping engine errors to flags.

use pgark_engine::EngineError;
use pgark_storage::StoreError;

/// The full message for `error` (its causes are added by the caller).
pub fn message(error: &EngineError) -> String {
    use EngineError as E;
    match error {
        E::RestoreFailed { cause, cleanup } => format!("{}; {cleanup}", message(cause)),
        E::TargetNotEmpty { .. } => format!(
            "{error}: restore into an empty database, or pass --create with a new database name"
        ),
        E::MissingRoles { .. } => format!(
            "{error}. Create them, restore with --create-roles, or leave owners and privileges \
             out with --no-owner --no-acl"
        ),
        E::TriggersNotDisableable { role, .. } => format!(
            "{error}. Restore as the tables' owner, leave out --disable-triggers, or have a \
             superuser run GRANT SET ON PARAMETER session_replication_role TO {role} \
             (PostgreSQL 15+)"
        ),
        E::DataOnlyNeedsReplicaRole { role, .. } => format!(
            "{error}. Restore those tables with `pgark restore --table` (one transaction, \
             triggers switched off with ALTER TABLE where the role owns them), restore as a \
             superuser, or have one run GRANT SET ON PARAMETER session_replication_role TO \
             {role} (PostgreSQL 15+)"
        ),
        E::RestoreNotPermitted {
            role,
            unsettable_owners,
            ..
        } => {
            let mut ways = vec![
                format!(
                    "restore as a role that may (a superuser), or have one create what is \
                     named for {role} first"
                ),
                "`pgark restore --check` lists the same without changing anything".to_owned(),
            ];
            if *unsettable_owners {
                ways.insert(
                    0,
                    "for the owners, restore with --no-owner (the restoring role owns \
                     everything) or --skip-unsettable-owners (set the owners it can, warn for \
                     the rest), or grant the roles to it"
                        .to_owned(),
                );
            }
            format!("{error}. Ways forward: {}", ways.join("; "))
        }
        E::DatabaseExists { .. } => {
            format!("{error}: drop it first, or restore into it without --create if it is empty")
        }
        E::DatabaseIncomplete { .. } => {
            format!("{error}: drop it, or pass --force to have this restore drop it")
        }
        E::TargetIncomplete { .. } => format!(
            "{error}: recreate it empty, or pass --force to restore into it anyway (what a \
             restore of the same backup created is removed first)"
        ),
        E::LockTimeout { .. } => format!("{error}; retry later or raise --lock-wait-timeout"),
        E::InvalidKeyFilter { expression, reason } => format!(
            "invalid --where-key {expression:?}: {reason}; write e.g. \"id BETWEEN 1000 AND \
             2000\", \"id IN (1, 2)\", \"tenant = 42 AND seq = 7\" or \
             \"id = '550e8400-e29b-41d4-a716-446655440000'\""
        ),
        E::NoKey { table } => format!(
            "table {table} has no primary key in the backup, so --where-key cannot be used; \
             read it whole"
        ),
        E::WrongKeyColumn { table, column, key } => {
            format!("--where-key names column {column}, but the key of table {table} is {key}")
        }
        E::SplitUnsupported { major } => format!(
            "--split blocks needs PostgreSQL 14 or later (TID range scans) and the source runs \
             {major}: use --split keys or --split auto"
        ),
        E::NothingSelected => "--table, --schema and --exclude-table together select no table; \
                               loosen --exclude-table"
            .to_owned(),
        E::ColumnMismatch { .. } => format!(
            "{error}; restore with --ignore-missing-columns to restore the common columns only \
             (target-only columns get their defaults), or beside with --into-schema NAME"
        ),
        E::UncastableColumn { .. } => {
            format!("{error}; restore it beside with --into-schema NAME")
        }
        E::RowsDoNotConvert { .. } => {
            format!("{error}; restore them beside with --into-schema NAME and convert by hand")
        }
        E::RowsExist { .. } => format!(
            "{error}; choose what to do with them: --conflict skip keeps the target's rows, \
             upsert overwrites them, replace deletes the target's rows matching --where first"
        ),
        E::NoPartitionForRows { .. } => format!(
            "{error}; attach or create a partition that holds them, or leave them out with \
             --where"
        ),
        E::NoPrimaryKey { table } => format!(
            "table {table} has no primary key in the target, so --conflict upsert cannot tell \
             which row to update; use --conflict skip, error or replace"
        ),
        E::ReferencingWithReplace => "--with-referencing cannot be combined with --conflict \
                                      replace (which would delete referencing rows it did not \
                                      select); use --conflict error, skip or upsert"
            .to_owned(),
        E::InvalidWhere { predicate, reason } => format!(
            "invalid --where {predicate:?}: {reason}; it is an SQL condition on the table's \
             columns, e.g. \"id IN (1, 2, 3)\" or \"created_at > '2026-11-01'\" (other names \
             must be schema-qualified)"
        ),
        E::TargetLockTimeout { tables, timeout } => format!(
            "could not lock {tables} within --lock-timeout {timeout}: another session holds a \
             conflicting lock; retry later or raise --lock-timeout"
        ),
        E::IntoTableNeedsOneTable { count, tables } => format!(
            "--into-table names one table, but the selection has {count} ({tables}); select \
             one table with --table, or use --into-schema"
        ),
        E::Store(StoreError::TooManyParts { .. }) => {
            format!("{error}; raise --s3-part-size")
        }
        E::Store(StoreError::ObjectLockNotEnabled { .. }) => format!(
            "{error}: enable Object Lock on the bucket (S3 console or `aws s3api \
             put-object-lock-configuration`; it needs versioning), or write to a bucket that has \
             it, or leave out --object-lock and --legal-hold. Nothing was written"
        ),
        E::LockTableTooSmall { .. } => {
            format!("{error}, or leave tables out with --exclude-table")
        }
        E::ServerStalled { .. } => {
            format!("{error} (raise --stall-timeout if the server is only slow)")
        }
        _ => error.to_string(),
    }
}
