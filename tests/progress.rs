//! Progress a person can plan with: on a terminal the dump shows percent, throughput and an ETA,
//! the percent never going back; `--progress json` gives wrappers one JSON event per second.

mod common;

use common::*;
use pgark_testkit::{TestDb, server};

/// A source big enough (about 30 MB of COPY text, compressed hard on one session) that a dump
/// takes a few seconds, so the progress is drawn several times.
async fn slow_source(prefix: &str) -> TestDb {
    let source = server().create_database(prefix).await;
    source
        .execute(
            "CREATE TABLE big (id int PRIMARY KEY, body text);
             INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text)
             FROM generate_series(1, 300000) g;",
        )
        .await;
    source
}

const SLOW: [&str; 4] = ["--jobs", "1", "--compress-level", "15"];

/// `12%` tokens of the output, in order.
fn percents(text: &str) -> Vec<u64> {
    let mut found = Vec::new();
    for word in text.split(|c: char| c.is_whitespace() || c == '\r' || c == '\u{1b}') {
        if let Some(number) = word.strip_suffix('%')
            && let Ok(value) = number.parse::<u64>()
        {
            found.push(value);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dump_on_a_terminal_shows_a_percent_that_only_grows_and_an_eta() {
    let source = slow_source("progress_tty").await;
    let dest = tempfile::tempdir().expect("dir");
    let mut words = vec![
        env!("CARGO_BIN_EXE_pgark").to_owned(),
        "dump".to_owned(),
        source.url(),
        path_str(dest.path()).to_owned(),
    ];
    words.extend(SLOW.iter().map(|w| w.to_string()));
    let quoted: Vec<String> = words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', "'\\''")))
        .collect();
    // `script` runs the dump on a pseudo-terminal (util-linux), wide enough for the line.
    let mut command = tokio::process::Command::new("script");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            command.env_remove(&key);
        }
    }
    let output = command
        .args([
            "-qefc",
            &format!("stty cols 200 rows 40; exec {}", quoted.join(" ")),
            "/dev/null",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run script (util-linux: apt-get install -y bsdutils)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the dump failed:\n{text}");
    only_backup(dest.path());
    let seen = percents(&text);
    assert!(!seen.is_empty(), "a percent on the terminal:\n{text}");
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "the percent never goes back: {seen:?}"
    );
    assert!(text.contains("ETA "), "an ETA on the terminal:\n{text}");
    assert!(text.contains("/s"), "a throughput:\n{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_json_is_one_event_per_line_for_wrappers() {
    let source = slow_source("progress_json").await;
    let dest = tempfile::tempdir().expect("dir");
    let url = source.url();
    let mut args = vec![
        "dump",
        url.as_str(),
        path_str(dest.path()),
        "--progress",
        "json",
    ];
    args.extend_from_slice(&SLOW);
    let run = pgark(&args).await.success();
    let events: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["event"] == "progress")
        .collect();
    assert!(!events.is_empty(), "progress events:\n{}", run.stderr);
    let mut last_percent = 0;
    for event in &events {
        assert_eq!(event["operation"], "dumping");
        assert_eq!(event["tables_total"], 1);
        assert!(event["bytes_expected"].as_u64().expect("bytes_expected") > 0);
        assert!(event["bytes_per_second"].is_u64(), "{event}");
        let percent = event["percent"].as_u64().expect("percent");
        assert!(percent >= last_percent && percent <= 99, "{event}");
        last_percent = percent;
    }
}
