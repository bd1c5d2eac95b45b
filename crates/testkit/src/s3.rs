//! A real S3 protocol server for tests: `s3s-fs` (objects as files in a temporary directory)
//! behind SigV4 authentication, served over HTTP on `127.0.0.1` by a runtime of its own, so it
//! keeps answering whatever the test's runtime is doing (e.g. waiting for a `pgark` process).
//!
//! The server is wrapped in a layer that does what S3 does and `s3s-fs` does not — verify every
//! part's and every object's `x-amz-checksum-sha256` on arrival (and demand one), make
//! `If-None-Match: *` writes atomic, list open multipart uploads, answer `NoSuchUpload` for
//! finished ones — and that injects faults: fail chosen requests with 500 or 503, or hold
//! `UploadPart` requests until released.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use bytes::Bytes;
use futures::TryStreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tokio::sync::Notify;

/// The credentials the server accepts.
pub const ACCESS_KEY: &str = "pgark-test-access-key";
pub const SECRET_KEY: &str = "pgark-test-secret-key";
/// The bucket every server starts with.
pub const BUCKET: &str = "pgark-test";

/// Requests a fault can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    PutObject,
    CreateMultipartUpload,
    UploadPart,
    CompleteMultipartUpload,
    GetObject,
}

/// How an injected fault answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailWith {
    /// 500 InternalError.
    InternalError,
    /// 503 SlowDown.
    SlowDown,
    /// 400 InvalidRequest: a refusal that retrying does not change.
    InvalidRequest,
}

#[derive(Debug, Default)]
struct State {
    /// Operation → (how, how many more times; `None` = every time).
    faults: BTreeMap<Operation, (FailWith, Option<usize>)>,
    /// Operation → requests received (including failed ones).
    requests: BTreeMap<Operation, usize>,
    /// Upload id → (bucket, key) of multipart uploads neither completed nor aborted.
    open_uploads: BTreeMap<String, (String, String)>,
    hold_parts: bool,
    /// `PutObject` requests for keys ending with this wait, unanswered, forever.
    hold_puts_ending: Option<String>,
    write_settings: Vec<(Option<String>, Option<String>)>,
    /// Every `GetObject` request: the key, and whether it asked for a byte range.
    gets: Vec<(String, bool)>,
    /// Upload id → (part number, bytes) of every part stored.
    parts: BTreeMap<String, Vec<(i32, usize)>>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled whenever an `UploadPart` request arrives.
    part_arrived: Notify,
    /// Signalled when a held `PutObject` request arrives.
    put_held: Notify,
    /// Signalled when held parts are released.
    released: Notify,
    /// Serialises `If-None-Match: *` writes, which `s3s-fs` checks and writes non-atomically.
    conditional: tokio::sync::Mutex<()>,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts the request and returns the injected error, if one is due.
    fn arrive(&self, operation: Operation) -> S3Result<()> {
        let mut state = self.state();
        *state.requests.entry(operation).or_default() += 1;
        let Some((with, times)) = state.faults.get_mut(&operation) else {
            return Ok(());
        };
        let with = *with;
        match times {
            Some(0) => return Ok(()),
            Some(n) => *n -= 1,
            None => {}
        }
        Err(match with {
            FailWith::InternalError => s3_error!(InternalError, "injected fault"),
            FailWith::SlowDown => s3_error!(SlowDown, "injected fault"),
            FailWith::InvalidRequest => s3_error!(InvalidRequest, "injected fault"),
        })
    }
}

/// One running server with one bucket ([`BUCKET`]); stopped when dropped.
#[derive(Debug)]
pub struct S3Server {
    address: SocketAddr,
    shared: Arc<Shared>,
    dir: TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl S3Server {
    pub fn start() -> S3Server {
        let dir = tempfile::tempdir().expect("create a temporary directory for the S3 server");
        std::fs::create_dir(dir.path().join(BUCKET)).expect("create the test bucket");
        let fs = s3s_fs::FileSystem::new(dir.path()).expect("start s3s-fs");
        let shared = Arc::new(Shared::default());
        let service = {
            let mut builder = s3s::service::S3ServiceBuilder::new(Checked {
                inner: fs,
                root: dir.path().to_owned(),
                shared: shared.clone(),
            });
            builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            builder.build()
        };
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind the S3 server to 127.0.0.1");
        listener
            .set_nonblocking(true)
            .expect("make the S3 server's socket non-blocking");
        let address = listener.local_addr().expect("the S3 server's address");
        let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("s3-test-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("start the S3 server's runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("register the S3 server's socket");
                    let http = ConnBuilder::new(TokioExecutor::new());
                    loop {
                        let socket = tokio::select! {
                            accepted = listener.accept() => match accepted {
                                Ok((socket, _)) => socket,
                                Err(_) => continue,
                            },
                            _ = &mut stop => break,
                        };
                        let connection = http
                            .serve_connection(TokioIo::new(socket), service.clone())
                            .into_owned();
                        tokio::spawn(async move {
                            let _ = connection.await;
                        });
                    }
                });
                runtime.shutdown_background();
            })
            .expect("start the S3 server's thread");
        S3Server {
            address,
            shared,
            dir,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// `s3://pgark-test/PREFIX`.
    pub fn location(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}")
    }

    /// Where the server keeps the objects (`DIR/BUCKET/KEY`), to damage them behind its back.
    pub fn object_path(&self, key: &str) -> std::path::PathBuf {
        self.dir.path().join(BUCKET).join(key)
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Environment for a process that should use this server through the AWS conventions, with
    /// no shared config files or instance metadata lookups from the machine running the tests.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        aws_env(&self.endpoint())
    }

    /// An SDK client for this server (path-style, static credentials).
    pub fn client(&self) -> aws_sdk_s3::Client {
        self.client_with(ACCESS_KEY, SECRET_KEY)
    }

    /// An SDK client with other credentials (to test rejected ones).
    pub fn client_with(&self, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
        sdk_client(&self.endpoint(), access_key, secret_key)
    }

    /// The sizes of the parts each multipart upload stored, in part-number order (one list per
    /// upload, in upload-id order).
    pub fn part_sizes(&self) -> Vec<Vec<usize>> {
        self.shared
            .state()
            .parts
            .values()
            .map(|parts| {
                let mut parts = parts.clone();
                parts.sort_unstable();
                parts.into_iter().map(|(_, length)| length).collect()
            })
            .collect()
    }

    /// Fails the next `times` requests of `operation` (every one, for `None`).
    pub fn fail(&self, operation: Operation, with: FailWith, times: Option<usize>) {
        self.shared.state().faults.insert(operation, (with, times));
    }

    /// Requests of `operation` received so far, failed ones included.
    pub fn requests(&self, operation: Operation) -> usize {
        self.shared
            .state()
            .requests
            .get(&operation)
            .copied()
            .unwrap_or(0)
    }

    /// Every `GetObject` request received so far: the key, and whether it asked for a byte range.
    pub fn gets(&self) -> Vec<(String, bool)> {
        self.shared.state().gets.clone()
    }

    /// Makes `UploadPart` requests wait (without answering) until [`release_parts`](Self::release_parts).
    pub fn hold_parts(&self) {
        self.shared.state().hold_parts = true;
    }

    /// Makes every `PutObject` of a key ending with `suffix` wait forever without an answer
    /// (a client killed while waiting leaves the object unwritten).
    pub fn hold_puts_ending_with(&self, suffix: &str) {
        self.shared.state().hold_puts_ending = Some(suffix.to_owned());
    }

    /// Stops holding `PutObject` requests (those held already stay unanswered).
    pub fn stop_holding_puts(&self) {
        self.shared.state().hold_puts_ending = None;
    }

    /// Waits until a held `PutObject` arrives (see [`hold_puts_ending_with`](Self::hold_puts_ending_with)).
    pub async fn put_held(&self) {
        self.shared.put_held.notified().await;
    }

    pub fn release_parts(&self) {
        self.shared.state().hold_parts = false;
        self.shared.released.notify_waiters();
    }

    /// Waits until an `UploadPart` request arrives (one that arrived before counts too).
    pub async fn part_arrived(&self) {
        self.shared.part_arrived.notified().await;
    }

    /// Every key under `prefix` in the test bucket, sorted, as `ListObjectsV2` reports them.
    pub async fn list_keys(&self, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let output = self
                .client()
                .list_objects_v2()
                .bucket(BUCKET)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .unwrap_or_else(|e| panic!("ListObjectsV2 {prefix}: {e:?}"));
            keys.extend(
                output
                    .contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            match output.next_continuation_token() {
                Some(next) if output.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => break,
            }
        }
        keys.sort();
        keys
    }

    /// The keys of the open multipart uploads in the test bucket, as `ListMultipartUploads`
    /// reports them.
    pub async fn list_multipart_uploads(&self) -> Vec<String> {
        let output = self
            .client()
            .list_multipart_uploads()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListMultipartUploads: {e:?}"));
        output
            .uploads()
            .iter()
            .map(|u| u.key().unwrap_or_default().to_owned())
            .collect()
    }

    pub async fn delete_key(&self, key: &str) {
        self.client()
            .delete_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DeleteObject {key}: {e:?}"));
    }

    /// `(server-side encryption, storage class)` of every object write (PUT or multipart upload
    /// start) received, in order.
    pub fn write_settings(&self) -> Vec<(Option<String>, Option<String>)> {
        self.shared.state().write_settings.clone()
    }

    /// Multipart uploads neither completed nor aborted, as (key, upload id), straight from the
    /// server's bookkeeping (tests should prefer asking with `ListMultipartUploads`).
    pub fn open_uploads(&self) -> Vec<(String, String)> {
        self.shared
            .state()
            .open_uploads
            .iter()
            .map(|(id, (_, key))| (key.clone(), id.clone()))
            .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.release_parts();
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `s3s-fs` plus what S3 does that it does not, plus fault injection.
struct Checked {
    inner: s3s_fs::FileSystem,
    root: std::path::PathBuf,
    shared: Arc<Shared>,
}

impl Checked {
    /// S3 answers `NoSuchBucket` to every request on a missing bucket; `s3s-fs` does not always.
    fn bucket_exists(&self, bucket: &str) -> S3Result<()> {
        if self.root.join(bucket).is_dir() {
            Ok(())
        } else {
            Err(s3_error!(NoSuchBucket))
        }
    }
}

/// Reads a request body whole and checks it against the SHA-256 the client sent; returns the
/// body's pieces, to be sent on as they are.
async fn verify_sha256(body: Option<StreamingBlob>, sent: Option<&str>) -> S3Result<Vec<Bytes>> {
    let Some(sent) = sent else {
        return Err(s3_error!(
            InvalidRequest,
            "this server demands x-amz-checksum-sha256 on every object and part"
        ));
    };
    let mut body = body.ok_or_else(|| s3_error!(IncompleteBody))?;
    let mut pieces = Vec::new();
    let mut hasher = Sha256::new();
    while let Some(piece) = body
        .try_next()
        .await
        .map_err(|_| s3_error!(IncompleteBody, "reading the request body failed"))?
    {
        hasher.update(&piece);
        pieces.push(piece);
    }
    if aws_smithy_types::base64::encode(hasher.finalize().as_slice()) != sent {
        return Err(s3_error!(
            BadDigest,
            "x-amz-checksum-sha256 does not match the body"
        ));
    }
    Ok(pieces)
}

fn blob(pieces: Vec<Bytes>) -> StreamingBlob {
    StreamingBlob::wrap(futures::stream::iter(
        pieces.into_iter().map(Ok::<_, std::io::Error>),
    ))
}

#[async_trait::async_trait]
impl S3 for Checked {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.inner.create_bucket(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.inner.head_bucket(req).await
    }

    async fn put_object(
        &self,
        mut req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        // The body is read before any answer, as S3 does: a client still sending would see a
        // broken connection instead of the error.
        let data =
            verify_sha256(req.input.body.take(), req.input.checksum_sha256.as_deref()).await?;
        req.input.body = Some(blob(data));
        self.shared.arrive(Operation::PutObject)?;
        let held = self.shared.state().hold_puts_ending.clone();
        if held.is_some_and(|suffix| req.input.key.ends_with(&suffix)) {
            // notify_one keeps the signal for a waiter that comes later.
            self.shared.put_held.notify_one();
            std::future::pending::<()>().await;
        }
        self.bucket_exists(&req.input.bucket)?;
        self.shared.state().write_settings.push((
            req.input
                .server_side_encryption
                .as_ref()
                .map(|v| v.as_str().to_owned()),
            req.input
                .storage_class
                .as_ref()
                .map(|v| v.as_str().to_owned()),
        ));
        if req.input.if_none_match.is_some() {
            let _one_at_a_time = self.shared.conditional.lock().await;
            self.inner.put_object(req).await
        } else {
            self.inner.put_object(req).await
        }
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.shared.arrive(Operation::GetObject)?;
        self.bucket_exists(&req.input.bucket)?;
        self.shared
            .state()
            .gets
            .push((req.input.key.clone(), req.input.range.is_some()));
        self.inner.get_object(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.bucket_exists(&req.input.bucket)?;
        self.inner.head_object(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.bucket_exists(&req.input.bucket)?;
        // `s3s-fs` keeps `a/b` in a directory `a`; on S3 there is no object `a` to delete.
        if self
            .root
            .join(&req.input.bucket)
            .join(&req.input.key)
            .is_dir()
        {
            return Ok(S3Response::new(DeleteObjectOutput::default()));
        }
        self.inner.delete_object(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.inner.list_objects_v2(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.shared.arrive(Operation::CreateMultipartUpload)?;
        self.bucket_exists(&req.input.bucket)?;
        self.shared.state().write_settings.push((
            req.input
                .server_side_encryption
                .as_ref()
                .map(|v| v.as_str().to_owned()),
            req.input
                .storage_class
                .as_ref()
                .map(|v| v.as_str().to_owned()),
        ));
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let response = self.inner.create_multipart_upload(req).await?;
        if let Some(id) = &response.output.upload_id {
            self.shared
                .state()
                .open_uploads
                .insert(id.clone(), (bucket, key));
        }
        Ok(response)
    }

    async fn upload_part(
        &self,
        mut req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.shared.part_arrived.notify_one();
        loop {
            let released = self.shared.released.notified();
            if !self.shared.state().hold_parts {
                break;
            }
            released.await;
        }
        let data =
            verify_sha256(req.input.body.take(), req.input.checksum_sha256.as_deref()).await?;
        let length = data.iter().map(Bytes::len).sum();
        req.input.body = Some(blob(data));
        self.shared.arrive(Operation::UploadPart)?;
        if !self
            .shared
            .state()
            .open_uploads
            .contains_key(&req.input.upload_id)
        {
            return Err(s3_error!(NoSuchUpload));
        }
        let checksum = req.input.checksum_sha256.clone();
        let (upload_id, number) = (req.input.upload_id.clone(), req.input.part_number);
        let mut response = self.inner.upload_part(req).await?;
        self.shared
            .state()
            .parts
            .entry(upload_id)
            .or_default()
            .push((number, length));
        response.output.checksum_sha256 = checksum;
        Ok(response)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.shared.arrive(Operation::CompleteMultipartUpload)?;
        let id = req.input.upload_id.clone();
        if !self.shared.state().open_uploads.contains_key(&id) {
            return Err(s3_error!(NoSuchUpload));
        }
        if let Some(parts) = req
            .input
            .multipart_upload
            .as_ref()
            .and_then(|m| m.parts.as_ref())
            && parts.iter().any(|part| part.checksum_sha256.is_none())
        {
            return Err(s3_error!(
                InvalidPart,
                "every part of an upload created with SHA-256 checksums must list its checksum"
            ));
        }
        let response = self.inner.complete_multipart_upload(req).await?;
        self.shared.state().open_uploads.remove(&id);
        Ok(response)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let id = req.input.upload_id.clone();
        if !self.shared.state().open_uploads.contains_key(&id) {
            return Err(s3_error!(NoSuchUpload));
        }
        let response = self.inner.abort_multipart_upload(req).await?;
        self.shared.state().open_uploads.remove(&id);
        Ok(response)
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let uploads: Vec<MultipartUpload> = self
            .shared
            .state()
            .open_uploads
            .iter()
            .filter(|(_, (bucket, key))| *bucket == input.bucket && key.starts_with(&prefix))
            .map(|(id, (_, key))| MultipartUpload {
                key: Some(key.clone()),
                upload_id: Some(id.clone()),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            is_truncated: Some(false),
            uploads: Some(uploads),
            ..Default::default()
        }))
    }
}

/// Environment for a process that should use the S3 server at `endpoint` through the AWS
/// conventions, with no shared config files or instance metadata lookups from the machine
/// running the tests.
pub(crate) fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        (
            "AWS_CONFIG_FILE",
            "/nonexistent/pgark-test/config".to_owned(),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/pgark-test/credentials".to_owned(),
        ),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
}

/// An SDK client for the S3 server at `endpoint` (path-style, static credentials).
pub(crate) fn sdk_client(endpoint: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::from_static("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            access_key,
            secret_key,
            None,
            None,
            "pgark-testkit",
        ))
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
