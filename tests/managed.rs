//! Dumping and restoring as the admin role of a managed service (RDS, Cloud SQL, Azure), which
//! is no superuser — whatever the test profile (`PGARK_TEST_PROFILE=managed` runs the other
//! suites as that role too): what the role cannot do is found before anything is written and
//! named, with the way forward; what it can do, it does.

mod common;

use common::*;
use pgark_testkit::{TestDb, profile, server, unique_name};

/// A new database owned by the managed admin, reached as the admin.
async fn admin_database(prefix: &str) -> TestDb {
    let db = server().create_database(prefix).await;
    let admin = profile().managed_admin();
    db.as_superuser()
        .execute(&format!("ALTER DATABASE {} OWNER TO {admin}", db.name()))
        .await;
    db.as_role(admin)
}

/// A shop whose orders table has an audit trigger and a foreign key, owned by the admin.
async fn audited_shop(db: &TestDb) {
    db.execute(
        "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
         CREATE TABLE orders (id int PRIMARY KEY, customer int REFERENCES customers, total int);
         CREATE TABLE audit (at_order int, op text);
         CREATE FUNCTION audit_order() RETURNS trigger LANGUAGE plpgsql AS
           $$BEGIN INSERT INTO audit VALUES (NEW.id, TG_OP); RETURN NEW; END$$;
         CREATE TRIGGER audited AFTER INSERT OR UPDATE ON orders
           FOR EACH ROW EXECUTE FUNCTION audit_order();
         INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 10) g;
         INSERT INTO orders SELECT g, 1 + g % 10, g * 3 FROM generate_series(1, 200) g;
         TRUNCATE audit;",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_that_cannot_read_every_table_is_stopped_up_front_naming_them() {
    let source = server().create_database("managed_unreadable").await;
    let role = unique_name("dumper");
    source
        .execute(&format!(
            "CREATE ROLE {role} LOGIN;
             CREATE TABLE open_rows (id int PRIMARY KEY, v text);
             INSERT INTO open_rows SELECT g, 'v' || g FROM generate_series(1, 100) g;
             CREATE TABLE closed_rows (id int PRIMARY KEY);
             INSERT INTO closed_rows VALUES (1);
             CREATE SEQUENCE closed_seq;
             CREATE TABLE tenant_rows (tenant text, v int);
             INSERT INTO tenant_rows VALUES ('{role}', 1), ('other', 2);
             ALTER TABLE tenant_rows ENABLE ROW LEVEL SECURITY;
             CREATE POLICY own ON tenant_rows USING (tenant = current_user);
             GRANT USAGE ON SCHEMA public TO {role};
             GRANT SELECT ON open_rows, tenant_rows TO {role};"
        ))
        .await;
    let as_role = source.as_role(&role).url();
    let dest = tempfile::tempdir().expect("dir");
    let error = pgark(&["dump", &as_role, path_str(dest.path())])
        .await
        .failure();
    for expected in [
        "nothing was written",
        &format!("role {role} has no SELECT on public.closed_rows, public.closed_seq"),
        &format!("GRANT SELECT ON public.closed_rows, public.closed_seq TO {role}"),
        &format!("row-level security would hide rows of public.tenant_rows from role {role}"),
        &format!("ALTER ROLE {role} BYPASSRLS"),
    ] {
        assert!(error.contains(expected), "{expected:?} in {error}");
    }
    assert!(files_under(dest.path()).is_empty(), "nothing written");

    // Granted what the message says, the role dumps every row.
    source
        .execute(&format!(
            "GRANT SELECT ON public.closed_rows, public.closed_seq TO {role};"
        ))
        .await;
    // Only a superuser (the provider) gives BYPASSRLS.
    source
        .as_superuser()
        .execute(&format!("ALTER ROLE {role} BYPASSRLS"))
        .await;
    pgark(&["dump", &as_role, path_str(dest.path())])
        .await
        .success();
    let backup = only_backup(dest.path());
    restore_into_new_and_compare(path_str(&backup), &source, "managed_restored").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn disable_triggers_without_replica_role_uses_alter_table_inside_the_transaction() {
    let db = admin_database("managed_triggers").await;
    audited_shop(&db).await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    db.execute("DELETE FROM orders WHERE id BETWEEN 11 AND 20")
        .await;
    let url = db.url();
    let run = restore(
        &backup,
        &url,
        &[
            "--table",
            "public.orders",
            "--where",
            "id BETWEEN 11 AND 20",
            "--disable-triggers",
        ],
    )
    .await
    .success();
    assert!(
        run.stdout
            .contains("triggers were switched off with ALTER TABLE")
            && run.stdout.contains("public.orders"),
        "the report says how triggers were switched off:\n{}",
        run.stdout
    );
    assert_eq!(query_i64(&db, "SELECT count(*) FROM orders").await, 200);
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM audit").await,
        0,
        "the trigger did not fire"
    );
    // And it is on again: a new order is audited.
    db.execute("INSERT INTO orders VALUES (1000, 1, 1)").await;
    assert_eq!(query_i64(&db, "SELECT count(*) FROM audit").await, 1);

    // A table the admin does not own: refused before anything is written, naming it.
    let other = unique_name("app_owner");
    db.as_superuser()
        .execute(&format!(
            "CREATE ROLE {other} NOLOGIN; ALTER TABLE orders OWNER TO {other};
             GRANT ALL ON orders TO {admin};",
            admin = profile().managed_admin()
        ))
        .await;
    db.execute("DELETE FROM orders WHERE id = 5").await;
    let error = restore(
        &backup,
        &url,
        &[
            "--table",
            "public.orders",
            "--where",
            "id = 5",
            "--disable-triggers",
        ],
    )
    .await
    .failure();
    assert!(
        error.contains("triggers cannot be switched off")
            && error.contains("does not own public.orders")
            && error.contains("nothing was changed")
            && error.contains("GRANT SET ON PARAMETER session_replication_role"),
        "{error}"
    );
    assert_eq!(query_i64(&db, "SELECT count(*) FROM orders").await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_only_restore_without_replica_role_refuses_tables_with_triggers_or_foreign_keys() {
    let source = admin_database("managed_data_only").await;
    audited_shop(&source).await;
    source
        .execute(
            "CREATE TABLE plain (id int PRIMARY KEY, v text);
             INSERT INTO plain SELECT g, 'v' || g FROM generate_series(1, 50) g;",
        )
        .await;
    let (_dest, backup) = dump_to_temp(&source, &[]).await;

    let target = admin_database("managed_data_only_target").await;
    restore(&backup, &target.url(), &["--schema-only"])
        .await
        .success();
    let error = restore(&backup, &target.url(), &["--data-only"])
        .await
        .failure();
    for expected in [
        "a data-only restore loads tables in parallel with their triggers and foreign keys \
         switched off",
        "triggers audited on public.orders",
        "foreign keys of public.customers, public.orders",
        "nothing was changed",
        "pgark restore --table",
    ] {
        assert!(error.contains(expected), "{expected:?} in {error}");
    }
    assert_eq!(
        query_i64(&target, "SELECT count(*) FROM orders").await
            + query_i64(&target, "SELECT count(*) FROM plain").await,
        0,
        "nothing loaded"
    );

    // A table with neither loads as the admin.
    restore(
        &backup,
        &target.url(),
        &["--data-only", "--table", "public.plain"],
    )
    .await
    .success();
    assert_eq!(query_i64(&target, "SELECT count(*) FROM plain").await, 50);
}

/// Writes a one-version extension named `name` (trusted or not: whether a role that is no
/// superuser may create it) into a fresh directory and installs it into the test server; returns
/// the installed control file.
async fn install_test_extension(name: &str, trusted: bool) -> std::path::PathBuf {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join(format!("{name}.control")),
        format!(
            "comment = 'pgark managed-service test extension'\n\
             default_version = '1.0'\nrelocatable = true\ntrusted = {trusted}\n"
        ),
    )
    .expect("control file");
    std::fs::write(
        dir.path().join(format!("{name}--1.0.sql")),
        format!("CREATE FUNCTION {name}_answer() RETURNS int LANGUAGE sql AS 'SELECT 42';\n"),
    )
    .expect("script");
    server().install_extension(dir.path()).await;
    let sharedir = server()
        .database("postgres")
        .as_superuser()
        .client()
        .await
        .query_one(
            "SELECT setting FROM pg_catalog.pg_config WHERE name = 'SHAREDIR'",
            &[],
        )
        .await
        .expect("SHAREDIR")
        .get::<_, String>(0);
    std::path::Path::new(&sharedir)
        .join("extension")
        .join(format!("{name}.control"))
}

#[tokio::test(flavor = "multi_thread")]
async fn extensions_the_target_lacks_or_refuses_stop_the_restore_before_anything_is_written() {
    let gone = unique_name("pgark_gone");
    let untrusted = unique_name("pgark_untrusted");
    let gone_control = install_test_extension(&gone, true).await;
    install_test_extension(&untrusted, false).await;
    let source = admin_database("managed_extensions").await;
    // The provider creates the untrusted one, as a managed service does on request.
    source
        .as_superuser()
        .execute(&format!(
            "CREATE EXTENSION {untrusted}; CREATE EXTENSION {gone};"
        ))
        .await;
    source
        .execute("CREATE TABLE kept (id int PRIMARY KEY); INSERT INTO kept VALUES (1);")
        .await;
    let (_dest, backup) = dump_to_temp(&source, &[]).await;
    // The target server no longer has one of them.
    std::fs::remove_file(&gone_control).expect("remove the control file");

    let target = server().database(&unique_name("managed_ext_target"));
    let url = target.as_role(profile().managed_admin()).url();
    let restore_created = |extra: &'static [&'static str]| {
        let url = url.clone();
        let backup = backup.clone();
        async move { restore(&backup, &url, &[&["--create"][..], extra].concat()).await }
    };
    for extra in [&[][..], &["--check"][..]] {
        let error = restore_created(extra).await.failure();
        for expected in [
            "cannot succeed, so nothing was changed",
            &format!("extension {gone} is not installed on the target server"),
            &format!("extension {untrusted} cannot be created by role"),
            "--check",
        ] {
            assert!(
                error.contains(expected),
                "{expected:?} in {error} ({extra:?})"
            );
        }
        assert!(!database_exists(target.name()).await, "nothing created");
        let leftovers = query_i64(
            &server().database("postgres"),
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'pgark_check_%' \
             OR datname LIKE '%managed_ext_target%'",
        )
        .await;
        assert_eq!(leftovers, 0, "no scratch or temporary database left");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_trigger_and_a_comment_on_a_providers_extension_are_left_out_with_a_warning_each()
{
    let extension = unique_name("pgark_provided");
    install_test_extension(&extension, true).await;
    let source = admin_database("managed_event_trigger").await;
    source
        .execute(
            "CREATE TABLE notes (id int PRIMARY KEY, body text);
             INSERT INTO notes SELECT g, 'n' || g FROM generate_series(1, 30) g;
             CREATE FUNCTION log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS
               $$BEGIN RAISE NOTICE 'ddl'; END$$;",
        )
        .await;
    let trigger = unique_name("ddl_log");
    source
        .as_superuser()
        .execute(&format!(
            "CREATE EXTENSION {extension};
             COMMENT ON EXTENSION {extension} IS 'provided';
             CREATE EVENT TRIGGER {trigger} ON ddl_command_end EXECUTE FUNCTION public.log_ddl();
             COMMENT ON EVENT TRIGGER {trigger} IS 'audit';"
        ))
        .await;
    let (_dest, backup) = dump_to_temp(&source, &[]).await;

    // A new database where the provider installed the extension, as services do.
    let target = admin_database("managed_event_target").await;
    target
        .as_superuser()
        .execute(&format!("CREATE EXTENSION {extension}"))
        .await;
    let run = restore(&backup, &target.url(), &[]).await.success();
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains(" WARN "))
        .collect();
    assert_eq!(warnings.len(), 2, "one warning each:\n{}", run.stderr);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(&format!("event trigger {trigger}"))
                && w.contains("only a superuser")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(&format!("comment {extension}"))
                || w.contains(&format!("extension {extension}"))),
        "{warnings:?}"
    );
    assert_eq!(query_i64(&target, "SELECT count(*) FROM notes").await, 30);
    assert_eq!(
        query_i64(&target, "SELECT count(*) FROM pg_event_trigger").await,
        0
    );
    // --strict refuses instead.
    let strict_target = admin_database("managed_event_strict").await;
    let error = restore(&backup, &strict_target.url(), &["--strict"])
        .await
        .failure();
    assert!(
        error.contains(&format!("event trigger {trigger} needs a superuser")),
        "{error}"
    );
    assert!(
        user_objects(&strict_target).await.is_empty(),
        "nothing written"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn owners_the_role_may_not_set_are_refused_up_front_or_skipped_when_asked() {
    let source = admin_database("managed_owners").await;
    let member = unique_name("app_member");
    let stranger = unique_name("app_stranger");
    source
        .as_superuser()
        .execute(&format!(
            "CREATE ROLE {member} NOLOGIN; CREATE ROLE {stranger} NOLOGIN;
             GRANT {member} TO {admin};
             GRANT CREATE ON SCHEMA public TO {member}, {stranger};",
            admin = profile().managed_admin()
        ))
        .await;
    source
        .execute(&format!(
            "CREATE TABLE mine (id int PRIMARY KEY);
             CREATE TABLE theirs (id int PRIMARY KEY);
             INSERT INTO mine VALUES (1); INSERT INTO theirs VALUES (2);
             ALTER TABLE mine OWNER TO {member};"
        ))
        .await;
    source
        .as_superuser()
        .execute(&format!(
            "ALTER TABLE theirs OWNER TO {stranger};
             GRANT SELECT ON theirs TO {admin};",
            admin = profile().managed_admin()
        ))
        .await;
    let (_dest, backup) = dump_to_temp(&source, &[]).await;
    let owner_of = async |db: &TestDb, table: &str| -> String {
        db.client()
            .await
            .query_one(
                &format!("SELECT tableowner::text FROM pg_tables WHERE tablename = '{table}'"),
                &[],
            )
            .await
            .expect("owner")
            .get(0)
    };
    let admin = profile().managed_admin();
    let fresh = || server().database(&unique_name("managed_owner_target"));

    let target = fresh();
    let url = target.as_role(admin).url();
    let error = restore(&backup, &url, &["--create"]).await.failure();
    for expected in [
        &format!("may not make {stranger} the owner of public.theirs"),
        "--no-owner",
        "--skip-unsettable-owners",
    ] {
        assert!(error.contains(expected), "{expected:?} in {error}");
    }
    assert!(
        !error.contains(&member),
        "settable owners are not named: {error}"
    );
    assert!(!database_exists(target.name()).await);

    let target = fresh();
    let url = target.as_role(admin).url();
    let run = restore(&backup, &url, &["--create", "--skip-unsettable-owners"])
        .await
        .success();
    assert!(
        run.stderr
            .contains(&format!("owner {stranger} of public.theirs not set")),
        "{}",
        run.stderr
    );
    let restored = target.as_role(admin);
    assert_eq!(owner_of(&restored, "mine").await, member);
    assert_eq!(owner_of(&restored, "theirs").await, admin);

    let target = fresh();
    let url = target.as_role(admin).url();
    restore(&backup, &url, &["--create", "--no-owner"])
        .await
        .success();
    let restored = target.as_role(admin);
    assert_eq!(owner_of(&restored, "mine").await, admin);
    assert_eq!(owner_of(&restored, "theirs").await, admin);
}
