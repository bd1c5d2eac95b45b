/// Storage errors. Variants mean the same for every store and always carry the object or location
/// they are about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },

    #[error("invalid backup location {location:?}: {reason}")]
    InvalidLocation { location: String, reason: String },

    #[error("{location} does not exist")]
    NotFound { location: String },

    #[error("{location} already exists")]
    AlreadyExists { location: String },

    #[error(
        "{location} is {size} bytes long; bytes {start}..{end} were requested (the object is truncated)"
    )]
    RangeNotSatisfiable {
        location: String,
        start: u64,
        end: u64,
        size: u64,
    },

    /// A byte range whose start lies after its end: a caller bug, refused before any I/O.
    #[error("{location}: invalid byte range {start}..{end} (start is after end)")]
    InvalidRange {
        location: String,
        start: u64,
        end: u64,
    },

    #[error("{operation} {location}: {source}")]
    Io {
        operation: &'static str,
        location: String,
        #[source]
        source: std::io::Error,
    },

    /// The store refused the request: missing or wrong credentials, or no permission.
    #[error("access to {location} was denied: {hint}")]
    AccessDenied { location: String, hint: String },

    #[error(
        "S3 bucket {bucket:?} does not exist (needed for {location}): check the bucket name and AWS_REGION, or create the bucket"
    )]
    NoSuchBucket { bucket: String, location: String },

    /// Any other failure of a remote store, after retries: the message says what the store or
    /// the network answered.
    #[error("{operation} {location}: {message}")]
    Backend {
        operation: &'static str,
        location: String,
        message: String,
    },
}

impl StoreError {
    /// Whether trying the same request again later may succeed: a remote store's failure that
    /// outlasted the client's own retries (a timeout, throttling, a server error). Not a refusal
    /// (credentials, a missing bucket) nor a local disk's error.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Backend { .. })
    }
}
