use std::path::PathBuf;
use std::sync::Arc;

use crate::{LocalStore, ObjectStore, StoreError};

/// Turns a user-given location into a store: a local directory path (or `file://` URL). The
/// directory must exist unless `create` is set.
pub fn open_location(location: &str, create: bool) -> Result<Arc<dyn ObjectStore>, StoreError> {
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
            "s3" => Err(invalid("S3 locations are not supported by this build yet")),
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
