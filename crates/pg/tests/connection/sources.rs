//! Where a connection's settings and password come from: `.pgpass` (wildcards, and a file with
//! loose permissions ignored), `PG*` variables, a service file — and the role set after login.

use std::os::unix::fs::PermissionsExt;

use pgark_pg::{PgError, connect};
use pgark_testkit::server;
use tokio::sync::OnceCell;

use super::{config, query_text};

const USER: &str = "pgark_conn_pw_user";
const PASSWORD: &str = "Pa55-From-Elsewhere";

static ROLES: OnceCell<()> = OnceCell::const_new();

/// A password-authenticated user and a role to switch to, created once per test process.
async fn roles() {
    ROLES
        .get_or_init(|| async {
            server()
                .database("postgres")
                .execute(&format!(
                    "CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}' IN ROLE pgark_password_users;
                     CREATE ROLE \"pgark Odd \"\"Role\"\"\" NOLOGIN;"
                ))
                .await;
        })
        .await;
}

fn socket() -> String {
    server().socket_dir().to_str().expect("utf-8").to_owned()
}

/// A private file with `contents` in a new temporary directory.
fn private_file(name: &str, contents: &str, mode: u32) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, contents).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    let path = path.to_str().expect("utf-8").to_owned();
    (dir, path)
}

fn conninfo() -> String {
    format!(
        "host={} port={} user={USER} dbname=postgres",
        socket(),
        server().port()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn pgpass_supplies_the_password_with_exact_and_wildcard_lines() {
    roles().await;
    let port = server().port();
    let socket = socket().replace(':', "\\:");
    let files = [
        // For a socket outside the default directory, the host field is the socket's path.
        format!(
            "# comment\nelsewhere:5432:*:*:wrong\n{socket}:{port}:postgres:{USER}:{PASSWORD}\n"
        ),
        format!("otherhost:*:*:*:wrong\n*:{port}:*:{USER}:{PASSWORD}\n*:*:*:*:wrong\n"),
        format!("*:*:*:*:{PASSWORD}\n"),
    ];
    for contents in files {
        let (_dir, file) = private_file("pgpass", &contents, 0o600);
        let connection = connect(&config(&conninfo(), &[("PGPASSFILE", &file)]))
            .await
            .unwrap_or_else(|e| panic!("{contents}: {e}"));
        assert_eq!(
            query_text(&connection, "SELECT current_user::text").await,
            USER
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pgpass_file_others_may_read_is_ignored() {
    roles().await;
    let (_dir, file) = private_file("pgpass", &format!("*:*:*:*:{PASSWORD}\n"), 0o644);
    let err = connect(&config(&conninfo(), &[("PGPASSFILE", &file)]))
        .await
        .expect_err("the file is ignored, so no password is sent");
    let message = err.to_string();
    assert!(matches!(err, PgError::PasswordMissing { .. }), "{err:?}");
    assert!(!message.contains(PASSWORD), "{message}");

    // passfile= in the string names the file too.
    let (_dir, file) = private_file("pgpass", &format!("*:*:*:*:{PASSWORD}\n"), 0o600);
    connect(&config(&format!("{} passfile={file}", conninfo()), &[]))
        .await
        .expect("passfile= is read");
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_variables_supply_a_whole_connection() {
    roles().await;
    let port = server().port().to_string();
    let socket = socket();
    let env = [
        ("PGHOST", socket.as_str()),
        ("PGPORT", port.as_str()),
        ("PGUSER", USER),
        ("PGPASSWORD", PASSWORD),
        ("PGDATABASE", "postgres"),
        ("PGAPPNAME", "from-env"),
    ];
    let connection = connect(&config("", &env)).await.expect("connects");
    assert_eq!(
        query_text(&connection, "SELECT current_user::text").await,
        USER
    );
    assert_eq!(
        query_text(&connection, "SELECT current_setting('application_name')").await,
        "from-env"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_file_supplies_a_whole_connection() {
    roles().await;
    let contents = format!(
        "[other]\nhost=nowhere\n\n[pgark-test]\nhost={}\nport={}\nuser={USER}\npassword={PASSWORD}\ndbname=postgres\n",
        socket(),
        server().port()
    );
    let (_dir, file) = private_file("pg_service.conf", &contents, 0o600);
    for (conninfo, env) in [
        ("service=pgark-test", vec![("PGSERVICEFILE", file.as_str())]),
        (
            "",
            vec![
                ("PGSERVICEFILE", file.as_str()),
                ("PGSERVICE", "pgark-test"),
            ],
        ),
        (
            "postgresql://?service=pgark-test",
            vec![("PGSERVICEFILE", file.as_str())],
        ),
    ] {
        let connection = connect(&config(conninfo, &env))
            .await
            .unwrap_or_else(|e| panic!("{conninfo:?}: {e}"));
        assert_eq!(
            query_text(&connection, "SELECT current_user::text").await,
            USER
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_session_switches_to_the_configured_role() {
    roles().await;
    let cfg = config(&server().url("postgres"), &[]).with_role(Some("pgark Odd \"Role\"".into()));
    let connection = connect(&cfg).await.expect("connects");
    assert_eq!(
        query_text(&connection, "SELECT current_user::text").await,
        "pgark Odd \"Role\""
    );
    let other = connect(&cfg.with_dbname("template1"))
        .await
        .expect("connects");
    assert_eq!(
        query_text(&other, "SELECT current_user::text").await,
        "pgark Odd \"Role\""
    );

    let err = connect(&cfg.with_role(Some("pgark_no_such_role".into())))
        .await
        .expect_err("unknown role");
    let message = err.to_string();
    assert!(
        message.contains("switching to role \"pgark_no_such_role\" (--role)")
            && message.contains("SQLSTATE 22023"),
        "{message}"
    );
}
