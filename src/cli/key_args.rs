//! Options for encrypted backups: identities that open them, and how to reach KMS.

use std::path::PathBuf;

use clap::Args;
use pgark_engine::{Keyring, KmsAccess};

#[derive(Debug, Clone, Args)]
pub struct KmsArgs {
    /// KMS-compatible endpoint URL for kms: recipients (default: the AWS conventions, e.g.
    /// AWS_ENDPOINT_URL_KMS and AWS_REGION).
    #[arg(long, value_name = "URL", env = "PGARK_KMS_ENDPOINT")]
    kms_endpoint: Option<String>,
}

impl KmsArgs {
    pub fn access(&self) -> KmsAccess {
        KmsAccess {
            endpoint: self.kms_endpoint.clone(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    /// An age identity file (AGE-SECRET-KEY-1... lines, from `pgark keygen` or age-keygen) that
    /// opens encrypted backups; repeatable. PGARK_IDENTITY takes paths separated by `:`. Backups
    /// encrypted to a KMS key open with KMS access alone.
    #[arg(
        long = "identity",
        value_name = "FILE",
        env = "PGARK_IDENTITY",
        value_delimiter = ':'
    )]
    identities: Vec<PathBuf>,
    #[command(flatten)]
    kms: KmsArgs,
}

impl KeyArgs {
    /// The identities read, with KMS access.
    pub fn keyring(&self) -> anyhow::Result<Keyring> {
        let mut keyring = Keyring::new(self.kms.access());
        for path in &self.identities {
            keyring.add_identity_file(path)?;
        }
        Ok(keyring)
    }

    /// Whether an identity file was given.
    pub fn has_identity(&self) -> bool {
        !self.identities.is_empty()
    }

    pub fn kms(&self) -> KmsAccess {
        self.kms.access()
    }
}
