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

    /// A remote store failed in a way that may pass: it did not answer in time, could not be
    /// reached, throttled the client or answered with a server error, on every one of the
    /// client's own retries. Trying again later may succeed.
    #[error("{operation} {location}: {message}")]
    Unavailable {
        operation: &'static str,
        location: String,
        /// What the store or the network answered, on one line.
        message: String,
        #[source]
        source: Option<BoxError>,
    },

    /// A remote store refused a request, or answered it in a way the client cannot use, for a
    /// reason that trying again will not change.
    #[error("{operation} {location}: {message}")]
    Rejected {
        operation: &'static str,
        location: String,
        /// What the store answered, on one line.
        message: String,
        #[source]
        source: Option<BoxError>,
    },

    /// Objects are to be written with an Object Lock retention or legal hold, but the bucket
    /// does not have Object Lock enabled (S3 would refuse every such write).
    #[error(
        "S3 bucket {bucket:?} does not have Object Lock enabled, so objects written to {location} cannot be locked"
    )]
    ObjectLockNotEnabled { bucket: String, location: String },

    /// An upload of unknown size outgrew what its part size allows (S3: 10,000 parts).
    #[error(
        "{location} needs more than {max_parts} parts of at most {part_size} bytes: the object is too large for this part size"
    )]
    TooManyParts {
        location: String,
        max_parts: i32,
        part_size: u64,
    },
}

/// The underlying error of a remote store's failure (the SDK's, with its own causes).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl StoreError {
    /// Whether trying the same request again later may succeed: a remote store's failure that
    /// outlasted the client's own retries (a timeout, throttling, a server error). Not a refusal
    /// (credentials, a missing bucket, a malformed request) nor a local disk's error.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}
