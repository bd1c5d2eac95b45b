//! What happens when things go wrong: damaged archives, killed dumps, failed restores, bad input.
//! Each failure must give one clear error line, a non-zero exit, and leave the target unchanged.

mod common;

use std::path::Path;

use common::*;
use pgark_testkit::{TestDb, server, unique_name};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A database with a few tables, one spanning many chunks at a 64 KiB chunk size.
async fn small_source(prefix: &str) -> TestDb {
    let source = server().create_database(prefix).await;
    source
        .execute(
            "CREATE SCHEMA app;
             CREATE TYPE app.state AS ENUM ('new', 'done');
             CREATE TABLE app.tasks (id integer PRIMARY KEY, title text NOT NULL, state app.state);
             INSERT INTO app.tasks SELECT g, repeat(md5(g::text), 4), 'new' FROM generate_series(1, 20000) g;
             CREATE TABLE app.notes (id serial PRIMARY KEY, task_id integer REFERENCES app.tasks (id), body text);
             INSERT INTO app.notes (task_id, body) SELECT g, 'note ' || g FROM generate_series(1, 100) g;",
        )
        .await;
    source
}

/// Flips one byte in the middle of chunk `chunk` of table `table`; returns the object's name.
fn flip_byte_in_chunk(backup: &Path, table: &str, chunk: usize) -> String {
    let manifest = read_manifest(backup);
    let entry = manifest["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["name"] == table)
        .unwrap_or_else(|| panic!("{table} in the manifest"));
    let chunk = &entry["chunks"][chunk];
    let object = chunk["object"].as_str().expect("object").to_owned();
    let offset =
        chunk["offset"].as_u64().expect("offset") + chunk["length"].as_u64().expect("length") / 2;
    let path = backup.join(&object);
    let mut bytes = std::fs::read(&path).expect("read data object");
    bytes[usize::try_from(offset).expect("offset fits")] ^= 0x40;
    std::fs::write(&path, bytes).expect("write damaged object");
    object
}

#[tokio::test(flavor = "multi_thread")]
async fn flipped_byte_fails_restore_naming_object_and_chunk_and_drops_the_created_database() {
    let source = small_source("flip_create").await;
    let (_dest, backup) = dump_to_temp(&source, &["--chunk-size", "64KiB"]).await;
    let object = flip_byte_in_chunk(&backup, "tasks", 3);

    let target_name = unique_name("flip_target");
    let target = server().database(&target_name);
    let error = restore(&backup, &target.url(), &["--create"])
        .await
        .failure();
    assert!(error.contains(&object), "{error}");
    assert!(
        error.contains("chunk 3") && error.contains("app.tasks"),
        "{error}"
    );
    assert!(error.contains("SHA-256"), "{error}");
    assert!(error.contains("was dropped"), "{error}");
    assert!(
        !database_exists(&target_name).await,
        "the database the restore created must be gone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_restore_into_an_existing_empty_database_removes_everything_it_created() {
    let source = small_source("flip_existing").await;
    let (_dest, backup) = dump_to_temp(&source, &["--chunk-size", "64KiB"]).await;
    flip_byte_in_chunk(&backup, "tasks", 5);

    let target = server().create_database("flip_existing_target").await;
    let before = user_objects(&target).await;
    assert!(before.is_empty(), "{before:?}");
    let error = restore(&backup, &target.url(), &[]).await.failure();
    assert!(error.contains("left as it was"), "{error}");
    assert_eq!(
        user_objects(&target).await,
        before,
        "the target must be as it was"
    );
}

/// With two sessions a table loads while the rest of the schema is still being created; a load
/// failing then stops the schema too, and everything either created is removed.
#[tokio::test(flavor = "multi_thread")]
async fn a_load_failing_while_the_schema_is_created_leaves_the_target_as_it_was() {
    let source = server().create_database("flip_overlap").await;
    source
        .execute(
            "CREATE TABLE aaa_first (id integer, body text);
             INSERT INTO aaa_first SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 20000) g;
             DO $$
             BEGIN
                 FOR n IN 1..400 LOOP
                     EXECUTE format('CREATE TABLE filler_%s (id integer)', n);
                     EXECUTE format('COMMENT ON TABLE filler_%s IS %L', n, 'filler ' || n);
                     EXECUTE format('INSERT INTO filler_%s VALUES (%s)', n, n);
                 END LOOP;
             END $$;",
        )
        .await;
    let (_dest, backup) = dump_to_temp(&source, &["--chunk-size", "64KiB"]).await;
    flip_byte_in_chunk(&backup, "aaa_first", 2);

    let target = server().create_database("flip_overlap_target").await;
    let error = restore(&backup, &target.url(), &["--jobs", "2"])
        .await
        .failure();
    assert!(
        error.contains("public.aaa_first") && error.contains("chunk 2"),
        "{error}"
    );
    assert!(error.contains("left as it was"), "{error}");
    assert_eq!(
        user_objects(&target).await,
        Vec::<String>::new(),
        "the target must be as it was"
    );
}

/// Units next in line read their first chunk before a session starts them; a damaged chunk read
/// that way fails the restore as any other, naming its table.
#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_chunk_read_ahead_fails_the_restore_naming_its_table() {
    let source = server().create_database("flip_ahead").await;
    source
        .execute(
            "DO $$
             BEGIN
                 FOR n IN 1..60 LOOP
                     EXECUTE format('CREATE TABLE small_%s (id integer, label text)', n);
                     EXECUTE format('INSERT INTO small_%s SELECT g, md5(g::text) FROM generate_series(1, 50) g', n);
                 END LOOP;
             END $$;",
        )
        .await;
    let (_dest, backup) = dump_to_temp(&source, &[]).await;
    let object = flip_byte_in_chunk(&backup, "small_37", 0);

    let target = server().create_database("flip_ahead_target").await;
    let error = restore(&backup, &target.url(), &["--jobs", "2"])
        .await
        .failure();
    assert!(
        error.contains("public.small_37") && error.contains(&object),
        "{error}"
    );
    assert!(error.contains("SHA-256"), "{error}");
    assert_eq!(
        user_objects(&target).await,
        Vec::<String>::new(),
        "the target must be as it was"
    );
}

/// Schema statements go to the server many at a time without waiting for each answer; when one
/// fails, the statements after it fail too (the transaction is aborted). The error must name the
/// one that failed, and the target be left as it was.
#[tokio::test(flavor = "multi_thread")]
async fn a_schema_statement_failing_among_many_sent_at_once_is_the_one_named() {
    let source = server().create_database("pipelined_source").await;
    source
        .execute(
            "DO $$ BEGIN FOR i IN 1..150 LOOP
                 EXECUTE format('CREATE COLLATION public.c%s (locale = ''C'')', lpad(i::text, 3, '0'));
             END LOOP; END $$;
             CREATE TABLE public.t (id integer PRIMARY KEY);
             INSERT INTO public.t VALUES (1);",
        )
        .await;
    let (_dest, backup) = dump_to_temp(&source, &[]).await;

    // A collation is not among what makes a target non-empty, so the restore goes ahead and
    // meets it a hundred statements in.
    let target = server().create_database("pipelined_target").await;
    target
        .execute("CREATE COLLATION public.c100 (locale = 'C')")
        .await;
    let error = restore(&backup, &target.url(), &[]).await.failure();
    assert!(error.contains("collation public.c100"), "{error}");
    assert!(error.contains("already exists"), "{error}");
    assert!(!error.contains("current transaction is aborted"), "{error}");
    assert!(error.contains("the target was not changed"), "{error}");
    let collations = "SELECT count(*) FROM pg_catalog.pg_collation \
                      WHERE collnamespace = 'public'::pg_catalog.regnamespace";
    assert_eq!(
        query_i64(&target, collations).await,
        1,
        "only the target's own"
    );
    assert!(user_objects(&target).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_dump_leaves_no_manifest_and_restore_says_incomplete() {
    let source = server().create_database("killed").await;
    source
        .execute(
            "CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 4) AS filler FROM generate_series(1, 600000) g;",
        )
        .await;
    let dest = tempfile::tempdir().expect("temp dir");
    let mut command = pgark_command(&[
        "dump",
        &source.url(),
        path_str(dest.path()),
        "--jobs",
        "1",
        "--chunk-size",
        "64KiB",
    ]);
    command.env("PGARK_LOG", "pgark_engine=debug");
    let mut child = command.spawn().expect("start pgark");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    // Kill it as soon as it has stored its first chunk: part-way, by construction.
    loop {
        let line = lines
            .next_line()
            .await
            .expect("read stderr")
            .unwrap_or_else(|| panic!("pgark ended before storing a chunk"));
        if line.contains("chunk stored") {
            break;
        }
    }
    child.start_kill().expect("kill pgark");
    let status = child.wait().await.expect("wait for pgark");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(9),
        "pgark must have been killed, not finished: {status}"
    );

    let backup = only_backup(dest.path());
    assert!(
        !backup.join("manifest.json").exists(),
        "a killed dump must not leave a manifest"
    );
    let target = server().create_database("killed_target").await;
    let error = restore(&backup, &target.url(), &[]).await.failure();
    assert!(error.contains("incomplete"), "{error}");
    assert!(user_objects(&target).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_server_is_one_clear_error_and_writes_nothing() {
    let dest = tempfile::tempdir().expect("temp dir");
    let out = dest.path().join("backups");
    let error = pgark(&["dump", "postgres://nobody@127.0.0.1:1/db", path_str(&out)])
        .await
        .failure();
    assert!(error.contains("127.0.0.1:1"), "{error}");
    assert!(error.to_lowercase().contains("connect"), "{error}");
    assert!(!out.exists(), "nothing may be written");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_is_one_clear_error_without_the_password() {
    let db = server().create_database("password").await;
    db.execute(
        "DO $$ BEGIN
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgark_pw_tester') THEN
             CREATE ROLE pgark_pw_tester LOGIN PASSWORD 'right-secret' IN ROLE pgark_password_users;
           END IF;
         END $$;",
    )
    .await;
    let socket = server()
        .socket_dir()
        .to_str()
        .expect("utf-8 socket dir")
        .to_owned();
    let url = format!(
        "host={socket} port={} user=pgark_pw_tester password=Wr0ngSecretValue dbname={}",
        server().port(),
        db.name()
    );
    let dest = tempfile::tempdir().expect("temp dir");
    let out = dest.path().join("backups");
    let run = pgark(&["dump", &url, path_str(&out)]).await;
    assert!(!run.stdout.contains("Wr0ngSecretValue") && !run.stderr.contains("Wr0ngSecretValue"));
    let error = run.failure();
    assert!(error.contains("password authentication failed"), "{error}");
    assert!(error.contains("pgark_pw_tester"), "{error}");
    assert!(!out.exists(), "nothing may be written");
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_into_a_non_empty_database_is_refused_and_changes_nothing() {
    let source = small_source("nonempty_source").await;
    let (_dest, backup) = dump_to_temp(&source, &["--chunk-size", "64KiB"]).await;
    let target = server().create_database("nonempty_target").await;
    target
        .execute("CREATE TABLE keep_me (x integer); INSERT INTO keep_me VALUES (42);")
        .await;
    let before = user_objects(&target).await;

    let error = restore(&backup, &target.url(), &[]).await.failure();
    assert!(
        error.contains("not empty") && error.contains("keep_me"),
        "{error}"
    );
    assert!(
        error.contains("--create"),
        "the error must say the way forward: {error}"
    );
    assert_eq!(user_objects(&target).await, before);
    let kept: i32 = target
        .client()
        .await
        .query_one("SELECT x FROM keep_me", &[])
        .await
        .expect("select")
        .get(0);
    assert_eq!(kept, 42);
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_of_a_missing_backup_directory_is_one_clear_error() {
    let dest = tempfile::tempdir().expect("temp dir");
    let target = server().create_database("missing_backup_target").await;
    let missing = dest.path().join("nowhere/2026-01-01T000000Z");
    let error = restore(&missing, &target.url(), &[]).await.failure();
    assert!(error.contains("does not exist"), "{error}");
    assert!(error.contains("nowhere"), "{error}");

    let missing_id = dest.path().join("2026-01-01T000000Z");
    let error = restore(&missing_id, &target.url(), &[]).await.failure();
    assert!(error.contains("does not exist"), "{error}");
    assert!(user_objects(&target).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_with_create_refuses_an_existing_database() {
    let source = small_source("exists_source").await;
    let (_dest, backup) = dump_to_temp(&source, &["--chunk-size", "64KiB"]).await;
    let target = server().create_database("exists_target").await;
    let error = restore(&backup, &target.url(), &["--create"])
        .await
        .failure();
    assert!(error.contains("already exists"), "{error}");
    assert!(
        database_exists(target.name()).await,
        "an existing database must never be dropped"
    );
}

/// Backups started in the same second as others get distinct ids: with every second of the next
/// half minute already taken (start markers of other dumps), the dump takes `<second>-01`, and it
/// is the destination's latest complete backup.
#[tokio::test(flavor = "multi_thread")]
async fn dumps_in_the_same_second_get_distinct_ids() {
    let source = small_source("same_second").await;
    let dest = tempfile::tempdir().expect("temp dir");
    let now = pgark_archive::Timestamp::now();
    for later in 0..30 {
        let id = pgark_archive::layout::backup_id(pgark_archive::Timestamp::from_unix(
            now.unix() + later,
        ));
        let dir = dest.path().join(&id);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("started.json"), b"{}").expect("marker");
    }
    let run = pgark(&["dump", &source.url(), path_str(dest.path())])
        .await
        .success();
    let ids: Vec<String> = std::fs::read_dir(dest.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| dest.path().join(name).join("manifest.json").exists())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(ids[0].ends_with("-01"), "{ids:?}: {}", run.stdout);
    assert!(run.stdout.contains(&ids[0]), "{}", run.stdout);

    let latest = format!("{}/latest", path_str(dest.path()));
    restore_into_new_and_compare(&latest, &source, "same_second_target").await;
}

/// The corpus of damaged archives in testdata/damaged: each gives exactly its documented exit
/// code and error line, and nothing panics.
#[tokio::test(flavor = "multi_thread")]
async fn every_damaged_archive_gives_its_documented_error() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/damaged");
    let mut cases: Vec<_> = std::fs::read_dir(&corpus)
        .expect("list testdata/damaged")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.join("expected.txt").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 13, "the corpus is missing: {cases:?}");
    for case in cases {
        let backup = case.join("2026-12-04T183330Z");
        let expected = std::fs::read_to_string(case.join("expected.txt"))
            .expect("read expected.txt")
            .replace("{backup}", path_str(&backup))
            .replace("{version}", env!("CARGO_PKG_VERSION"));
        let (code, line) = expected.split_once('\n').expect("two lines");
        let run = pgark(&["verify", path_str(&backup)]).await;
        assert_eq!(
            format!("exit {}", run.status.code().unwrap_or(-1)),
            code,
            "{}: {}",
            case.display(),
            run.stderr
        );
        let error = run
            .stderr
            .lines()
            .find(|l| l.starts_with("pgark: error:"))
            .unwrap_or_else(|| panic!("{}: no error line in {}", case.display(), run.stderr));
        assert_eq!(error, line.trim_end(), "{}", case.display());
    }
}

/// A server that accepts the connection and never answers the startup (a stopped process, a
/// stuck proxy) ends the attempt after connect_timeout, with one clear error; nothing is written.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_answers_the_startup_times_out() {
    let address = silent_endpoint();
    let dest = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "postgres://app@{}:{}/prod?connect_timeout=2&sslmode=disable",
        address.ip(),
        address.port()
    );
    let run = pgark(&["dump", &url, path_str(dest.path())]).await;
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let error = run.failure();
    assert!(
        error.contains("timed out after 2 s (connect_timeout)"),
        "{error}"
    );
    assert!(files_under(dest.path()).is_empty());
}

/// Format 2's metadata beside the head is checked too: a missing chunk index makes the backup
/// damaged in `ls` (and `latest` passes it over); a changed byte in the catalog or the chunk
/// index fails `verify` (exit 3) and a restore, naming the object, before anything is written.
#[tokio::test(flavor = "multi_thread")]
async fn damaged_catalog_or_chunk_index_is_found_before_any_row_is_restored() {
    let source = small_source("damaged_metadata").await;
    let (dest, backup) = dump_to_temp(&source, &["--chunk-size", "64KiB"]).await;
    let copy = |id: &str| {
        let copied = dest.path().join(id);
        std::fs::create_dir_all(copied.join("data")).expect("mkdir");
        for entry in files_under(&backup) {
            let relative = entry.strip_prefix(&backup).expect("below the backup");
            std::fs::copy(&entry, copied.join(relative)).expect("copy");
        }
        copied
    };
    let flip_middle = |path: &Path| {
        let mut bytes = std::fs::read(path).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x20;
        std::fs::write(path, bytes).expect("write");
    };

    let no_index = copy("2099-01-01T000000Z");
    std::fs::remove_file(no_index.join("chunks.jsonl.zst")).expect("remove");
    let listed = pgark(&["ls", path_str(dest.path())]).await.success();
    let line = listed
        .stdout
        .lines()
        .find(|l| l.contains("2099-01-01T000000Z"))
        .unwrap_or_else(|| panic!("{}", listed.stdout));
    assert!(line.contains("damaged"), "{}", listed.stdout);

    for (object, id) in [
        ("catalog.json.zst", "2099-01-02T000000Z"),
        ("chunks.jsonl.zst", "2099-01-03T000000Z"),
    ] {
        let damaged = copy(id);
        flip_middle(&damaged.join(object));
        let run = pgark(&["verify", path_str(&damaged)]).await;
        assert_eq!(run.status.code(), Some(3), "{}", run.stderr);
        assert!(run.stderr.contains(object), "{object}: {}", run.stderr);
        let target_name = unique_name("damaged_metadata_target");
        let error = restore(
            &damaged,
            &server().database(&target_name).url(),
            &["--create"],
        )
        .await
        .failure();
        assert!(error.contains(object), "{object}: {error}");
        assert!(error.contains("checksum"), "{object}: {error}");
        assert!(
            !database_exists(&target_name).await,
            "nothing may be created"
        );
    }
}
