//! Dumps to and restores from S3 through the real binary, against a real S3 protocol server
//! (`s3s-fs`, started in this test process by the test kit) that can fail chosen requests:
//! round trips, retried and permanent part failures, damaged archives, bad credentials, missing
//! buckets, and SIGTERM in the middle of a multipart upload.

mod common;

use common::*;
use pgark_testkit::s3::{FailWith, Operation, S3Server};
use pgark_testkit::{TestDb, server, unique_name};

/// Runs pgark with the environment that points the AWS SDK at `s3` (plus `extra`).
async fn pgark_s3(s3: &S3Server, args: &[&str], extra: &[(&str, &str)]) -> Run {
    let extra = extra.iter().map(|(k, v)| (*k, (*v).to_owned()));
    pgark_with_env(args, s3.env().into_iter().chain(extra)).await
}

/// A database with one table big enough (about 9 MiB compressed) for several 5 MiB parts.
async fn large_source(prefix: &str) -> TestDb {
    let source = server().create_database(prefix).await;
    source
        .execute(
            "CREATE TABLE big (id integer PRIMARY KEY, a text, b text);
             INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text), md5((g * 13)::text)
               FROM generate_series(1, 200000) g;
             CREATE TABLE small (id integer PRIMARY KEY, note text);
             INSERT INTO small SELECT g, 'note ' || g FROM generate_series(1, 50) g;",
        )
        .await;
    source
}

async fn fixture_source(prefix: &str) -> TestDb {
    let source = server().create_database(prefix).await;
    load_fixture(&source).await;
    source
}

/// The ids of the backups under `prefix` (with or without a manifest).
async fn backup_ids(s3: &S3Server, prefix: &str) -> Vec<String> {
    let mut ids: Vec<String> = s3
        .list_keys(&format!("{prefix}/"))
        .await
        .iter()
        .filter_map(|key| {
            key.strip_prefix(&format!("{prefix}/"))?
                .split('/')
                .next()
                .map(str::to_owned)
        })
        .collect();
    ids.dedup();
    ids
}

async fn manifests(s3: &S3Server, prefix: &str) -> Vec<String> {
    s3.list_keys(&format!("{prefix}/"))
        .await
        .into_iter()
        .filter(|key| key.ends_with("/manifest.json"))
        .collect()
}

async fn restore_new(s3: &S3Server, backup: &str, extra_args: &[&str]) -> TestDb {
    let target = server().database(&unique_name("s3_restored"));
    let url = target.url();
    let mut args = vec!["restore", backup, "--target", url.as_str(), "--create"];
    args.extend_from_slice(extra_args);
    pgark_s3(s3, &args, &[]).await.success();
    target
}

#[tokio::test(flavor = "multi_thread")]
async fn large_objects_beyond_16_mib_round_trip_through_s3() {
    let s3 = S3Server::start();
    let (source, _owner) = large_object_source("s3_large_objects").await;
    let dest = s3.location("nightly/lo");
    pgark_s3(&s3, &["dump", &source.url(), &dest, "--jobs", "2"], &[])
        .await
        .success();
    let keys = s3.list_keys("nightly/lo/").await;
    assert!(
        keys.iter().any(|k| k.ends_with("/data/lo.0000.bin.zst")),
        "{keys:?}"
    );
    let restored = restore_new(&s3, &format!("{dest}/latest"), &["--jobs", "2"]).await;
    assert_same_contents(&source, &restored).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fixture_round_trips_through_s3() {
    let s3 = S3Server::start();
    let source = fixture_source("s3_fixture").await;
    let dest = s3.location("nightly/prod");
    let run = pgark_s3(&s3, &["dump", &source.url(), &dest], &[])
        .await
        .success();
    assert!(
        run.stdout.contains("s3://pgark-test/nightly/prod/"),
        "{}",
        run.stdout
    );
    assert_eq!(manifests(&s3, "nightly/prod").await.len(), 1);
    assert!(s3.list_multipart_uploads().await.is_empty());

    let restored = restore_new(&s3, &format!("{dest}/latest"), &[]).await;
    assert_same_contents(&source, &restored).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn large_tables_stream_as_multipart_uploads_and_restore_with_ranged_reads() {
    let s3 = S3Server::start();
    let source = large_source("s3_large").await;
    let dest = s3.location("large");
    pgark_s3(
        &s3,
        &[
            "dump",
            &source.url(),
            &dest,
            "--s3-part-size",
            "5MiB",
            "--jobs",
            "2",
        ],
        &[],
    )
    .await
    .success();
    assert!(
        s3.requests(Operation::UploadPart) >= 2,
        "parts were uploaded"
    );
    assert!(s3.list_multipart_uploads().await.is_empty());

    let id = backup_ids(&s3, "large").await.pop().expect("one backup");
    let gets_before = s3.requests(Operation::GetObject);
    // The endpoint given as an option instead of AWS_ENDPOINT_URL.
    let target = server().database(&unique_name("s3_large_restored"));
    let mut command = pgark_command(&[
        "restore",
        &format!("{dest}/{id}"),
        "--target",
        &target.url(),
        "--create",
        "--s3-endpoint",
        &s3.endpoint(),
    ]);
    command.envs(
        s3.env()
            .into_iter()
            .filter(|(k, _)| *k != "AWS_ENDPOINT_URL"),
    );
    let output = command.output().await.expect("run pgark");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_same_contents(&source, &target).await;
    // Chunks are fetched one ranged GET each: more GETs than objects.
    assert!(s3.requests(Operation::GetObject) - gets_before > 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn server_side_encryption_and_storage_class_are_sent_with_every_write() {
    let s3 = S3Server::start();
    let source = large_source("s3_sse").await;
    pgark_s3(
        &s3,
        &[
            "dump",
            &source.url(),
            &s3.location("sse"),
            "--sse",
            "AES256",
            "--storage-class",
            "STANDARD",
            "--s3-part-size",
            "5MiB",
        ],
        &[],
    )
    .await
    .success();
    let writes = s3.write_settings();
    assert!(writes.len() >= 3, "{writes:?}");
    for (sse, class) in writes {
        assert_eq!(sse.as_deref(), Some("AES256"));
        assert_eq!(class.as_deref(), Some("STANDARD"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_part_failing_once_is_retried_and_the_backup_completes() {
    let s3 = S3Server::start();
    let source = large_source("s3_retry").await;
    for (with, prefix) in [
        (FailWith::InternalError, "retry500"),
        (FailWith::SlowDown, "retry503"),
    ] {
        s3.fail(Operation::UploadPart, with, Some(1));
        let before = s3.requests(Operation::UploadPart);
        pgark_s3(
            &s3,
            &[
                "dump",
                &source.url(),
                &s3.location(prefix),
                "--s3-part-size",
                "5MiB",
            ],
            &[],
        )
        .await
        .success();
        assert!(
            s3.requests(Operation::UploadPart) - before >= 3,
            "{with:?}: the failed part was sent again"
        );
        assert_eq!(manifests(&s3, prefix).await.len(), 1, "{with:?}");
        assert!(s3.list_multipart_uploads().await.is_empty(), "{with:?}");
        let restored = restore_new(&s3, &format!("{}/latest", s3.location(prefix)), &[]).await;
        assert_same_contents(&source, &restored).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_part_failing_every_time_fails_the_dump_and_leaves_no_manifest_and_no_open_upload() {
    let s3 = S3Server::start();
    let source = large_source("s3_broken").await;
    s3.fail(Operation::UploadPart, FailWith::InternalError, None);
    let error = pgark_s3(
        &s3,
        &[
            "dump",
            &source.url(),
            &s3.location("broken"),
            "--s3-part-size",
            "5MiB",
        ],
        &[],
    )
    .await
    .failure();
    println!("{error}");
    assert!(error.contains("s3://pgark-test/broken/"), "{error}");
    assert!(error.contains("/data/"), "names the object: {error}");
    assert!(error.contains("InternalError"), "{error}");
    assert!(
        s3.requests(Operation::UploadPart) >= 5,
        "retried before giving up"
    );
    assert!(manifests(&s3, "broken").await.is_empty());
    assert_eq!(
        s3.list_keys("broken/").await,
        Vec::<String>::new(),
        "partial backup removed"
    );
    assert!(s3.list_multipart_uploads().await.is_empty());
}

/// Dumps the fixture and returns the backup location and one of its data objects' keys.
async fn fixture_backup(s3: &S3Server, source: &TestDb, prefix: &str) -> (String, String) {
    pgark_s3(s3, &["dump", &source.url(), &s3.location(prefix)], &[])
        .await
        .success();
    let id = backup_ids(s3, prefix).await.pop().expect("one backup");
    let object = s3
        .list_keys(&format!("{prefix}/{id}/data/"))
        .await
        .into_iter()
        .max_by_key(|key| {
            std::fs::metadata(s3.object_path(key))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .expect("a data object");
    (format!("{}/{id}", s3.location(prefix)), object)
}

async fn restore_fails_into_empty_target(s3: &S3Server, backup: &str) -> (String, TestDb) {
    let target = server().create_database("s3_damaged_target").await;
    let error = pgark_s3(s3, &["restore", backup, "--target", &target.url()], &[])
        .await
        .failure();
    println!("{error}");
    (error, target)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_data_object_fails_the_restore_naming_it_and_leaves_the_target_unchanged() {
    let s3 = S3Server::start();
    let source = fixture_source("s3_missing").await;
    let (backup, object) = fixture_backup(&s3, &source, "missing").await;
    s3.delete_key(&object).await;
    let (error, target) = restore_fails_into_empty_target(&s3, &backup).await;
    assert!(error.contains(&object), "{error}");
    assert!(user_objects(&target).await.is_empty(), "target unchanged");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_data_object_fails_the_restore_naming_it_and_leaves_the_target_unchanged() {
    let s3 = S3Server::start();
    let source = fixture_source("s3_truncated").await;
    let (backup, object) = fixture_backup(&s3, &source, "truncated").await;
    let path = s3.object_path(&object);
    let size = std::fs::metadata(&path).expect("object file").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open object file")
        .set_len(size / 2)
        .expect("truncate");
    let (error, target) = restore_fails_into_empty_target(&s3, &backup).await;
    assert!(error.contains(&object), "{error}");
    assert!(user_objects(&target).await.is_empty(), "target unchanged");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_give_a_clear_error_without_the_secret() {
    let s3 = S3Server::start();
    let source = fixture_source("s3_creds").await;
    let secret = "wrong-secret-do-not-print";
    let error = pgark_s3(
        &s3,
        &["dump", &source.url(), &s3.location("creds")],
        &[("AWS_SECRET_ACCESS_KEY", secret)],
    )
    .await
    .failure();
    println!("{error}");
    assert!(error.contains("denied"), "{error}");
    assert!(
        error.contains("AWS_SECRET_ACCESS_KEY"),
        "says what to check: {error}"
    );
    assert!(!error.contains(secret), "{error}");

    let error = pgark_s3(
        &s3,
        &[
            "restore",
            &format!("{}/latest", s3.location("creds")),
            "--target",
            &source.url(),
        ],
        &[("AWS_SECRET_ACCESS_KEY", secret)],
    )
    .await
    .failure();
    println!("{error}");
    assert!(
        error.contains("denied") && !error.contains(secret),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_bucket_gives_a_clear_error() {
    let s3 = S3Server::start();
    let source = fixture_source("s3_bucket").await;
    let error = pgark_s3(
        &s3,
        &["dump", &source.url(), "s3://no-such-bucket/prod"],
        &[],
    )
    .await
    .failure();
    println!("{error}");
    assert!(
        error.contains("bucket \"no-such-bucket\" does not exist"),
        "{error}"
    );

    let target = server().database(&unique_name("s3_bucket_target"));
    let error = pgark_s3(
        &s3,
        &[
            "restore",
            "s3://no-such-bucket/prod/latest",
            "--target",
            &target.url(),
            "--create",
        ],
        &[],
    )
    .await
    .failure();
    println!("{error}");
    assert!(
        error.contains("bucket \"no-such-bucket\" does not exist"),
        "{error}"
    );
    assert!(!database_exists(target.name()).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_multipart_upload_leaves_no_manifest_and_no_open_upload() {
    let s3 = S3Server::start();
    let source = large_source("s3_term").await;
    // Parts are held by the server, so the dump is certainly mid-upload when the signal comes.
    s3.hold_parts();
    let mut command = pgark_command(&[
        "dump",
        &source.url(),
        &s3.location("term"),
        "--s3-part-size",
        "5MiB",
    ]);
    command.envs(s3.env());
    let child = command.spawn().expect("start pgark");
    let pid = child.id().expect("pid").to_string();
    s3.part_arrived().await;
    assert_eq!(
        s3.list_multipart_uploads().await.len(),
        1,
        "an upload is open"
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(status.success());
    let output = child.wait_with_output().await.expect("wait for pgark");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    s3.release_parts();
    assert!(manifests(&s3, "term").await.is_empty());
    assert!(s3.list_multipart_uploads().await.is_empty(), "{stderr}");
    assert_eq!(
        s3.list_keys("term/").await,
        Vec::<String>::new(),
        "partial backup removed"
    );
}

/// An S3 endpoint that accepts connections and never answers (a suspended server): the dump
/// fails after its attempts, each given up after `--s3-timeout`, with an error saying the
/// endpoint did not answer, instead of waiting forever.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_s3_endpoint_fails_the_dump_instead_of_hanging() {
    let endpoint = format!("http://{}", silent_endpoint());
    let source = fixture_source("s3_stalled").await;
    let env = [
        ("AWS_ACCESS_KEY_ID", "stalled"),
        ("AWS_SECRET_ACCESS_KEY", "stalled-secret"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_CONFIG_FILE", "/nonexistent/pgark-test/config"),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/pgark-test/credentials",
        ),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_MAX_ATTEMPTS", "2"),
    ];
    let error = pgark_with_env(
        &[
            "dump",
            &source.url(),
            "s3://stalled/prod",
            "--s3-endpoint",
            &endpoint,
            "--s3-timeout",
            "1s",
        ],
        env,
    )
    .await
    .failure();
    println!("{error}");
    assert!(error.contains("did not answer"), "{error}");
    assert!(!error.contains("stalled-secret"), "{error}");
}

/// An endpoint that stops answering in the middle of a multipart upload: the dump fails with the
/// same error, and once the endpoint answers again no multipart upload is left open and no
/// manifest was written.
#[tokio::test(flavor = "multi_thread")]
async fn an_s3_endpoint_stalling_mid_upload_fails_the_dump_and_leaves_no_open_upload() {
    let s3 = S3Server::start();
    let source = large_source("s3_stall_parts").await;
    s3.hold_parts();
    let error = pgark_s3(
        &s3,
        &[
            "dump",
            &source.url(),
            &s3.location("stall"),
            "--s3-part-size",
            "5MiB",
            "--s3-timeout",
            "1s",
        ],
        &[("AWS_MAX_ATTEMPTS", "2")],
    )
    .await
    .failure();
    println!("{error}");
    assert!(error.contains("did not answer"), "{error}");
    s3.release_parts();
    assert_eq!(s3.open_uploads(), Vec::new());
    assert!(manifests(&s3, "stall").await.is_empty());
}

/// A one-table restore reads the backup's head, its catalog and one ranged read of the chunk
/// index — that table's chunk list — whether it goes into a live database (one transaction) or
/// into an empty one; `ls` reads only heads.
#[tokio::test(flavor = "multi_thread")]
async fn a_one_table_restore_reads_only_that_tables_chunk_list() {
    let s3 = S3Server::start();
    let source = server().create_database("s3_one_index").await;
    source
        .execute(
            "CREATE TABLE a (id integer PRIMARY KEY, v text);
             CREATE TABLE b (id integer PRIMARY KEY, v text);
             CREATE TABLE c (id integer PRIMARY KEY, v text);
             INSERT INTO a SELECT g, md5(g::text) FROM generate_series(1, 8000) g;
             INSERT INTO b SELECT g, md5(g::text) FROM generate_series(1, 3000) g;
             INSERT INTO c SELECT g, md5(g::text) FROM generate_series(1, 3000) g;",
        )
        .await;
    let dest = s3.location("one/index");
    pgark_s3(
        &s3,
        &["dump", &source.url(), &dest, "--chunk-size", "64KiB"],
        &[],
    )
    .await
    .success();
    let backup = format!("{dest}/latest");
    let index_reads = |since: usize| -> Vec<bool> {
        s3.gets()[since..]
            .iter()
            .filter(|(key, _)| key.ends_with("/chunks.jsonl.zst"))
            .map(|(_, ranged)| *ranged)
            .collect()
    };

    let before = s3.gets().len();
    pgark_s3(&s3, &["ls", &dest], &[]).await.success();
    let keys: Vec<String> = s3.gets()[before..].iter().map(|(k, _)| k.clone()).collect();
    assert!(
        keys.iter().all(|k| k.ends_with("/manifest.json")),
        "ls reads heads only: {keys:?}"
    );

    // Into the live source: rows of `b` put back in one transaction.
    source.execute("DELETE FROM b WHERE id <= 10").await;
    let before = s3.gets().len();
    pgark_s3(
        &s3,
        &[
            "restore",
            &backup,
            "--target",
            &source.url(),
            "--table",
            "b",
            "--conflict",
            "skip",
        ],
        &[],
    )
    .await
    .success();
    assert_eq!(index_reads(before), [true], "one ranged read of the index");
    assert_eq!(query_i64(&source, "SELECT count(*) FROM b").await, 3000);

    // Into a new database: the selection alone.
    let before = s3.gets().len();
    let restored = restore_new(&s3, &backup, &["--table", "c"]).await;
    assert_eq!(index_reads(before), [true], "one ranged read of the index");
    assert_eq!(query_i64(&restored, "SELECT count(*) FROM c").await, 3000);

    // A whole restore reads the index once, whole.
    let before = s3.gets().len();
    restore_new(&s3, &backup, &[]).await;
    assert_eq!(index_reads(before), [false], "one read of the whole index");
}

/// `verify --metadata-only` reads the head, the catalog and the chunk index and lists the
/// backup's objects — no data object is read — and still finds an object shorter than its
/// chunks; a changed byte inside a chunk is for a full `verify` to find.
#[tokio::test(flavor = "multi_thread")]
async fn verify_metadata_only_reads_no_chunk_and_finds_a_truncated_object() {
    let s3 = S3Server::start();
    let source = fixture_source("s3_metadata_only").await;
    let (backup, object) = fixture_backup(&s3, &source, "metadata_only").await;

    let before = s3.gets().len();
    let run = pgark_s3(&s3, &["verify", "--metadata-only", &backup], &[])
        .await
        .success();
    assert!(run.stdout.contains("no chunk read"), "{}", run.stdout);
    let read: Vec<String> = s3.gets()[before..].iter().map(|(k, _)| k.clone()).collect();
    assert!(
        read.iter().all(|key| !key.contains("/data/")),
        "no data object may be read: {read:?}"
    );

    let path = s3.object_path(&object);
    let size = std::fs::metadata(&path).expect("object file").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open object file")
        .set_len(size - 1)
        .expect("truncate");
    let run = pgark_s3(&s3, &["verify", "--metadata-only", &backup], &[]).await;
    assert_eq!(run.status.code(), Some(3), "{}", run.stderr);
    let key_tail = object.rsplit('/').next().expect("a name");
    assert!(run.stdout.contains(key_tail), "{}", run.stdout);
}
