//! Owners, privileges and roles across a restore, and restoring one section at a time.

mod common;

use common::*;
use pgark_testkit::{TestDb, server, unique_name};

/// A database whose table belongs to `owner` and is readable by `reader` (both created here,
/// named uniquely: roles are global to the test server).
async fn owned_database(owner: &str, reader: &str) -> TestDb {
    let db = server().create_database("owned").await;
    db.execute(&format!(
        "CREATE ROLE {owner} NOLOGIN; CREATE ROLE {reader} NOLOGIN;
         CREATE SCHEMA app AUTHORIZATION {owner};
         CREATE TABLE app.t (id int PRIMARY KEY, v text);
         INSERT INTO app.t VALUES (1, 'a'), (2, 'b');
         ALTER TABLE app.t OWNER TO {owner};
         GRANT SELECT ON app.t TO {reader};
         COMMENT ON TABLE app.t IS 'owned table';
         CREATE VIEW app.v AS SELECT id FROM app.t;
         ALTER VIEW app.v OWNER TO {owner};"
    ))
    .await;
    db
}

async fn table_owner_and_acl(db: &TestDb) -> (String, String) {
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT pg_get_userbyid(relowner)::text, relacl::text FROM pg_class \
             WHERE oid = 'app.t'::regclass",
            &[],
        )
        .await
        .expect("read owner");
    (row.get(0), row.get(1))
}

#[tokio::test(flavor = "multi_thread")]
async fn owners_privileges_and_comments_come_back() {
    let owner = unique_name("pgark_owner");
    let reader = unique_name("pgark_reader");
    let source = owned_database(&owner, &reader).await;
    let restored = dump_and_restore(&source, &[], &[]).await;
    assert_eq!(
        table_owner_and_acl(&restored).await,
        table_owner_and_acl(&source).await
    );
    assert_same_contents(&source, &restored).await;
    let comment: Option<String> = restored
        .client()
        .await
        .query_one("SELECT obj_description('app.t'::regclass, 'pg_class')", &[])
        .await
        .expect("comment")
        .get(0);
    assert_eq!(comment.as_deref(), Some("owned table"));
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_into_a_target_missing_roles_stops_and_lists_them() {
    let owner = unique_name("pgark_gone_owner");
    let reader = unique_name("pgark_gone_reader");
    let source = owned_database(&owner, &reader).await;
    let (_dest, backup) = dump_to_temp(&source, &[]).await;
    // The roles disappear from the server (the target's cluster).
    source
        .execute(&format!(
            "DROP OWNED BY {owner}, {reader}; DROP ROLE {owner}; DROP ROLE {reader};"
        ))
        .await;

    let target = server().database(&unique_name("missing_roles"));
    let url = target.url();
    let error = restore(&backup, &url, &["--create"]).await.failure();
    assert!(
        error.contains(&owner) && error.contains(&reader) && error.contains("--create-roles"),
        "{error}"
    );
    assert!(!database_exists(target.name()).await, "nothing may change");

    // Without owners and privileges the roles are not needed.
    let bare = server().database(&unique_name("no_owner"));
    let bare_url = bare.url();
    restore(&backup, &bare_url, &["--create", "--no-owner", "--no-acl"])
        .await
        .success();

    // Or they are created.
    restore(&backup, &url, &["--create", "--create-roles"])
        .await
        .success();
    let (restored_owner, acl) = table_owner_and_acl(&target).await;
    assert_eq!(restored_owner, owner);
    assert!(acl.contains(&reader), "{acl}");
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_only_then_data_only_restores_everything() {
    let source = server().create_database("sections").await;
    load_fixture(&source).await;
    let (_dest, backup) = dump_to_temp(&source, &[]).await;
    let target = server().database(&unique_name("sections_target"));
    let url = target.url();
    restore(&backup, &url, &["--create", "--schema-only"])
        .await
        .success();
    let schema_only = contents(&target).await;
    assert!(schema_only.rows.values().all(|(count, _)| *count == 0));
    restore(&backup, &url, &["--data-only"]).await.success();
    assert_same_contents(&source, &target).await;
    // Loading the rows again is refused: the tables are no longer empty.
    let error = restore(&backup, &url, &["--data-only"]).await.failure();
    assert!(error.contains("has rows"), "{error}");
}

/// A table's COPY the server refuses (here a check the target added) fails the restore naming
/// the table and the reason; its COMMIT, sent with the COPY's end, rolls the table's load back,
/// and what other tables loaded is emptied again.
#[tokio::test(flavor = "multi_thread")]
async fn rows_the_target_refuses_fail_the_restore_and_nothing_stays_loaded() {
    let source = server().create_database("refused_rows").await;
    source
        .execute(
            "CREATE TABLE public.accepted (id integer PRIMARY KEY);
             INSERT INTO public.accepted SELECT g FROM generate_series(1, 1000) g;
             CREATE TABLE public.refused (id integer PRIMARY KEY);
             INSERT INTO public.refused SELECT g FROM generate_series(1, 10) g;",
        )
        .await;
    let (_dest, backup) = dump_to_temp(&source, &[]).await;
    let target = server().database(&unique_name("refused_rows_target"));
    let url = target.url();
    restore(&backup, &url, &["--create", "--schema-only"])
        .await
        .success();
    target
        .execute("ALTER TABLE public.refused ADD CONSTRAINT below_five CHECK (id < 5)")
        .await;
    let error = restore(&backup, &url, &["--data-only"]).await.failure();
    assert!(error.contains("table public.refused"), "{error}");
    assert!(error.contains("below_five"), "{error}");
    for table in ["public.accepted", "public.refused"] {
        let rows = query_i64(&target, &format!("SELECT count(*) FROM {table}")).await;
        assert_eq!(rows, 0, "{table} must be empty again");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_only_creates_large_objects_empty_and_data_only_fills_them() {
    let (source, _owner) = large_object_source("lo_sections").await;
    let (_dest, backup) = dump_to_temp(&source, &["--chunk-size", "1MiB"]).await;
    let target = server().database(&unique_name("lo_sections_target"));
    let url = target.url();
    restore(&backup, &url, &["--create", "--schema-only"])
        .await
        .success();
    let created = large_object_sizes(&target).await;
    let expected = large_object_sizes(&source).await;
    assert_eq!(created.len(), expected.len(), "every object is created");
    assert!(
        created.iter().all(|(_, size)| *size == 0),
        "created empty: {created:?}"
    );

    // A damaged chunk fails a data-only restore, and what it wrote is emptied again.
    let damaged = backup.parent().expect("parent").join("2020-01-01T000000Z");
    std::fs::create_dir_all(damaged.join("data")).expect("mkdir");
    for metadata in ["manifest.json", "catalog.json.zst", "chunks.jsonl.zst"] {
        std::fs::copy(backup.join(metadata), damaged.join(metadata)).expect("copy");
    }
    for entry in std::fs::read_dir(backup.join("data")).expect("data dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), damaged.join("data").join(entry.file_name())).expect("copy");
    }
    let manifest = read_manifest(&damaged);
    let chunks = manifest["large_objects"]["chunks"]
        .as_array()
        .expect("chunks");
    let last = &chunks[chunks.len() - 1];
    let at =
        last["offset"].as_u64().expect("offset") + last["length"].as_u64().expect("length") / 2;
    let lo_path = damaged.join("data/lo.0000.bin.zst");
    let mut bytes = std::fs::read(&lo_path).expect("read");
    bytes[usize::try_from(at).expect("fits")] ^= 1;
    std::fs::write(&lo_path, bytes).expect("write");
    let error = restore(&damaged, &url, &["--data-only", "--jobs", "1"])
        .await
        .failure();
    assert!(
        error.contains("of the large objects") && error.contains("emptied again"),
        "{error}"
    );
    assert_eq!(large_object_sizes(&target).await, created);

    restore(&backup, &url, &["--data-only"]).await.success();
    assert_same_contents(&source, &target).await;

    // Writing the contents again is refused: the objects are no longer empty.
    let error = restore(&backup, &url, &["--data-only"]).await.failure();
    assert!(
        error.contains("large object 800001 has contents"),
        "{error}"
    );
}

/// An extension's configuration tables (the test extension in `testdata/extension`): a
/// schema-only restore leaves only the extension's own rows in them; a data-only restore adds the
/// users' rows, counts only those when checking that the target is empty, and on failure removes
/// only what it loaded.
#[tokio::test(flavor = "multi_thread")]
async fn extension_configuration_rows_by_section() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    server()
        .install_extension(&root.join("testdata/extension"))
        .await;
    let source = server().create_database("ext_sections").await;
    let sql = std::fs::read_to_string(root.join("testdata/torture/extension_config.sql"))
        .expect("read the extension torture file");
    source.execute(&sql).await;
    let (_dest, backup) = dump_to_temp(&source, &[]).await;
    let target = server().database(&unique_name("ext_sections_target"));
    let url = target.url();
    restore(&backup, &url, &["--create", "--schema-only"])
        .await
        .success();
    let settings = |db: &TestDb| {
        let db = db.clone();
        async move {
            let rows = db
                .client()
                .await
                .query(
                    "SELECT name FROM \"Torture ext\".torture_settings \
                     WHERE name NOT LIKE 'tenant %' ORDER BY name",
                    &[],
                )
                .await
                .expect("read settings");
            rows.iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        settings(&target).await,
        ["mode", "retries"],
        "the extension's own"
    );

    // A row of the extension's own kind is no reason to refuse; the users' 'site' then collides
    // with it, and the failed load takes away what it loaded and nothing else.
    target
        .execute(
            "INSERT INTO \"Torture ext\".torture_settings (name, value, builtin) \
             VALUES ('site', 'in the way', true)",
        )
        .await;
    let error = restore(&backup, &url, &["--data-only"]).await.failure();
    assert!(error.contains("torture_settings"), "{error}");
    assert_eq!(settings(&target).await, ["mode", "retries", "site"]);
    let client = target.client().await;
    let jobs: i64 = client
        .query_one("SELECT count(*) FROM \"Torture ext\".torture_jobs", &[])
        .await
        .expect("count jobs")
        .get(0);
    assert_eq!(jobs, 0, "the failed load's other rows are gone too");

    target
        .execute("DELETE FROM \"Torture ext\".torture_settings WHERE name = 'site'")
        .await;
    restore(&backup, &url, &["--data-only"]).await.success();
    assert_same_contents(&source, &target).await;
    let error = restore(&backup, &url, &["--data-only"]).await.failure();
    assert!(error.contains("torture_settings has rows"), "{error}");
}
