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
    Addressing as S3Addressing, DEFAULT_PART_SIZE as S3_DEFAULT_PART_SIZE,
    MIN_PART_SIZE as S3_MIN_PART_SIZE, PARTS_IN_FLIGHT as S3_PARTS_IN_FLIGHT, S3Options, S3Store,
    Sse, WriteChecksum as S3Checksum,
};

/// S3 Object Lock on an object: what a store applies to every object it writes (see
/// [`ObjectStore::object_lock`]) and what it reports of one stored object
/// ([`ObjectStore::lock_of`]). While it holds, the object cannot be deleted or overwritten, by
/// anyone (compliance) or by anyone without the bypass permission (governance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ObjectLock {
    /// The retention mode and until when it holds.
    pub retention: Option<(LockMode, std::time::SystemTime)>,
    /// A legal hold holds until it is removed, whatever the retention.
    pub legal_hold: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Users with `s3:BypassGovernanceRetention` may still delete or shorten it.
    Governance,
    /// Nobody, the account's root user included, can delete the object before the date.
    Compliance,
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockMode::Governance => "governance",
            LockMode::Compliance => "compliance",
        })
    }
}

impl ObjectLock {
    /// Whether the object cannot be deleted at `now`.
    pub fn holds_at(&self, now: std::time::SystemTime) -> bool {
        self.legal_hold || self.retention.is_some_and(|(_, until)| until > now)
    }

    pub fn is_none(&self) -> bool {
        self.retention.is_none() && !self.legal_hold
    }
}

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

    /// Starts a streamed upload of an object expected to be about `expected` bytes long (an
    /// estimate), so that a store that cuts uploads into a limited number of parts (S3) can size
    /// them before the first one.
    fn start_upload_of_size(
        &self,
        key: &ObjectKey,
        expected: u64,
    ) -> BoxFuture<'_, Result<Box<dyn Upload>, StoreError>> {
        let _ = expected;
        self.start_upload(key)
    }

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

    /// Checks, before anything is written, that the store can write objects the way it is
    /// configured to (S3: that the bucket has Object Lock enabled when objects are to be locked).
    fn check_write_settings(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    /// The lock this store puts on every object it writes (none by default).
    fn object_lock(&self) -> Option<ObjectLock> {
        None
    }

    /// The lock on stored object `key` (none on stores without Object Lock).
    fn lock_of(&self, key: &ObjectKey) -> BoxFuture<'_, Result<ObjectLock, StoreError>> {
        let _ = key;
        Box::pin(async { Ok(ObjectLock::default()) })
    }

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
