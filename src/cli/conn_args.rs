//! Connection options shared by the commands that connect to PostgreSQL.

use clap::Args;
use pgark_pg::{ConnConfig, PgError};

#[derive(Debug, Args)]
pub struct ConnArgs {
    /// Authenticate with an RDS IAM token made from the AWS credential chain and region, a new one
    /// for every connection (same as aws_iam=1 in the connection string). Needs sslmode=require
    /// or stronger, which it implies when sslmode is not set.
    #[arg(long)]
    aws_iam_auth: bool,
    /// Switch every session to this role after connecting (SET ROLE), like pg_dump --role.
    #[arg(long, value_name = "ROLE")]
    role: Option<String>,
    /// Give up on a server that sends (or takes) no COPY data for this long: a stopped or hung
    /// backend, which TCP keepalives cannot see. 0 waits forever.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = super::args::parse_duration)]
    stall_timeout: std::time::Duration,
}

impl ConnArgs {
    /// Parses `conninfo` and applies these options to it.
    pub fn config(&self, conninfo: &str) -> Result<ConnConfig, PgError> {
        let stall_timeout = Some(self.stall_timeout).filter(|t| !t.is_zero());
        let mut config = ConnConfig::parse(conninfo)?
            .with_role(self.role.clone())
            .with_stall_timeout(stall_timeout);
        if self.aws_iam_auth {
            config = config.with_aws_iam()?;
        }
        Ok(config)
    }
}
