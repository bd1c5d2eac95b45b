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
    let run = pgark(&[
        "restore",
        path_str(&backup),
        "--target",
        &url,
        "--table",
        "public.orders",
        "--where",
        "id BETWEEN 11 AND 20",
        "--disable-triggers",
    ])
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
            "CREATE ROLE {other} NOLOGIN; ALTER TABLE orders OWNER TO {other};"
        ))
        .await;
    db.execute("DELETE FROM orders WHERE id = 5").await;
    let error = pgark(&[
        "restore",
        path_str(&backup),
        "--target",
        &url,
        "--table",
        "public.orders",
        "--where",
        "id = 5",
        "--disable-triggers",
    ])
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
    pgark(&[
        "restore",
        path_str(&backup),
        "--target",
        &target.url(),
        "--schema-only",
    ])
    .await
    .success();
    let error = pgark(&[
        "restore",
        path_str(&backup),
        "--target",
        &target.url(),
        "--data-only",
    ])
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
    pgark(&[
        "restore",
        path_str(&backup),
        "--target",
        &target.url(),
        "--data-only",
        "--table",
        "public.plain",
    ])
    .await
    .success();
    assert_eq!(query_i64(&target, "SELECT count(*) FROM plain").await, 50);
}
