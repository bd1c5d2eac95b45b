//! `--notify`: the webhook receives the documented JSON document when a dump or a restore
//! succeeds and when a dump fails; a webhook that never answers holds the run up no longer than `--notify-timeout`
//! and changes neither its exit code nor its backup, and its URL's token is never printed.

mod common;

use common::*;
use pgark_testkit::server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A webhook receiver on localhost speaking HTTP/1.1: answers every POST with 200 and hands
/// over its JSON body. Returns its URL (with a token-like path) and the bodies received.
async fn webhook() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let sender = sender.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buffer = [0u8; 4096];
                // Headers, then as many body bytes as Content-Length says.
                let (head_end, length) = loop {
                    let n = stream.read(&mut buffer).await.expect("read");
                    assert!(n > 0, "the request ended early");
                    data.extend_from_slice(&buffer[..n]);
                    if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
                        assert!(head.starts_with("post "), "a POST: {head}");
                        assert!(head.contains("content-type: application/json"), "{head}");
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .expect("content-length");
                        break (end + 4, length);
                    }
                };
                while data.len() < head_end + length {
                    let n = stream.read(&mut buffer).await.expect("read body");
                    assert!(n > 0, "the body ended early");
                    data.extend_from_slice(&buffer[..n]);
                }
                let body: serde_json::Value =
                    serde_json::from_slice(&data[head_end..head_end + length]).expect("JSON body");
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await
                    .expect("answer");
                let _ = sender.send(body);
            });
        }
    });
    (
        format!("http://{address}/hooks/T0KEN-for-this-test"),
        receiver,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_hears_of_a_dump_that_succeeds_and_of_one_that_fails() {
    let source = server().create_database("notified").await;
    source
        .execute(
            "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 300);",
        )
        .await;
    let (url, mut received) = webhook().await;
    let dest = tempfile::tempdir().expect("dir");
    let run = pgark(&[
        "dump",
        &source.url(),
        path_str(dest.path()),
        "--notify",
        &url,
    ])
    .await
    .success();
    let document = received.recv().await.expect("a document");
    let backup = only_backup(dest.path());
    let id = backup
        .file_name()
        .expect("id")
        .to_string_lossy()
        .into_owned();
    assert_eq!(document["tool"], "pgark");
    assert_eq!(document["command"], "dump");
    assert_eq!(document["status"], "success");
    assert_eq!(document["database"], source.name());
    assert_eq!(document["backup_id"], id.as_str());
    assert_eq!(document["rows"], 300);
    assert_eq!(document["tables"], 1);
    assert!(document["raw_bytes"].as_u64().expect("raw_bytes") > 0);
    assert!(document["stored_bytes"].as_u64().expect("stored_bytes") > 0);
    assert!(document["duration_seconds"].as_f64().expect("duration") >= 0.0);
    assert!(document["error"].is_null());
    assert!(
        document["text"]
            .as_str()
            .is_some_and(|t| t.contains("succeeded") && t.contains(source.name())),
        "{document}"
    );
    assert!(!run.stderr.contains("T0KEN"), "{}", run.stderr);

    // A restore tells the webhook too.
    let restored = server().database(&pgark_testkit::unique_name("notified_restore"));
    restore(&backup, &restored.url(), &["--create", "--notify", &url])
        .await
        .success();
    let document = received.recv().await.expect("a document");
    assert_eq!(document["command"], "restore");
    assert_eq!(document["status"], "success");
    assert_eq!(document["database"], restored.name());
    assert_eq!(document["rows"], 300);

    let failed = pgark(&[
        "dump",
        "postgres://nobody@127.0.0.1:1/gone",
        path_str(dest.path()),
        "--notify",
        &url,
    ])
    .await;
    failed.failure();
    let document = received.recv().await.expect("a document");
    assert_eq!(document["status"], "failure");
    assert_eq!(document["database"], "gone");
    assert!(document["backup_id"].is_null());
    assert!(
        document["error"]
            .as_str()
            .is_some_and(|e| e.contains("127.0.0.1")),
        "{document}"
    );
    assert!(
        document["text"]
            .as_str()
            .is_some_and(|t| t.contains("FAILED")),
        "{document}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_that_never_answers_changes_neither_the_exit_code_nor_the_backup() {
    let source = server().create_database("notify_silent").await;
    source
        .execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);")
        .await;
    let silent = format!("http://{}/hooks/T0KEN-silent", silent_endpoint());
    let dest = tempfile::tempdir().expect("dir");
    let run = pgark(&[
        "dump",
        &source.url(),
        path_str(dest.path()),
        "--notify",
        &silent,
        "--notify-timeout",
        "1s",
    ])
    .await
    .success();
    only_backup(dest.path());
    assert!(
        run.stderr
            .contains("could not notify http://127.0.0.1: no answer within --notify-timeout 1s"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("T0KEN"), "{}", run.stderr);

    // A failed dump still fails with its own error, not the webhook's.
    let error = pgark(&[
        "dump",
        "postgres://nobody@127.0.0.1:1/gone",
        path_str(dest.path()),
        "--notify",
        &silent,
        "--notify-timeout",
        "1s",
    ])
    .await
    .failure();
    assert!(error.contains("127.0.0.1:1"), "{error}");
}
