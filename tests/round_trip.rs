//! Dump a database with the real binary, restore it into a new one, and compare everything.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::*;
use pgark_testkit::server;

#[tokio::test(flavor = "multi_thread")]
async fn fixture_round_trips_identically() {
    let source = server().create_database("fixture").await;
    load_fixture(&source).await;
    // A small chunk size so that tables span several chunks and one row is larger than a chunk.
    let restored = dump_and_restore(
        &source,
        &["--jobs", "3", "--chunk-size", "64KiB"],
        &["--jobs", "3"],
    )
    .await;
    assert_same_contents(&source, &restored).await;
}

/// With two sessions, tables load while the rest of a long schema is still being created (each
/// once its own statements have committed), and everything comes back the same.
#[tokio::test(flavor = "multi_thread")]
async fn tables_load_while_a_long_schema_is_still_being_created() {
    let source = server().create_database("schema_overlap").await;
    source
        .execute(
            "DO $$
             BEGIN
                 FOR n IN 1..400 LOOP
                     EXECUTE format('CREATE TABLE filler_%s (id integer, label text)', n);
                     EXECUTE format('COMMENT ON TABLE filler_%s IS %L', n, 'filler ' || n);
                     EXECUTE format('INSERT INTO filler_%s SELECT g, %L FROM generate_series(1, 20) g', n, 'row of ' || n);
                 END LOOP;
             END $$;",
        )
        .await;
    let (_dest, backup) = dump_to_temp(&source, &[]).await;
    let target = server().database(&pgark_testkit::unique_name("schema_overlap_restored"));
    let run = restore(&backup, &target.url(), &["--create", "--jobs", "2", "-v"])
        .await
        .success();
    let done_early = run
        .stderr
        .lines()
        .find_map(|line| {
            let (_, rest) = line.split_once("schema created; ")?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
        .unwrap_or_else(|| panic!("no 'schema created' line in:\n{}", run.stderr));
    assert!(
        done_early > 0,
        "no table was loaded before the schema was complete:\n{}",
        run.stderr
    );
    assert_same_contents(&source, &target).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn large_objects_come_back_with_contents_owners_privileges_and_comments() {
    let source = server().create_database("large_objects").await;
    source
        .execute(
            "CREATE TABLE docs (id int PRIMARY KEY, body oid);
             -- 320,000 bytes: two pieces
             SELECT lo_from_bytea(700001, decode(repeat('0123456789abcdef', 40000), 'hex'));
             SELECT lo_create(700002);
             SELECT lo_from_bytea(700003, convert_to('it''s here', 'UTF8'));
             COMMENT ON LARGE OBJECT 700003 IS 'a greeting';
             GRANT SELECT ON LARGE OBJECT 700003 TO PUBLIC;
             INSERT INTO docs VALUES (1, 700001), (2, 700003);",
        )
        .await;
    let restored = dump_and_restore(&source, &["--jobs", "2"], &["--jobs", "2"]).await;
    assert_same_contents(&source, &restored).await;
    let described = "SELECT pg_catalog.obj_description(700003, 'pg_largeobject'), \
                     (SELECT lomacl::text FROM pg_catalog.pg_largeobject_metadata \
                      WHERE oid = 700003)";
    let read = |db: pgark_testkit::TestDb| async move {
        let row = db
            .client()
            .await
            .query_one(described, &[])
            .await
            .expect("describe");
        (row.get::<_, String>(0), row.get::<_, String>(1))
    };
    assert_eq!(read(restored).await, read(source).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn large_objects_beyond_16_mib_are_streamed_as_data_objects_and_come_back_identical() {
    let (source, owner) = large_object_source("large_objects_big").await;
    let (_dest, backup) = dump_to_temp(&source, &["--jobs", "2"]).await;

    // The contents are chunks of one data object, not manifest items.
    let manifest = read_manifest(&backup);
    let lo = &manifest["large_objects"];
    assert_eq!(lo["count"], 24, "{lo}");
    let content = lo["content_bytes"].as_i64().expect("content_bytes");
    assert!(content > BIG_LARGE_OBJECT_BYTES + (256 << 10), "{lo}");
    let chunks = lo["chunks"].as_array().expect("chunks");
    assert!(chunks.len() >= 3, "24 MiB in 8 MiB chunks: {lo}");
    assert!(
        chunks.iter().all(|c| c["object"] == "data/lo.0000.bin.zst"),
        "{lo}"
    );
    let items = manifest["schema"].as_array().expect("schema");
    assert!(
        items
            .iter()
            .filter(|i| i["section"] == "data")
            .all(|i| !i["sql"].as_str().unwrap_or("").contains("lo_put")),
        "no large-object contents in the schema"
    );
    assert!(
        manifest.to_string().len() < 1 << 20,
        "the manifest stays small"
    );

    let target = pgark_testkit::server().database(&pgark_testkit::unique_name("lo_restored"));
    let url = target.url();
    restore(&backup, &url, &["--create", "--jobs", "3"])
        .await
        .success();
    assert_same_contents(&source, &target).await;
    let owner_of = |db: pgark_testkit::TestDb| async move {
        let row = db
            .client()
            .await
            .query_one(
                "SELECT pg_get_userbyid(lomowner)::text, lomacl::text, \
                        obj_description(oid, 'pg_largeobject') \
                 FROM pg_largeobject_metadata WHERE oid = 800300",
                &[],
            )
            .await
            .expect("owned object");
        (
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2),
        )
    };
    let restored = owner_of(target).await;
    assert_eq!(restored.0, owner);
    assert_eq!(restored, owner_of(source).await);

    // show and verify count them; a test restore compares them.
    let backup_arg = path_str(&backup);
    let shown = pgark(&["show", backup_arg]).await.success().stdout;
    assert!(shown.contains("large objects  24 objects"), "{shown}");
    let verified = pgark(&["verify", backup_arg]).await.success().stdout;
    assert!(verified.contains("ok      large objects:"), "{verified}");
    let check = pgark_testkit::server().url(&pgark_testkit::unique_name("lo_verify"));
    let verified = pgark(&["verify", backup_arg, "--restore-into", &check])
        .await
        .success()
        .stdout;
    assert!(
        verified.contains("and 24 large objects match"),
        "{verified}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_large_object_chunk_fails_verify_and_restore_naming_it() {
    let (source, _owner) = large_object_source("large_objects_damaged").await;
    let (_dest, backup) = dump_to_temp(&source, &[]).await;
    let manifest = read_manifest(&backup);
    let chunk = &manifest["large_objects"]["chunks"][1];
    let object = chunk["object"].as_str().expect("object");
    let at =
        chunk["offset"].as_u64().expect("offset") + chunk["length"].as_u64().expect("length") / 2;
    let path = backup.join(object);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[usize::try_from(at).expect("fits")] ^= 1;
    std::fs::write(&path, bytes).expect("write");

    let run = pgark(&["verify", path_str(&backup)]).await;
    assert_eq!(run.status.code(), Some(3), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("DAMAGED large objects: chunk 1 of the large objects"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("data/lo.0000.bin.zst"),
        "{}",
        run.stderr
    );

    // Into an existing empty database: it is left as it was.
    let target = pgark_testkit::server()
        .create_database("lo_damaged_target")
        .await;
    let url = target.url();
    let error = restore(&backup, &url, &["--jobs", "2"]).await.failure();
    assert!(
        error.contains("chunk 1 of the large objects in data/lo.0000.bin.zst")
            && error.contains("SHA-256"),
        "{error}"
    );
    assert!(error.contains("left as it was"), "{error}");
    assert_eq!(large_object_sizes(&target).await, vec![]);
    assert_eq!(user_objects(&target).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn archive_is_readable_with_standard_tools() {
    let source = server().create_database("inspect").await;
    load_fixture(&source).await;
    let (_dest, backup) = dump_to_temp(&source, &["--chunk-size", "64KiB"]).await;

    // The manifest checksum is the SHA-256 of everything after its second line.
    let text = std::fs::read_to_string(backup.join("manifest.json")).expect("manifest");
    let mut parts = text.splitn(3, '\n');
    assert_eq!(parts.next(), Some("{"));
    let checksum_line = parts.next().expect("checksum line");
    let rest = parts.next().expect("body");
    let sha = sha256_of(rest.as_bytes());
    assert_eq!(checksum_line, format!("  \"manifest_sha256\": \"{sha}\","));

    let manifest = read_manifest(&backup);
    assert_eq!(manifest["format_version"], 2);
    assert!(
        manifest["source"]["snapshot_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    let tables = manifest["tables"].as_array().expect("tables");
    let big = tables
        .iter()
        .find(|t| t["name"] == "big_rows")
        .expect("big_rows in the manifest");
    let chunks = big["chunks"].as_array().expect("chunks");
    assert!(
        chunks.len() > 2,
        "big_rows must span several chunks: {}",
        chunks.len()
    );
    assert!(
        chunks
            .iter()
            .any(|c| c["raw_length"].as_u64().expect("raw_length") > 64 << 10),
        "the 3 MB row must sit in a chunk larger than the chunk size"
    );
    let object = backup.join(chunks[0]["object"].as_str().expect("object"));

    // Each chunk is an independent zstd frame whose SHA-256 is recorded.
    let stored = std::fs::read(&object).expect("data object");
    let first = &chunks[0];
    let offset = first["offset"].as_u64().expect("offset") as usize;
    let length = first["length"].as_u64().expect("length") as usize;
    assert_eq!(
        sha256_of(&stored[offset..offset + length]),
        first["sha256"].as_str().expect("sha256")
    );

    // `zstd -dc` of the table's objects (one per piece it was read in) prints the COPY text: as
    // many lines as the table has rows.
    let mut objects: Vec<&str> = chunks
        .iter()
        .map(|c| c["object"].as_str().expect("object"))
        .collect();
    objects.dedup();
    let output = std::process::Command::new("zstd")
        .arg("-dc")
        .args(objects.iter().map(|o| backup.join(o)))
        .output()
        .expect("zstd must be installed (apt-get install -y zstd)");
    assert!(
        output.status.success(),
        "zstd -dc failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = output.stdout.iter().filter(|&&b| b == b'\n').count() as u64;
    assert_eq!(lines, big["row_count"].as_u64().expect("row_count"));
    assert_eq!(lines, 20_000);
    assert!(output.stdout.starts_with(b"1\t0123456789abcdef"));
}

fn sha256_of(data: &[u8]) -> String {
    let output = {
        use std::io::Write;
        let mut child = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sha256sum (coreutils)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(data)
            .expect("write to sha256sum");
        child.wait_with_output().expect("sha256sum output")
    };
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_owned()
}

async fn corpus_round_trips(corpus: &str) {
    let name = pgark_testkit::unique_name(&corpus.replace('-', "_"));
    let source = server().load_corpus(corpus, &name).await;
    let restored = dump_and_restore(&source, &["--jobs", "2"], &["--jobs", "2"]).await;
    assert_same_contents(&source, &restored).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pagila_round_trips() {
    corpus_round_trips("pagila").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn chinook_round_trips() {
    corpus_round_trips("chinook").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn northwind_round_trips() {
    corpus_round_trips("northwind").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn french_towns_round_trips() {
    corpus_round_trips("french-towns").await;
}

/// While a writer keeps moving value between two tables, one transaction at a time, a dump is
/// taken; the restored copy must show the total unchanged (one snapshot for every table).
#[tokio::test(flavor = "multi_thread")]
async fn dump_is_consistent_under_concurrent_transfers() {
    const ACCOUNTS: i64 = 1000;
    const TOTAL: i64 = ACCOUNTS * 1000;
    let source = server().create_database("transfers").await;
    source
        .execute(&format!(
            "CREATE TABLE checking (id integer PRIMARY KEY, balance bigint NOT NULL);
             CREATE TABLE savings (id integer PRIMARY KEY, balance bigint NOT NULL);
             INSERT INTO checking SELECT g, 1000 FROM generate_series(1, {ACCOUNTS}) g;
             INSERT INTO savings SELECT g, 0 FROM generate_series(1, {ACCOUNTS}) g;
             -- Padding, so the dump takes a while and the two tables are read at different times.
             CREATE TABLE padding AS SELECT g, repeat(md5(g::text), 8) AS filler FROM generate_series(1, 300000) g;"
        ))
        .await;

    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let writer = {
        let stop = stop.clone();
        let committed = committed.clone();
        let client = source.client().await;
        tokio::spawn(async move {
            let mut started = Some(started_tx);
            let mut i: i64 = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = i % ACCOUNTS + 1;
                let amount = i % 7 + 1;
                client
                    .batch_execute(&format!(
                        "BEGIN;
                         UPDATE checking SET balance = balance - {amount} WHERE id = {id};
                         UPDATE savings SET balance = balance + {amount} WHERE id = {id};
                         COMMIT;"
                    ))
                    .await
                    .expect("transfer");
                i += 1;
                committed.fetch_add(1, Ordering::Relaxed);
                if i == 100
                    && let Some(tx) = started.take()
                {
                    let _ = tx.send(());
                }
            }
        })
    };
    started_rx
        .await
        .expect("the writer commits transfers before the dump starts");
    let before = committed.load(Ordering::Relaxed);

    let dest = tempfile::tempdir().expect("temp dir");
    pgark(&[
        "dump",
        &source.url(),
        path_str(dest.path()),
        "--jobs",
        "2",
        "--chunk-size",
        "64KiB",
    ])
    .await
    .success();
    let during = committed.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("writer task");
    assert!(
        during > 0,
        "the writer must have committed transfers while the dump ran"
    );

    let backup = only_backup(dest.path());
    let target = server().database(&pgark_testkit::unique_name("transfers_restored"));
    restore(&backup, &target.url(), &["--create"])
        .await
        .success();
    let row = target
        .client()
        .await
        .query_one(
            "SELECT (SELECT sum(balance) FROM checking)::int8, (SELECT sum(balance) FROM savings)::int8",
            &[],
        )
        .await
        .expect("sum balances");
    let (checking, savings): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(
        checking + savings,
        TOTAL,
        "checking {checking} + savings {savings}"
    );
    assert!(
        savings > 0,
        "the snapshot must include the transfers committed before the dump"
    );
}

/// A format 1 backup — one whole `manifest.json`, as pgark wrote before format 2 split it into a
/// head, a catalog and a chunk index — is still listed, shown, verified, read and restored.
#[tokio::test(flavor = "multi_thread")]
async fn format_1_backups_are_still_listed_verified_and_restored() {
    let source = server().create_database("format1").await;
    load_fixture(&source).await;
    let (dest, backup) = dump_to_temp(&source, &["--chunk-size", "64KiB"]).await;

    let mut whole = read_manifest(&backup);
    let object = whole.as_object_mut().expect("an object");
    for member in ["manifest_sha256", "totals", "catalog", "chunk_index"] {
        object.remove(member);
    }
    object.insert("format_version".into(), 1.into());
    for table in object["tables"].as_array_mut().expect("tables") {
        table
            .as_object_mut()
            .expect("a table")
            .remove("chunk_index");
    }
    // Format 1's file: the whole manifest, its checksum first.
    let body = serde_json::to_string_pretty(&whole).expect("JSON");
    let rest = format!("{}\n", body.strip_prefix("{\n").expect("an object"));
    let file = format!(
        "{{\n  \"manifest_sha256\": \"{}\",\n{rest}",
        sha256_of(rest.as_bytes())
    );
    std::fs::write(backup.join("manifest.json"), file).expect("write the format 1 manifest");
    for format_2_only in ["catalog.json.zst", "chunks.jsonl.zst"] {
        std::fs::remove_file(backup.join(format_2_only)).expect("remove");
    }

    let listed = pgark(&["ls", path_str(dest.path())]).await.success();
    assert!(listed.stdout.contains("complete"), "{}", listed.stdout);
    let verified = pgark(&["verify", path_str(&backup)]).await.success();
    assert!(verified.stdout.contains("is intact"), "{}", verified.stdout);
    pgark(&["show", path_str(&backup)]).await.success();
    let table = whole["tables"][0]["name"].as_str().expect("a table name");
    pgark(&["cat", path_str(&backup), table]).await.success();
    restore_into_new_and_compare(path_str(&backup), &source, "format1_restored").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_created_database_gets_the_sources_owner_locale_comment_privileges_and_settings() {
    use pgark_testkit::{profile, unique_name};
    let name = unique_name("db_properties");
    let owner = unique_name("shop_owner");
    let reader = unique_name("shop_reader");
    let postgres = server().database("postgres");
    // Created by the admin on a managed service, which then holds ADMIN on them.
    postgres
        .execute(&format!(
            "CREATE ROLE {owner} NOLOGIN; CREATE ROLE {reader} LOGIN;
             GRANT {owner} TO {admin};",
            admin = profile().user()
        ))
        .await;
    // Not the server's default locale (C).
    postgres
        .execute(&format!(
            "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' \
             LC_COLLATE 'C.utf8' LC_CTYPE 'C.utf8'"
        ))
        .await;
    postgres
        .execute(&format!(
            "ALTER DATABASE {name} OWNER TO {owner};
             ALTER DATABASE {name} CONNECTION LIMIT 7;
             REVOKE CONNECT, TEMPORARY ON DATABASE {name} FROM PUBLIC;
             GRANT CONNECT ON DATABASE {name} TO {reader};
             GRANT CREATE ON DATABASE {name} TO {reader} WITH GRANT OPTION;
             ALTER DATABASE {name} SET work_mem = '48MB';
             ALTER DATABASE {name} SET search_path = app, \"My Schema\", public;
             ALTER ROLE {reader} IN DATABASE {name} SET statement_timeout = '5s';
             COMMENT ON DATABASE {name} IS 'the shop''s database';"
        ))
        .await;
    let source = server().database(&name);
    source
        .execute(
            "CREATE TABLE sales (id int PRIMARY KEY, amount numeric); \
                  INSERT INTO sales SELECT g, g * 1.5 FROM generate_series(1, 100) g;",
        )
        .await;
    let restored = dump_and_restore(&source, &[], &[]).await;
    assert_eq!(
        database_properties(restored.name()).await,
        database_properties(&name).await,
        "the restored database has the source's properties"
    );
    assert!(
        database_properties(&name).await[2].ends_with("C.utf8"),
        "the source's locale is not the server's default"
    );
    assert_same_contents(&source, &restored).await;

    // With --no-owner --no-acl, the restoring role owns it and the defaults apply.
    let bare = dump_and_restore(&source, &[], &["--no-owner", "--no-acl"]).await;
    let properties = database_properties(bare.name()).await;
    assert_eq!(properties[0], format!("owner: {}", profile().user()));
    assert_eq!(properties[6], "acl: <default>");
    assert_eq!(properties[7..], database_properties(&name).await[7..]);
}

/// The binary COPY form of a query's rows, for comparing values bit for bit (a float's or a
/// numeric's text could hide a difference in its last bit or its display scale).
async fn binary_rows(db: &pgark_testkit::TestDb, query: &str) -> Vec<u8> {
    use futures::TryStreamExt;
    let client = db.client().await;
    let stream = client
        .copy_out(&format!("COPY ({query}) TO STDOUT (FORMAT binary)"))
        .await
        .unwrap_or_else(|e| panic!("COPY of {query} in {}: {e}", db.name()));
    let parts: Vec<bytes::Bytes> = stream.try_collect().await.expect("binary rows");
    parts.concat()
}

/// How a restore sent table `table`'s rows: the `copy=` of its "table restored" log line.
fn copy_format(stderr: &str, table: &str) -> String {
    let line = stderr
        .lines()
        .find(|line| line.contains("table restored") && line.contains(&format!("table={table} ")))
        .unwrap_or_else(|| panic!("no 'table restored' line for {table}:\n{stderr}"));
    let (_, format) = line
        .split_once("copy=")
        .unwrap_or_else(|| panic!("no copy= in {line:?}"));
    format.trim_end().to_owned()
}

/// Tables whose columns all have a binary form pgark writes are loaded with binary COPY: every
/// value, each type's edges included (the first and last dates, BC dates and leap days, NaN and
/// infinities, subnormal and negative-zero floats, numerics of every scale, escaped text),
/// comes back bit for bit, and the typmods are applied as for text. A table with another type
/// goes in text.
#[tokio::test(flavor = "multi_thread")]
async fn values_loaded_in_binary_come_back_bit_for_bit() {
    let source = server().create_database("binary_values").await;
    source
        .execute(
            r"CREATE TABLE every_type (
                 id integer PRIMARY KEY, i2 smallint, i8 bigint, f4 real, f8 double precision,
                 n numeric, n2 numeric(12,3), d date, b boolean, u uuid, t text,
                 v character varying(10), c character(5), ts timestamp, tz timestamptz,
                 tm time, ts3 timestamp(3), by bytea);
             CREATE TABLE other_types (id integer, at timestamptz, tags text[]);
             INSERT INTO other_types VALUES (1, '2024-02-29 12:00+02', '{a,b}');
             INSERT INTO every_type VALUES
               (1, -32768, -9223372036854775808, '-Infinity', '-Infinity', 'NaN', -999999999.999,
                '4714-11-24 BC', false, '00000000-0000-0000-0000-000000000000', '', '', ''),
               (2, 32767, 9223372036854775807, 'Infinity', 'Infinity', 0.000000000000000000001,
                999999999.999, '5874897-12-31', true, 'ffffffff-ffff-ffff-ffff-ffffffffffff',
                E'tab\there\nnewline \\ backslash \u00e9\u4e2d\U0001F600', 'ten chars!', 'abcde'),
               (3, 0, 0, 'NaN', 'NaN', -0.00, 0, 'infinity', NULL, NULL, E'\\N', 'x', 'a'),
               (4, NULL, NULL, '-0', '-0', 1e100, 1.5, '-infinity', NULL, NULL, NULL, NULL, NULL),
               (5, -1, -1, 1.4e-45, 4.9e-324, -123456789012345678901234567890.0000000001,
                -0.001, '0001-02-29 BC', true, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', E'\\.',
                ' ', ' '),
               (6, 1, 1, 3.4028235e38, 1.7976931348623157e308, 10000, 0.1, '2000-02-29', false,
                NULL, E'\r\b\f\v', 'trail ', 'b  '),
               (7, NULL, NULL, 1.17549435e-38, 2.2250738585072014e-308, 0.0001, 12.3456,
                '0001-01-01', NULL, NULL, 'x', NULL, NULL);
             SELECT setseed(0.25);
             INSERT INTO every_type
             SELECT g,
                    (random() * 65535 - 32768)::int::smallint,
                    ((random() - 0.5) * 9.2e18)::bigint,
                    ((random() - 0.5) * 10 ^ (random() * 70 - 35))::real,
                    ((random() - 0.5) * 10 ^ (random() * 600 - 300)::int),
                    round(((random() - 0.5) * 10 ^ (random() * 40)::int)::numeric,
                          (random() * 25)::int),
                    ((random() - 0.5) * 1e9)::numeric,
                    date '2000-01-01' + ((random() - 0.5) * 3e6)::int,
                    random() < 0.5,
                    md5(g::text)::uuid,
                    chr((random() * 1000 + 32)::int) || E'\t' || md5(g::text),
                    left(md5(g::text), (random() * 10)::int),
                    left(md5(g::text), (random() * 5)::int)
             FROM generate_series(100, 20099) g;
             UPDATE every_type SET
                 ts = timestamp '2000-01-01' + (random() - 0.5) * interval '3000000 days',
                 tz = timestamptz '2000-01-01 00:00+00' + (random() - 0.5) * interval '3000000 days',
                 tm = time '00:00' + random() * interval '24 hours',
                 ts3 = timestamp '1970-01-01' + random() * interval '100 years',
                 by = decode(md5(id::text), 'hex');
             UPDATE every_type SET
                 ts = '4714-11-24 00:00:00 BC', tz = '4714-11-24 00:00:00+00 BC', tm = '24:00:00',
                 ts3 = '294276-12-31 23:59:59.999', by = ''
               WHERE id = 1;
             UPDATE every_type SET
                 ts = '294276-12-31 23:59:59.999999', tz = 'infinity', tm = '00:00:00',
                 ts3 = '-infinity', by = '\x00ff5c0a09'
               WHERE id = 2;
             UPDATE every_type SET
                 ts = '1900-01-01 00:00:00', tz = '1900-01-01 00:00:00+00',
                 tm = '23:59:59.999999', ts3 = '0044-03-15 12:00:00.5 BC'
               WHERE id = 3;
             UPDATE every_type SET f8 = NULL, d = NULL, tz = NULL, by = NULL WHERE id % 17 = 0;
             DO $$ BEGIN
               IF current_setting('server_version_num')::int >= 140000 THEN
                 INSERT INTO every_type (id, n) VALUES (8, 'Infinity'), (9, '-Infinity');
               END IF;
             END $$;",
        )
        .await;
    // A database zone whose offsets had seconds before 1937 (Amsterdam's mean time, +00:19:32):
    // the values come back the same whatever zone the dump's session writes them in.
    source
        .execute(&format!(
            "ALTER DATABASE {} SET timezone = 'Europe/Amsterdam'",
            source.name()
        ))
        .await;
    // Small chunks: the table's rows span several, each converted on its own.
    let (_dest, backup) = dump_to_temp(&source, &["--chunk-size", "256KiB"]).await;
    let target = server().database(&pgark_testkit::unique_name("binary_values_restored"));
    let run = restore(&backup, &target.url(), &["--create", "--jobs", "2"])
        .await
        .success();
    assert_eq!(copy_format(&run.stderr, "public.every_type"), "binary");
    assert_eq!(copy_format(&run.stderr, "public.other_types"), "text");
    for query in [
        "SELECT * FROM every_type ORDER BY id",
        "SELECT * FROM other_types ORDER BY id",
    ] {
        let (expected, restored) = (
            binary_rows(&source, query).await,
            binary_rows(&target, query).await,
        );
        assert!(expected.len() > 1000 || query.contains("other_types"));
        assert!(expected == restored, "{query} differs after the restore");
    }
    assert_same_contents(&source, &target).await;

    // Told to, the restore sends text.
    let in_text = server().database(&pgark_testkit::unique_name("binary_values_in_text"));
    let run = restore(&backup, &in_text.url(), &["--create", "--text-copy"])
        .await
        .success();
    assert_eq!(copy_format(&run.stderr, "public.every_type"), "text");
    let query = "SELECT * FROM every_type ORDER BY id";
    assert!(binary_rows(&source, query).await == binary_rows(&in_text, query).await);
}

/// Chunks whose values the conversion refuses (bytea printed in the `escape` form a database may
/// choose) go in text COPYs between binary ones, in the unit's one transaction.
#[tokio::test(flavor = "multi_thread")]
async fn chunks_the_conversion_refuses_go_in_text_between_binary_ones() {
    let source = server().create_database("binary_refused").await;
    source
        .execute(&format!(
            "ALTER DATABASE {} SET bytea_output = 'escape';
             CREATE TABLE blobs (id integer PRIMARY KEY, data bytea);
             INSERT INTO blobs
             SELECT g, CASE WHEN g BETWEEN 30000 AND 30100 THEN decode(md5(g::text), 'hex') END
             FROM generate_series(1, 60000) g;",
            source.name()
        ))
        .await;
    let (_dest, backup) = dump_to_temp(&source, &["--chunk-size", "64KiB"]).await;
    let target = server().database(&pgark_testkit::unique_name("binary_refused_restored"));
    let run = restore(&backup, &target.url(), &["--create", "--jobs", "1"])
        .await
        .success();
    assert_eq!(
        copy_format(&run.stderr, "public.blobs"),
        "binary, 1 chunk in text"
    );
    let query = "SELECT * FROM blobs ORDER BY id";
    assert!(binary_rows(&source, query).await == binary_rows(&target, query).await);
}

/// A data-only restore fills tables it did not create, whose columns may have other types than
/// the backup's: their rows go in text, parsed into the target's own types.
#[tokio::test(flavor = "multi_thread")]
async fn data_only_restores_send_text_for_the_target_columns_own_types() {
    let source = server().create_database("binary_data_only").await;
    source
        .execute(
            "CREATE TABLE t (id integer, amount numeric(6,2), day date);
             INSERT INTO t VALUES (1, 1.50, '2024-02-29'), (2, NULL, '0044-03-15 BC');",
        )
        .await;
    let (_dest, backup) = dump_to_temp(&source, &[]).await;
    let target = server().create_database("binary_data_only_target").await;
    target
        .execute("CREATE TABLE t (id bigint, amount text, day text)")
        .await;
    let run = restore(&backup, &target.url(), &["--data-only"])
        .await
        .success();
    assert_eq!(copy_format(&run.stderr, "public.t"), "text");
    let rows = target
        .client()
        .await
        .query_one(
            "SELECT string_agg(format('%s|%s|%s', id, amount, day), ',' ORDER BY id) FROM t",
            &[],
        )
        .await
        .expect("reads back");
    assert_eq!(
        rows.get::<_, String>(0),
        "1|1.50|2024-02-29,2||0044-03-15 BC"
    );
}
