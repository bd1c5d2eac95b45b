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
    pgark(&[
        "restore",
        path_str(&backup),
        "--target",
        &target.url(),
        "--create",
        "--jobs",
        "2",
    ])
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
