//! The conformance suite against an `S3Store` talking to a real S3 protocol server (`s3s-fs`,
//! started in this process by the test kit, one server per test), and what only S3 can show:
//! multipart uploads (parts, checksums, retries, aborts) and the errors for bad credentials and
//! missing buckets.

use std::sync::Arc;

use bytes::Bytes;
use pgark_storage::{ObjectKey, ObjectStore, S3Options, S3Store, StoreError, Upload};
use pgark_testkit::s3::{FailWith, Operation, S3Server};

const MIB: usize = 1 << 20;

fn store_on(server: &S3Server, prefix: &str, options: S3Options) -> S3Store {
    S3Store::with_client(&server.location(prefix), options, server.client()).expect("S3 store")
}

/// A fresh server per test, with the store under a prefix so that keys outside it show up if the
/// store ever strays.
async fn s3_store() -> (S3Server, S3Store) {
    let server = S3Server::start();
    let store = store_on(&server, "conformance/root", S3Options::default());
    (server, store)
}

mod conformance {
    pgark_storage::conformance_tests!(super::s3_store());
}

fn key(key: &str) -> ObjectKey {
    ObjectKey::new(key).expect("valid key")
}

/// Deterministic incompressible bytes.
fn noise(len: usize, seed: u64) -> Bytes {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&state.to_le_bytes()[..take]);
    }
    out.into()
}

async fn upload(store: &S3Store, key: &ObjectKey, data: &Bytes, write: usize) -> Box<dyn Upload> {
    let mut upload = store.start_upload(key).await.expect("start upload");
    for piece in data.chunks(write) {
        upload
            .write(data.slice_ref(piece))
            .await
            .expect("write to upload");
    }
    upload
}

async fn open_uploads_listed(server: &S3Server) -> Vec<String> {
    server.list_multipart_uploads().await
}

#[tokio::test]
async fn an_object_larger_than_a_part_is_a_multipart_upload_with_checksummed_parts() {
    let server = S3Server::start();
    let store = store_on(&server, "mp", S3Options::default());
    // 8 MiB parts by default: two full parts and a short last one.
    let data = noise(19 * MIB + 17, 1);
    let key = key("big/object");
    let upload = upload(&store, &key, &data, 3 * MIB / 2).await;
    assert_eq!(
        upload.complete().await.expect("complete"),
        data.len() as u64
    );
    assert_eq!(server.requests(Operation::CreateMultipartUpload), 1);
    // The server refuses parts without a matching SHA-256, so three accepted parts were checked.
    assert_eq!(server.requests(Operation::UploadPart), 3);
    assert_eq!(store.get(&key).await.expect("get"), data);
    assert!(open_uploads_listed(&server).await.is_empty());
    assert_eq!(store.open_uploads(), 0);
}

#[tokio::test]
async fn an_object_smaller_than_a_part_is_one_put() {
    let server = S3Server::start();
    let store = store_on(&server, "small", S3Options::default());
    let data = noise(3 * MIB, 2);
    let key = key("object");
    let upload = upload(&store, &key, &data, MIB).await;
    upload.complete().await.expect("complete");
    assert_eq!(server.requests(Operation::CreateMultipartUpload), 0);
    assert_eq!(server.requests(Operation::PutObject), 1);
    assert_eq!(store.get(&key).await.expect("get"), data);
}

/// More than 900 parts (where part sizes used to double): every part but the last has the same
/// size, as the server received them, and the server (which refuses parts under 5 MiB but the
/// last) completes the object. 4.5 GiB go through it, 5 MiB parts of one repeated buffer.
#[tokio::test(flavor = "multi_thread")]
async fn every_part_but_the_last_has_the_same_size() {
    let server = S3Server::start();
    let options = S3Options {
        part_size: Some(5 * MIB as u64),
        ..S3Options::default()
    };
    let store = store_on(&server, "equal", options);
    let key = key("object");
    let block = noise(MIB, 7);
    let total = 902 * 5 * MIB + 123;
    let mut upload = store.start_upload(&key).await.expect("start");
    let mut sent = 0;
    while sent + MIB <= total {
        upload.write(block.clone()).await.expect("write");
        sent += MIB;
    }
    upload
        .write(block.slice(..total - sent))
        .await
        .expect("write");
    assert_eq!(upload.complete().await.expect("complete"), total as u64);
    assert_eq!(server.requests(Operation::UploadPart), 903);
    let uploads = server.part_sizes();
    assert_eq!(uploads.len(), 1);
    let parts = &uploads[0];
    assert_eq!(parts.len(), 903, "902 full parts and the rest");
    assert!(
        parts[..902].iter().all(|&size| size == 5 * MIB),
        "non-final parts differ: {:?}",
        parts.iter().collect::<std::collections::BTreeSet<_>>()
    );
    assert_eq!(parts[902], 123);
    assert_eq!(store.head(&key).await.expect("head").size, total as u64);
}

#[tokio::test]
async fn the_part_size_is_configurable() {
    let server = S3Server::start();
    let options = S3Options {
        part_size: Some(5 * MIB as u64),
        ..S3Options::default()
    };
    let store = store_on(&server, "parts", options);
    let data = noise(16 * MIB, 3);
    let key = key("object");
    upload(&store, &key, &data, MIB)
        .await
        .complete()
        .await
        .expect("complete");
    assert_eq!(server.requests(Operation::UploadPart), 4);
    assert_eq!(store.get(&key).await.expect("get"), data);
}

#[tokio::test]
async fn a_part_failing_once_is_retried_and_the_upload_completes() {
    for with in [FailWith::InternalError, FailWith::SlowDown] {
        let server = S3Server::start();
        let store = store_on(&server, "retry", S3Options::default());
        server.fail(Operation::UploadPart, with, Some(1));
        let data = noise(17 * MIB, 4);
        let key = key("object");
        upload(&store, &key, &data, MIB)
            .await
            .complete()
            .await
            .unwrap_or_else(|e| panic!("complete after one {with:?}: {e}"));
        assert_eq!(server.requests(Operation::UploadPart), 4, "{with:?}");
        assert_eq!(store.get(&key).await.expect("get"), data);
        assert!(open_uploads_listed(&server).await.is_empty());
    }
}

#[tokio::test]
async fn a_refused_request_is_permanent_and_keeps_the_store_answer_as_its_cause() {
    let server = S3Server::start();
    let store = store_on(&server, "refused", S3Options::default());
    server.fail(Operation::PutObject, FailWith::InvalidRequest, None);
    let error = store
        .put(&key("object"), Bytes::from_static(b"x"))
        .await
        .expect_err("the put must fail");
    assert!(
        matches!(error, StoreError::Rejected { .. }),
        "a 400 is a refusal: {error:?}"
    );
    assert!(!error.is_transient(), "{error:?}");
    assert!(error.to_string().contains("InvalidRequest"), "{error}");
    // The SDK's error stays reachable as the cause, for callers that inspect it.
    assert!(std::error::Error::source(&error).is_some(), "{error:?}");
    // A refusal is not retried: one request reached the server.
    assert_eq!(server.requests(Operation::PutObject), 1);
}

#[tokio::test]
async fn a_part_failing_every_time_fails_the_upload_and_aborts_it() {
    let server = S3Server::start();
    let store = store_on(&server, "broken", S3Options::default());
    server.fail(Operation::UploadPart, FailWith::InternalError, None);
    let data = noise(17 * MIB, 5);
    let key = key("object");
    let mut upload = store.start_upload(&key).await.expect("start");
    let mut error = None;
    for piece in data.chunks(MIB) {
        if let Err(e) = upload.write(data.slice_ref(piece)).await {
            error = Some(e);
            break;
        }
    }
    let error = match error {
        Some(e) => e,
        None => upload.complete().await.expect_err("the upload must fail"),
    };
    let message = error.to_string();
    assert!(
        message.contains("s3://pgark-test/broken/object"),
        "{message}"
    );
    assert!(message.contains("InternalError"), "{message}");
    assert!(
        error.is_transient(),
        "a server error is worth retrying later: {error:?}"
    );
    assert!(open_uploads_listed(&server).await.is_empty());
    assert_eq!(store.open_uploads(), 0);
    assert!(matches!(
        store.head(&key).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn dropped_uploads_are_aborted_by_abort_pending_uploads() {
    let server = S3Server::start();
    let store = store_on(&server, "dropped", S3Options::default());
    let data = noise(9 * MIB, 6);
    let mut uploads = Vec::new();
    for name in ["a", "b"] {
        uploads.push(upload(&store, &key(name), &data, MIB).await);
    }
    assert_eq!(open_uploads_listed(&server).await.len(), 2);
    drop(uploads);
    store.abort_pending_uploads().await.expect("abort pending");
    assert!(open_uploads_listed(&server).await.is_empty());
    assert_eq!(store.open_uploads(), 0);
}

#[tokio::test]
async fn aborts_of_one_upload_at_once_all_succeed() {
    // A dropped upload's background abort can meet `abort_pending_uploads`'; the server answers
    // the later of two racing aborts with a refusal, which must not fail the caller.
    let server = S3Server::start();
    let store = store_on(&server, "racing", S3Options::default());
    let data = noise(6 * MIB, 8);
    let mut uploads = Vec::new();
    for name in ["a", "b", "c", "d"] {
        uploads.push(upload(&store, &key(name), &data, MIB).await);
    }
    let (first, second, third) = futures::join!(
        store.abort_pending_uploads(),
        store.abort_pending_uploads(),
        store.abort_pending_uploads()
    );
    for result in [first, second, third] {
        result.expect("abort pending");
    }
    drop(uploads);
    assert!(open_uploads_listed(&server).await.is_empty());
    assert_eq!(store.open_uploads(), 0);
}

#[tokio::test]
async fn an_aborted_multipart_upload_leaves_nothing() {
    let server = S3Server::start();
    let store = store_on(&server, "abort", S3Options::default());
    let data = noise(9 * MIB, 7);
    let upload = upload(&store, &key("object"), &data, MIB).await;
    assert_eq!(open_uploads_listed(&server).await.len(), 1);
    upload.abort().await.expect("abort");
    assert!(open_uploads_listed(&server).await.is_empty());
    assert!(store.list(None).await.expect("list").is_empty());
}

#[tokio::test]
async fn put_if_absent_is_a_conditional_write() {
    let server = S3Server::start();
    let store = store_on(&server, "cond", S3Options::default());
    let key = key("manifest.json");
    store
        .put_if_absent(&key, Bytes::from_static(b"one"))
        .await
        .expect("first");
    match store.put_if_absent(&key, Bytes::from_static(b"two")).await {
        Err(StoreError::AlreadyExists { location }) => {
            assert_eq!(location, "s3://pgark-test/cond/manifest.json")
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(store.get(&key).await.expect("get"), "one");
}

#[tokio::test]
async fn wrong_credentials_are_access_denied_with_a_hint() {
    let server = S3Server::start();
    let store = S3Store::with_client(
        &server.location("creds"),
        S3Options::default(),
        server.client_with(pgark_testkit::s3::ACCESS_KEY, "not-the-secret"),
    )
    .expect("store");
    let error = store.list(None).await.expect_err("wrong secret");
    let message = error.to_string();
    assert!(
        matches!(error, StoreError::AccessDenied { .. }),
        "{error:?}"
    );
    assert!(message.contains("AWS_SECRET_ACCESS_KEY"), "{message}");
    assert!(!message.contains("not-the-secret"), "{message}");
}

#[tokio::test]
async fn a_missing_bucket_is_named() {
    let server = S3Server::start();
    let store = S3Store::with_client(
        "s3://no-such-bucket/prefix",
        S3Options::default(),
        server.client(),
    )
    .expect("store");
    for result in [
        store.list(None).await.map(|_| ()),
        store.get(&key("x")).await.map(|_| ()),
        store.put(&key("x"), Bytes::from_static(b"x")).await,
    ] {
        match result {
            Err(StoreError::NoSuchBucket { bucket, .. }) => assert_eq!(bucket, "no-such-bucket"),
            other => panic!("expected NoSuchBucket, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_truncated_object_is_range_not_satisfiable() {
    let server = S3Server::start();
    let store = store_on(&server, "trunc", S3Options::default());
    let key = key("object");
    store
        .put(&key, Bytes::from_static(b"0123456789"))
        .await
        .expect("put");
    match store.get_range(&key, 5..20).await {
        Err(StoreError::RangeNotSatisfiable { size, location, .. }) => {
            assert_eq!(size, 10);
            assert!(location.ends_with("trunc/object"), "{location}");
        }
        other => panic!("expected RangeNotSatisfiable, got {other:?}"),
    }
}

#[tokio::test]
async fn s3_locations_open_through_open_location() {
    let store: Arc<dyn ObjectStore> =
        pgark_storage::open_location("s3://bucket/some/prefix/", true).expect("open");
    assert_eq!(store.location(), "s3://bucket/some/prefix");
    for bad in ["s3://", "s3://Bad_Bucket/x", "s3://b/x//y"] {
        assert!(
            matches!(
                pgark_storage::open_location(bad, true),
                Err(StoreError::InvalidLocation { .. })
            ),
            "{bad}"
        );
    }
}
