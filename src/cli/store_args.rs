//! Options for reaching a backup location, shared by every subcommand that takes one. Only S3
//! needs any; credentials and the region follow the AWS conventions (environment, profile, web
//! identity, instance metadata) and are never command-line options.

use clap::Args;
use pgark_storage::{LockMode, ObjectLock, S3Addressing, S3Checksum, S3Options, Sse, StoreOptions};

use super::args::{parse_duration, parse_size};

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// S3-compatible endpoint URL (MinIO, Ceph, …), path-style addressing; overrides AWS_ENDPOINT_URL.
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// Server-side encryption of the objects written to S3.
    #[arg(long, value_name = "AES256|aws:kms")]
    sse: Option<Sse>,
    /// KMS key for --sse aws:kms (default: the bucket's AWS-managed key).
    #[arg(long, value_name = "KEY_ID", requires = "sse")]
    sse_kms_key_id: Option<String>,
    /// S3 storage class of the objects written (STANDARD, STANDARD_IA, INTELLIGENT_TIERING, …).
    #[arg(long, value_name = "CLASS")]
    storage_class: Option<String>,
    /// Part size of S3 multipart uploads (5MiB–5GiB): every part but the last has one size,
    /// this or, for a table large enough to need it, the size at which 10,000 parts hold twice
    /// its size on disk. Memory per upload is about 3 parts.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    s3_part_size: Option<u64>,
    /// How long one S3 request may go without an answer before it is retried (default 60s; 5
    /// attempts, so a stalled endpoint fails the run within about 5 minutes).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    s3_timeout: Option<std::time::Duration>,
    /// The checksum sent with every object and part, which the server verifies on arrival:
    /// sha256 (default), crc32c, or none for stores that refuse checksum headers (requests are
    /// then signed over their body instead).
    #[arg(long, value_name = "sha256|crc32c|none", default_value = "sha256")]
    s3_checksum: S3Checksum,
    /// How requests name the bucket: path (endpoint/bucket/key) or virtual (bucket.endpoint/key).
    /// Default: path with --s3-endpoint or AWS_ENDPOINT_URL, virtual on AWS.
    #[arg(long, value_name = "path|virtual")]
    s3_addressing: Option<S3Addressing>,
}

impl StoreArgs {
    /// The validated store options.
    pub fn options(&self) -> anyhow::Result<StoreOptions> {
        self.options_locking(None)
    }

    /// The validated store options for writing objects locked with `lock`.
    pub fn options_locking(&self, lock: Option<ObjectLock>) -> anyhow::Result<StoreOptions> {
        let s3 = S3Options {
            endpoint: self.s3_endpoint.clone(),
            sse: self.sse,
            sse_kms_key_id: self.sse_kms_key_id.clone(),
            storage_class: self.storage_class.clone(),
            part_size: self.s3_part_size,
            stall_timeout: self.s3_timeout,
            object_lock: lock,
            checksum: self.s3_checksum,
            addressing: self.s3_addressing,
        };
        s3.validate().map_err(anyhow::Error::msg)?;
        Ok(StoreOptions { s3 })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LockModeArg {
    Governance,
    Compliance,
}

/// S3 Object Lock for the objects a command writes.
#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    /// Write every object with an S3 Object Lock retention (the bucket must have Object Lock
    /// enabled): governance (users with s3:BypassGovernanceRetention may still delete) or
    /// compliance (nobody can delete before the date, not even the account's root user).
    #[arg(long, value_enum, value_name = "MODE", requires = "retain_for")]
    object_lock: Option<LockModeArg>,
    /// How long the retention holds, from the start of the run (e.g. 90d).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "object_lock")]
    retain_for: Option<std::time::Duration>,
    /// Also place an S3 legal hold on every object (it holds until removed, whatever the
    /// retention).
    #[arg(long)]
    legal_hold: bool,
}

impl LockArgs {
    /// The lock to write with, its retention counted from `now`; `None` when none is asked for.
    pub fn lock(&self, now: std::time::SystemTime) -> Option<ObjectLock> {
        let retention = self
            .object_lock
            .zip(self.retain_for)
            .map(|(mode, hold_for)| {
                let mode = match mode {
                    LockModeArg::Governance => LockMode::Governance,
                    LockModeArg::Compliance => LockMode::Compliance,
                };
                (mode, now + hold_for)
            });
        let lock = ObjectLock {
            retention,
            legal_hold: self.legal_hold,
        };
        (!lock.is_none()).then_some(lock)
    }
}
