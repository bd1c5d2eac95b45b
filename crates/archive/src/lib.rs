//! The pgark archive format, with no I/O: object keys and the backup layout, the manifest and its
//! checksum, chunk framing (independent zstd frames of whole COPY rows, each with a SHA-256), and
//! UTC timestamps for backup ids.
//!
//! Everything here is a pure function of bytes in and bytes out so that it can be property-tested
//! and fuzzed; storage, PostgreSQL and async code live in other crates and call into this one.
//!
//! A backup is a key prefix holding data objects and its metadata (see `catalog`: a head, a
//! catalog and a chunk index). The head is written last (its presence is what makes a backup
//! complete); the chunk index records, per table, every chunk's object, offset, length, sizes,
//! row count and SHA-256, so that readers can fetch single chunks with ranged reads and check
//! each before use.

pub mod binary_copy;
mod catalog;
mod chunk;
pub mod copy_text;
mod digest;
mod error;
pub mod key_summary;
pub mod large_objects;
pub mod layout;
mod manifest;
mod marker;
pub mod seal;
mod time;

pub use catalog::{
    CATALOG_NAME, CHECKSUMS_NAME, CHUNK_INDEX_NAME, ChunkIndexRef, EncodedMetadata, ManifestHead,
    ObjectRef, Totals, check_object, stored_pieces,
};
pub use chunk::{
    ChunkDecoder, ChunkEncoder, EncodedChunk, LARGE_OBJECTS, LARGE_OBJECTS_TABLE, count_rows,
    sha256_hex,
};
pub use digest::ContentDigest;
pub use error::ArchiveError;
pub use manifest::{
    BeforeImageInfo, ChunkEntry, ColumnEntry, ConstraintViaIndex, DatabaseEntry, DatabaseGrant,
    DdlItem, DumpSettings, FORMAT_NAME, FORMAT_VERSION, FilterEntry, GlobalRole, GlobalsEntry,
    KeyRange, LargeObjectsEntry, LookupKey, Manifest, Membership, OLDEST_FORMAT_VERSION,
    ObjectKind, ObjectLockRecord, PartitionNode, PartitionRef, PartitionedEntry, RoleEntry,
    RoleSetting, Section, SequenceValue, SourceInfo, TableEntry, TablespaceEntry, kind_word,
};
pub use marker::StartedMarker;
pub use time::{Timestamp, TimestampError};
