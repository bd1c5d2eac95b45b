//! The behaviour every [`ObjectStore`] must show, as one `pub async fn` per behaviour over
//! `&dyn ObjectStore`, so every backend runs the very same checks. Each function panics with a
//! message naming the store and the violated rule.
//!
//! Each function expects a fresh, empty store of its own. [`conformance_tests!`](crate::conformance_tests) expands into one
//! `#[tokio::test]` per behaviour, so one failure does not hide the others:
//!
//! ```text
//! pgark_storage::conformance_tests!(async {
//!     let dir = tempfile::tempdir().expect("temp dir");
//!     let store = pgark_storage::LocalStore::open(dir.path()).expect("open");
//!     (dir, store) // the directory lives as long as the test
//! });
//! ```
//!
//! Ranges: `get_range(key, n..n)` with `n <= size` is allowed and returns no bytes, but the object
//! must exist (so an S3 store, which cannot send an empty `Range` header, answers it with a HEAD);
//! `start > end` is [`StoreError::InvalidRange`].
//!
//! A new behaviour needs a function here and its name in [`conformance_tests!`](crate::conformance_tests).

use std::fmt::Debug;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::join_all;
use sha2::{Digest, Sha256};

use crate::{ObjectKey, ObjectMeta, ObjectStore, StoreError};

/// What the setup expression of [`conformance_tests!`](crate::conformance_tests) yields: a store, or a store together with
/// whatever must live as long as it, as a `(guard, store)` pair (a temporary directory, a server).
pub trait StoreFixture {
    fn store(&self) -> &dyn ObjectStore;
}

impl<S: ObjectStore> StoreFixture for S {
    fn store(&self) -> &dyn ObjectStore {
        self
    }
}

impl StoreFixture for dyn ObjectStore {
    fn store(&self) -> &dyn ObjectStore {
        self
    }
}

impl<S: StoreFixture + ?Sized> StoreFixture for Arc<S> {
    fn store(&self) -> &dyn ObjectStore {
        (**self).store()
    }
}

impl<G, S: StoreFixture> StoreFixture for (G, S) {
    fn store(&self) -> &dyn ObjectStore {
        self.1.store()
    }
}

/// Expands into one `#[tokio::test]` per conformance behaviour, each running against the store
/// that `$make_store` (a future, e.g. `async { .. }` or `make_store()`, evaluated anew for every
/// test) yields; see [`StoreFixture`] for what it may yield. The calling crate needs `tokio` with
/// the `macros` and `rt` features.
#[macro_export]
macro_rules! conformance_tests {
    (@each $make_store:expr; $($behaviour:ident),+ $(,)?) => {
        $(
            #[::tokio::test]
            async fn $behaviour() {
                let fixture = $make_store.await;
                $crate::conformance::$behaviour(
                    $crate::conformance::StoreFixture::store(&fixture),
                )
                .await;
            }
        )+
    };
    ($make_store:expr $(,)?) => {
        $crate::conformance_tests!(@each $make_store;
            put_then_get_round_trips,
            put_replaces_existing_object,
            put_if_absent_creates_then_refuses,
            put_if_absent_has_exactly_one_winner,
            upload_in_many_writes_concatenates,
            upload_is_invisible_until_complete,
            aborted_upload_is_invisible,
            dropped_upload_is_invisible,
            get_range_returns_exact_bytes,
            get_range_past_end_is_range_not_satisfiable,
            get_range_with_start_after_end_is_invalid,
            missing_key_is_not_found,
            list_returns_objects_under_prefix_sorted,
            list_excludes_sibling_prefixes,
            list_of_missing_prefix_is_empty,
            list_without_prefix_returns_everything,
            delete_removes_object,
            delete_of_missing_object_succeeds,
            large_object_streams_and_reads_back_by_ranges,
            empty_object_round_trips,
        );
    };
}

pub async fn put_then_get_round_trips(store: &dyn ObjectStore) {
    let key = key("round-trip/object.bin");
    let data = Bytes::from_static(b"hello, object store\n\x00\xff binary too");
    put(store, &key, data.clone()).await;
    assert_bytes(store, &get(store, &key).await, &data, "get after put");
    assert_eq!(
        head(store, &key).await.size,
        data.len() as u64,
        "{}: head of {key} after put reports the wrong size",
        store.location()
    );
}

pub async fn put_replaces_existing_object(store: &dyn ObjectStore) {
    let key = key("replace/object");
    put(store, &key, Bytes::from_static(b"first version")).await;
    put(store, &key, Bytes::from_static(b"second, longer version")).await;
    assert_bytes(
        store,
        &get(store, &key).await,
        b"second, longer version",
        "get after a second put",
    );
    // Shorter than before: nothing of the old object may remain.
    put(store, &key, Bytes::from_static(b"3")).await;
    assert_bytes(
        store,
        &get(store, &key).await,
        b"3",
        "get after a shorter put",
    );
    assert_eq!(
        head(store, &key).await.size,
        1,
        "{}: size after a shorter put",
        store.location()
    );
}

pub async fn put_if_absent_creates_then_refuses(store: &dyn ObjectStore) {
    let key = key("if-absent/manifest.json");
    if let Err(e) = store
        .put_if_absent(&key, Bytes::from_static(b"original"))
        .await
    {
        panic!(
            "{}: put_if_absent of new {key} failed: {e}",
            store.location()
        );
    }
    match store
        .put_if_absent(&key, Bytes::from_static(b"intruder"))
        .await
    {
        Err(e @ StoreError::AlreadyExists { .. }) => assert_names_key(store, &e, &key),
        other => panic!(
            "{}: put_if_absent of existing {key} must fail with AlreadyExists, got {other:?}",
            store.location()
        ),
    }
    assert_bytes(
        store,
        &get(store, &key).await,
        b"original",
        "get after a refused put_if_absent",
    );
}

pub async fn put_if_absent_has_exactly_one_winner(store: &dyn ObjectStore) {
    let key = key("if-absent-race/manifest.json");
    let contenders: Vec<Bytes> = (0..8)
        .map(|i| Bytes::from(format!("contender {i}")))
        .collect();
    let results = join_all(
        contenders
            .iter()
            .map(|data| store.put_if_absent(&key, data.clone())),
    )
    .await;
    let mut winners = Vec::new();
    for (data, result) in contenders.iter().zip(results) {
        match result {
            Ok(()) => winners.push(data),
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => panic!(
                "{}: concurrent put_if_absent of {key} failed: {e}",
                store.location()
            ),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "{}: exactly one of 8 concurrent put_if_absent of {key} must succeed",
        store.location()
    );
    assert_bytes(
        store,
        &get(store, &key).await,
        winners[0],
        "get after a put_if_absent race",
    );
}

pub async fn upload_in_many_writes_concatenates(store: &dyn ObjectStore) {
    let key = key("upload/many-writes");
    let mut upload = start_upload(store, &key).await;
    let mut expected = Vec::new();
    for i in 0..200u32 {
        // Every third write is empty; the others vary in length.
        let part = if i % 3 == 0 {
            Vec::new()
        } else {
            format!("{i}:{}|", "x".repeat((i % 17) as usize)).into_bytes()
        };
        expected.extend_from_slice(&part);
        if let Err(e) = upload.write(Bytes::from(part)).await {
            panic!(
                "{}: write {i} to upload of {key} failed: {e}",
                store.location()
            );
        }
    }
    let size = upload
        .complete()
        .await
        .unwrap_or_else(|e| panic!("{}: complete of {key} failed: {e}", store.location()));
    assert_eq!(
        size,
        expected.len() as u64,
        "{}: complete of {key} returned the wrong size",
        store.location()
    );
    assert_eq!(
        head(store, &key).await.size,
        size,
        "{}: head size of {key}",
        store.location()
    );
    assert_bytes(
        store,
        &get(store, &key).await,
        &expected,
        "get after a many-write upload",
    );
}

pub async fn upload_is_invisible_until_complete(store: &dyn ObjectStore) {
    let prefix = key("pending");
    let new_key = key("pending/new");
    let mut upload = start_upload(store, &new_key).await;
    write(store, &mut *upload, &new_key, b"not yet").await;
    assert_not_found(
        store,
        store.get(&new_key).await,
        &new_key,
        "get of an uploading object",
    );
    assert_not_found(
        store,
        store.head(&new_key).await,
        &new_key,
        "head of an uploading object",
    );
    assert_listed(store, &prefix, &[], "while an upload is in progress").await;

    // An upload over an existing object leaves the old content in place until it completes.
    let old_key = key("pending/old");
    put(store, &old_key, Bytes::from_static(b"old content")).await;
    let mut replacing = start_upload(store, &old_key).await;
    write(store, &mut *replacing, &old_key, b"new content, longer").await;
    assert_bytes(
        store,
        &get(store, &old_key).await,
        b"old content",
        "get while a replacing upload is in progress",
    );

    complete(store, upload, &new_key).await;
    complete(store, replacing, &old_key).await;
    assert_bytes(
        store,
        &get(store, &new_key).await,
        b"not yet",
        "get after complete",
    );
    assert_bytes(
        store,
        &get(store, &old_key).await,
        b"new content, longer",
        "get after the replacing upload completed",
    );
    assert_listed(
        store,
        &prefix,
        &["pending/new", "pending/old"],
        "after complete",
    )
    .await;
}

pub async fn aborted_upload_is_invisible(store: &dyn ObjectStore) {
    let prefix = key("aborted");
    let key = key("aborted/object");
    let mut upload = start_upload(store, &key).await;
    write(store, &mut *upload, &key, b"never visible").await;
    if let Err(e) = upload.abort().await {
        panic!("{}: abort of upload of {key} failed: {e}", store.location());
    }
    assert_not_found(store, store.get(&key).await, &key, "get after abort");
    assert_not_found(store, store.head(&key).await, &key, "head after abort");
    assert_listed(store, &prefix, &[], "after abort").await;

    // The key is still usable.
    put(store, &key, Bytes::from_static(b"later")).await;
    assert_bytes(
        store,
        &get(store, &key).await,
        b"later",
        "put after an aborted upload",
    );
}

pub async fn dropped_upload_is_invisible(store: &dyn ObjectStore) {
    let prefix = key("dropped");
    let key = key("dropped/object");
    let mut upload = start_upload(store, &key).await;
    write(store, &mut *upload, &key, b"never visible").await;
    drop(upload);
    assert_not_found(
        store,
        store.get(&key).await,
        &key,
        "get after dropping an upload",
    );
    assert_not_found(
        store,
        store.head(&key).await,
        &key,
        "head after dropping an upload",
    );
    assert_listed(store, &prefix, &[], "after dropping an upload").await;
}

pub async fn get_range_returns_exact_bytes(store: &dyn ObjectStore) {
    let key = key("range/object");
    let data: Vec<u8> = (0..100u8).collect();
    put(store, &key, Bytes::from(data.clone())).await;
    for range in [
        0..10,
        40..60,
        90..100,
        0..100,
        99..100,
        0..1,
        50..50,
        0..0,
        100..100,
    ] {
        let got = store
            .get_range(&key, range.clone())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{}: get_range {range:?} of {key} failed: {e}",
                    store.location()
                )
            });
        let expected = &data[range.start as usize..range.end as usize];
        assert_bytes(store, &got, expected, &format!("get_range {range:?}"));
    }
}

pub async fn get_range_past_end_is_range_not_satisfiable(store: &dyn ObjectStore) {
    let key = key("range-past-end/object");
    put(store, &key, Bytes::from(vec![7u8; 100])).await;
    for range in [90..101, 100..101, 101..101, 200..300, 0..u64::MAX] {
        match store.get_range(&key, range.clone()).await {
            Err(
                ref e @ StoreError::RangeNotSatisfiable {
                    start, end, size, ..
                },
            ) => {
                assert_eq!(
                    (start, end, size),
                    (range.start, range.end, 100),
                    "{}: RangeNotSatisfiable for {range:?} of {key} reports the wrong numbers",
                    store.location()
                );
                assert_names_key(store, e, &key);
            }
            other => panic!(
                "{}: get_range {range:?} of 100-byte {key} must be RangeNotSatisfiable, got {other:?}",
                store.location()
            ),
        }
    }
}

pub async fn get_range_with_start_after_end_is_invalid(store: &dyn ObjectStore) {
    let key = key("range-invalid/object");
    put(store, &key, Bytes::from(vec![7u8; 100])).await;
    let (start, end) = (10, 5);
    match store.get_range(&key, start..end).await {
        Err(StoreError::InvalidRange {
            start: 10, end: 5, ..
        }) => {}
        other => panic!(
            "{}: get_range 10..5 of {key} must be InvalidRange, got {other:?}",
            store.location()
        ),
    }
}

pub async fn missing_key_is_not_found(store: &dyn ObjectStore) {
    let existing = key("present");
    put(store, &existing, Bytes::from_static(b"x")).await;
    // The last key lies "below" an object, which a file system cannot even represent.
    for key in [
        key("missing/deeper/object"),
        key("missing-top"),
        key("present/child"),
    ] {
        assert_not_found(store, store.get(&key).await, &key, "get");
        assert_not_found(
            store,
            store.get_range(&key, 0..1).await,
            &key,
            "get_range 0..1",
        );
        assert_not_found(
            store,
            store.get_range(&key, 0..0).await,
            &key,
            "get_range 0..0",
        );
        assert_not_found(store, store.head(&key).await, &key, "head");
    }
}

pub async fn list_returns_objects_under_prefix_sorted(store: &dyn ObjectStore) {
    // Written out of order; `l/a.x` sorts before `l/a/1` because `.` < `/`.
    let objects = ["l/b", "l/a/sub/3", "l/a.x", "l/a/2", "l/ab/4", "l/a/1"];
    for (i, name) in objects.iter().enumerate() {
        put(store, &key(name), Bytes::from(vec![b'x'; i])).await;
    }
    let listed = list(store, Some(&key("l"))).await;
    let mut expected: Vec<ObjectMeta> = objects
        .iter()
        .enumerate()
        .map(|(i, name)| ObjectMeta {
            key: key(name),
            size: i as u64,
        })
        .collect();
    expected.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(listed, expected, "{}: list of l", store.location());
    assert_listed(
        store,
        &key("l/a"),
        &["l/a/1", "l/a/2", "l/a/sub/3"],
        "list of l/a",
    )
    .await;
    assert_listed(store, &key("l/a/sub"), &["l/a/sub/3"], "list of l/a/sub").await;
}

pub async fn list_excludes_sibling_prefixes(store: &dyn ObjectStore) {
    for name in ["a/b/x", "a/bc/y", "a/b.z", "a/b-1/w", "a/bb"] {
        put(store, &key(name), Bytes::from_static(b"x")).await;
    }
    assert_listed(
        store,
        &key("a/b"),
        &["a/b/x"],
        "siblings sharing a string prefix",
    )
    .await;
    assert_listed(
        store,
        &key("a/bc"),
        &["a/bc/y"],
        "siblings sharing a string prefix",
    )
    .await;
}

pub async fn list_of_missing_prefix_is_empty(store: &dyn ObjectStore) {
    put(store, &key("there/object"), Bytes::from_static(b"x")).await;
    assert_listed(store, &key("nothing"), &[], "a missing prefix").await;
    assert_listed(
        store,
        &key("nothing/deeper"),
        &[],
        "a missing nested prefix",
    )
    .await;
    // An object is not a prefix: nothing lies under `there/object/`.
    assert_listed(
        store,
        &key("there/object"),
        &[],
        "a prefix that is an object",
    )
    .await;
}

pub async fn list_without_prefix_returns_everything(store: &dyn ObjectStore) {
    for name in ["z", "m/n/o", "a"] {
        put(store, &key(name), Bytes::from_static(b"x")).await;
    }
    let listed: Vec<String> = list(store, None)
        .await
        .into_iter()
        .map(|meta| meta.key.as_str().to_owned())
        .collect();
    assert_eq!(
        listed,
        ["a", "m/n/o", "z"],
        "{}: list of the whole store",
        store.location()
    );
}

pub async fn delete_removes_object(store: &dyn ObjectStore) {
    let first = key("d/x/1");
    let second = key("d/x/2");
    put(store, &first, Bytes::from_static(b"1")).await;
    put(store, &second, Bytes::from_static(b"2")).await;
    delete(store, &first).await;
    assert_not_found(store, store.get(&first).await, &first, "get after delete");
    assert_not_found(store, store.head(&first).await, &first, "head after delete");
    assert_listed(store, &key("d"), &["d/x/2"], "after deleting a sibling").await;
    assert_bytes(
        store,
        &get(store, &second).await,
        b"2",
        "get of a deleted object's sibling",
    );

    delete(store, &second).await;
    assert_listed(store, &key("d"), &[], "after deleting everything").await;
    // The emptied prefix can be written again.
    put(store, &first, Bytes::from_static(b"again")).await;
    assert_bytes(
        store,
        &get(store, &first).await,
        b"again",
        "put after delete",
    );
}

pub async fn delete_of_missing_object_succeeds(store: &dyn ObjectStore) {
    delete(store, &key("never/written")).await;
    let key_once = key("once");
    put(store, &key_once, Bytes::from_static(b"x")).await;
    delete(store, &key_once).await;
    delete(store, &key_once).await;
    // `p` is only a prefix, not an object: deleting it must not touch what lies under it.
    put(store, &key("p/q"), Bytes::from_static(b"x")).await;
    delete(store, &key("p")).await;
    assert_listed(
        store,
        &key("p"),
        &["p/q"],
        "after deleting the prefix as a key",
    )
    .await;
}

/// 24 MiB in 1 MiB writes, read back in ranges that do not line up with the writes.
pub async fn large_object_streams_and_reads_back_by_ranges(store: &dyn ObjectStore) {
    const WRITE: usize = 1 << 20;
    const WRITES: usize = 24;
    const TOTAL: u64 = (WRITE * WRITES) as u64;
    const READ: u64 = 5 * (1 << 20) + 3;

    let key = key("large/object");
    let mut upload = start_upload(store, &key).await;
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut written = Sha256::new();
    for i in 0..WRITES {
        let part = noise.bytes(WRITE);
        written.update(&part);
        if let Err(e) = upload.write(part).await {
            panic!("{}: write {i} of large {key} failed: {e}", store.location());
        }
    }
    let size = complete(store, upload, &key).await;
    assert_eq!(
        size,
        TOTAL,
        "{}: complete of large {key} returned the wrong size",
        store.location()
    );
    assert_eq!(
        head(store, &key).await.size,
        TOTAL,
        "{}: head of large {key}",
        store.location()
    );

    let mut read = Sha256::new();
    let mut start = 0;
    while start < TOTAL {
        let end = (start + READ).min(TOTAL);
        let part = store.get_range(&key, start..end).await.unwrap_or_else(|e| {
            panic!(
                "{}: get_range {start}..{end} of large {key} failed: {e}",
                store.location()
            )
        });
        assert_eq!(
            part.len() as u64,
            end - start,
            "{}: get_range {start}..{end} of large {key} returned the wrong length",
            store.location()
        );
        read.update(&part);
        start = end;
    }
    assert_eq!(
        read.finalize(),
        written.finalize(),
        "{}: large {key} read back by ranges differs from what was written",
        store.location()
    );
}

pub async fn empty_object_round_trips(store: &dyn ObjectStore) {
    let put_key = key("empty/put");
    put(store, &put_key, Bytes::new()).await;
    assert_bytes(
        store,
        &get(store, &put_key).await,
        b"",
        "get of an empty object",
    );
    assert_eq!(
        head(store, &put_key).await.size,
        0,
        "{}: head of empty {put_key}",
        store.location()
    );

    // An upload with no writes at all is an empty object too.
    let upload_key = key("empty/upload");
    let upload = start_upload(store, &upload_key).await;
    assert_eq!(
        complete(store, upload, &upload_key).await,
        0,
        "{}: size of empty upload",
        store.location()
    );
    assert_bytes(
        store,
        &get(store, &upload_key).await,
        b"",
        "get of an empty upload",
    );

    let listed = list(store, Some(&key("empty"))).await;
    let expected = [
        ObjectMeta {
            key: put_key,
            size: 0,
        },
        ObjectMeta {
            key: upload_key,
            size: 0,
        },
    ];
    assert_eq!(
        listed,
        expected,
        "{}: list of empty objects",
        store.location()
    );
}

// ---- helpers: each panics with the store, the key and what was being done ----

fn key(key: &str) -> ObjectKey {
    ObjectKey::new(key).expect("conformance keys are valid")
}

async fn put(store: &dyn ObjectStore, key: &ObjectKey, data: Bytes) {
    if let Err(e) = store.put(key, data).await {
        panic!("{}: put {key} failed: {e}", store.location());
    }
}

async fn get(store: &dyn ObjectStore, key: &ObjectKey) -> Bytes {
    store
        .get(key)
        .await
        .unwrap_or_else(|e| panic!("{}: get {key} failed: {e}", store.location()))
}

async fn head(store: &dyn ObjectStore, key: &ObjectKey) -> ObjectMeta {
    let meta = store
        .head(key)
        .await
        .unwrap_or_else(|e| panic!("{}: head {key} failed: {e}", store.location()));
    assert_eq!(
        &meta.key,
        key,
        "{}: head {key} reports another key",
        store.location()
    );
    meta
}

async fn list(store: &dyn ObjectStore, prefix: Option<&ObjectKey>) -> Vec<ObjectMeta> {
    store
        .list(prefix)
        .await
        .unwrap_or_else(|e| panic!("{}: list {prefix:?} failed: {e}", store.location()))
}

async fn delete(store: &dyn ObjectStore, key: &ObjectKey) {
    if let Err(e) = store.delete(key).await {
        panic!("{}: delete {key} failed: {e}", store.location());
    }
}

async fn start_upload(store: &dyn ObjectStore, key: &ObjectKey) -> Box<dyn crate::Upload> {
    store
        .start_upload(key)
        .await
        .unwrap_or_else(|e| panic!("{}: start_upload {key} failed: {e}", store.location()))
}

async fn write(
    store: &dyn ObjectStore,
    upload: &mut dyn crate::Upload,
    key: &ObjectKey,
    data: &'static [u8],
) {
    if let Err(e) = upload.write(Bytes::from_static(data)).await {
        panic!("{}: write to upload of {key} failed: {e}", store.location());
    }
}

async fn complete(store: &dyn ObjectStore, upload: Box<dyn crate::Upload>, key: &ObjectKey) -> u64 {
    upload
        .complete()
        .await
        .unwrap_or_else(|e| panic!("{}: complete of {key} failed: {e}", store.location()))
}

/// Lists `prefix` and compares the keys (sizes are checked elsewhere).
async fn assert_listed(store: &dyn ObjectStore, prefix: &ObjectKey, expected: &[&str], what: &str) {
    let listed: Vec<String> = list(store, Some(prefix))
        .await
        .into_iter()
        .map(|meta| meta.key.as_str().to_owned())
        .collect();
    assert_eq!(
        listed,
        expected,
        "{}: list {prefix} ({what})",
        store.location()
    );
}

fn assert_bytes(store: &dyn ObjectStore, got: &[u8], expected: &[u8], what: &str) {
    // Not assert_eq!: printing megabytes of bytes helps nobody.
    if got != expected {
        let first_difference = got.iter().zip(expected).position(|(a, b)| a != b);
        panic!(
            "{}: {what}: got {} bytes, expected {}; first difference at {:?}",
            store.location(),
            got.len(),
            expected.len(),
            first_difference.unwrap_or(got.len().min(expected.len()))
        );
    }
}

fn assert_not_found<T: Debug>(
    store: &dyn ObjectStore,
    result: Result<T, StoreError>,
    key: &ObjectKey,
    what: &str,
) {
    match result {
        Err(e @ StoreError::NotFound { .. }) => assert_names_key(store, &e, key),
        other => panic!(
            "{}: {what} of missing {key} must be NotFound, got {other:?}",
            store.location()
        ),
    }
}

fn assert_names_key(store: &dyn ObjectStore, error: &StoreError, key: &ObjectKey) {
    let message = error.to_string();
    assert!(
        message.contains(key.as_str()),
        "{}: the error {message:?} does not name the key {key}",
        store.location()
    );
}

/// Deterministic incompressible bytes (xorshift64), so a misplaced or repeated chunk shows.
struct Noise(u64);

impl Noise {
    fn bytes(&mut self, len: usize) -> Bytes {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let take = (len - out.len()).min(8);
            out.extend_from_slice(&self.0.to_le_bytes()[..take]);
        }
        out.into()
    }
}
