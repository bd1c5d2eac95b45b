//! The S3 store: objects under `s3://bucket/prefix`, written with single PUTs or streamed
//! multipart uploads ([`upload`]), read with ranged GETs. Every object and every part carries a
//! checksum (SHA-256 unless configured otherwise) that S3 verifies on arrival; `put_if_absent` is a conditional write
//! (`If-None-Match: *`), so a manifest is never overwritten.
//!
//! The store keeps a list of its open multipart uploads, so that a failed or cancelled dump can
//! abort every one of them ([`ObjectStore::abort_pending_uploads`]) instead of leaving invisible,
//! billed parts behind.

mod config;
mod error;
mod upload;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ObjectLockEnabled, ObjectLockLegalHoldStatus, ObjectLockMode, ServerSideEncryption,
    StorageClass,
};
use aws_smithy_types::DateTime;
use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use sha2::{Digest, Sha256};

use crate::{LockMode, ObjectKey, ObjectLock, ObjectMeta, ObjectStore, StoreError, Upload};
pub use config::{
    Addressing, DEFAULT_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, PARTS_IN_FLIGHT, S3Location,
    S3Options, Sse, WriteChecksum, part_size,
};
use error::Subject;

/// Conditional writes that S3 answers with `409 ConditionalRequestConflict` (another conditional
/// write to the key was in progress) are tried this often before giving up.
const CONFLICT_ATTEMPTS: usize = 5;

/// S3's largest object: 5 TiB.
const MAX_OBJECT_SIZE: u64 = 5 << 40;

/// A store rooted at `s3://bucket/prefix`. Cheap to clone; clones share the client and the list
/// of open uploads.
#[derive(Clone)]
pub struct S3Store {
    shared: Arc<Shared>,
}

struct Shared {
    root: S3Location,
    options: S3Options,
    /// Built on first use: the AWS configuration chain is asynchronous.
    client: tokio::sync::OnceCell<Client>,
    /// Open multipart uploads by upload id.
    pending: Mutex<HashMap<String, PendingUpload>>,
}

/// A multipart upload neither completed nor aborted yet.
struct PendingUpload {
    full_key: String,
    /// Taken by each abort of the upload, so that a second abort (a dropped upload's, beside
    /// `abort_pending_uploads`) waits for the first and then finds nothing left to do: servers
    /// answer an abort racing another one with anything from NoSuchUpload to AccessDenied.
    aborting: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("root", &self.shared.root.to_string())
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// A store for `s3://bucket/prefix`; the client is configured from the AWS conventions
    /// and `options` on first use.
    pub fn new(location: &str, options: S3Options) -> Result<Self, StoreError> {
        Self::build(location, options, None)
    }

    /// A store using a ready client (tests, or callers with their own AWS configuration).
    pub fn with_client(
        location: &str,
        options: S3Options,
        client: Client,
    ) -> Result<Self, StoreError> {
        Self::build(location, options, Some(client))
    }

    fn build(
        location: &str,
        options: S3Options,
        client: Option<Client>,
    ) -> Result<Self, StoreError> {
        let root = S3Location::parse(location)?;
        options
            .validate()
            .map_err(|reason| StoreError::InvalidLocation {
                location: location.to_owned(),
                reason,
            })?;
        Ok(S3Store {
            shared: Arc::new(Shared {
                root,
                options,
                client: client.map_or_else(tokio::sync::OnceCell::new, |c| {
                    tokio::sync::OnceCell::new_with(Some(c))
                }),
                pending: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Multipart uploads started by this store and neither completed nor aborted yet.
    pub fn open_uploads(&self) -> usize {
        self.shared.pending().len()
    }
}

impl Shared {
    async fn client(&self) -> Result<&Client, StoreError> {
        self.client
            .get_or_try_init(|| config::build_client(&self.root, &self.options))
            .await
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingUpload>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn full_key(&self, key: &ObjectKey) -> String {
        if self.root.prefix.is_empty() {
            key.as_str().to_owned()
        } else {
            format!("{}/{}", self.root.prefix, key.as_str())
        }
    }

    fn object_location(&self, full_key: &str) -> String {
        format!("s3://{}/{}", self.root.bucket, full_key)
    }

    fn subject<'a>(&'a self, operation: &'static str, location: &'a str) -> Subject<'a> {
        Subject {
            operation,
            location,
            bucket: &self.root.bucket,
        }
    }

    fn sse(&self) -> Option<ServerSideEncryption> {
        self.options.sse.map(|sse| match sse {
            Sse::Aes256 => ServerSideEncryption::Aes256,
            Sse::Kms => ServerSideEncryption::AwsKms,
        })
    }

    fn storage_class(&self) -> Option<StorageClass> {
        self.options
            .storage_class
            .as_deref()
            .map(StorageClass::from)
    }

    /// The Object Lock headers of every write: mode, retain-until date, legal hold.
    fn lock_headers(
        &self,
    ) -> (
        Option<ObjectLockMode>,
        Option<DateTime>,
        Option<ObjectLockLegalHoldStatus>,
    ) {
        let Some(lock) = self.options.object_lock else {
            return (None, None, None);
        };
        let (mode, until) = match lock.retention {
            Some((LockMode::Governance, until)) => (
                Some(ObjectLockMode::Governance),
                Some(DateTime::from(until)),
            ),
            Some((LockMode::Compliance, until)) => (
                Some(ObjectLockMode::Compliance),
                Some(DateTime::from(until)),
            ),
            None => (None, None),
        };
        let hold = lock.legal_hold.then_some(ObjectLockLegalHoldStatus::On);
        (mode, until, hold)
    }

    /// The lock on a stored object, from its HEAD.
    async fn object_lock_of(&self, full_key: &str) -> Result<ObjectLock, StoreError> {
        let location = self.object_location(full_key);
        let output = self
            .client()
            .await?
            .head_object()
            .bucket(&self.root.bucket)
            .key(full_key)
            .send()
            .await
            .map_err(|e| error::map(&self.subject("head", &location), e))?;
        let mode = match output.object_lock_mode() {
            Some(ObjectLockMode::Governance) => Some(LockMode::Governance),
            Some(ObjectLockMode::Compliance) => Some(LockMode::Compliance),
            _ => None,
        };
        let until = output
            .object_lock_retain_until_date()
            .and_then(|date| std::time::SystemTime::try_from(*date).ok());
        Ok(ObjectLock {
            retention: mode.zip(until),
            legal_hold: output.object_lock_legal_hold_status()
                == Some(&ObjectLockLegalHoldStatus::On),
        })
    }

    /// One PUT of a whole object with its SHA-256; `if_absent` makes it conditional.
    async fn put_object(
        &self,
        full_key: &str,
        data: Bytes,
        if_absent: bool,
    ) -> Result<(), StoreError> {
        let location = self.object_location(full_key);
        let client = self.client().await?;
        let checksum = body_checksum(self.options.checksum, data.clone()).await;
        let (lock_mode, retain_until, legal_hold) = self.lock_headers();
        let mut conflicts = 0;
        loop {
            let mut request = client
                .put_object()
                .bucket(&self.root.bucket)
                .key(full_key)
                .content_length(i64::try_from(data.len()).unwrap_or(i64::MAX))
                // Names the algorithm as well (`x-amz-sdk-checksum-algorithm`): S3 demands that
                // header, or Content-MD5, on writes under Object Lock.
                .set_checksum_algorithm(BodyChecksum::algorithm(self.options.checksum))
                .set_checksum_sha256(checksum.sha256())
                .set_checksum_crc32_c(checksum.crc32c())
                .set_server_side_encryption(self.sse())
                .set_ssekms_key_id(self.options.sse_kms_key_id.clone())
                .set_storage_class(self.storage_class())
                .set_object_lock_mode(lock_mode.clone())
                .set_object_lock_retain_until_date(retain_until)
                .set_object_lock_legal_hold_status(legal_hold.clone())
                .body(ByteStream::from(data.clone()));
            if if_absent {
                request = request.if_none_match("*");
            }
            // The signed checksum header makes S3 verify the body (see upload.rs).
            let sent = if checksum.is_none() {
                request.send().await
            } else {
                request.customize().disable_payload_signing().send().await
            };
            let error = match sent {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            match error::status_and_code(&error) {
                (Some(412), _) if if_absent => return Err(StoreError::AlreadyExists { location }),
                (Some(409), _) if if_absent && conflicts + 1 < CONFLICT_ATTEMPTS => conflicts += 1,
                _ => return Err(error::map(&self.subject("put", &location), error)),
            }
        }
    }

    async fn head_object(&self, key: &ObjectKey) -> Result<u64, StoreError> {
        let full_key = self.full_key(key);
        let location = self.object_location(&full_key);
        let output = self
            .client()
            .await?
            .head_object()
            .bucket(&self.root.bucket)
            .key(&full_key)
            .send()
            .await
            .map_err(|e| error::map(&self.subject("head", &location), e))?;
        Ok(output
            .content_length()
            .and_then(|len| u64::try_from(len).ok())
            .unwrap_or(0))
    }

    async fn get_object(
        &self,
        key: &ObjectKey,
        range: Option<Range<u64>>,
    ) -> Result<Bytes, StoreError> {
        let full_key = self.full_key(key);
        let location = self.object_location(&full_key);
        let mut request = self
            .client()
            .await?
            .get_object()
            .bucket(&self.root.bucket)
            .key(&full_key);
        if let Some(range) = &range {
            // Non-empty: empty ranges never get here. An end beyond any object is left open
            // (S3 servers refuse numbers that do not fit their integers).
            request = request.range(if range.end > MAX_OBJECT_SIZE {
                format!("bytes={}-", range.start)
            } else {
                format!("bytes={}-{}", range.start, range.end - 1)
            });
        }
        let output = match request.send().await {
            Ok(output) => output,
            Err(e) => {
                if let (Some(range), (Some(416), _)) = (&range, error::status_and_code(&e)) {
                    let size = self.head_object(key).await?;
                    return Err(StoreError::RangeNotSatisfiable {
                        location,
                        start: range.start,
                        end: range.end,
                        size,
                    });
                }
                return Err(error::map(&self.subject("get", &location), e));
            }
        };
        let body = output
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Unavailable {
                operation: "get",
                location: location.clone(),
                message: format!("reading the response body failed: {e}"),
                source: Some(Box::new(e)),
            })?
            .into_bytes();
        if let Some(range) = range
            && body.len() as u64 != range.end - range.start
        {
            // S3 answers a range reaching past the end with the bytes that exist.
            return Err(StoreError::RangeNotSatisfiable {
                location,
                start: range.start,
                end: range.end,
                size: range.start + body.len() as u64,
            });
        }
        Ok(body)
    }

    async fn list_objects(
        &self,
        prefix: Option<&ObjectKey>,
    ) -> Result<Vec<ObjectMeta>, StoreError> {
        let root = if self.root.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.root.prefix)
        };
        let list_prefix = match prefix {
            Some(prefix) => format!("{}/", self.full_key(prefix)),
            None => root.clone(),
        };
        let location = self.object_location(&list_prefix);
        let client = self.client().await?;
        let mut objects = Vec::new();
        let mut token = None;
        loop {
            let output = client
                .list_objects_v2()
                .bucket(&self.root.bucket)
                .prefix(&list_prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| error::map(&self.subject("list", &location), e))?;
            for object in output.contents() {
                let Some(full_key) = object.key() else {
                    continue;
                };
                let Some(relative) = full_key.strip_prefix(&root) else {
                    continue;
                };
                match ObjectKey::new(relative) {
                    Ok(key) => objects.push(ObjectMeta {
                        key,
                        size: object
                            .size()
                            .and_then(|s| u64::try_from(s).ok())
                            .unwrap_or(0),
                    }),
                    Err(e) => tracing::debug!("ignoring object {full_key:?} in listing: {e}"),
                }
            }
            match output.next_continuation_token() {
                Some(next) if output.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => break,
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    async fn delete_object(&self, key: &ObjectKey) -> Result<(), StoreError> {
        let full_key = self.full_key(key);
        let location = self.object_location(&full_key);
        match self
            .client()
            .await?
            .delete_object()
            .bucket(&self.root.bucket)
            .key(&full_key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match error::map(&self.subject("delete", &location), e) {
                StoreError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    /// Records a multipart upload as open until it is completed or aborted.
    fn open_upload(&self, upload_id: &str, full_key: &str) {
        self.pending().insert(
            upload_id.to_owned(),
            PendingUpload {
                full_key: full_key.to_owned(),
                aborting: Arc::default(),
            },
        );
    }

    /// Aborts one multipart upload; one that is already gone counts as aborted.
    async fn abort_multipart(&self, full_key: &str, upload_id: &str) -> Result<(), StoreError> {
        let Some(aborting) = self
            .pending()
            .get(upload_id)
            .map(|upload| upload.aborting.clone())
        else {
            return Ok(());
        };
        let _turn = aborting.lock().await;
        if !self.pending().contains_key(upload_id) {
            // The abort this one waited for succeeded.
            return Ok(());
        }
        let location = self.object_location(full_key);
        let result = self
            .client()
            .await?
            .abort_multipart_upload()
            .bucket(&self.root.bucket)
            .key(full_key)
            .upload_id(upload_id)
            .send()
            .await;
        match result {
            Ok(_) => {
                self.pending().remove(upload_id);
                Ok(())
            }
            Err(e) => match error::status_and_code(&e) {
                (Some(404), _) => {
                    self.pending().remove(upload_id);
                    Ok(())
                }
                (_, Some(code)) if code == "NoSuchUpload" => {
                    self.pending().remove(upload_id);
                    Ok(())
                }
                _ => Err(error::map(
                    &self.subject("abort multipart upload of", &location),
                    e,
                )),
            },
        }
    }
}

/// The checksum header of one write, base64 as S3 expects it.
#[derive(Debug, Clone)]
enum BodyChecksum {
    Sha256(String),
    Crc32c(String),
    None,
}

impl BodyChecksum {
    fn sha256(&self) -> Option<String> {
        match self {
            BodyChecksum::Sha256(value) => Some(value.clone()),
            _ => None,
        }
    }

    fn crc32c(&self) -> Option<String> {
        match self {
            BodyChecksum::Crc32c(value) => Some(value.clone()),
            _ => None,
        }
    }

    fn is_none(&self) -> bool {
        matches!(self, BodyChecksum::None)
    }

    /// The algorithm a multipart upload announces for its parts.
    fn algorithm(kind: WriteChecksum) -> Option<aws_sdk_s3::types::ChecksumAlgorithm> {
        match kind {
            WriteChecksum::Sha256 => Some(aws_sdk_s3::types::ChecksumAlgorithm::Sha256),
            WriteChecksum::Crc32c => Some(aws_sdk_s3::types::ChecksumAlgorithm::Crc32C),
            WriteChecksum::None => None,
        }
    }
}

/// The `kind` checksum of `data`, computed off the async threads.
async fn body_checksum(kind: WriteChecksum, data: Bytes) -> BodyChecksum {
    let digest = tokio::task::spawn_blocking(move || match kind {
        WriteChecksum::Sha256 => Some(Sha256::digest(&data).to_vec()),
        WriteChecksum::Crc32c => {
            let mut crc = aws_smithy_checksums::ChecksumAlgorithm::Crc32c.into_impl();
            crc.update(&data);
            Some(crc.finalize().to_vec())
        }
        WriteChecksum::None => None,
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    match (kind, digest) {
        (WriteChecksum::Sha256, Some(digest)) => {
            BodyChecksum::Sha256(aws_smithy_types::base64::encode(digest))
        }
        (WriteChecksum::Crc32c, Some(digest)) => {
            BodyChecksum::Crc32c(aws_smithy_types::base64::encode(digest))
        }
        _ => BodyChecksum::None,
    }
}

impl ObjectStore for S3Store {
    fn location(&self) -> String {
        self.shared.root.to_string()
    }

    fn put(&self, key: &ObjectKey, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        let full_key = self.shared.full_key(key);
        async move { self.shared.put_object(&full_key, data, false).await }.boxed()
    }

    fn put_if_absent(&self, key: &ObjectKey, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        let full_key = self.shared.full_key(key);
        async move { self.shared.put_object(&full_key, data, true).await }.boxed()
    }

    fn start_upload(&self, key: &ObjectKey) -> BoxFuture<'_, Result<Box<dyn Upload>, StoreError>> {
        let upload = upload::S3Upload::new(self.shared.clone(), self.shared.full_key(key), None);
        async move { Ok(Box::new(upload) as Box<dyn Upload>) }.boxed()
    }

    fn start_upload_of_size(
        &self,
        key: &ObjectKey,
        expected: u64,
    ) -> BoxFuture<'_, Result<Box<dyn Upload>, StoreError>> {
        let upload = upload::S3Upload::new(
            self.shared.clone(),
            self.shared.full_key(key),
            Some(expected),
        );
        async move { Ok(Box::new(upload) as Box<dyn Upload>) }.boxed()
    }

    fn get(&self, key: &ObjectKey) -> BoxFuture<'_, Result<Bytes, StoreError>> {
        let key = key.clone();
        async move { self.shared.get_object(&key, None).await }.boxed()
    }

    fn get_range(
        &self,
        key: &ObjectKey,
        range: Range<u64>,
    ) -> BoxFuture<'_, Result<Bytes, StoreError>> {
        let key = key.clone();
        async move {
            let location = || self.shared.object_location(&self.shared.full_key(&key));
            if range.start > range.end {
                return Err(StoreError::InvalidRange {
                    location: location(),
                    start: range.start,
                    end: range.end,
                });
            }
            if range.start == range.end {
                // No Range header can ask for nothing; the object must still exist and be long enough.
                let size = self.shared.head_object(&key).await?;
                if range.start > size {
                    return Err(StoreError::RangeNotSatisfiable {
                        location: location(),
                        start: range.start,
                        end: range.end,
                        size,
                    });
                }
                return Ok(Bytes::new());
            }
            self.shared.get_object(&key, Some(range)).await
        }
        .boxed()
    }

    fn head(&self, key: &ObjectKey) -> BoxFuture<'_, Result<ObjectMeta, StoreError>> {
        let key = key.clone();
        async move {
            let size = self.shared.head_object(&key).await?;
            Ok(ObjectMeta { key, size })
        }
        .boxed()
    }

    fn list(
        &self,
        prefix: Option<&ObjectKey>,
    ) -> BoxFuture<'_, Result<Vec<ObjectMeta>, StoreError>> {
        let prefix = prefix.cloned();
        async move { self.shared.list_objects(prefix.as_ref()).await }.boxed()
    }

    fn delete(&self, key: &ObjectKey) -> BoxFuture<'_, Result<(), StoreError>> {
        let key = key.clone();
        async move { self.shared.delete_object(&key).await }.boxed()
    }

    fn check_write_settings(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            if self.shared.options.object_lock.is_none() {
                return Ok(());
            }
            let shared = &self.shared;
            let location = shared.root.to_string();
            let not_enabled = || StoreError::ObjectLockNotEnabled {
                bucket: shared.root.bucket.clone(),
                location: location.clone(),
            };
            let answer = shared
                .client()
                .await?
                .get_object_lock_configuration()
                .bucket(&shared.root.bucket)
                .send()
                .await;
            match answer {
                Ok(output) => {
                    let enabled = output
                        .object_lock_configuration()
                        .and_then(|c| c.object_lock_enabled())
                        == Some(&ObjectLockEnabled::Enabled);
                    if enabled { Ok(()) } else { Err(not_enabled()) }
                }
                Err(e) => match error::status_and_code(&e) {
                    (_, Some(code)) if code == "ObjectLockConfigurationNotFoundError" => {
                        Err(not_enabled())
                    }
                    _ => Err(error::map(
                        &shared.subject("read the Object Lock configuration of", &location),
                        e,
                    )),
                },
            }
        }
        .boxed()
    }

    fn object_lock(&self) -> Option<ObjectLock> {
        self.shared.options.object_lock
    }

    fn lock_of(&self, key: &ObjectKey) -> BoxFuture<'_, Result<ObjectLock, StoreError>> {
        let full_key = self.shared.full_key(key);
        async move { self.shared.object_lock_of(&full_key).await }.boxed()
    }

    fn abort_pending_uploads(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let pending: Vec<(String, String)> = self
                .shared
                .pending()
                .iter()
                .map(|(id, upload)| (id.clone(), upload.full_key.clone()))
                .collect();
            let mut first_error = None;
            for (upload_id, full_key) in pending {
                if let Err(e) = self.shared.abort_multipart(&full_key, &upload_id).await {
                    tracing::warn!("{e}");
                    first_error.get_or_insert(e);
                }
            }
            first_error.map_or(Ok(()), Err)
        }
        .boxed()
    }
}
