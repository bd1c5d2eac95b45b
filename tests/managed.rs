//! Dumping as a role that is not a superuser, as on managed services (RDS, Cloud SQL, Azure):
//! what the role cannot read whole is found before anything is read and named, with the grant
//! that fixes it; once granted, the dump works and nothing is missing.

mod common;

use common::*;
use pgark_testkit::{server, unique_name};

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
    let as_role = source
        .url()
        .replace("user=postgres", &format!("user={role}"));
    assert_ne!(as_role, source.url());
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
            "GRANT SELECT ON public.closed_rows, public.closed_seq TO {role};
             ALTER ROLE {role} BYPASSRLS;"
        ))
        .await;
    pgark(&["dump", &as_role, path_str(dest.path())])
        .await
        .success();
    let backup = only_backup(dest.path());
    restore_into_new_and_compare(path_str(&backup), &source, "managed_restored").await;
}
