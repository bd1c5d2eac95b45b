//! What an S3 store needs to know besides the location, and building the SDK client from it and
//! the AWS conventions (credential chain, `AWS_REGION`, `AWS_ENDPOINT_URL`, profiles).

use std::fmt;
use std::str::FromStr;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};

use crate::{ObjectKey, StoreError};

/// The smallest part S3 accepts (except for an upload's last part).
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// The largest part S3 accepts.
pub const MAX_PART_SIZE: u64 = 5 << 30;
/// Default part size of a multipart upload; see [`part_size`].
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;
/// S3's limit on the parts of one upload.
pub const MAX_PARTS: i32 = 10_000;
/// Parts one upload may have in flight at once (besides the one being filled).
pub const PARTS_IN_FLIGHT: usize = 2;
/// Attempts per request (the SDK's standard retry mode: exponential backoff with jitter) unless
/// `AWS_MAX_ATTEMPTS` or the profile says otherwise.
const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// Server-side encryption requested for every object written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sse {
    /// `AES256`: keys managed by S3.
    Aes256,
    /// `aws:kms`: keys in KMS, optionally a given one (`S3Options::sse_kms_key_id`).
    Kms,
}

impl FromStr for Sse {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        match input {
            "AES256" => Ok(Sse::Aes256),
            "aws:kms" => Ok(Sse::Kms),
            other => Err(format!(
                "unknown server-side encryption {other:?}; use AES256 or aws:kms"
            )),
        }
    }
}

impl fmt::Display for Sse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sse::Aes256 => "AES256",
            Sse::Kms => "aws:kms",
        })
    }
}

/// The checksum sent with every object and part written, which the server verifies before it
/// stores the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteChecksum {
    /// `x-amz-checksum-sha256`.
    #[default]
    Sha256,
    /// `x-amz-checksum-crc32c`.
    Crc32c,
    /// No checksum header, for stores that refuse them; the request is then signed over its
    /// body (SigV4), which the server checks instead.
    None,
}

impl FromStr for WriteChecksum {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        match input {
            "sha256" => Ok(WriteChecksum::Sha256),
            "crc32c" => Ok(WriteChecksum::Crc32c),
            "none" => Ok(WriteChecksum::None),
            other => Err(format!(
                "unknown S3 checksum {other:?}; use sha256, crc32c or none"
            )),
        }
    }
}

/// How requests name the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// `https://endpoint/bucket/key`.
    Path,
    /// `https://bucket.endpoint/key`.
    Virtual,
}

impl FromStr for Addressing {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        match input {
            "path" => Ok(Addressing::Path),
            "virtual" => Ok(Addressing::Virtual),
            other => Err(format!(
                "unknown S3 addressing {other:?}; use path or virtual"
            )),
        }
    }
}

/// S3 settings beyond the location; everything else follows the AWS conventions (environment,
/// shared config and credentials files, web identity, instance metadata).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// An S3-compatible endpoint (`http://127.0.0.1:9000`); overrides `AWS_ENDPOINT_URL`. With
    /// any endpoint set, requests use path-style addressing.
    pub endpoint: Option<String>,
    pub sse: Option<Sse>,
    /// The KMS key for `aws:kms` (the bucket's default key if unset).
    pub sse_kms_key_id: Option<String>,
    /// `STANDARD`, `STANDARD_IA`, `INTELLIGENT_TIERING`, … as S3 names them.
    pub storage_class: Option<String>,
    /// The smallest part size of an upload; `None` is [`DEFAULT_PART_SIZE`]. See [`part_size`].
    pub part_size: Option<u64>,
    /// How long one request attempt may go without an answer (connecting, or waiting for the
    /// response) before it is abandoned and retried; `None` is [`DEFAULT_STALL_TIMEOUT`]. A
    /// stalled endpoint fails an operation after the retries, within about attempts × this.
    pub stall_timeout: Option<std::time::Duration>,
    /// Object Lock for every object written: a retention (mode and date) and/or a legal hold.
    /// Locked writes carry the SHA-256 checksum S3 requires for them (every write here does).
    pub object_lock: Option<crate::ObjectLock>,
    /// The checksum of every write (SHA-256 by default).
    pub checksum: WriteChecksum,
    /// How the bucket is named in requests; `None`: path-style with a custom endpoint,
    /// virtual-hosted on AWS.
    pub addressing: Option<Addressing>,
}

/// See [`S3Options::stall_timeout`]: with 5 attempts, a stalled endpoint fails an operation
/// within about 5 minutes.
pub const DEFAULT_STALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

impl S3Options {
    /// Refuses settings S3 would refuse later, before anything is written.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(size) = self.part_size
            && !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&size)
        {
            return Err(format!(
                "S3 part size {size} is out of range: use between 5MiB and 5GiB"
            ));
        }
        if self.sse_kms_key_id.is_some() && self.sse != Some(Sse::Kms) {
            return Err("a KMS key id needs server-side encryption aws:kms (--sse aws:kms)".into());
        }
        if self.object_lock.is_some_and(|lock| lock.is_none()) {
            return Err("an object lock needs a retention or a legal hold".into());
        }
        if self.object_lock.is_some() && self.checksum == WriteChecksum::None {
            return Err(
                "S3 refuses locked writes without a checksum: use --s3-checksum sha256 or crc32c"
                    .into(),
            );
        }
        if let Some(class) = &self.storage_class
            && (class.is_empty() || !class.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
        {
            return Err(format!(
                "storage class {class:?} is not an S3 storage class name (e.g. STANDARD, STANDARD_IA)"
            ));
        }
        Ok(())
    }
}

/// Expected sizes are estimates (a table's size on disk, for its compressed COPY text): parts are
/// sized so that an object this many times larger still fits in [`MAX_PARTS`] parts.
const EXPECTED_SIZE_MARGIN: u64 = 2;

/// The one part size of an upload, chosen before its first part: every part but the last has
/// exactly this size, as some S3-compatible stores (Cloudflare R2) require. It is `base`, or,
/// when the object is `expected` to be so large that [`MAX_PARTS`] parts of `base` would not
/// hold twice that, the size that does, rounded up to a whole MiB (at most S3's 5 GiB). With no
/// expected size the largest object is `base × 10,000`: 78 GiB with the 8 MiB default. Memory
/// per upload is bounded by the part size.
pub fn part_size(base: u64, expected: Option<u64>) -> u64 {
    let needed = expected
        .unwrap_or(0)
        .saturating_mul(EXPECTED_SIZE_MARGIN)
        .div_ceil(MAX_PARTS as u64)
        .div_ceil(1 << 20)
        .saturating_mul(1 << 20);
    base.max(needed).min(MAX_PART_SIZE)
}

/// `s3://bucket/prefix` split into its parts; the prefix has no leading or trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub prefix: String,
}

impl S3Location {
    pub fn parse(location: &str) -> Result<Self, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidLocation {
            location: location.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = location
            .strip_prefix("s3://")
            .ok_or_else(|| invalid("an S3 location starts with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid(
                "the bucket name is missing; use s3://bucket/prefix",
            ));
        }
        if !bucket.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        }) {
            return Err(invalid(
                "a bucket name has only lowercase letters, digits, `.`, `-` and `_`",
            ));
        }
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() {
            ObjectKey::new(prefix).map_err(|e| invalid(&format!("bad key prefix: {e}")))?;
        }
        Ok(S3Location {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// Builds the client: credentials, region and endpoint from the AWS conventions, `options.endpoint`
/// overriding the endpoint. Checksums are computed by the store itself (per part and per object,
/// see [`WriteChecksum`]), never by the SDK: it would add its own CRC32 headers and trailers,
/// which some S3-compatible servers refuse.
pub async fn build_client(
    location: &S3Location,
    options: &S3Options,
) -> Result<aws_sdk_s3::Client, StoreError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(endpoint) = &options.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let shared = loader.load().await;
    let custom_endpoint = shared.endpoint_url().is_some();
    let mut builder = aws_sdk_s3::config::Builder::from(&shared)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .force_path_style(match options.addressing {
            Some(addressing) => addressing == Addressing::Path,
            None => custom_endpoint,
        });
    if shared.region().is_none() {
        if !custom_endpoint {
            return Err(StoreError::InvalidLocation {
                location: location.to_string(),
                reason:
                    "no AWS region is configured: set AWS_REGION (or `region` in the AWS profile)"
                        .into(),
            });
        }
        // S3-compatible servers mostly ignore the region, but requests must be signed for one.
        builder = builder.region(Region::from_static("us-east-1"));
    }
    // Without these an endpoint that accepts connections and never answers holds a request,
    // and the run, forever.
    let stall = options.stall_timeout.unwrap_or(DEFAULT_STALL_TIMEOUT);
    builder = builder.timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(stall.min(std::time::Duration::from_secs(10)))
            .read_timeout(stall)
            .build(),
    );
    if std::env::var_os("AWS_MAX_ATTEMPTS").is_none() {
        builder =
            builder.retry_config(RetryConfig::standard().with_max_attempts(DEFAULT_MAX_ATTEMPTS));
    }
    Ok(aws_sdk_s3::Client::from_conf(builder.build()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_into_bucket_and_prefix() {
        let cases = [
            ("s3://bucket", "bucket", ""),
            ("s3://bucket/", "bucket", ""),
            ("s3://bucket/prod", "bucket", "prod"),
            ("s3://bucket/prod/db1/", "bucket", "prod/db1"),
        ];
        for (input, bucket, prefix) in cases {
            let parsed = S3Location::parse(input).expect(input);
            assert_eq!(
                (parsed.bucket.as_str(), parsed.prefix.as_str()),
                (bucket, prefix)
            );
        }
        for bad in [
            "s3://",
            "s3:///prefix",
            "s3://Bucket/x",
            "s3://b/a//b",
            "s3://b/../x",
        ] {
            assert!(S3Location::parse(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn parts_are_sized_once_so_that_twice_the_expected_size_fits() {
        assert_eq!(part_size(DEFAULT_PART_SIZE, None), DEFAULT_PART_SIZE);
        assert_eq!(
            part_size(DEFAULT_PART_SIZE, Some(1 << 30)),
            DEFAULT_PART_SIZE
        );
        // 8 MiB × 10,000 is 78 GiB: an object expected at 40 GiB needs 9 MiB parts.
        assert_eq!(part_size(DEFAULT_PART_SIZE, Some(40 << 30)), 9 << 20);
        for expected in [100_u64 << 30, 1 << 40, 5 << 40] {
            let size = part_size(MIN_PART_SIZE, Some(expected));
            assert!(
                size * MAX_PARTS as u64 >= 2 * expected,
                "{expected}: {size}"
            );
            assert_eq!(size % (1 << 20), 0);
        }
        assert_eq!(part_size(MIN_PART_SIZE, Some(u64::MAX)), MAX_PART_SIZE);
        assert_eq!(part_size(MAX_PART_SIZE, None), MAX_PART_SIZE);
    }

    #[test]
    fn options_are_validated() {
        let mut options = S3Options::default();
        assert!(options.validate().is_ok());
        options.part_size = Some(1 << 20);
        assert!(options.validate().is_err());
        options.part_size = Some(16 << 20);
        options.sse_kms_key_id = Some("key".into());
        assert!(options.validate().is_err());
        options.sse = Some(Sse::Kms);
        assert!(options.validate().is_ok());
        options.storage_class = Some("standard ia".into());
        assert!(options.validate().is_err());
    }
}
