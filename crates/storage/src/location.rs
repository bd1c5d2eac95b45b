use std::path::PathBuf;
use std::sync::Arc;

use crate::{LocalStore, ObjectStore, S3Options, S3Store, StoreError};

/// How to reach stores beyond the location itself. Local directories need nothing; S3 settings
/// apply to `s3://` locations only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    pub s3: S3Options,
}

/// Turns a user-given location into a store with default options; see [`open_location_with`].
pub fn open_location(location: &str, create: bool) -> Result<Arc<dyn ObjectStore>, StoreError> {
    open_location_with(location, create, &StoreOptions::default())
}

/// Turns a user-given location into a store: a local directory path (or `file://` URL), or
/// `s3://bucket/prefix`. A directory must exist unless `create` is set; S3 has no directories,
/// so a missing bucket shows on first use ([`StoreError::NoSuchBucket`]).
pub fn open_location_with(
    location: &str,
    create: bool,
    options: &StoreOptions,
) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let invalid = |reason: &str| StoreError::InvalidLocation {
        location: location.to_owned(),
        reason: reason.to_owned(),
    };
    if location.is_empty() {
        return Err(invalid("it is empty"));
    }
    if let Some((scheme, _)) = location.split_once("://") {
        return match scheme {
            "file" => open_local(location.trim_start_matches("file://").into(), create),
            "s3" => Ok(Arc::new(S3Store::new(location, options.s3.clone())?)),
            other => Err(invalid(&format!(
                "unknown scheme {other:?}; use a directory path or s3://bucket/prefix"
            ))),
        };
    }
    open_local(location.into(), create)
}

fn open_local(path: PathBuf, create: bool) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let store = if create {
        LocalStore::create(path)?
    } else {
        LocalStore::open(path)?
    };
    Ok(Arc::new(store))
}
