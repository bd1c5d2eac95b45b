//! The conformance suite against a `LocalStore` in a fresh temporary directory per test, and what
//! only a local store can show: staging files, directories, and opening locations.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use pgark_storage::{LocalStore, ObjectKey, ObjectStore, StoreError, open_location};
use tempfile::TempDir;

/// The directory is returned alongside the store so it lives as long as the test.
async fn temp_store() -> (TempDir, LocalStore) {
    let dir = tempfile::tempdir().expect("create temp dir");
    let store = LocalStore::open(dir.path()).expect("open temp dir as store");
    (dir, store)
}

mod conformance {
    pgark_storage::conformance_tests!(super::temp_store());
}

fn key(key: &str) -> ObjectKey {
    ObjectKey::new(key).expect("valid key")
}

/// Every file below `dir`, as paths relative to it, sorted.
fn files_below(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).expect("below root");
                out.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn staging_files_below(dir: &Path) -> Vec<String> {
    files_below(dir)
        .into_iter()
        .filter(|name| name.ends_with(".pgark-tmp"))
        .collect()
}

#[tokio::test]
async fn staging_files_are_removed_after_complete_abort_drop_and_put_if_absent() {
    let (dir, store) = temp_store().await;

    let mut completed = store
        .start_upload(&key("s/completed"))
        .await
        .expect("start");
    completed
        .write(Bytes::from_static(b"data"))
        .await
        .expect("write");
    completed.complete().await.expect("complete");

    let mut aborted = store.start_upload(&key("s/aborted")).await.expect("start");
    aborted
        .write(Bytes::from_static(b"data"))
        .await
        .expect("write");
    aborted.abort().await.expect("abort");

    let mut dropped = store.start_upload(&key("s/dropped")).await.expect("start");
    dropped
        .write(Bytes::from_static(b"data"))
        .await
        .expect("write");
    drop(dropped);

    store
        .put(&key("s/put"), Bytes::from_static(b"data"))
        .await
        .expect("put");
    store
        .put_if_absent(&key("s/put"), Bytes::from_static(b"other"))
        .await
        .expect_err("put_if_absent of an existing key");
    store
        .put_if_absent(&key("s/new"), Bytes::from_static(b"data"))
        .await
        .expect("put_if_absent of a new key");

    assert_eq!(staging_files_below(dir.path()), Vec::<String>::new());
    assert_eq!(files_below(dir.path()), ["s/completed", "s/new", "s/put"]);
}

#[tokio::test]
async fn upload_writes_reach_the_staging_file_as_they_come() {
    let (dir, store) = temp_store().await;
    let mut upload = store.start_upload(&key("big")).await.expect("start");
    for written in 1..=3u64 {
        upload
            .write(Bytes::from(vec![1u8; 1 << 20]))
            .await
            .expect("write");
        let staging = staging_files_below(dir.path());
        assert_eq!(staging.len(), 1, "{staging:?}");
        let size = fs::metadata(dir.path().join(&staging[0]))
            .expect("stat")
            .len();
        assert_eq!(size, written << 20, "staging file after {written} MiB");
    }
    upload.abort().await.expect("abort");
}

#[tokio::test]
async fn stray_staging_files_and_foreign_files_are_not_listed() {
    let (dir, store) = temp_store().await;
    store
        .put(&key("a/object"), Bytes::from_static(b"x"))
        .await
        .expect("put");
    // A staging file left by a crashed process, and files no store wrote.
    fs::write(dir.path().join("a/.object+4242-7.pgark-tmp"), b"partial").expect("write");
    fs::write(dir.path().join("a/notes~"), b"editor backup").expect("write");
    fs::create_dir(dir.path().join("lost+found")).expect("mkdir");
    fs::write(dir.path().join("lost+found/thing"), b"x").expect("write");

    let listed: Vec<String> = store
        .list(None)
        .await
        .expect("list")
        .into_iter()
        .map(|meta| meta.key.to_string())
        .collect();
    assert_eq!(listed, ["a/object"]);
}

#[tokio::test]
async fn a_directory_is_not_an_object() {
    let (_dir, store) = temp_store().await;
    store
        .put(&key("dir/object"), Bytes::from_static(b"x"))
        .await
        .expect("put");
    assert!(matches!(
        store.get(&key("dir")).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.head(&key("dir")).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.get_range(&key("dir"), 0..0).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn delete_removes_emptied_directories_but_not_the_root() {
    let (dir, store) = temp_store().await;
    store
        .put(&key("x/y/z"), Bytes::from_static(b"x"))
        .await
        .expect("put");
    store
        .put(&key("x/kept"), Bytes::from_static(b"x"))
        .await
        .expect("put");
    store.delete(&key("x/y/z")).await.expect("delete");
    assert!(!dir.path().join("x/y").exists(), "x/y should be gone");
    assert!(dir.path().join("x").is_dir(), "x still holds x/kept");

    store.delete(&key("x/kept")).await.expect("delete");
    assert!(!dir.path().join("x").exists(), "x should be gone");
    assert!(dir.path().is_dir(), "the root must stay");
}

#[tokio::test]
async fn writing_below_an_object_fails_naming_the_key() {
    let (_dir, store) = temp_store().await;
    store
        .put(&key("f"), Bytes::from_static(b"x"))
        .await
        .expect("put");
    let error = store
        .put(&key("f/g"), Bytes::from_static(b"y"))
        .await
        .expect_err("f is a file, so f/g cannot be written");
    assert!(matches!(error, StoreError::Io { .. }), "{error:?}");
    assert!(error.to_string().contains("f/g"), "{error}");
}

#[test]
fn open_of_a_missing_directory_is_not_found_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-dir");
    match LocalStore::open(&missing) {
        Err(error @ StoreError::NotFound { .. }) => {
            assert!(
                error.to_string().contains(&*missing.to_string_lossy()),
                "{error}"
            )
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn open_of_a_file_is_an_invalid_location() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("file");
    fs::write(&file, b"x").expect("write");
    assert!(matches!(
        LocalStore::open(&file),
        Err(StoreError::InvalidLocation { .. })
    ));
}

#[tokio::test]
async fn create_makes_missing_directories_on_the_first_write_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let nested = dir.path().join("a/b/c");
    let store = LocalStore::create(&nested).expect("create");
    assert!(
        !nested.exists(),
        "nothing may be written before the first object"
    );
    assert_eq!(store.root(), nested);
    assert_eq!(store.location(), nested.display().to_string());
    assert!(store.list(None).await.expect("list").is_empty());

    let key = ObjectKey::new("x/y").expect("key");
    store
        .put(&key, bytes::Bytes::from_static(b"data"))
        .await
        .expect("put");
    assert!(nested.join("x/y").is_file());
    // Creating over an existing directory is fine.
    let again = LocalStore::create(&nested).expect("create again");
    assert_eq!(&again.get(&key).await.expect("get")[..], b"data");
}

#[test]
fn create_refuses_a_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").expect("write");
    assert!(matches!(
        LocalStore::create(&file),
        Err(StoreError::InvalidLocation { .. })
    ));
}

fn location_error(location: &str, create: bool) -> StoreError {
    match open_location(location, create) {
        Ok(store) => panic!("{location:?} opened as {store:?}"),
        Err(error) => error,
    }
}

#[test]
fn open_location_accepts_a_directory_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_str().expect("utf-8 temp path");
    let store = open_location(path, false).expect("open");
    assert_eq!(store.location(), path);
}

#[test]
fn open_location_accepts_a_file_url() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_str().expect("utf-8 temp path");
    let store = open_location(&format!("file://{path}"), false).expect("open");
    assert_eq!(store.location(), path);
}

#[test]
fn open_location_of_a_missing_directory_is_not_found_unless_created() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing: PathBuf = dir.path().join("backups");
    let missing = missing.to_str().expect("utf-8 temp path");
    assert!(matches!(
        location_error(missing, false),
        StoreError::NotFound { .. }
    ));
    open_location(missing, true).expect("create");
    // Created by the first write, not by opening.
    assert!(!Path::new(missing).exists());
}

#[test]
fn open_location_rejects_an_unknown_scheme() {
    match location_error("ftp://host/backups", false) {
        StoreError::InvalidLocation { location, reason } => {
            assert_eq!(location, "ftp://host/backups");
            assert!(reason.contains("unknown scheme \"ftp\""), "{reason}");
        }
        other => panic!("expected InvalidLocation, got {other:?}"),
    }
}

#[test]
fn open_location_rejects_an_empty_string() {
    for location in ["", "file://"] {
        assert!(
            matches!(
                location_error(location, false),
                StoreError::InvalidLocation { .. }
            ),
            "{location:?}"
        );
    }
}
