//! Large tables are read in pieces by several sessions at once (block ranges on 14+, integer key
//! ranges, or whole). These tests make pieces small (`--chunk-size 64KiB`: a piece is 8 chunks,
//! 512 KiB) and check that the pieces return every row exactly once, whatever the method, with
//! rows at the range edges, without keys, in partitions and inheritance trees, and while other
//! sessions grow and shrink the table during the dump.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
use pgark_testkit::{TestDb, server};

/// A table of about 3 MB whose keys are negative and positive, with gaps, and whose extremes sit
/// at the edges of the key space; plus one without a key and an empty one.
const TABLES: &str = "
    CREATE TABLE keyed (id bigint PRIMARY KEY, payload text NOT NULL);
    INSERT INTO keyed SELECT g * 7 - 50000, repeat(md5(g::text), 3) FROM generate_series(1, 20000) g;
    INSERT INTO keyed VALUES (-9223372036854775808, 'smallest'), (9223372036854775807, 'largest');
    CREATE TABLE unkeyed (n int, payload text);
    INSERT INTO unkeyed SELECT g % 100, repeat(md5(g::text), 3) FROM generate_series(1, 20000) g;
    INSERT INTO unkeyed SELECT 1, 'duplicate' FROM generate_series(1, 50);
    CREATE TABLE empty_keyed (id int PRIMARY KEY);
";

fn blocks_supported() -> bool {
    server().version_num() >= 140_000
}

/// The data objects (pieces) the backup holds for `table`.
fn pieces_of(backup: &Path, table: &str) -> BTreeSet<String> {
    let manifest = read_manifest(backup);
    let tables = manifest["tables"].as_array().expect("tables");
    let entry = tables
        .iter()
        .find(|t| t["name"] == table)
        .unwrap_or_else(|| panic!("no table {table} in the manifest"));
    entry["chunks"]
        .as_array()
        .expect("chunks")
        .iter()
        .map(|c| c["object"].as_str().expect("object").to_owned())
        .collect()
}

async fn restore_new(backup: &Path) -> TestDb {
    let target = server().database(&pgark_testkit::unique_name("split_restored"));
    let url = target.url();
    restore(backup, &url, &["--create", "--jobs", "3"])
        .await
        .success();
    target
}

async fn round_trip_with(method: &str) -> (TestDb, TestDb, tempfile::TempDir, std::path::PathBuf) {
    let source = server().create_database("split").await;
    source.execute(TABLES).await;
    let (dest, backup) = dump_to_temp(
        &source,
        &["--jobs", "3", "--chunk-size", "64KiB", "--split", method],
    )
    .await;
    let restored = restore_new(&backup).await;
    assert_same_contents(&source, &restored).await;
    (source, restored, dest, backup)
}

#[tokio::test(flavor = "multi_thread")]
async fn key_ranges_return_every_row_once_including_the_extremes() {
    let (_source, restored, _dest, backup) = round_trip_with("keys").await;
    assert!(
        pieces_of(&backup, "keyed").len() > 3,
        "the keyed table should be read in several pieces: {:?}",
        pieces_of(&backup, "keyed")
    );
    // Without a key the table is read whole.
    assert_eq!(pieces_of(&backup, "unkeyed").len(), 1);
    let row = restored
        .client()
        .await
        .query_one(
            "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM keyed",
            &[],
        )
        .await
        .expect("count");
    assert_eq!(row.get::<_, i64>(0), 20002);
    assert_eq!(row.get::<_, i64>(1), 20002);
    assert_eq!(row.get::<_, i64>(2), i64::MIN);
    assert_eq!(row.get::<_, i64>(3), i64::MAX);
}

#[tokio::test(flavor = "multi_thread")]
async fn block_ranges_return_every_row_once_with_or_without_a_key() {
    if !blocks_supported() {
        // Before 14 there are no TID range scans: asking for blocks is refused, clearly.
        let source = server().create_database("split_blocks_old").await;
        source.execute(TABLES).await;
        let dest = tempfile::tempdir().expect("temp dir");
        let url = source.url();
        let error = pgark(&["dump", &url, path_str(dest.path()), "--split", "blocks"])
            .await
            .failure();
        assert!(error.contains("--split keys"), "{error}");
        return;
    }
    let (_source, _restored, _dest, backup) = round_trip_with("blocks").await;
    assert!(pieces_of(&backup, "keyed").len() > 3);
    assert!(pieces_of(&backup, "unkeyed").len() > 3);
    assert!(pieces_of(&backup, "empty_keyed").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn split_off_reads_every_table_whole() {
    let (_source, _restored, _dest, backup) = round_trip_with("off").await;
    assert_eq!(pieces_of(&backup, "keyed").len(), 1);
    assert_eq!(pieces_of(&backup, "unkeyed").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn partitions_and_inheritance_parents_are_split_without_reading_children_twice() {
    let source = server().create_database("split_trees").await;
    source
        .execute(
            "CREATE TABLE events (id bigint PRIMARY KEY, at date NOT NULL, body text)
                 PARTITION BY RANGE (id);
             CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM (0) TO (20000);
             CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM (20000) TO (40000);
             INSERT INTO events SELECT g, date '2025-01-01' + (g % 700), repeat(md5(g::text), 2)
                 FROM generate_series(1, 39999) g;
             CREATE TABLE animals (id int PRIMARY KEY, name text);
             CREATE TABLE dogs (good boolean) INHERITS (animals);
             INSERT INTO animals SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 15000) g;
             INSERT INTO dogs SELECT g, repeat(md5(g::text), 3), true FROM generate_series(20001, 35000) g;",
        )
        .await;
    let (_dest, backup) = dump_to_temp(&source, &["--jobs", "2", "--chunk-size", "64KiB"]).await;
    assert!(pieces_of(&backup, "events_2025").len() > 1);
    assert!(pieces_of(&backup, "animals").len() > 1);
    let restored = restore_new(&backup).await;
    assert_same_contents(&source, &restored).await;
    let only_parent = restored
        .client()
        .await
        .query_one("SELECT count(*) FROM ONLY animals", &[])
        .await
        .expect("count");
    assert_eq!(only_parent.get::<_, i64>(0), 15000);
}

/// Waits until a session is waiting for a lock on `table` (the dump's leader, held up after it
/// exported its snapshot). Polls the lock table: the condition, not a delay, is what it waits for.
async fn wait_for_lock_waiter(observer: &tokio_postgres::Client, table: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let row = observer
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE relation = $1::text::regclass AND NOT granted",
                &[&table],
            )
            .await
            .expect("pg_locks");
        if row.get::<_, i64>(0) > 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the dump never waited for the lock on {table}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Rows inserted and deleted after the snapshot, while the dump is held up before it sizes and
/// splits the tables, must not change what it reads: the table grows by more blocks and keys
/// than the snapshot sees, and loses rows the snapshot still sees.
#[tokio::test(flavor = "multi_thread")]
async fn tables_that_grow_and_shrink_during_the_dump_are_read_as_of_the_snapshot() {
    for method in ["keys", "blocks"] {
        if method == "blocks" && !blocks_supported() {
            continue;
        }
        let source = server().create_database("split_moving").await;
        source
            .execute(&format!(
                "{TABLES} CREATE TABLE gate (); CREATE TABLE zzz_after_gate (id int);"
            ))
            .await;
        let before = contents(&source).await;

        // Hold the dump up at its lock on `gate`, after it has exported its snapshot.
        let holder = source.client().await;
        holder
            .batch_execute("BEGIN; LOCK TABLE gate IN ACCESS EXCLUSIVE MODE")
            .await
            .expect("lock gate");
        let dest = tempfile::tempdir().expect("temp dir");
        let url = source.url();
        let dest_path = path_str(dest.path()).to_owned();
        let method_arg = method.to_owned();
        let dump = tokio::spawn(async move {
            pgark(&[
                "dump",
                &url,
                &dest_path,
                "--jobs",
                "3",
                "--chunk-size",
                "64KiB",
                "--split",
                &method_arg,
            ])
            .await
        });
        let writer = source.client().await;
        wait_for_lock_waiter(&writer, "gate").await;
        writer
            .batch_execute(
                "INSERT INTO keyed SELECT g * 7 - 49999, repeat('grown', 40) FROM generate_series(1, 30000) g;
                 INSERT INTO unkeyed SELECT -1, repeat('grown', 40) FROM generate_series(1, 30000) g;
                 DELETE FROM keyed WHERE id % 3 = 0;
                 DELETE FROM unkeyed WHERE n < 50;
                 INSERT INTO empty_keyed SELECT generate_series(1, 1000);",
            )
            .await
            .expect("change the tables");
        // Cannot remove what the dump's snapshot still sees, but may reuse the rest.
        writer
            .batch_execute("VACUUM keyed, unkeyed")
            .await
            .expect("vacuum");
        holder.batch_execute("COMMIT").await.expect("release gate");
        dump.await.expect("dump task").success();

        let backup = only_backup(dest.path());
        if method == "blocks" {
            assert!(pieces_of(&backup, "unkeyed").len() > 3);
        }
        let restored = restore_new(&backup).await;
        assert_eq!(
            contents(&restored).await,
            before,
            "--split {method}: the backup must hold the tables as of the snapshot"
        );
    }
}

/// Tables whose rows run to megabytes reserve memory before a session reads them, so fewer of
/// them are read at once than there are sessions; they must still all come back whole, next to
/// ordinary tables read meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn tables_with_rows_of_megabytes_come_back_whole() {
    let source = server().create_database("split_wide").await;
    source
        .execute(&format!(
            "{TABLES}
             DO $$ BEGIN FOR t IN 1..4 LOOP
                 EXECUTE format('CREATE TABLE wide_%s (id int PRIMARY KEY, body text)', t);
                 EXECUTE format('INSERT INTO wide_%s SELECT g, repeat(md5((g * %s)::text), 262144)
                                 FROM generate_series(1, 3) g', t, t);
             END LOOP; END $$;"
        ))
        .await;
    let restored = dump_and_restore(
        &source,
        &["--jobs", "4", "--chunk-size", "64KiB"],
        &["--jobs", "4"],
    )
    .await;
    assert_same_contents(&source, &restored).await;
}
