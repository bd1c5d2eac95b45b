//! Operating backups: ls, show, verify, cat, prune, and the dump's metrics file.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use pgark_testkit::s3::S3Server;
use pgark_testkit::{TestDb, server, unique_name};

/// Where a test keeps its backups: a local directory, or a prefix on the in-process S3 server.
/// Either way the objects are also reachable on disk (`disk`), so tests can damage them.
enum Store {
    Local(tempfile::TempDir),
    S3(S3Server),
}

const S3_PREFIX: &str = "backups";

impl Store {
    fn local() -> Store {
        Store::Local(tempfile::tempdir().expect("temp dir"))
    }

    fn s3() -> Store {
        Store::S3(S3Server::start())
    }

    /// The DEST argument.
    fn location(&self) -> String {
        match self {
            Store::Local(dir) => path_str(dir.path()).to_owned(),
            Store::S3(s3) => s3.location(S3_PREFIX),
        }
    }

    /// Where the backups are on disk.
    fn disk(&self) -> PathBuf {
        match self {
            Store::Local(dir) => dir.path().to_owned(),
            Store::S3(s3) => s3.object_path(S3_PREFIX),
        }
    }

    /// The BACKUP argument for a backup directory under `disk()`.
    fn backup(&self, backup: &Path) -> String {
        let id = backup.file_name().expect("name").to_str().expect("utf-8");
        format!("{}/{id}", self.location())
    }

    fn latest(&self) -> String {
        format!("{}/latest", self.location())
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = pgark_command(args);
        if let Store::S3(s3) = self {
            command.envs(s3.env());
        }
        command
    }

    async fn pgark(&self, args: &[&str]) -> Run {
        match self {
            Store::Local(_) => pgark(args).await,
            Store::S3(s3) => pgark_with_env(args, s3.env()).await,
        }
    }

    /// Dumps `source` into this store; returns the backup's directory on disk.
    async fn dump(&self, source: &TestDb, args: &[&str]) -> PathBuf {
        let url = source.url();
        let location = self.location();
        let mut all = vec!["dump", url.as_str(), location.as_str()];
        all.extend_from_slice(args);
        self.pgark(&all).await.success();
        only_backup(&self.disk())
    }
}

/// One test per store for each behaviour.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                super::$name(super::Store::local()).await
            })*
        }
        mod s3 {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                super::$name(super::Store::s3()).await
            })*
        }
    };
}

on_both_stores!(
    ls_shows_complete_incomplete_and_damaged_backups,
    ls_check_max_age_exits_3_when_the_newest_complete_backup_is_too_old,
    latest_is_the_newest_usable_backup_and_names_the_newer_ones_it_skipped,
    show_describes_a_backup_in_text_and_json,
    verify_passes_a_good_backup_and_names_every_kind_of_damage,
    verify_restore_into_reports_the_restore_time_and_drops_the_test_database,
    cat_prints_what_copy_csv_prints_on_the_source,
    cat_jsonl_types_values_and_where_key_reads_only_matching_chunks,
    prune_keeps_exactly_what_the_policy_says,
    dump_all_completes_the_other_databases_when_one_fails_and_reports_it,
);

/// A source with a large keyed table and the fixture's awkward tables.
async fn source(prefix: &str) -> TestDb {
    let source = server().create_database(prefix).await;
    load_fixture(&source).await;
    source
        .execute(
            "CREATE TABLE public.keyed (id bigint PRIMARY KEY, payload text);
             INSERT INTO public.keyed SELECT g, md5(g::text) FROM generate_series(1, 50000) g;",
        )
        .await;
    source
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy file");
        }
    }
}

/// Copies `backup` to a sibling backup with id `id` (its manifest still names the original id,
/// which readers do not rely on).
fn clone_backup(backup: &Path, id: &str) -> PathBuf {
    let target = backup.parent().expect("parent").join(id);
    copy_dir(backup, &target);
    target
}

/// The backups under `dest` that still have objects (a store may leave empty directories
/// behind), sorted.
fn backups_with_objects(dest: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(dest)
        .expect("read")
        .map(|e| e.expect("entry").path())
        .filter(|path| has_files(path))
        .map(|path| {
            path.file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    ids.sort();
    ids
}

fn has_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).expect("read dir").any(|entry| {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            has_files(&path)
        } else {
            true
        }
    })
}

fn run_code(run: &Run) -> Option<i32> {
    run.status.code()
}

async fn ls_shows_complete_incomplete_and_damaged_backups(store: Store) {
    let source = source("ls").await;
    let backup = store.dump(&source, &["--chunk-size", "64KiB"]).await;
    let incomplete = clone_backup(&backup, "2020-01-02T000000Z");
    std::fs::remove_file(incomplete.join("manifest.json")).expect("remove manifest");
    let damaged = clone_backup(&backup, "2020-01-03T000000Z");
    let manifest = std::fs::read_to_string(damaged.join("manifest.json")).expect("read");
    std::fs::write(
        damaged.join("manifest.json"),
        manifest.replacen("\"rows\": ", "\"rows\": 9", 1),
    )
    .expect("edit");

    let run = store.pgark(&["ls", &store.location()]).await.success();
    let line = |id: &str| {
        run.stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} listed:\n{}", run.stdout))
            .to_owned()
    };
    let id = backup.file_name().expect("name").to_str().expect("utf-8");
    assert!(line(id).ends_with("complete"), "{}", run.stdout);
    assert!(line(id).contains(source.name()));
    assert!(
        line("2020-01-02T000000Z").ends_with("incomplete"),
        "{}",
        run.stdout
    );
    assert!(
        line("2020-01-02T000000Z").contains(source.name()),
        "the start marker names the database"
    );
    assert!(
        line("2020-01-03T000000Z").ends_with("damaged"),
        "{}",
        run.stdout
    );

    let json = store
        .pgark(&["ls", &store.location(), "--json"])
        .await
        .success();
    let listed: serde_json::Value = serde_json::from_str(&json.stdout).expect("ls --json is JSON");
    let listed = listed.as_array().expect("array");
    assert_eq!(listed.len(), 3);
    let complete = listed
        .iter()
        .find(|b| b["id"] == id)
        .expect("complete backup");
    assert_eq!(complete["state"], "complete");
    assert!(complete["rows"].as_u64().expect("rows") > 50_000);
    assert!(
        complete["raw_bytes"].as_u64().expect("raw")
            > complete["stored_bytes"].as_u64().expect("stored")
    );
    assert!(
        listed.iter().any(|b| b["state"] == "damaged"
            && b["damage"].as_str().is_some_and(|d| d.contains("checksum")))
    );
}

/// With the newest backup damaged (its manifest edited) and a newer one incomplete,
/// `DEST/latest` is the newest usable backup: restore takes it and warns naming the two it
/// passed over, and `ls --check-max-age` judges by it.
async fn latest_is_the_newest_usable_backup_and_names_the_newer_ones_it_skipped(store: Store) {
    let source = source("latest_usable").await;
    let backup = store.dump(&source, &[]).await;
    let usable = backup.file_name().expect("name").to_str().expect("utf-8");
    // Newer ids than the dump's: damaged, then (newest) incomplete.
    let damaged = clone_backup(&backup, "2099-01-01T000000Z");
    let manifest = std::fs::read_to_string(damaged.join("manifest.json")).expect("read");
    std::fs::write(
        damaged.join("manifest.json"),
        manifest.replacen("\"rows\": ", "\"rows\": 9", 1),
    )
    .expect("edit");
    let incomplete = clone_backup(&backup, "2099-01-02T000000Z");
    std::fs::remove_file(incomplete.join("manifest.json")).expect("remove manifest");

    let target = server().database(&unique_name("latest_usable_target"));
    let run = store
        .pgark(&[
            "restore",
            &store.latest(),
            "--target",
            &target.url(),
            "--create",
        ])
        .await
        .success();
    for (id, why) in [
        ("2099-01-01T000000Z", "as it is damaged: manifest"),
        ("2099-01-02T000000Z", "as it is incomplete"),
    ] {
        assert!(
            run.stderr.contains(&format!(
                "{} is backup {usable}: the newer backup {id} was skipped, {why}",
                store.latest()
            )),
            "{}",
            run.stderr
        );
    }
    assert_same_contents(&source, &target).await;

    let shown = store
        .pgark(&["show", &store.latest(), "--json"])
        .await
        .success();
    let shown: serde_json::Value = serde_json::from_str(&shown.stdout).expect("JSON");
    assert_eq!(shown["id"], usable, "{shown}");
    let fresh = store
        .pgark(&["ls", &store.location(), "--check-max-age", "25h"])
        .await;
    assert_eq!(run_code(&fresh), Some(0), "{}", fresh.stderr);
}

async fn ls_check_max_age_exits_3_when_the_newest_complete_backup_is_too_old(store: Store) {
    let source = source("maxage").await;
    let backup = store.dump(&source, &[]).await;
    let fresh = store
        .pgark(&["ls", &store.location(), "--check-max-age", "25h"])
        .await;
    assert_eq!(run_code(&fresh), Some(0), "{}", fresh.stderr);

    // Only an old backup left.
    std::fs::rename(&backup, store.disk().join("2020-01-01T000000Z")).expect("age the backup");
    let stale = store
        .pgark(&["ls", &store.location(), "--check-max-age", "25h"])
        .await;
    assert_eq!(run_code(&stale), Some(3), "{}", stale.stderr);
    let error = stale.stderr.lines().last().unwrap_or_default();
    assert!(
        error.contains("2020-01-01T000000Z") && error.contains("older than"),
        "{error}"
    );

    std::fs::remove_dir_all(store.disk().join("2020-01-01T000000Z")).expect("remove it");
    let none = store
        .pgark(&["ls", &store.location(), "--check-max-age", "25h"])
        .await;
    assert_eq!(run_code(&none), Some(3));
    assert!(
        none.stderr.contains("no complete backup"),
        "{}",
        none.stderr
    );
}

async fn show_describes_a_backup_in_text_and_json(store: Store) {
    let source = source("show").await;
    let _backup = store.dump(&source, &["--chunk-size", "64KiB"]).await;
    let latest = store.latest();
    let text = store.pgark(&["show", &latest]).await.success().stdout;
    assert!(text.contains(source.name()), "{text}");
    assert!(
        text.contains("public.keyed") && text.contains("50,000"),
        "{text}"
    );
    assert!(text.contains("snapshot"), "{text}");

    let json: serde_json::Value = serde_json::from_str(
        &store
            .pgark(&["show", &latest, "--json"])
            .await
            .success()
            .stdout,
    )
    .expect("JSON");
    let keyed = json["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["name"] == "keyed")
        .expect("keyed");
    assert_eq!(keyed["rows"], 50_000);
    assert_eq!(keyed["key_column"], "id");
    assert!(keyed["chunks"].as_u64().expect("chunks") > 1);
    assert!(json["duration_seconds"].as_i64().is_some());
}

/// Flips a byte in the middle of the first chunk of `table`; returns the object name.
fn damage_chunk(backup: &Path, table: &str) -> String {
    let manifest = read_manifest(backup);
    let entry = manifest["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["name"] == table)
        .expect("table");
    let chunk = &entry["chunks"][1];
    let object = chunk["object"].as_str().expect("object").to_owned();
    let at =
        chunk["offset"].as_u64().expect("offset") + chunk["length"].as_u64().expect("length") / 2;
    let path = backup.join(&object);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[usize::try_from(at).expect("fits")] ^= 1;
    std::fs::write(&path, bytes).expect("write");
    object
}

async fn verify_passes_a_good_backup_and_names_every_kind_of_damage(store: Store) {
    let source = source("verify").await;
    let backup = store.dump(&source, &["--chunk-size", "64KiB"]).await;
    let good = store
        .pgark(&["verify", &store.backup(&backup)])
        .await
        .success();
    assert!(good.stdout.contains("is intact"), "{}", good.stdout);
    assert!(
        good.stdout.contains("ok      public.keyed"),
        "{}",
        good.stdout
    );

    let flipped = clone_backup(&backup, "2020-01-01T000000Z");
    let object = damage_chunk(&flipped, "keyed");
    let run = store.pgark(&["verify", &store.backup(&flipped)]).await;
    assert_eq!(run_code(&run), Some(3), "{}", run.stderr);
    assert!(
        run.stdout.contains("DAMAGED public.keyed") && run.stdout.contains("chunk 1"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains(&object), "{}", run.stderr);

    let truncated = clone_backup(&backup, "2020-01-02T000000Z");
    let manifest = read_manifest(&truncated);
    let object = manifest["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["name"] == "keyed")
        .expect("keyed")["chunks"][0]["object"]
        .as_str()
        .expect("object")
        .to_owned();
    let path = truncated.join(&object);
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() - 100]).expect("truncate");
    let run = store.pgark(&["verify", &store.backup(&truncated)]).await;
    assert_eq!(run_code(&run), Some(3), "{}", run.stderr);
    assert!(run.stdout.contains("bytes long"), "{}", run.stdout);

    let missing = clone_backup(&backup, "2020-01-03T000000Z");
    std::fs::remove_file(missing.join(&object)).expect("remove object");
    let run = store.pgark(&["verify", &store.backup(&missing)]).await;
    assert_eq!(run_code(&run), Some(3), "{}", run.stderr);
    assert!(
        run.stdout.contains("is missing") || run.stdout.contains("does not exist"),
        "{}",
        run.stdout
    );

    let edited = clone_backup(&backup, "2020-01-04T000000Z");
    let text = std::fs::read_to_string(edited.join("manifest.json")).expect("read");
    std::fs::write(
        edited.join("manifest.json"),
        text.replacen("\"rows\": ", "\"rows\": 9", 1),
    )
    .expect("edit");
    let run = store.pgark(&["verify", &store.backup(&edited)]).await;
    assert_eq!(run_code(&run), Some(3), "{}", run.stderr);
    assert!(run.stderr.contains("checksum"), "{}", run.stderr);
}

async fn verify_restore_into_reports_the_restore_time_and_drops_the_test_database(store: Store) {
    let source = source("verify_restore").await;
    let backup = store.dump(&source, &["--chunk-size", "64KiB"]).await;
    let target = unique_name("verify_target");
    let url = server().url(&target);
    let run = store
        .pgark(&["verify", &store.backup(&backup), "--restore-into", &url])
        .await
        .success();
    assert!(
        run.stdout.contains("tables match the backup"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("restore took"), "{}", run.stdout);
    assert!(
        !database_exists(&target).await,
        "the test database is dropped"
    );

    let damaged = clone_backup(&backup, "2020-01-01T000000Z");
    damage_chunk(&damaged, "keyed");
    let run = store
        .pgark(&["verify", &store.backup(&damaged), "--restore-into", &url])
        .await;
    assert_eq!(run_code(&run), Some(3), "{}", run.stderr);
    assert!(!database_exists(&target).await);
}

/// What the source server prints for `COPY table TO STDOUT (FORMAT csv)`.
async fn copy_csv(db: &TestDb, table: &str) -> Vec<u8> {
    use futures::StreamExt;
    let client = db.client().await;
    let stream = client
        .copy_out(&format!("COPY {table} TO STDOUT (FORMAT csv)"))
        .await
        .expect("copy");
    let mut stream = std::pin::pin!(stream);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.expect("copy data"));
    }
    out
}

async fn cat_prints_what_copy_csv_prints_on_the_source(store: Store) {
    let source = source("cat").await;
    let _backup = store.dump(&source, &["--chunk-size", "64KiB"]).await;
    let latest = store.latest();
    for (arg, sql_name) in [
        ("public.all_types", "public.all_types"),
        ("\"Odd Schema\".\"select\"", "\"Odd Schema\".\"select\""),
        ("keyed", "public.keyed"),
        ("big_rows", "public.big_rows"),
        ("no_columns", "public.no_columns"),
    ] {
        let run = store.pgark(&["cat", &latest, arg, "--format", "csv"]).await;
        assert!(run.status.success(), "{arg}: {}", run.stderr);
        let output = store
            .command(&["cat", &latest, arg, "--format", "csv"])
            .output()
            .await
            .expect("run");
        assert_eq!(
            output.stdout,
            copy_csv(&source, sql_name).await,
            "cat {arg} differs from COPY csv"
        );
    }
}

async fn cat_jsonl_types_values_and_where_key_reads_only_matching_chunks(store: Store) {
    let source = source("cat_json").await;
    let _backup = store.dump(&source, &["--chunk-size", "64KiB"]).await;
    let latest = store.latest();

    let run = store
        .pgark(&["cat", &latest, "public.all_types", "--format", "jsonl"])
        .await
        .success();
    let rows: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(rows.len(), 5);
    let second = rows.iter().find(|r| r["id"] == 2).expect("row 2");
    assert_eq!(second["b"], false);
    assert_eq!(
        second["i8"],
        serde_json::json!(9_223_372_036_854_775_807_i64)
    );
    assert_eq!(second["f8"], "Infinity");
    assert_eq!(second["jb"]["k"][0], true);
    assert_eq!(second["t"], "\\N");
    assert!(rows.iter().find(|r| r["id"] == 3).expect("row 3")["t"].is_null());

    let run = store
        .pgark(&[
            "cat",
            &latest,
            "keyed",
            "--format",
            "copy",
            "--where-key",
            "id BETWEEN 1000 AND 1100",
        ])
        .await
        .success();
    let ids: Vec<i64> = run
        .stdout
        .lines()
        .map(|l| l.split('\t').next().expect("id").parse().expect("int"))
        .collect();
    assert_eq!(ids, (1000..=1100).collect::<Vec<_>>());
    let log = run
        .stderr
        .lines()
        .find(|l| l.contains("table written"))
        .expect("summary log line");
    let field = |name: &str| -> u64 {
        let start = log.find(&format!("{name}=")).expect("field") + name.len() + 1;
        log[start..]
            .split_whitespace()
            .next()
            .expect("value")
            .parse()
            .expect("number")
    };
    assert!(field("chunks_total") > 10, "{log}");
    assert!(
        field("chunks_read") <= 2,
        "a key-limited read must fetch only matching chunks: {log}"
    );

    let error = store
        .pgark(&["cat", &latest, "keyed", "--where-key", "id = 'x'"])
        .await
        .failure();
    assert!(error.contains("--where-key"), "{error}");
    let error = store
        .pgark(&["cat", &latest, "no_such_table"])
        .await
        .failure();
    assert!(error.contains("no table no_such_table"), "{error}");
    let error = store
        .pgark(&["cat", &latest, "all_dropped", "--where-key", "id = 1"])
        .await
        .failure();
    assert!(
        error.contains("has no primary key in the backup"),
        "{error}"
    );
}

async fn prune_keeps_exactly_what_the_policy_says(store: Store) {
    let source = server().create_database("prune").await;
    source
        .execute("CREATE TABLE t (x integer); INSERT INTO t VALUES (1);")
        .await;
    let backup = store.dump(&source, &[]).await;
    let fresh = backup
        .file_name()
        .expect("name")
        .to_str()
        .expect("utf-8")
        .to_owned();
    for id in [
        "2020-01-01T000000Z",
        "2020-02-01T000000Z",
        "2020-03-01T000000Z",
    ] {
        clone_backup(&backup, id);
    }
    let stale = clone_backup(&backup, "2020-04-01T000000Z");
    std::fs::remove_file(stale.join("manifest.json")).expect("make it incomplete");
    let before = backups_with_objects(&store.disk());

    let dry = store
        .pgark(&[
            "prune",
            &store.location(),
            "--keep-days",
            "30",
            "--keep-last",
            "2",
            "--dry-run",
        ])
        .await
        .success();
    assert!(dry.stdout.contains("would delete"), "{}", dry.stdout);
    assert_eq!(
        backups_with_objects(&store.disk()),
        before,
        "--dry-run deletes nothing"
    );

    let run = store
        .pgark(&[
            "prune",
            &store.location(),
            "--keep-days",
            "30",
            "--keep-last",
            "2",
        ])
        .await
        .success();
    assert!(run.stdout.contains("deleted 3 backup(s)"), "{}", run.stdout);
    assert_eq!(
        backups_with_objects(&store.disk()),
        vec!["2020-03-01T000000Z".to_owned(), fresh],
        "{}",
        run.stdout
    );

    let error = store.pgark(&["prune", &store.location()]).await.failure();
    assert!(error.contains("--keep-days"), "{error}");
}

/// Backups taken at chosen times (`dump --now`) over two years, pruned by a
/// grandfather-father-son policy: exactly the newest backup of each recent period survives, the
/// dry run names the rules that keep each one, and calendar periods follow `--tz`.
#[tokio::test(flavor = "multi_thread")]
async fn prune_keeps_the_newest_backup_of_each_calendar_period() {
    let source = server().create_database("gfs").await;
    source
        .execute("CREATE TABLE t (x integer); INSERT INTO t VALUES (1);")
        .await;
    let dest = tempfile::tempdir().expect("temp dir");
    let url = source.url();
    let mut times: Vec<String> = [
        "2025-01-15T02:00:00Z",
        "2025-06-15T02:00:00Z",
        "2025-12-20T02:00:00Z",
        // 00:30 on New Year's Day in Berlin.
        "2025-12-31T23:30:00Z",
    ]
    .map(String::from)
    .to_vec();
    times.extend((1..=11).map(|month| format!("2026-{month:02}-10T02:00:00Z")));
    times.extend(
        [
            "2026-11-22T02:00:00Z", // a Sunday: the end of ISO week 47
            "2026-11-29T02:00:00Z", // a Sunday: the end of ISO week 48
            "2026-11-30T02:00:00Z",
            "2026-12-01T02:00:00Z",
            "2026-12-02T02:00:00Z",
            "2026-12-03T02:00:00Z",
            "2026-12-04T02:00:00Z",
            "2026-12-05T01:00:00Z",
            "2026-12-05T02:00:00Z", // the newest, on a Saturday
        ]
        .map(String::from),
    );
    for time in &times {
        pgark(&[
            "dump",
            &url,
            path_str(dest.path()),
            "--now",
            time,
            "--quiet",
        ])
        .await
        .success();
    }
    let id = |time: &str| time.replace(':', "");
    let gfs = |extra: &[&'static str]| {
        let mut args = vec![
            "prune".to_owned(),
            path_str(dest.path()).to_owned(),
            "--keep-daily".to_owned(),
            "3".to_owned(),
            "--keep-weekly".to_owned(),
            "2".to_owned(),
            "--keep-monthly".to_owned(),
            "6".to_owned(),
            "--keep-yearly".to_owned(),
            "3".to_owned(),
            "--now".to_owned(),
            "2026-12-05T12:00:00Z".to_owned(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    };
    // What a dry run reports for each backup: (kept, reason).
    let report = |stdout: &str| -> BTreeMap<String, (bool, String)> {
        stdout
            .lines()
            .filter_map(|line| {
                let (kept, rest) = if let Some(rest) = line.strip_prefix("keep") {
                    (true, rest)
                } else {
                    (false, line.strip_prefix("would delete")?)
                };
                // Backup lines only, not the closing count.
                let id = rest
                    .split_whitespace()
                    .next()
                    .filter(|id| id.ends_with('Z'))?
                    .to_owned();
                let reason = rest.rsplit_once('(')?.1.trim_end_matches(')').to_owned();
                Some((id, (kept, reason)))
            })
            .collect()
    };
    let kept = |report: &BTreeMap<String, (bool, String)>| -> Vec<String> {
        report
            .iter()
            .filter(|(_, (kept, _))| *kept)
            .map(|(id, _)| id.clone())
            .collect()
    };
    let expected_utc: Vec<String> = [
        "2025-12-31T23:30:00Z", // yearly 2025 (2024 has no backup: the third year keeps none)
        "2026-07-10T02:00:00Z", // monthly, with the five newer months
        "2026-08-10T02:00:00Z",
        "2026-09-10T02:00:00Z",
        "2026-10-10T02:00:00Z",
        "2026-11-29T02:00:00Z", // weekly 2026-W48
        "2026-11-30T02:00:00Z", // monthly 2026-11
        "2026-12-03T02:00:00Z", // daily
        "2026-12-04T02:00:00Z",
        "2026-12-05T02:00:00Z",
    ]
    .iter()
    .map(|t| id(t))
    .collect();

    let args = gfs(&["--dry-run"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let dry = pgark(&args).await.success();
    let utc = report(&dry.stdout);
    assert_eq!(utc.len(), times.len(), "{}", dry.stdout);
    assert_eq!(kept(&utc), expected_utc, "{}", dry.stdout);
    let reason = |report: &BTreeMap<String, (bool, String)>, time: &str| {
        report.get(&id(time)).cloned().unwrap_or_default()
    };
    for (time, kept, why) in [
        (
            "2026-12-05T02:00:00Z",
            true,
            "the newest complete backup, daily 2026-12-05, weekly 2026-W49, monthly 2026-12, \
             yearly 2026",
        ),
        ("2026-11-29T02:00:00Z", true, "weekly 2026-W48"),
        ("2026-11-30T02:00:00Z", true, "monthly 2026-11"),
        ("2025-12-31T23:30:00Z", true, "yearly 2025"),
        ("2026-12-05T01:00:00Z", false, "kept by no rule"),
        // Week 47 is the third newest week.
        ("2026-11-22T02:00:00Z", false, "kept by no rule"),
    ] {
        assert_eq!(reason(&utc, time), (kept, why.to_owned()), "{time}");
    }
    assert!(
        dry.stdout.contains("would delete 14 backup(s)"),
        "{}",
        dry.stdout
    );

    // In Berlin the backup of 23:30 UTC on New Year's Eve is New Year's Day's: 2025's newest
    // is then the one of 20 December.
    let args = gfs(&["--dry-run", "--tz", "Europe/Berlin"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let berlin = report(&pgark(&args).await.success().stdout);
    assert_eq!(
        reason(&berlin, "2025-12-20T02:00:00Z"),
        (true, "yearly 2025".to_owned())
    );
    assert!(!berlin[&id("2025-12-31T23:30:00Z")].0);
    let wrong_zone = pgark(&[
        "prune",
        path_str(dest.path()),
        "--keep-daily",
        "1",
        "--tz",
        "Mars/Olympus",
    ])
    .await;
    assert_eq!(wrong_zone.status.code(), Some(2), "a usage error");
    assert!(
        wrong_zone.stderr.contains("Mars/Olympus") && wrong_zone.stderr.contains("IANA"),
        "{}",
        wrong_zone.stderr
    );

    assert_eq!(
        std::fs::read_dir(dest.path()).expect("dest").count(),
        times.len(),
        "dry runs delete nothing"
    );
    let args = gfs(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = pgark(&args).await.success();
    assert!(
        run.stdout.contains("deleted 14 backup(s)"),
        "{}",
        run.stdout
    );
    assert_eq!(backups_with_objects(dest.path()), expected_utc);
}

fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name_labels, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("sample line {l:?}"));
            let name = name_labels.split('{').next().expect("name");
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "metric name {name:?}"
            );
            assert!(
                name_labels.ends_with('}') || !name_labels.contains('{'),
                "labels in {l:?}"
            );
            (
                name.to_owned(),
                value.parse().unwrap_or_else(|_| panic!("value in {l:?}")),
            )
        })
        .collect()
}

fn metric(samples: &[(String, f64)], name: &str) -> Option<f64> {
    samples.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}

#[tokio::test(flavor = "multi_thread")]
async fn dump_writes_prometheus_metrics_and_flags_a_size_jump() {
    let source = server().create_database("metrics").await;
    source.execute("CREATE TABLE t (x text); INSERT INTO t SELECT md5(g::text) FROM generate_series(1, 1000) g;").await;
    let dest = tempfile::tempdir().expect("temp dir");
    let metrics_dir = tempfile::tempdir().expect("temp dir");
    let metrics = metrics_dir.path().join("pgark.prom");
    let dump = |dest: &Path| {
        let url = source.url();
        let dest = path_str(dest).to_owned();
        let metrics = path_str(&metrics).to_owned();
        async move { pgark(&["dump", &url, &dest, "--metrics-file", &metrics]).await }
    };
    dump(dest.path()).await.success();
    let first = parse_prometheus(&std::fs::read_to_string(&metrics).expect("metrics file"));
    assert_eq!(metric(&first, "pgark_dump_success"), Some(1.0));
    assert_eq!(metric(&first, "pgark_dump_rows"), Some(1000.0));
    assert_eq!(metric(&first, "pgark_dump_tables"), Some(1.0));
    let last_success =
        metric(&first, "pgark_dump_last_success_timestamp_seconds").expect("last success");
    assert!(metric(&first, "pgark_dump_size_anomaly") == Some(0.0));

    // Make the first backup older (ids are seconds) and the data ten times larger.
    let first_backup = only_backup(dest.path());
    std::fs::rename(&first_backup, dest.path().join("2020-01-01T000000Z")).expect("rename");
    source
        .execute("INSERT INTO t SELECT md5(g::text) FROM generate_series(1, 9000) g;")
        .await;
    let run = dump(dest.path()).await.success();
    assert!(
        run.stderr.contains("WARN") && run.stderr.contains("size"),
        "a size jump is warned about:\n{}",
        run.stderr
    );
    let second = parse_prometheus(&std::fs::read_to_string(&metrics).expect("metrics file"));
    assert_eq!(metric(&second, "pgark_dump_size_anomaly"), Some(1.0));
    assert!(metric(&second, "pgark_dump_size_change_ratio").expect("ratio") > 5.0);

    // A failed dump records the failure and keeps the time of the last success.
    let unreachable = pgark(&[
        "dump",
        "postgres://nobody@127.0.0.1:1/db",
        path_str(dest.path()),
        "--metrics-file",
        path_str(&metrics),
    ])
    .await;
    unreachable.failure();
    let failed = parse_prometheus(&std::fs::read_to_string(&metrics).expect("metrics file"));
    assert_eq!(metric(&failed, "pgark_dump_success"), Some(0.0));
    assert!(
        metric(&failed, "pgark_dump_last_success_timestamp_seconds").expect("kept") >= last_success
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line_including_the_error() {
    let source = server().create_database("jsonlog").await;
    source
        .execute("CREATE TABLE t (x integer); INSERT INTO t VALUES (1);")
        .await;
    let dest = tempfile::tempdir().expect("temp dir");
    let run = pgark(&[
        "--log-format",
        "json",
        "dump",
        &source.url(),
        path_str(dest.path()),
    ])
    .await
    .success();
    let lines: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "table dumped" && l["table"] == "public.t"),
        "{}",
        run.stderr
    );

    let failed = pgark(&[
        "--log-format",
        "json",
        "restore",
        "/nonexistent/x/y",
        "--target",
        &source.url(),
    ])
    .await;
    assert_eq!(failed.status.code(), Some(1));
    let last: serde_json::Value =
        serde_json::from_str(failed.stderr.lines().last().expect("a line")).expect("JSON");
    assert_eq!(last["level"], "ERROR");
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.contains("does not exist")),
        "{last}"
    );
}

/// `dump --all` where one database cannot be dumped (a migration holds a lock on one of its
/// tables past the wait): the run fails naming it, the other databases and the globals are
/// backed up, the metrics file has a series for each, and `ls --check-max-age` on the whole
/// destination fails for that database alone.
async fn dump_all_completes_the_other_databases_when_one_fails_and_reports_it(store: Store) {
    let prefix = unique_name("instance");
    let (good, blocked) = (format!("{prefix}_good"), format!("{prefix}_blocked"));
    let postgres = server().database("postgres");
    for name in [&good, &blocked] {
        postgres
            .execute(&format!("CREATE DATABASE {name} TEMPLATE template0"))
            .await;
        server()
            .database(name)
            .execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2);")
            .await;
    }
    let holder = server().database(&blocked).client().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("hold the lock");
    let metrics = tempfile::tempdir().expect("dir");
    let metrics_file = metrics.path().join("pgark.prom");
    let location = store.location();
    let pattern = format!("{prefix}_*");
    let error = store
        .pgark(&[
            "dump",
            "--all",
            &postgres.url(),
            &location,
            "--database",
            &pattern,
            "--lock-wait-timeout",
            "1s",
            "--metrics-file",
            path_str(&metrics_file),
        ])
        .await
        .failure();
    assert!(
        error.contains(&format!("1 of 3 backups failed ({blocked})")),
        "{error}"
    );
    holder.batch_execute("ROLLBACK").await.expect("release");
    only_backup(&store.disk().join("db").join(&good));
    only_backup(&store.disk().join("globals"));
    let text = std::fs::read_to_string(&metrics_file).expect("metrics");
    for (label, value) in [(&good, 1), (&blocked, 0)] {
        assert!(
            text.contains(&format!(
                "pgark_dump_success{{database=\"{label}\"}} {value}"
            )),
            "{text}"
        );
    }
    assert!(
        text.contains("pgark_dump_success{database=\"(globals)\"} 1"),
        "{text}"
    );

    let stale = store
        .pgark(&["ls", &location, "--check-max-age", "1h"])
        .await;
    assert_eq!(run_code(&stale), Some(3), "{}", stale.stderr);
    assert!(
        stale.stderr.contains("no complete backup under") && stale.stderr.contains(&blocked),
        "{}",
        stale.stderr
    );
    assert!(
        !stale.stderr.contains(&format!("{good}:")),
        "{}",
        stale.stderr
    );

    // The next night the lock is gone: everything is fresh.
    store
        .pgark(&[
            "dump",
            "--all",
            &postgres.url(),
            &location,
            "--database",
            &pattern,
        ])
        .await
        .success();
    store
        .pgark(&["ls", &location, "--check-max-age", "1h"])
        .await
        .success();
}
