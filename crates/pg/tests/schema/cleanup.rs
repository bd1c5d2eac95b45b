//! Telling an empty restore target from a used one, and undoing a restore.

use pgark_pg::{drop_statement, user_objects};

use super::fixture::rich_schema;
use super::{apply, read};

#[tokio::test]
async fn a_new_database_has_no_user_objects() {
    let db = pgark_testkit::server().create_database("empty").await;
    let client = db.client().await;
    assert_eq!(
        user_objects(&client, 10, &[]).await.expect("query"),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn user_objects_names_what_it_finds_up_to_the_limit() {
    let db = pgark_testkit::server().create_database("used").await;
    db.execute(
        "CREATE TABLE public.\"Tasks\" (id int); CREATE SCHEMA app; CREATE TYPE app.e AS ENUM ();\
         CREATE FUNCTION app.f(int, text) RETURNS int LANGUAGE sql AS 'SELECT 1';\
         CREATE EXTENSION citext; CREATE SEQUENCE app.s; CREATE TYPE app.r AS RANGE (subtype = float8);",
    )
    .await;
    let client = db.client().await;
    let found = user_objects(&client, 100, &[]).await.expect("query");
    assert_eq!(
        found,
        // Functions last (the other objects say more); a range type's constructors are part
        // of the type, not objects of their own.
        [
            "extension citext",
            "schema app",
            "sequence app.s",
            "table public.\"Tasks\"",
            "type app.e",
            "type app.r",
            "function app.f(integer, text)",
        ]
    );
    assert_eq!(user_objects(&client, 2, &[]).await.expect("query").len(), 2);
}

#[tokio::test]
async fn drop_statements_in_reverse_order_remove_everything_restored() {
    let server = pgark_testkit::server();
    let source = server.create_database("drop_source").await;
    source.execute(&rich_schema(server.version_num())).await;
    let dump = read(&source).await;
    let target = server.create_database("drop_target").await;
    apply(&target, &dump.items).await;
    let client = target.client().await;
    assert!(
        !user_objects(&client, 1, &[])
            .await
            .expect("query")
            .is_empty()
    );
    for statement in dump.items.iter().rev().filter_map(drop_statement) {
        client
            .batch_execute(&statement)
            .await
            .unwrap_or_else(|e| panic!("{statement} failed: {e:?}"));
    }
    assert_eq!(
        user_objects(&client, 10, &[]).await.expect("query"),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn user_mapping_secrets_never_reach_the_backup() {
    let db = pgark_testkit::server().create_database("secrets").await;
    db.execute(
        "CREATE FOREIGN DATA WRAPPER pgark_secret_fdw; \
         CREATE SERVER pgark_secret_server FOREIGN DATA WRAPPER pgark_secret_fdw; \
         CREATE USER MAPPING FOR PUBLIC SERVER pgark_secret_server \
           OPTIONS (user 'remote_user', password 'Sekrit-Value-1', api_key 'Sekrit-Value-2');",
    )
    .await;
    let dump = super::read(&db).await;
    let mapping = dump
        .items
        .iter()
        .find(|item| item.sql.contains("USER MAPPING"))
        .expect("the user mapping is dumped");
    assert!(mapping.sql.contains("remote_user"), "{}", mapping.sql);
    for item in &dump.items {
        assert!(
            !item.sql.contains("Sekrit"),
            "a secret reached the backup: {}",
            item.sql
        );
    }
}
