/// What can be wrong with archive data. Every variant names the object and, for data, the chunk,
/// so that a damaged backup can be located without further digging.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    #[error(
        "manifest {object} is damaged: {reason}; the backup cannot be trusted — restore an older backup or take a new one"
    )]
    ManifestCorrupt { object: String, reason: String },

    /// Encryption itself failed (not a damaged backup): no randomness, a key of the wrong size.
    #[error("encryption: {reason}")]
    Crypto { reason: String },

    #[error(
        "manifest {object} failed its checksum (recorded {expected}, computed {actual}): it was changed or damaged after the dump wrote it"
    )]
    ManifestChecksumMismatch {
        object: String,
        expected: String,
        actual: String,
    },

    #[error(
        "manifest {object} has format version {found}, but this pgark (version {pgark_version}) reads versions up to {supported}: upgrade pgark to read this backup"
    )]
    UnsupportedFormatVersion {
        object: String,
        found: u64,
        supported: u32,
        pgark_version: &'static str,
    },

    #[error(
        "chunk {chunk} of {of} in {object} failed its SHA-256 check (recorded {expected}, computed {actual}): the object is damaged"
    )]
    ChunkChecksumMismatch {
        /// What the chunk holds: `table public.tasks`, `the large objects`.
        of: String,
        object: String,
        chunk: usize,
        expected: String,
        actual: String,
    },

    #[error("chunk {chunk} of {of} in {object} does not decode: {reason}")]
    ChunkCorrupt {
        /// What the chunk holds: `table public.tasks`, `the large objects`.
        of: String,
        object: String,
        chunk: usize,
        reason: String,
    },

    #[error("a large-object record stream to be stored is malformed: {reason}")]
    InvalidRecords { reason: String },

    #[error("a chunk's key filter is malformed: {reason}")]
    InvalidKeyFilter { reason: String },

    #[error("could not compress a chunk: {0}")]
    Compress(#[source] std::io::Error),
}
