//! Connecting securely with the real binary: over verified TLS with the password in the URL (and
//! no trace of it anywhere), with passwords from `.pgpass`, with `--role`, and with
//! `--aws-iam-auth` (whose token and AWS secret never show either).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{Run, only_backup, path_str, pgark_command, read_manifest};
use pgark_testkit::{PgServer, TestCerts, unique_name};
use tokio::sync::OnceCell;

const OWNER: &str = "pgark_tls_owner";
const PASSWORD: &str = "Tls-Sup3r-S3cret-Pa55";

struct Fixture {
    certs: TestCerts,
    server: PgServer,
    /// An empty home directory for the binary, so no `~/.pgpass` or `~/.postgresql/` of the
    /// machine takes part.
    home: tempfile::TempDir,
}

static FIXTURE: OnceCell<Fixture> = OnceCell::const_new();

/// A server that accepts TLS only over TCP, with SCRAM passwords for `pgark_password_users`.
async fn fixture() -> &'static Fixture {
    FIXTURE
        .get_or_init(|| async {
            let certs = TestCerts::generate();
            let (server, certs) = certs.start_server(&[
                "hostssl all +pgark_password_users 127.0.0.1/32 scram-sha-256",
                "hostssl all all 127.0.0.1/32 trust",
                "hostnossl all all 127.0.0.1/32 reject",
            ]);
            server
                .database("postgres")
                .execute(&format!(
                    "CREATE ROLE {OWNER} LOGIN SUPERUSER PASSWORD '{PASSWORD}' \
                     IN ROLE pgark_password_users;
                     CREATE ROLE pgark_tls_reader NOLOGIN;
                     CREATE ROLE pgark_iam_user LOGIN IN ROLE pgark_password_users;"
                ))
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
    /// A database with one small table, owned by the password user.
    async fn source(&self) -> String {
        let name = unique_name("tls_source");
        self.server
            .database("postgres")
            .execute(&format!("CREATE DATABASE {name} OWNER {OWNER}"))
            .await;
        self.server
            .database(&name)
            .execute(&format!(
                "CREATE TABLE t (x text); INSERT INTO t VALUES ('visible'); \
                 ALTER TABLE t OWNER TO {OWNER}; GRANT SELECT ON t TO pgark_tls_reader;"
            ))
            .await;
        name
    }

    /// The URL for `db` with the password in it, verified TLS.
    fn url(&self, db: &str) -> String {
        format!(
            "postgresql://{OWNER}:{PASSWORD}@localhost:{}/{db}?sslmode=verify-full&sslrootcert={}",
            self.server.port(),
            path_str(&self.certs.ca_cert())
        )
    }

    /// The same without a password.
    fn conninfo(&self, db: &str, user: &str) -> String {
        format!(
            "host=localhost port={} user={user} dbname={db} sslmode=verify-full sslrootcert={}",
            self.server.port(),
            path_str(&self.certs.ca_cert())
        )
    }

    async fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = pgark_command(args);
        command.env("HOME", self.home.path());
        for (key, value) in env {
            command.env(key, value);
        }
        let output = command.output().await.expect("run pgark");
        Run {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

fn all_files(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            text.push_str(&all_files(&path));
        } else {
            text.push_str(&String::from_utf8_lossy(
                &std::fs::read(&path).expect("read"),
            ));
        }
    }
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_in_the_url_appears_nowhere_after_a_verified_tls_run() {
    let f = fixture().await;
    let source = f.source().await;
    let dest = tempfile::tempdir().expect("temp dir");

    let dump = f
        .run(
            &["-vv", "dump", &f.url(&source), path_str(dest.path())],
            &[],
        )
        .await;
    let dump_output = format!("{}{}", dump.stdout, dump.stderr);
    dump.success();
    let backup = only_backup(dest.path());
    assert_eq!(read_manifest(&backup)["tables"][0]["row_count"], 1);

    let target = unique_name("tls_target");
    let restore = f
        .run(
            &[
                "-vv",
                "restore",
                path_str(&backup),
                "--target",
                &f.url(&target),
                "--create",
            ],
            &[],
        )
        .await;
    let restore_output = format!("{}{}", restore.stdout, restore.stderr);
    restore.success();

    // Failures, too: plaintext refused by the server, and a wrong CA.
    let plaintext = f
        .run(
            &[
                "dump",
                &f.url(&source).replace("verify-full", "disable"),
                path_str(dest.path()),
            ],
            &[],
        )
        .await;
    let plaintext_output = format!("{}{}", plaintext.stdout, plaintext.stderr);
    let error = plaintext.failure();
    assert!(
        error.contains("the server requires TLS for this connection"),
        "{error}"
    );
    let wrong_ca = f
        .run(
            &[
                "dump",
                &f.url(&source).replace(
                    path_str(&f.certs.ca_cert()),
                    path_str(&f.certs.wrong_ca_cert()),
                ),
                path_str(dest.path()),
            ],
            &[],
        )
        .await;
    let wrong_ca_output = format!("{}{}", wrong_ca.stdout, wrong_ca.stderr);
    let error = wrong_ca.failure();
    assert!(
        error.contains("is not signed by a CA in sslrootcert"),
        "{error}"
    );

    let archive = all_files(dest.path());
    assert!(archive.contains(OWNER), "the manifest names the user");
    for (what, text) in [
        ("dump output", &dump_output),
        ("restore output", &restore_output),
        ("plaintext failure", &plaintext_output),
        ("wrong-CA failure", &wrong_ca_output),
        ("archive and manifest", &archive),
    ] {
        assert!(
            !text.contains(PASSWORD),
            "the password appears in the {what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pgpass_supplies_the_password_and_a_loose_file_is_ignored_with_a_warning() {
    let f = fixture().await;
    let source = f.source().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let pgpass = dir.path().join("pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "# wildcard host and database\n*:{}:*:{OWNER}:{PASSWORD}\n",
            f.server.port()
        ),
    )
    .expect("write");
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let dest = tempfile::tempdir().expect("temp dir");

    let conninfo = f.conninfo(&source, OWNER);
    let env = [("PGPASSFILE", path_str(&pgpass))];
    f.run(&["dump", &conninfo, path_str(dest.path())], &env)
        .await
        .success();

    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let loose = f
        .run(&["dump", &conninfo, path_str(dest.path())], &env)
        .await;
    assert!(
        loose.stderr.contains("has group or world access")
            && loose.stderr.contains(path_str(&pgpass)),
        "{}",
        loose.stderr
    );
    assert!(!loose.stderr.contains(PASSWORD), "{}", loose.stderr);
    let error = loose.failure();
    assert!(error.contains("asks for a password"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn role_switches_the_dump_sessions_to_another_role() {
    let f = fixture().await;
    let source = f.source().await;
    let dest = tempfile::tempdir().expect("temp dir");
    f.run(
        &[
            "dump",
            &f.url(&source),
            path_str(dest.path()),
            "--role",
            "pgark_tls_reader",
        ],
        &[],
    )
    .await
    .success();

    let missing = f
        .run(
            &[
                "dump",
                &f.url(&source),
                path_str(dest.path()),
                "--role",
                "pgark_no_such_role",
            ],
            &[],
        )
        .await
        .failure();
    assert!(
        missing.contains("switching to role \"pgark_no_such_role\" (--role)")
            && missing.contains("SQLSTATE 22023"),
        "{missing}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_iam_auth_sends_a_token_and_shows_neither_it_nor_the_aws_secret() {
    const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let f = fixture().await;
    let source = f.source().await;
    let dest = tempfile::tempdir().expect("temp dir");
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", AWS_SECRET),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
    ];
    // The test server knows nothing of IAM: it rejects the token as a wrong password.
    let run = f
        .run(
            &[
                "-vv",
                "dump",
                &f.conninfo(&source, "pgark_iam_user"),
                path_str(dest.path()),
                "--aws-iam-auth",
            ],
            &env,
        )
        .await;
    let output = format!("{}{}", run.stdout, run.stderr);
    let error = run.failure();
    assert!(
        error.contains("password authentication failed")
            && error.contains("IAM authentication is enabled"),
        "{error}"
    );
    // (At -vv the signing crate traces the canonical request, which holds nothing secret; the
    // signature, which makes the token a credential, must not appear.)
    for secret in [AWS_SECRET, "X-Amz-Signature"] {
        assert!(!output.contains(secret), "{secret} appears in:\n{output}");
    }

    // With a password as well, the flag is refused before anything is sent.
    let error = f
        .run(
            &[
                "dump",
                &f.url(&source),
                path_str(dest.path()),
                "--aws-iam-auth",
            ],
            &env,
        )
        .await
        .failure();
    assert!(
        error.contains("--aws-iam-auth generates the password"),
        "{error}"
    );
    assert!(!error.contains(PASSWORD), "{error}");
}
