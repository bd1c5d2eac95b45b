//! Options for reaching a backup location, shared by every subcommand that takes one. Only S3
//! needs any; credentials and the region follow the AWS conventions (environment, profile, web
//! identity, instance metadata) and are never command-line options.

use clap::Args;
use pgark_storage::{S3Options, Sse, StoreOptions};

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
    /// Size of the first parts of an S3 multipart upload (5MiB–5GiB; doubled every 900 parts so
    /// 10,000 parts always suffice). Memory per upload is about 3 parts.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    s3_part_size: Option<u64>,
    /// How long one S3 request may go without an answer before it is retried (default 60s; 5
    /// attempts, so a stalled endpoint fails the run within about 5 minutes).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    s3_timeout: Option<std::time::Duration>,
}

impl StoreArgs {
    /// The validated store options.
    pub fn options(&self) -> anyhow::Result<StoreOptions> {
        let s3 = S3Options {
            endpoint: self.s3_endpoint.clone(),
            sse: self.sse,
            sse_kms_key_id: self.sse_kms_key_id.clone(),
            storage_class: self.storage_class.clone(),
            part_size: self.s3_part_size,
            stall_timeout: self.s3_timeout,
        };
        s3.validate().map_err(anyhow::Error::msg)?;
        Ok(StoreOptions { s3 })
    }
}
