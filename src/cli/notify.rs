//! `--notify URL`: one JSON document POSTed to each webhook when a dump ends, on success and on
//! failure — what ran, how long, how big, the error — with a Slack-compatible `text` field.
//! A notification never fails the run nor holds it up beyond `--notify-timeout`: each webhook
//! gets a few tries within that time, then a warning says it was not told. Webhook URLs often
//! carry a token in their path, so messages name only the scheme and host.

use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::args::parse_duration;

#[derive(Debug, Clone, Args)]
pub struct NotifyArgs {
    /// POST a JSON document (database, backup id, duration, sizes, error; a Slack-compatible
    /// `text`) to this http:// or https:// URL when the run ends, success or failure.
    /// Repeatable.
    #[arg(long, value_name = "URL", value_parser = parse_webhook)]
    notify: Vec<String>,
    /// The longest the notifications may hold up the end of the run, tries included.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    notify_timeout: Duration,
}

/// How many times a webhook is tried (within the timeout).
const ATTEMPTS: u32 = 3;

fn parse_webhook(url: &str) -> Result<String, String> {
    match url.parse::<hyper::Uri>() {
        Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {
            Ok(url.to_owned())
        }
        _ => Err("a webhook is an http:// or https:// URL with a host".to_owned()),
    }
}

/// `https://hooks.slack.com`: a webhook named without the path and query that hold its token.
fn redacted(url: &str) -> String {
    match url.parse::<hyper::Uri>() {
        Ok(uri) => format!(
            "{}://{}",
            uri.scheme_str().unwrap_or("http"),
            uri.authority().map(|a| a.host()).unwrap_or("?")
        ),
        Err(_) => "the webhook".to_owned(),
    }
}

impl NotifyArgs {
    /// Sends `document` to every webhook at once; returns when all were told or gave up, at
    /// the latest after `--notify-timeout`. Problems are warnings.
    pub async fn send(&self, document: &serde_json::Value) {
        if self.notify.is_empty() {
            return;
        }
        let body = Bytes::from(document.to_string());
        let client = match https_client() {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!("cannot notify the webhooks: {e}");
                return;
            }
        };
        let sends = self.notify.iter().map(|url| {
            let client = client.clone();
            let body = body.clone();
            async move {
                let outcome =
                    tokio::time::timeout(self.notify_timeout, post(&client, url, body)).await;
                match outcome {
                    Ok(Ok(())) => tracing::debug!("notified {}", redacted(url)),
                    Ok(Err(e)) => tracing::warn!("could not notify {}: {e}", redacted(url)),
                    Err(_) => tracing::warn!(
                        "could not notify {}: no answer within --notify-timeout {}",
                        redacted(url),
                        pgark_engine::describe_duration(self.notify_timeout)
                    ),
                }
            }
        });
        futures::future::join_all(sends).await;
    }
}

type HttpsClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

fn https_client() -> Result<HttpsClient, String> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("no CA certificates: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// POSTs `body`, trying again after a failed connection or a 5xx answer.
async fn post(client: &HttpsClient, url: &str, body: Bytes) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
        }
        let request = hyper::Request::post(url)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("pgark/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(body.clone()))
            .map_err(|e| format!("invalid request: {e}"))?;
        match client.request(request).await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) if response.status().is_server_error() => {
                last = format!("it answered {}", response.status());
            }
            Ok(response) => return Err(format!("it answered {}", response.status())),
            Err(e) => last = format!("{e}"),
        }
    }
    Err(last)
}

/// What a finished (or failed) run tells the webhooks.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    pub command: &'static str,
    pub database: String,
    pub backup_id: Option<String>,
    pub location: Option<String>,
    pub duration: Duration,
    pub raw_bytes: Option<u64>,
    pub stored_bytes: Option<u64>,
    pub tables: Option<u64>,
    pub rows: Option<u64>,
    /// The error, for a failed run.
    pub error: Option<String>,
}

impl RunReport {
    /// The JSON document, with `text` for Slack-compatible receivers.
    pub fn document(&self) -> serde_json::Value {
        let status = if self.error.is_none() {
            "success"
        } else {
            "failure"
        };
        let text = match &self.error {
            None => format!(
                "pgark {} of {} succeeded in {:.0}s: backup {}",
                self.command,
                self.database,
                self.duration.as_secs_f64(),
                self.location.as_deref().unwrap_or("-")
            ),
            Some(error) => format!(
                "pgark {} of {} FAILED after {:.0}s: {error}",
                self.command,
                self.database,
                self.duration.as_secs_f64()
            ),
        };
        serde_json::json!({
            "tool": "pgark",
            "command": self.command,
            "status": status,
            "database": self.database,
            "backup_id": self.backup_id,
            "location": self.location,
            "finished_at": pgark_archive::Timestamp::now().rfc3339(),
            "duration_seconds": (self.duration.as_secs_f64() * 1000.0).round() / 1000.0,
            "raw_bytes": self.raw_bytes,
            "stored_bytes": self.stored_bytes,
            "tables": self.tables,
            "rows": self.rows,
            "error": self.error,
            "text": text,
        })
    }
}
