//! pgark object storage: one small trait for the few things a backup needs from a store (staged
//! uploads that become visible only when completed, create-if-absent for the manifest, ranged
//! reads, listing, deleting), its implementations, and the conformance suite every implementation
//! must pass.
//!
//! This crate knows nothing about the archive format or PostgreSQL. Keys are [`ObjectKey`]s,
//! relative to the store's root; [`open_location`] is the one place a user-given location
//! (a directory or `s3://bucket/prefix`) is turned into a store.

mod error;
mod key;
mod local;
mod location;
mod s3;

pub mod conformance;

use std::fmt;
use std::ops::Range;

use bytes::Bytes;
use futures::future::BoxFuture;

pub use error::StoreError;
pub use key::ObjectKey;
pub use local::LocalStore;
pub use location::{StoreOptions, open_location, open_location_with};
pub use s3::{
    DEFAULT_PART_SIZE as S3_DEFAULT_PART_SIZE, MIN_PART_SIZE as S3_MIN_PART_SIZE,
    PARTS_IN_FLIGHT as S3_PARTS_IN_FLIGHT, S3Options, S3Store, Sse,
};

/// What a listing reports about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: ObjectKey,
    pub size: u64,
}

/// A place that holds objects. Implementations are cheap to share (`Arc<dyn ObjectStore>`) and
/// safe to use from many tasks at once.
///
/// Contract (checked by [`conformance`]):
/// - an object becomes visible to `get`/`head`/`list` only once its upload completes; an aborted
///   or dropped upload leaves nothing visible;
/// - `put_if_absent` never overwrites: it fails with [`StoreError::AlreadyExists`];
/// - a missing object is [`StoreError::NotFound`] naming the key;
/// - `get_range` returns exactly the requested bytes or fails ([`StoreError::RangeNotSatisfiable`]
///   when the object is shorter);
/// - `list` returns every object under a prefix (recursively), sorted by key;
/// - `delete` of a missing object succeeds (as on S3).
pub trait ObjectStore: Send + Sync + fmt::Debug + 'static {
    /// Where the store's root is, for messages (never contains credentials).
    fn location(&self) -> String;

    /// Stores a whole object, replacing any previous one.
    fn put(&self, key: &ObjectKey, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Stores a whole object only if `key` does not exist yet; atomic.
    fn put_if_absent(&self, key: &ObjectKey, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Starts a streamed upload of one object.
    fn start_upload(&self, key: &ObjectKey) -> BoxFuture<'_, Result<Box<dyn Upload>, StoreError>>;

    fn get(&self, key: &ObjectKey) -> BoxFuture<'_, Result<Bytes, StoreError>>;

    fn get_range(
        &self,
        key: &ObjectKey,
        range: Range<u64>,
    ) -> BoxFuture<'_, Result<Bytes, StoreError>>;

    fn head(&self, key: &ObjectKey) -> BoxFuture<'_, Result<ObjectMeta, StoreError>>;

    /// Every object whose key starts with `prefix/` (or every object, for `None`), sorted by key.
    fn list(
        &self,
        prefix: Option<&ObjectKey>,
    ) -> BoxFuture<'_, Result<Vec<ObjectMeta>, StoreError>>;

    fn delete(&self, key: &ObjectKey) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Aborts every upload started through this store that was neither completed nor aborted
    /// (typically dropped by a failed or cancelled task) and waits until they are gone. Stores
    /// whose dropped uploads vanish by themselves (the local store) have nothing to do; on S3
    /// this aborts the open multipart uploads, whose parts would otherwise stay (and be billed).
    fn abort_pending_uploads(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}

/// One object being written. Bytes passed to `write` are appended in order; nothing is visible
/// under the key until `complete` returns. Dropping an upload without completing it discards it
/// (best effort; `abort` does it for certain).
pub trait Upload: Send + fmt::Debug {
    fn write(&mut self, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Makes the object visible and returns its size. On S3 it is durable too; a local store
    /// makes it durable with its next `put` or `put_if_absent`, which syncs every upload
    /// completed before it (so a manifest written last is never durable before its data).
    fn complete(self: Box<Self>) -> BoxFuture<'static, Result<u64, StoreError>>;

    fn abort(self: Box<Self>) -> BoxFuture<'static, Result<(), StoreError>>;
}
