//! The PostgreSQL side of pgark: connection configuration that behaves like libpq, reading the
//! catalog into a schema model, generating DDL from it, and COPY helpers.
//!
//! This crate knows nothing about storage or the dump/restore pipelines; it may use the archive
//! format's types (DDL items, table descriptions) because those are what catalog reading produces.

mod catalog;
mod config;
mod connect;
mod copy_out;
mod ddl;
mod error;
mod iam;
mod keys;
mod large_object_data;
mod pgpass;
pub mod quote;
pub mod rows;
mod socket;
mod split;
mod tls;

pub use catalog::{
    LockTable, RestoreRights, Unreadable, UserTrigger, WriteGuards, installed_extensions,
    lock_table, read_database, read_globals, relations_to_lock, restore_rights, server_version_num,
    unavailable_extensions, unreadable_relations, unsettable_owners, user_objects, write_guards,
};
pub use config::{ConnConfig, DEFAULT_STALL_TIMEOUT, Host, RootCert, SslMode};
pub use connect::{Canceller, Connection, connect};
pub use copy_out::{CopyOutBuffers, CopyOutItem, RowBuffers, RowSink};
pub use ddl::{
    SchemaDump, TableData, copy_in_sql, copy_out_columns_sql, copy_out_sql, drop_statement,
    read_schema, superuser_only,
};
pub use error::{PgError, ServerMessage};
pub use keys::{integer_keys, lookup_keys};
pub use large_object_data::{LargeObjectPiece, LargeObjectReader, write_large_object_pieces};
pub use split::{
    RowRange, TID_RANGE_SCAN_VERSION_NUM, copy_out_range_sql, key_bounds, large_objects_bytes,
    relation_blocks, sampled_row_bytes,
};
