//! TLS against a server with `ssl = on` that refuses plaintext over TCP.

use std::os::unix::fs::PermissionsExt;

use pgark_pg::{PgError, connect};
use pgark_testkit::{PgServer, TestCerts};
use tokio::sync::OnceCell;

use super::{config, query_text};

struct Fixture {
    certs: TestCerts,
    server: PgServer,
    /// An empty home directory, so that no `~/.postgresql/` files are picked up by default.
    home: tempfile::TempDir,
}

static FIXTURE: OnceCell<Fixture> = OnceCell::const_new();

async fn fixture() -> &'static Fixture {
    FIXTURE
        .get_or_init(|| async {
            let certs = TestCerts::generate();
            let cert_user = TestCerts::CLIENT_USER;
            let (server, certs) = certs.start_server(&[
                &format!("hostssl all {cert_user} 127.0.0.1/32 cert"),
                "hostssl all all 127.0.0.1/32 trust",
                "hostnossl all all 127.0.0.1/32 reject",
            ]);
            server
                .database("postgres")
                .execute(&format!("CREATE ROLE {cert_user} LOGIN"))
                .await;
            let home = tempfile::tempdir().expect("temp dir");
            Fixture {
                certs,
                server,
                home,
            }
        })
        .await
}

impl Fixture {
    /// A key=value string for `host` on the test server as `user`, plus `extra`.
    fn conninfo(&self, host: &str, user: &str, extra: &str) -> String {
        format!(
            "host={host} port={} user={user} dbname=postgres {extra}",
            self.server.port()
        )
    }

    fn home(&self) -> &str {
        self.home.path().to_str().expect("utf-8 path")
    }

    fn path(&self, path: std::path::PathBuf) -> String {
        path.to_str().expect("utf-8 path").to_owned()
    }

    async fn connect(&self, conninfo: &str) -> Result<pgark_pg::Connection, PgError> {
        connect(&config(conninfo, &[("HOME", self.home())])).await
    }
}

async fn uses_tls(connection: &pgark_pg::Connection) -> bool {
    query_text(
        connection,
        "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .await
        == "true"
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_full_with_the_right_ca_and_host_name_connects_over_tls() {
    let f = fixture().await;
    let ca = f.path(f.certs.ca_cert());
    for host in ["localhost", "127.0.0.1"] {
        let connection = f
            .connect(&f.conninfo(
                host,
                "postgres",
                &format!("sslmode=verify-full sslrootcert={ca}"),
            ))
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert!(uses_tls(&connection).await, "{host}");
        assert_eq!(
            query_text(
                &connection,
                "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"
            )
            .await,
            "pgark"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_full_with_a_wrong_ca_fails_clearly() {
    let f = fixture().await;
    let wrong = f.path(f.certs.wrong_ca_cert());
    for mode in ["verify-full", "verify-ca"] {
        let err = f
            .connect(&f.conninfo(
                "localhost",
                "postgres",
                &format!("sslmode={mode} sslrootcert={wrong}"),
            ))
            .await
            .expect_err("a certificate from another CA must be refused");
        let message = err.to_string();
        assert!(matches!(err, PgError::Tls { .. }), "{err:?}");
        assert!(
            message.contains("the server's certificate is not signed by a CA in sslrootcert")
                && message.contains(&wrong),
            "{message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_full_with_a_wrong_host_name_fails_clearly_and_verify_ca_accepts_it() {
    let f = fixture().await;
    let ca = f.path(f.certs.ca_cert());
    // The name is not in the certificate; hostaddr says where the server really is.
    let conninfo = |mode: &str| {
        f.conninfo(
            "db.wrong.example",
            "postgres",
            &format!("hostaddr=127.0.0.1 sslmode={mode} sslrootcert={ca}"),
        )
    };
    let err = f
        .connect(&conninfo("verify-full"))
        .await
        .expect_err("the host name must be checked");
    let message = err.to_string();
    assert!(matches!(err, PgError::Tls { .. }), "{err:?}");
    assert!(
        message.contains(
            "the server's certificate is not valid for the host name \"db.wrong.example\""
        ),
        "{message}"
    );

    let connection = f
        .connect(&conninfo("verify-ca"))
        .await
        .expect("verify-ca checks the chain only");
    assert!(uses_tls(&connection).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn require_without_a_ca_encrypts_without_verifying() {
    let f = fixture().await;
    // No sslrootcert, and the home directory has no ~/.postgresql/root.crt.
    let connection = f
        .connect(&f.conninfo("localhost", "postgres", "sslmode=require"))
        .await
        .expect("require without a CA connects");
    assert!(uses_tls(&connection).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn require_with_a_root_certificate_verifies_the_chain_like_libpq() {
    let f = fixture().await;
    let wrong = f.path(f.certs.wrong_ca_cert());
    let err = f
        .connect(&f.conninfo(
            "localhost",
            "postgres",
            &format!("sslmode=require sslrootcert={wrong}"),
        ))
        .await
        .expect_err("with a root certificate, require verifies like verify-ca");
    assert!(matches!(err, PgError::Tls { .. }), "{err:?}");

    // The default root certificate, ~/.postgresql/root.crt, counts too.
    let home = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(home.path().join(".postgresql")).expect("mkdir");
    std::fs::copy(f.certs.ca_cert(), home.path().join(".postgresql/root.crt")).expect("copy");
    let home = home.path().to_str().expect("utf-8");
    // Verified chain, wrong name: fine for require (no host name check).
    let cfg = config(
        &f.conninfo(
            "db.wrong.example",
            "postgres",
            "hostaddr=127.0.0.1 sslmode=require",
        ),
        &[("HOME", home)],
    );
    let connection = connect(&cfg).await.expect("chain verifies");
    assert!(uses_tls(&connection).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_modes_without_any_root_certificate_say_how_to_name_one() {
    let f = fixture().await;
    let err = f
        .connect(&f.conninfo("localhost", "postgres", "sslmode=verify-full"))
        .await
        .expect_err("nothing to verify against");
    let message = err.to_string();
    assert!(matches!(err, PgError::TlsSetup { .. }), "{err:?}");
    assert!(
        message.contains(".postgresql/root.crt\" does not exist")
            && message.contains("sslrootcert=system"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_certificate_authenticates_its_user() {
    let f = fixture().await;
    let ca = f.path(f.certs.ca_cert());
    let user = TestCerts::CLIENT_USER;
    let with_cert = format!(
        "sslmode=verify-full sslrootcert={ca} sslcert={} sslkey={}",
        f.path(f.certs.client_cert()),
        f.path(f.certs.client_key())
    );
    let connection = f
        .connect(&f.conninfo("localhost", user, &with_cert))
        .await
        .expect("the certificate authenticates");
    assert_eq!(
        query_text(&connection, "SELECT current_user::text").await,
        user
    );

    let err = f
        .connect(&f.conninfo(
            "localhost",
            user,
            &format!("sslmode=verify-full sslrootcert={ca}"),
        ))
        .await
        .expect_err("cert authentication without a certificate");
    let message = err.to_string();
    assert!(matches!(err, PgError::AuthFailed { .. }), "{err:?}");
    assert!(message.contains("certificate"), "{message}");
    assert!(message.contains("SQLSTATE 28000"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_key_others_may_read_is_refused() {
    let f = fixture().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("client.key");
    std::fs::copy(f.certs.client_key(), &key).expect("copy");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = f
        .connect(&f.conninfo(
            "localhost",
            TestCerts::CLIENT_USER,
            &format!(
                "sslmode=require sslcert={} sslkey={}",
                f.path(f.certs.client_cert()),
                key.display()
            ),
        ))
        .await
        .expect_err("a loose key is refused");
    let message = err.to_string();
    assert!(matches!(err, PgError::TlsSetup { .. }), "{err:?}");
    assert!(message.contains("has group or world access"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sslmode_disable_against_a_server_that_requires_tls_fails_clearly() {
    let f = fixture().await;
    let err = f
        .connect(&f.conninfo("127.0.0.1", "postgres", "sslmode=disable"))
        .await
        .expect_err("plaintext is rejected");
    let message = err.to_string();
    assert!(matches!(err, PgError::AuthFailed { .. }), "{err:?}");
    assert!(
        message.contains("no encryption")
            && message.contains("SQLSTATE 28000")
            && message.contains("the server requires TLS for this connection; use sslmode=require"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prefer_and_allow_end_up_encrypted_when_plaintext_is_refused() {
    let f = fixture().await;
    for mode in ["prefer", "allow"] {
        let connection = f
            .connect(&f.conninfo("localhost", "postgres", &format!("sslmode={mode}")))
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert!(uses_tls(&connection).await, "{mode}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_requests_travel_over_tls_too() {
    let f = fixture().await;
    let ca = f.path(f.certs.ca_cert());
    let connection = f
        .connect(&f.conninfo(
            "localhost",
            "postgres",
            &format!("sslmode=verify-full sslrootcert={ca}"),
        ))
        .await
        .expect("connects");
    let canceller = connection.canceller();
    let sleeper = async {
        connection
            .client()
            .batch_execute("SELECT pg_sleep(60)")
            .await
    };
    let cancel = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        canceller.cancel().await
    };
    let (slept, cancelled) = tokio::join!(sleeper, cancel);
    cancelled.expect("the cancel request is delivered");
    let err = slept.expect_err("the query is cancelled");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::QUERY_CANCELED),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_rows_are_read_in_buffers_above_tls() {
    let f = fixture().await;
    let ca = f.path(f.certs.ca_cert());
    // `prefer` too: TLS comes from the server's answer, not from the mode alone.
    for mode in [
        format!("sslmode=verify-full sslrootcert={ca}"),
        "sslmode=prefer".to_owned(),
    ] {
        let connection = f
            .connect(&f.conninfo("localhost", "postgres", &mode))
            .await
            .expect("connects");
        assert!(uses_tls(&connection).await, "{mode}");
        let sql = "COPY (SELECT g, repeat(md5(g::text), g % 500) FROM generate_series(1, 3000) g) \
                   TO STDOUT";
        let rows = super::copy_out::rows(&connection, sql).await;
        let buffers = super::copy_out::buffers(&connection, sql, 50_000).await;
        super::copy_out::assert_whole_rows(&buffers, &rows, 50_000);
    }
}
