//! RDS IAM database authentication: the password is a short-lived token, a SigV4-presigned
//! `connect` request for service `rds-db`, signed with credentials from the standard AWS chain
//! (environment, profile, web identity, instance or container metadata). A token lives 15 minutes,
//! so one is generated for every connection attempt rather than once per run.

use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use tokio::sync::OnceCell;

/// How long a token is valid for; RDS accepts at most 15 minutes.
const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);
const SERVICE: &str = "rds-db";

/// The AWS configuration, loaded once per process; its credentials provider caches and refreshes
/// credentials itself.
static SDK_CONFIG: OnceCell<SdkConfig> = OnceCell::const_new();

/// A fresh token for `user` at `host:port`. `host` is the name the database is reached by (the
/// RDS endpoint), which the token is signed for. Errors say what is missing, never a secret.
pub(crate) async fn token(host: &str, port: u16, user: &str) -> Result<String, String> {
    let sdk = SDK_CONFIG
        .get_or_init(|| aws_config::defaults(BehaviorVersion::latest()).load())
        .await;
    let provider = sdk.credentials_provider().ok_or_else(|| {
        "no AWS credential provider is configured — set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, \
         AWS_PROFILE, or run with an instance or task role"
            .to_owned()
    })?;
    let credentials = provider.provide_credentials().await.map_err(|e| {
        format!(
            "no AWS credentials found ({}) — set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, \
             AWS_PROFILE, or run with an instance or task role",
            aws_smithy_types::error::display::DisplayErrorContext(&e)
        )
    })?;
    let region = sdk
        .region()
        .map(ToString::to_string)
        .or_else(|| region_from_host(host))
        .ok_or_else(|| {
            format!("no AWS region: set AWS_REGION (the host name \"{host}\" does not name one)")
        })?;
    rds_auth_token(host, port, user, &region, &credentials, SystemTime::now())
}

/// The region in an RDS endpoint name, `<name>.<id>.<region>.rds.amazonaws.com`.
fn region_from_host(host: &str) -> Option<String> {
    let labels: Vec<&str> = host.trim_end_matches('.').split('.').collect();
    let n = labels.len();
    (n >= 4 && labels[n - 3..] == ["rds", "amazonaws", "com"]).then(|| labels[n - 4].to_owned())
}

/// The token for `user` at `host:port` in `region`, signed with `credentials` at `time`:
/// `host:port/?Action=connect&DBUser=user&X-Amz-Algorithm=...&X-Amz-Signature=...` (no scheme).
pub(crate) fn rds_auth_token(
    host: &str,
    port: u16,
    user: &str,
    region: &str,
    credentials: &Credentials,
    time: SystemTime,
) -> Result<String, String> {
    let identity: Identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.expires_in = Some(TOKEN_LIFETIME);
    settings.signature_location = SignatureLocation::QueryParams;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| format!("could not sign the token: {e}"))?;

    let endpoint = format!("{host}:{port}");
    let query = format!("Action=connect&DBUser={}", encode(user));
    let url = format!("https://{endpoint}/?{query}");
    let request = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::empty())
        .map_err(|e| format!("could not sign the token: {e}"))?;
    let (instructions, _signature) = sign(request, &params.into())
        .map_err(|e| format!("could not sign the token: {e}"))?
        .into_parts();
    let mut token = format!("{endpoint}/?{query}");
    for (name, value) in instructions.params() {
        token.push('&');
        token.push_str(&encode(name));
        token.push('=');
        token.push_str(&encode(value));
    }
    Ok(token)
}

/// RFC 3986 percent-encoding of everything but unreserved characters, as SigV4 requires.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
