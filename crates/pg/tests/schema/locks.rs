//! What a dump locks, and reading only inside a transaction.

use pgark_pg::{PgError, read_schema, relations_to_lock};

#[tokio::test]
async fn every_user_table_is_locked_and_nothing_else() {
    let db = pgark_testkit::server().create_database("locks").await;
    db.execute(
        "CREATE EXTENSION citext; CREATE SCHEMA \"S p\";\
         CREATE TABLE \"S p\".\"T\" (a int);\
         CREATE TABLE public.parted (a int) PARTITION BY LIST (a);\
         CREATE TABLE public.part1 PARTITION OF public.parted FOR VALUES IN (1);\
         CREATE UNLOGGED TABLE public.u (a int);\
         CREATE VIEW public.v AS SELECT 1 AS one; CREATE SEQUENCE public.s;",
    )
    .await;
    let client = db.client().await;
    client
        .batch_execute("CREATE TEMP TABLE temp_t (a int)")
        .await
        .expect("temp table");
    let relations = relations_to_lock(&client).await.expect("query");
    let expected: Vec<(String, String)> = [
        ("S p", "T"),
        ("public", "part1"),
        ("public", "parted"),
        ("public", "u"),
    ]
    .iter()
    .map(|(s, n)| (s.to_string(), n.to_string()))
    .collect();
    assert_eq!(relations, expected);
}

#[tokio::test]
async fn reading_the_schema_outside_a_transaction_is_refused() {
    let db = pgark_testkit::server().create_database("no_txn").await;
    let client = db.client().await;
    let err = read_schema(&client).await.expect_err("needs a transaction");
    assert!(matches!(err, PgError::Catalog { .. }), "{err}");
    assert!(err.to_string().contains("transaction"), "{err}");
}
