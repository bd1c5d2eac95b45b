//! A store rooted at a local directory: keys are relative paths below the root.
//!
//! Uploads are staged in a hidden file next to the final path and renamed into place on
//! `complete`, so a reader sees either nothing or the whole object. Staging names contain `+`,
//! which no [`ObjectKey`] may, so a staging file (even one left by a crashed process) can never be
//! taken for an object. All file I/O runs on tokio's blocking pool, one hop per operation.
//!
//! `put` and `put_if_absent` are durable when they return (file and directory synced). A completed
//! upload is not synced at once: it becomes durable with the store's next `put` or
//! `put_if_absent`, which first syncs every upload completed before it, many at once. A backup's
//! data objects are uploads and its manifest is a put, so the manifest is never durable before
//! the data it lists — and 2,000 small tables cost one batch of syncs instead of 4,000 in turn.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::{ObjectKey, ObjectMeta, ObjectStore, StoreError, Upload};

/// Suffix of every staging file's name.
const STAGING_SUFFIX: &str = ".pgark-tmp";

/// How much of the object's file name a staging name repeats: enough to tell what it is for, short
/// enough that the staging name stays under the usual 255-byte file name limit.
const STAGING_NAME_PREFIX_LEN: usize = 128;

/// How often creating a staging file is retried when a concurrent `delete` removes the (then empty)
/// parent directory in between, or a name is taken by a file left by an earlier process.
const STAGING_ATTEMPTS: usize = 8;

/// Threads syncing completed uploads at once: concurrent syncs share the file system's journal
/// commits (2,000 small files: 0.15 s, against 0.5 s one after another).
const SYNC_THREADS: usize = 16;

/// Makes staging names unique within this process; the pid makes them unique across processes.
static STAGING_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Objects stored as files under a root directory.
///
/// The same caveats as any file system apply: a key cannot be both an object and a prefix of other
/// objects (`a` and `a/b`), and `put_if_absent` needs hard links, which every local Unix file system
/// has but some network or FAT file systems lack.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: Arc<Path>,
    /// Whether writing may create the root directory (a store opened with [`LocalStore::create`]).
    create_root: bool,
    /// Files of completed uploads not synced yet (see the module docs), shared by clones.
    unsynced: Arc<Mutex<Vec<PathBuf>>>,
}

impl LocalStore {
    /// Opens the store rooted at the existing directory `path`.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        let location = path.display().to_string();
        if path.as_os_str().is_empty() {
            return Err(StoreError::InvalidLocation {
                location,
                reason: "the directory path is empty".to_owned(),
            });
        }
        match fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => Ok(LocalStore {
                root: path.into(),
                create_root: false,
                unsynced: Arc::default(),
            }),
            Ok(_) => Err(StoreError::InvalidLocation {
                location,
                reason: "it is not a directory".to_owned(),
            }),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(StoreError::NotFound { location }),
            Err(source) => Err(StoreError::Io {
                operation: "open store directory",
                location,
                source,
            }),
        }
    }

    /// A store at `path` that need not exist yet: the directory (and its parents) is created by
    /// the first write, so that an operation failing before it writes anything leaves no trace.
    /// Reads from a store whose directory does not exist find no objects.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        match LocalStore::open(path.clone()) {
            Ok(store) => Ok(LocalStore {
                create_root: true,
                ..store
            }),
            Err(StoreError::NotFound { .. }) => Ok(LocalStore {
                root: path.into(),
                create_root: true,
                unsynced: Arc::default(),
            }),
            Err(e) => Err(e),
        }
    }

    /// The directory the store is rooted at.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Syncs the files of every upload completed so far, and their directories.
    async fn sync_completed_uploads(&self) -> Result<(), StoreError> {
        let files = std::mem::take(&mut *lock(&self.unsynced));
        if files.is_empty() {
            return Ok(());
        }
        let dirs: BTreeSet<PathBuf> = files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        let location = self.location();
        let syncs = files
            .chunks(files.len().div_ceil(SYNC_THREADS))
            .map(|group| {
                let group = group.to_vec();
                blocking(&location, move || {
                    group.iter().try_for_each(|f| sync_file(f))
                })
            });
        let synced = futures::future::try_join_all(syncs).await;
        let synced = match synced {
            Ok(_) => {
                blocking(&location, move || {
                    dirs.iter().try_for_each(|dir| match sync_dir(dir) {
                        Err(e) if !is_missing(&e) => {
                            Err(io_error("sync directory", &dir.display().to_string(), e))
                        }
                        _ => Ok(()),
                    })
                })
                .await
            }
            Err(e) => Err(e),
        };
        if synced.is_err() {
            // Still not known to be durable: the next put tries again.
            lock(&self.unsynced).extend(files);
        }
        synced
    }

    fn target(&self, key: &ObjectKey) -> Target {
        let mut path = self.root.to_path_buf();
        path.extend(key.segments());
        Target {
            root: Arc::clone(&self.root),
            create_root: self.create_root,
            key: key.clone(),
            location: location_of(&self.root, key.as_str()),
            path,
        }
    }
}

/// Everything a blocking operation needs to know about one object.
struct Target {
    root: Arc<Path>,
    create_root: bool,
    key: ObjectKey,
    path: PathBuf,
    /// `<root>/<key>`, for errors.
    location: String,
}

impl Target {
    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(&self.root)
    }

    fn io(&self, operation: &'static str, source: io::Error) -> StoreError {
        io_error(operation, &self.location, source)
    }

    /// Like [`Target::io`], but a missing file (or a missing directory on its way) is a missing
    /// object.
    fn read_error(&self, operation: &'static str, source: io::Error) -> StoreError {
        if is_missing(&source) {
            self.not_found()
        } else {
            self.io(operation, source)
        }
    }

    fn not_found(&self) -> StoreError {
        StoreError::NotFound {
            location: self.location.clone(),
        }
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

fn location_of(root: &Path, key: &str) -> String {
    let root = root.display().to_string();
    format!("{}/{key}", root.trim_end_matches('/'))
}

fn io_error(operation: &'static str, location: &str, source: io::Error) -> StoreError {
    StoreError::Io {
        operation,
        location: location.to_owned(),
        source,
    }
}

/// `NotADirectory` counts as missing: `a/b` cannot exist when `a` is a file.
fn is_missing(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

/// Runs blocking file I/O off the async threads.
async fn blocking<T, F>(location: &str, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => match e.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            // Only happens when the runtime shuts down under us.
            Err(e) => Err(io_error(
                "run file operation",
                location,
                io::Error::other(e),
            )),
        },
    }
}

/// A staging file that is removed when dropped, unless it was renamed into place.
#[derive(Debug)]
struct Staging {
    path: Option<PathBuf>,
}

impl Staging {
    fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// The file is gone (renamed into place or removed); nothing to clean up.
    fn disarm(mut self) {
        self.path = None;
    }

    fn remove(mut self) -> io::Result<()> {
        match self.path.take().map(fs::remove_file) {
            Some(Err(e)) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(path) = self.path.take()
            && let Err(e) = fs::remove_file(&path)
            && e.kind() != ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "could not remove staging file");
        }
    }
}

/// Creates a new, empty staging file in the object's directory, creating directories as needed.
fn stage(target: &Target) -> Result<(File, Staging), StoreError> {
    let name = target.key.segments().last().unwrap_or_default();
    let name = &name[..name.len().min(STAGING_NAME_PREFIX_LEN)];
    let mut attempt = 1;
    loop {
        let counter = STAGING_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = target.dir().join(format!(
            ".{name}+{}-{counter}{STAGING_SUFFIX}",
            std::process::id()
        ));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((file, Staging { path: Some(path) })),
            Err(e) if attempt < STAGING_ATTEMPTS && e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) if attempt < STAGING_ATTEMPTS && e.kind() == ErrorKind::NotFound => {
                create_parent_dirs(target)?;
            }
            Err(e) => return Err(target.io("create staging file for", e)),
        }
        attempt += 1;
    }
}

/// Creates the directories between the root and the object. The root itself only for a store
/// made with [`LocalStore::create`]: a vanished root of an opened store (e.g. an unmounted disk)
/// must fail rather than be silently recreated.
fn create_parent_dirs(target: &Target) -> Result<(), StoreError> {
    if target.create_root {
        fs::create_dir_all(&target.root).map_err(|e| {
            io_error(
                "create store directory",
                &target.root.display().to_string(),
                e,
            )
        })?;
    }
    let mut dir = target.root.to_path_buf();
    let segments: Vec<&str> = target.key.segments().collect();
    for segment in &segments[..segments.len().saturating_sub(1)] {
        dir.push(segment);
        match fs::create_dir(&dir) {
            // The new entry must be durable before the object that will live below it.
            Ok(()) => sync_dir(dir.parent().unwrap_or(&dir))
                .map_err(|e| io_error("sync directory", &dir.display().to_string(), e))?,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_error("create directory", &dir.display().to_string(), e)),
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Syncs a completed upload's file; one deleted since has nothing left to make durable.
fn sync_file(path: &Path) -> Result<(), StoreError> {
    let location = path.display().to_string();
    match File::open(path) {
        Ok(file) => file.sync_all().map_err(|e| io_error("sync", &location, e)),
        Err(e) if is_missing(&e) => Ok(()),
        Err(e) => Err(io_error("open for sync", &location, e)),
    }
}

fn lock(unsynced: &Mutex<Vec<PathBuf>>) -> std::sync::MutexGuard<'_, Vec<PathBuf>> {
    // The list stays valid whatever a panicking holder was doing: it only ever grows or is taken.
    unsynced.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Makes a fully written staging file of an upload the object, replacing any previous one,
/// without syncing it (see the module docs).
fn publish_unsynced(target: &Target, file: File, staging: Staging) -> Result<(), StoreError> {
    drop(file);
    fs::rename(staging.path(), &target.path).map_err(|e| target.io("rename into place", e))?;
    staging.disarm();
    Ok(())
}

/// Makes a fully written staging file the object, replacing any previous one.
fn publish(target: &Target, file: File, staging: Staging) -> Result<(), StoreError> {
    file.sync_all().map_err(|e| target.io("sync", e))?;
    publish_unsynced(target, file, staging)?;
    sync_dir(target.dir()).map_err(|e| target.io("sync directory of", e))
}

fn put_blocking(target: &Target, data: &[u8]) -> Result<(), StoreError> {
    let (mut file, staging) = stage(target)?;
    file.write_all(data).map_err(|e| target.io("write", e))?;
    publish(target, file, staging)
}

fn put_if_absent_blocking(target: &Target, data: &[u8]) -> Result<(), StoreError> {
    let (mut file, staging) = stage(target)?;
    file.write_all(data).map_err(|e| target.io("write", e))?;
    file.sync_all().map_err(|e| target.io("sync", e))?;
    drop(file);
    // Unlike rename, link refuses an existing destination, atomically: exactly one of several
    // concurrent writers wins, and nobody ever sees a partial object.
    match fs::hard_link(staging.path(), &target.path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Err(StoreError::AlreadyExists {
                location: target.location.clone(),
            });
        }
        Err(e) => return Err(target.io("link into place", e)),
    }
    staging
        .remove()
        .map_err(|e| target.io("remove staging file for", e))?;
    sync_dir(target.dir()).map_err(|e| target.io("sync directory of", e))
}

/// Opens the object's file; a directory is not an object.
fn open_object(target: &Target) -> Result<(File, u64), StoreError> {
    let file = File::open(&target.path).map_err(|e| target.read_error("open", e))?;
    let meta = file.metadata().map_err(|e| target.io("stat", e))?;
    if !meta.is_file() {
        return Err(target.not_found());
    }
    Ok((file, meta.len()))
}

fn get_blocking(target: &Target) -> Result<Bytes, StoreError> {
    let (mut file, size) = open_object(target)?;
    let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.read_to_end(&mut data)
        .map_err(|e| target.io("read", e))?;
    Ok(data.into())
}

fn get_range_blocking(target: &Target, range: Range<u64>) -> Result<Bytes, StoreError> {
    let (mut file, size) = open_object(target)?;
    let truncated = |size| StoreError::RangeNotSatisfiable {
        location: target.location.clone(),
        start: range.start,
        end: range.end,
        size,
    };
    if range.end > size {
        return Err(truncated(size));
    }
    let len = usize::try_from(range.end - range.start)
        .map_err(|_| target.io("read", io::Error::other("range does not fit in memory")))?;
    let mut data = vec![0; len];
    file.seek(SeekFrom::Start(range.start))
        .map_err(|e| target.io("seek", e))?;
    match file.read_exact(&mut data) {
        Ok(()) => Ok(data.into()),
        // The file shrank since it was measured.
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
            let size = file.metadata().map_err(|e| target.io("stat", e))?.len();
            Err(truncated(size))
        }
        Err(e) => Err(target.io("read", e)),
    }
}

fn head_blocking(target: &Target) -> Result<ObjectMeta, StoreError> {
    let meta = fs::metadata(&target.path).map_err(|e| target.read_error("stat", e))?;
    if !meta.is_file() {
        return Err(target.not_found());
    }
    Ok(ObjectMeta {
        key: target.key.clone(),
        size: meta.len(),
    })
}

/// Appends every object below `dir` (whose key prefix is `prefix`) to `out`. Entries whose names
/// cannot be keys — staging files, or anything else not written by a store — are skipped.
fn walk(dir: &Path, prefix: Option<&str>, out: &mut Vec<ObjectMeta>) -> Result<(), StoreError> {
    let location = || dir.display().to_string();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if is_missing(&e) => return Ok(()),
        Err(e) => return Err(io_error("list", &location(), e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_error("list", &location(), e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let key = match prefix {
            Some(prefix) => format!("{prefix}/{name}"),
            None => name.to_owned(),
        };
        let Ok(key) = ObjectKey::new(key) else {
            continue;
        };
        let path = entry.path();
        let file_type = entry
            .file_type()
            .map_err(|e| io_error("stat", &path.display().to_string(), e))?;
        if file_type.is_dir() {
            walk(&path, Some(key.as_str()), out)?;
            continue;
        }
        // Follows symbolic links, so a linked file counts as an object.
        match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => out.push(ObjectMeta {
                key,
                size: meta.len(),
            }),
            Ok(_) => {}
            // Deleted while we were listing.
            Err(e) if is_missing(&e) => {}
            Err(e) => return Err(io_error("stat", &path.display().to_string(), e)),
        }
    }
    Ok(())
}

fn delete_blocking(target: &Target) -> Result<(), StoreError> {
    match fs::remove_file(&target.path) {
        Ok(()) => {}
        // Nothing to delete: a directory is not an object, and a missing object is fine (as on S3).
        Err(e) if is_missing(&e) || e.kind() == ErrorKind::IsADirectory => return Ok(()),
        Err(e) => return Err(target.io("delete", e)),
    }
    // Tidy up directories that only existed for this object. remove_dir refuses non-empty ones,
    // and a concurrent upload into a removed directory recreates it (see `stage`).
    let mut dir = target.path.parent();
    while let Some(d) = dir
        && d != &*target.root
        && d.starts_with(&target.root)
        && fs::remove_dir(d).is_ok()
    {
        dir = d.parent();
    }
    Ok(())
}

impl ObjectStore for LocalStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn put(&self, key: &ObjectKey, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        let target = self.target(key);
        Box::pin(async move {
            self.sync_completed_uploads().await?;
            let location = target.location.clone();
            blocking(&location, move || put_blocking(&target, &data)).await
        })
    }

    fn put_if_absent(&self, key: &ObjectKey, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        let target = self.target(key);
        Box::pin(async move {
            self.sync_completed_uploads().await?;
            let location = target.location.clone();
            blocking(&location, move || put_if_absent_blocking(&target, &data)).await
        })
    }

    fn start_upload(&self, key: &ObjectKey) -> BoxFuture<'_, Result<Box<dyn Upload>, StoreError>> {
        let target = self.target(key);
        Box::pin(async move {
            let location = target.location.clone();
            let unsynced = Arc::clone(&self.unsynced);
            let upload = blocking(&location, move || {
                let (file, staging) = stage(&target)?;
                Ok(LocalUpload {
                    target,
                    file: Some(file),
                    staging,
                    size: 0,
                    unsynced,
                })
            })
            .await?;
            Ok(Box::new(upload) as Box<dyn Upload>)
        })
    }

    fn get(&self, key: &ObjectKey) -> BoxFuture<'_, Result<Bytes, StoreError>> {
        let target = self.target(key);
        Box::pin(async move {
            let location = target.location.clone();
            blocking(&location, move || get_blocking(&target)).await
        })
    }

    fn get_range(
        &self,
        key: &ObjectKey,
        range: Range<u64>,
    ) -> BoxFuture<'_, Result<Bytes, StoreError>> {
        let target = self.target(key);
        Box::pin(async move {
            if range.start > range.end {
                return Err(StoreError::InvalidRange {
                    location: target.location,
                    start: range.start,
                    end: range.end,
                });
            }
            let location = target.location.clone();
            blocking(&location, move || get_range_blocking(&target, range)).await
        })
    }

    fn head(&self, key: &ObjectKey) -> BoxFuture<'_, Result<ObjectMeta, StoreError>> {
        let target = self.target(key);
        Box::pin(async move {
            let location = target.location.clone();
            blocking(&location, move || head_blocking(&target)).await
        })
    }

    fn list(
        &self,
        prefix: Option<&ObjectKey>,
    ) -> BoxFuture<'_, Result<Vec<ObjectMeta>, StoreError>> {
        let (dir, prefix, location) = match prefix {
            Some(prefix) => {
                let target = self.target(prefix);
                (target.path, Some(target.key), target.location)
            }
            None => (self.root.to_path_buf(), None, self.location()),
        };
        Box::pin(async move {
            blocking(&location, move || {
                let mut objects = Vec::new();
                walk(&dir, prefix.as_ref().map(ObjectKey::as_str), &mut objects)?;
                // Directory order is arbitrary, and even a sorted walk would put `a/b` before
                // `a.x`; sort by the whole key, bytewise, as S3 does.
                objects.sort_unstable_by(|a, b| a.key.cmp(&b.key));
                Ok(objects)
            })
            .await
        })
    }

    fn delete(&self, key: &ObjectKey) -> BoxFuture<'_, Result<(), StoreError>> {
        let target = self.target(key);
        Box::pin(async move {
            let location = target.location.clone();
            blocking(&location, move || delete_blocking(&target)).await
        })
    }
}

/// An upload into a staging file; dropping it removes the file.
#[derive(Debug)]
struct LocalUpload {
    target: Target,
    /// `None` once a write failed or was cancelled half-way: what reached the file is unknown, so
    /// the upload can only be aborted.
    file: Option<File>,
    staging: Staging,
    size: u64,
    /// The store's list of completed uploads to sync.
    unsynced: Arc<Mutex<Vec<PathBuf>>>,
}

impl LocalUpload {
    fn take_file(&mut self) -> Result<File, StoreError> {
        self.file.take().ok_or_else(|| {
            self.target.io(
                "write",
                io::Error::other("an earlier write to this upload failed or was cancelled"),
            )
        })
    }
}

impl Upload for LocalUpload {
    fn write(&mut self, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut file = self.take_file()?;
            if data.is_empty() {
                self.file = Some(file);
                return Ok(());
            }
            let location = self.target.location.clone();
            let len = data.len() as u64;
            let file = blocking(&self.target.location, move || {
                file.write_all(&data)
                    .map_err(|e| io_error("write", &location, e))?;
                Ok(file)
            })
            .await?;
            self.file = Some(file);
            self.size += len;
            Ok(())
        })
    }

    fn complete(mut self: Box<Self>) -> BoxFuture<'static, Result<u64, StoreError>> {
        Box::pin(async move {
            let file = self.take_file()?;
            let LocalUpload {
                target,
                staging,
                size,
                unsynced,
                ..
            } = *self;
            let location = target.location.clone();
            blocking(&location, move || {
                publish_unsynced(&target, file, staging)?;
                lock(&unsynced).push(target.path);
                Ok(size)
            })
            .await
        })
    }

    fn abort(self: Box<Self>) -> BoxFuture<'static, Result<(), StoreError>> {
        let LocalUpload {
            target,
            file,
            staging,
            ..
        } = *self;
        drop(file);
        Box::pin(async move {
            let location = target.location.clone();
            blocking(&location, move || {
                staging
                    .remove()
                    .map_err(|e| target.io("remove staging file for", e))
            })
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(key: &str) -> ObjectKey {
        ObjectKey::new(key).expect("valid key")
    }

    async fn upload(store: &LocalStore, name: &str) {
        let mut upload = store.start_upload(&key(name)).await.expect("start");
        upload
            .write(Bytes::from_static(b"rows"))
            .await
            .expect("write");
        upload.complete().await.expect("complete");
    }

    /// Completed uploads wait for the next put, which syncs them all first — also when one of
    /// them was deleted in between.
    #[tokio::test]
    async fn uploads_are_synced_by_the_next_put() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = LocalStore::open(dir.path()).expect("open");
        for name in ["data/1", "data/2", "other/3"] {
            upload(&store, name).await;
        }
        assert_eq!(lock(&store.unsynced).len(), 3);
        store.delete(&key("data/2")).await.expect("delete");
        store
            .put(&key("manifest.json"), Bytes::from_static(b"{}"))
            .await
            .expect("put syncs the uploads first");
        assert!(lock(&store.unsynced).is_empty());
        assert_eq!(
            store.get(&key("data/1")).await.expect("get"),
            Bytes::from_static(b"rows")
        );
        upload(&store, "data/4").await;
        store
            .put_if_absent(&key("marker"), Bytes::from_static(b"x"))
            .await
            .expect("put_if_absent");
        assert!(lock(&store.unsynced).is_empty());
    }
}
