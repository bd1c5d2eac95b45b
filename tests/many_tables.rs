//! Tens of thousands of tables against a server with PostgreSQL's default lock settings
//! (`max_locks_per_transaction` 64 × `max_connections` 100 = 6,400 lock slots), where one
//! transaction locking or creating every table would fail with "out of shared memory".

mod common;

use common::*;
use pgark_testkit::{PgServer, ServerOptions, unique_name};

const TABLES: usize = 20_000;

/// Creates `TABLES` small tables in `db`, a thousand per transaction, every tenth with a row.
async fn create_tables(db: &pgark_testkit::TestDb) {
    for batch in 0..TABLES / 1000 {
        let mut sql = String::new();
        for n in batch * 1000..(batch + 1) * 1000 {
            sql.push_str(&format!("CREATE TABLE t{n:05} (id integer, note text);\n"));
            if n % 10 == 0 {
                sql.push_str(&format!(
                    "INSERT INTO t{n:05} VALUES ({n}, 'row of t{n:05}');\n"
                ));
            }
        }
        db.execute(&sql).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_thousand_tables_restore_into_a_default_lock_table_and_a_dump_stops_up_front() {
    // The source's lock table has room for a dump that locks them all.
    let roomy = PgServer::start(ServerOptions {
        conf: vec!["max_locks_per_transaction = 256".into()],
        ..ServerOptions::default()
    });
    // PostgreSQL's defaults.
    let stock = PgServer::start(ServerOptions {
        conf: vec![
            "max_connections = 100".into(),
            "max_locks_per_transaction = 64".into(),
        ],
        ..ServerOptions::default()
    });
    let source = roomy.create_database("many_tables").await;
    create_tables(&source).await;
    let (_dest, backup) = dump_to_temp(&source, &["--jobs", "2"]).await;

    // The schema goes in through transactions of a few hundred tables each.
    let target = stock.database(&unique_name("many_tables_restored"));
    restore(&backup, &target.url(), &["--create", "--jobs", "2"])
        .await
        .success();
    let tables = "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = 'public'";
    assert_eq!(query_i64(&target, tables).await, TABLES as i64);
    assert_eq!(query_i64(&target, "SELECT count(*) FROM t12340").await, 1);
    assert_eq!(query_i64(&target, "SELECT count(*) FROM t12341").await, 0);

    // A dump of them from the default server cannot lock them all in one transaction: it stops
    // before reading anything, naming the setting and the value that would do.
    let dest = tempfile::tempdir().expect("temp dir");
    let run = pgark(&["dump", &target.url(), path_str(dest.path())]).await;
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let error = run.failure();
    assert!(error.contains("must lock 20000 tables"), "{error}");
    assert!(
        error.contains("max_locks_per_transaction 64 × (max_connections 100"),
        "{error}"
    );
    let needed: u64 = error
        .split("set max_locks_per_transaction to at least ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the value needed: {error}"));
    assert!((201..=260).contains(&needed), "{error}");
    assert!(!error.contains("out of shared memory"), "{error}");
    assert!(
        files_under(dest.path()).is_empty(),
        "nothing may be left: {:?}",
        files_under(dest.path())
    );
}

/// Small tables are read in batches (one query of COPYs each) into shared data objects, each
/// table's rows in chunks of its own; everything that reads a table back — a whole restore,
/// verify, `cat`, a surgical restore of some rows — gets that table's rows and no other's.
#[tokio::test(flavor = "multi_thread")]
async fn small_tables_share_data_objects_and_read_back_table_by_table() {
    let source = pgark_testkit::server()
        .create_database("shared_objects")
        .await;
    let mut sql = String::from(
        "CREATE TABLE big (id int PRIMARY KEY, body text);
         INSERT INTO big SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 20000) g;
         CREATE TABLE medium (id int PRIMARY KEY, body text);
         INSERT INTO medium SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 2500) g;
         CREATE TABLE empty_one (id int PRIMARY KEY);
         CREATE TABLE \"Odd \"\"name\"\"\" (k text PRIMARY KEY, v jsonb);
         INSERT INTO \"Odd \"\"name\"\"\" VALUES (E'tab\\there', '{\"a\": [1, 2]}'), ('x', 'null');
         CREATE TABLE no_key (n int, note text);
         INSERT INTO no_key SELECT g % 7, 'same' FROM generate_series(1, 50) g;\n",
    );
    for n in 0..60 {
        sql.push_str(&format!(
            "CREATE TABLE small_{n} (id int PRIMARY KEY, note text);
             INSERT INTO small_{n} SELECT g, 'table {n} row ' || g FROM generate_series(1, {n} * 5) g;\n"
        ));
    }
    source.execute(&sql).await;
    let original = contents(&source).await;
    let (_dest, backup) = dump_to_temp(&source, &["--jobs", "2", "--chunk-size", "64KiB"]).await;

    // Which tables' chunks each object holds.
    let manifest = read_manifest(&backup);
    let mut holders: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for table in manifest["tables"].as_array().expect("tables") {
        let name = table["name"].as_str().expect("name").to_owned();
        for chunk in table["chunks"].as_array().expect("chunks") {
            let object = chunk["object"].as_str().expect("object").to_owned();
            holders.entry(object).or_default().insert(name.clone());
        }
    }
    let of_big: Vec<_> = holders.iter().filter(|(_, t)| t.contains("big")).collect();
    assert!(
        !of_big.is_empty() && of_big.iter().all(|(_, t)| t.len() == 1),
        "the large table's pieces are objects of its own: {of_big:?}"
    );
    let small_objects = holders.values().filter(|t| !t.contains("big")).count();
    let shared = holders.values().filter(|t| t.len() > 1).count();
    assert!(
        shared >= 2 && small_objects <= 5,
        "64 small tables in a few shared objects: {holders:?}"
    );
    let medium = manifest["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "medium"))
        .expect("medium");
    let medium_chunks = medium["chunks"].as_array().expect("chunks");
    assert!(
        medium_chunks.len() > 1
            && holders[medium_chunks[0]["object"].as_str().expect("object")].len() > 1,
        "a small table of several chunks inside a shared object: {medium}"
    );

    // verify checks every chunk and that every shared object ends where its last chunk does.
    pgark(&["verify", path_str(&backup)]).await.success();

    // `cat` of one table of a shared object prints its rows alone.
    let run = pgark(&["cat", path_str(&backup), "public.small_7"])
        .await
        .success();
    let expected: String = (1..=35).map(|g| format!("{g},table 7 row {g}\n")).collect();
    assert_eq!(run.stdout, expected);

    // A whole restore.
    restore_into_new_and_compare(path_str(&backup), &source, "shared_restored").await;

    // Some rows of a table in the middle of a shared object, and a whole small table, put back
    // into the source.
    source
        .execute("DELETE FROM medium WHERE id BETWEEN 1000 AND 1010; DELETE FROM small_30")
        .await;
    let url = source.url();
    for selection in [
        &[
            "--table",
            "public.medium",
            "--where",
            "id BETWEEN 1000 AND 1010",
        ][..],
        &["--table", "public.small_30"],
    ] {
        let mut args = vec!["restore", path_str(&backup), "--target", &url];
        args.extend_from_slice(selection);
        pgark(&args).await.success();
    }
    assert!(
        contents(&source).await == original,
        "the rows are back, nothing else changed"
    );
}
