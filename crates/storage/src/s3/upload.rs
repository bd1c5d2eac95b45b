//! A streamed upload to S3. Bytes are gathered into parts of one size, chosen before the first
//! from the object's expected size ([`part_size`]: 8 MiB by default, S3's minimum is 5 MiB); every
//! part but the last has exactly that size. An object that never fills its first part is sent
//! with one PUT when
//! completed, anything larger becomes a multipart upload, created when the first part is full.
//! At most [`PARTS_IN_FLIGHT`] parts are being sent while the next one fills, so an upload holds
//! at most `(PARTS_IN_FLIGHT + 1) × part size` bytes. Each part is sent from complete `Bytes`
//! (so the SDK can retry it with backoff) with its checksum, which S3 checks on arrival.
//!
//! Every failure aborts the multipart upload; so does `abort`, and dropping an unfinished upload
//! starts an abort in the background (a last resort: the dump engine calls
//! `abort_pending_uploads`, which waits for them).

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::task::JoinSet;

use super::{BodyChecksum, MAX_PARTS, PARTS_IN_FLIGHT, Shared, body_checksum, error, part_size};
use crate::{StoreError, Upload};

pub(super) struct S3Upload {
    shared: Arc<Shared>,
    full_key: String,
    /// The size of every part but the last.
    part_size: usize,
    /// The part being filled.
    buffer: Vec<u8>,
    /// The number the next part sent will have (1-based).
    next_part: i32,
    /// The multipart upload's id, once created; `None` again after completing or aborting.
    upload_id: Option<String>,
    in_flight: JoinSet<Result<CompletedPart, StoreError>>,
    parts: Vec<CompletedPart>,
    size: u64,
    /// A write failed (and the upload was aborted): nothing more can succeed.
    failed: bool,
}

impl std::fmt::Debug for S3Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Upload")
            .field("key", &self.full_key)
            .field("upload_id", &self.upload_id)
            .field("next_part", &self.next_part)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl S3Upload {
    /// An upload of `full_key`, expected to be about `expected` bytes long (when known).
    pub(super) fn new(shared: Arc<Shared>, full_key: String, expected: Option<u64>) -> Self {
        let base = shared.options.part_size.unwrap_or(super::DEFAULT_PART_SIZE);
        S3Upload {
            shared,
            full_key,
            part_size: usize::try_from(part_size(base, expected)).unwrap_or(usize::MAX),
            buffer: Vec::new(),
            next_part: 1,
            upload_id: None,
            in_flight: JoinSet::new(),
            parts: Vec::new(),
            size: 0,
            failed: false,
        }
    }

    fn location(&self) -> String {
        self.shared.object_location(&self.full_key)
    }

    async fn write_inner(&mut self, data: Bytes) -> Result<(), StoreError> {
        if self.failed {
            return Err(self.already_failed());
        }
        self.size += data.len() as u64;
        let mut rest: &[u8] = &data;
        while !rest.is_empty() {
            let want = self.part_size;
            if self.buffer.capacity() == 0 {
                self.buffer.reserve_exact(want);
            }
            let take = (want - self.buffer.len()).min(rest.len());
            self.buffer.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buffer.len() == want {
                let part = Bytes::from(std::mem::take(&mut self.buffer));
                self.send_part(part).await?;
            }
        }
        Ok(())
    }

    /// Starts sending one part, first waiting until fewer than `PARTS_IN_FLIGHT` are in flight.
    async fn send_part(&mut self, part: Bytes) -> Result<(), StoreError> {
        if self.next_part > MAX_PARTS {
            return Err(StoreError::TooManyParts {
                location: self.location(),
                max_parts: MAX_PARTS,
                part_size: self.part_size as u64,
            });
        }
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => self.create().await?,
        };
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            self.join_one().await?;
        }
        let number = self.next_part;
        self.next_part += 1;
        let shared = self.shared.clone();
        let full_key = self.full_key.clone();
        self.in_flight.spawn(async move {
            let location = shared.object_location(&full_key);
            let checksum = body_checksum(shared.options.checksum, part.clone()).await;
            let request = shared
                .client()
                .await?
                .upload_part()
                .bucket(&shared.root.bucket)
                .key(&full_key)
                .upload_id(upload_id)
                .part_number(number)
                .content_length(i64::try_from(part.len()).unwrap_or(i64::MAX))
                .set_checksum_sha256(checksum.sha256())
                .set_checksum_crc32_c(checksum.crc32c())
                .body(ByteStream::from(part));
            // The signed checksum header already makes S3 verify the body; a signed payload
            // would hash every byte twice more (client and server). Without a checksum the
            // payload is signed instead.
            let sent = if checksum.is_none() {
                request.send().await
            } else {
                request.customize().disable_payload_signing().send().await
            };
            let output = sent.map_err(|e| {
                with_part(
                    error::map(&shared.subject("upload part to", &location), e),
                    number,
                )
            })?;
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(output.e_tag().map(str::to_owned))
                .set_checksum_sha256(checksum.sha256())
                .set_checksum_crc32_c(checksum.crc32c())
                .build())
        });
        Ok(())
    }

    async fn create(&mut self) -> Result<String, StoreError> {
        let location = self.location();
        let shared = &self.shared;
        let (lock_mode, retain_until, legal_hold) = shared.lock_headers();
        let output = shared
            .client()
            .await?
            .create_multipart_upload()
            .bucket(&shared.root.bucket)
            .key(&self.full_key)
            .set_checksum_algorithm(BodyChecksum::algorithm(shared.options.checksum))
            .set_server_side_encryption(shared.sse())
            .set_ssekms_key_id(shared.options.sse_kms_key_id.clone())
            .set_storage_class(shared.storage_class())
            .set_object_lock_mode(lock_mode)
            .set_object_lock_retain_until_date(retain_until)
            .set_object_lock_legal_hold_status(legal_hold)
            .send()
            .await
            .map_err(|e| error::map(&shared.subject("start multipart upload of", &location), e))?;
        let id = output.upload_id().ok_or_else(|| StoreError::Rejected {
            operation: "start multipart upload of",
            location,
            message: "the server returned no upload id".into(),
            source: None,
        })?;
        shared.open_upload(id, &self.full_key);
        self.upload_id = Some(id.to_owned());
        Ok(id.to_owned())
    }

    /// Waits for one part in flight; a failed part fails (and aborts) the whole upload.
    async fn join_one(&mut self) -> Result<(), StoreError> {
        let Some(joined) = self.in_flight.join_next().await else {
            return Ok(());
        };
        let result = joined.unwrap_or_else(|e| {
            Err(StoreError::Rejected {
                operation: "upload part to",
                location: self.location(),
                message: "the upload task failed".into(),
                source: Some(Box::new(e)),
            })
        });
        match result {
            Ok(part) => {
                self.parts.push(part);
                Ok(())
            }
            Err(e) => {
                self.fail().await;
                Err(e)
            }
        }
    }

    /// Stops every part in flight and aborts the multipart upload.
    async fn fail(&mut self) {
        self.failed = true;
        if let Err(e) = self.abort_inner().await {
            tracing::warn!("{e}");
        }
    }

    async fn abort_inner(&mut self) -> Result<(), StoreError> {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        self.buffer = Vec::new();
        match self.upload_id.take() {
            Some(id) => self.shared.abort_multipart(&self.full_key, &id).await,
            None => Ok(()),
        }
    }

    async fn complete_inner(&mut self) -> Result<u64, StoreError> {
        if self.failed {
            return Err(self.already_failed());
        }
        if self.upload_id.is_none() {
            // Smaller than one part: one PUT.
            let data = Bytes::from(std::mem::take(&mut self.buffer));
            self.shared.put_object(&self.full_key, data, false).await?;
            return Ok(self.size);
        }
        if !self.buffer.is_empty() {
            let last = Bytes::from(std::mem::take(&mut self.buffer));
            self.send_part(last).await?;
        }
        while !self.in_flight.is_empty() {
            self.join_one().await?;
        }
        let Some(upload_id) = self.upload_id.clone() else {
            return Err(self.already_failed());
        };
        let mut parts = std::mem::take(&mut self.parts);
        parts.sort_by_key(|part| part.part_number());
        let location = self.location();
        let shared = self.shared.clone();
        let result = shared
            .client()
            .await?
            .complete_multipart_upload()
            .bucket(&shared.root.bucket)
            .key(&self.full_key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => {
                shared.pending().remove(&upload_id);
                self.upload_id = None;
                Ok(self.size)
            }
            Err(e) => {
                let error = error::map(
                    &shared.subject("complete multipart upload of", &location),
                    e,
                );
                self.fail().await;
                Err(error)
            }
        }
    }

    fn already_failed(&self) -> StoreError {
        StoreError::Rejected {
            operation: "upload",
            location: self.location(),
            message: "the upload already failed and was aborted".into(),
            source: None,
        }
    }
}

/// Adds the part number to a remote store's error message.
fn with_part(mut error: StoreError, number: i32) -> StoreError {
    if let StoreError::Unavailable { message, .. } | StoreError::Rejected { message, .. } =
        &mut error
    {
        *message = format!("part {number}: {message}");
    }
    error
}

impl Upload for S3Upload {
    fn write(&mut self, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write_inner(data).boxed()
    }

    fn complete(mut self: Box<Self>) -> BoxFuture<'static, Result<u64, StoreError>> {
        async move { self.complete_inner().await }.boxed()
    }

    fn abort(mut self: Box<Self>) -> BoxFuture<'static, Result<(), StoreError>> {
        async move { self.abort_inner().await }.boxed()
    }
}

impl Drop for S3Upload {
    fn drop(&mut self) {
        // The JoinSet aborts the parts in flight when dropped; the multipart upload itself must
        // be aborted by a request.
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        let shared = self.shared.clone();
        let full_key = std::mem::take(&mut self.full_key);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(e) = shared.abort_multipart(&full_key, &upload_id).await {
                        tracing::warn!("{e}");
                    }
                });
            }
            Err(_) => tracing::warn!(
                "multipart upload {upload_id} of {} was dropped outside a runtime and is left for abort_pending_uploads",
                shared.object_location(&full_key)
            ),
        }
    }
}
