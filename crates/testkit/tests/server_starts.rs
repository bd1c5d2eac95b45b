//! The shared server starts, hands out fresh databases, authenticates password roles, loads
//! corpora; dedicated servers take options and are cleaned up when dropped.

use pgark_testkit::{PgServer, ServerOptions, server, unique_name};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

#[tokio::test]
async fn shared_server_answers_select_version() {
    let db = server().create_database("version").await;
    let client = db.client().await;
    let version: String = client
        .query_one("SELECT version()", &[])
        .await
        .expect("SELECT version()")
        .get(0);
    assert!(version.starts_with("PostgreSQL "), "{version}");
    let major = server().version_num() / 10_000;
    assert!((13..=18).contains(&major), "{}", server().version_num());
    assert!(
        version.starts_with(&format!("PostgreSQL {major}")),
        "{version}"
    );
}

#[tokio::test]
async fn shared_server_is_the_same_for_all_tests_of_a_process() {
    assert!(std::ptr::eq(server(), server()));
    assert!(server().socket_dir().is_dir());
    assert!(server().bin_dir().join("initdb").is_file());
}

#[tokio::test]
async fn create_database_gives_distinct_empty_utf8_databases() {
    let a = server().create_database("fresh").await;
    let b = server().create_database("fresh").await;
    assert_ne!(a.name(), b.name());
    a.execute("CREATE TABLE only_in_a (id int)").await;
    for db in [&a, &b] {
        let row = db
            .client()
            .await
            .query_one(
                "SELECT current_database()::text, pg_encoding_to_char(encoding)::text, \
                 (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                  WHERE n.nspname = 'public') \
                 FROM pg_database WHERE datname = current_database()",
                &[],
            )
            .await
            .expect("query");
        assert_eq!(row.get::<_, String>(0), db.name());
        assert_eq!(row.get::<_, String>(1), "UTF8");
        let expected_relations = if db.name() == a.name() { 1 } else { 0 };
        assert_eq!(row.get::<_, i64>(2), expected_relations, "{}", db.name());
    }
}

#[tokio::test]
async fn url_and_libpq_env_point_at_the_database() {
    let db = server().create_database("url").await;
    let config: tokio_postgres::Config = db.url().parse().expect("url parses");
    let (client, connection) = config.connect(NoTls).await.expect("connect by url");
    tokio::spawn(connection);
    let name: String = client
        .query_one("SELECT current_database()::text", &[])
        .await
        .expect("query")
        .get(0);
    assert_eq!(name, db.name());
    assert_eq!(server().url(db.name()), db.url());

    let env = server().libpq_env();
    let get = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    assert_eq!(get("PGHOST"), server().socket_dir().to_str());
    assert_eq!(get("PGPORT"), Some(server().port().to_string().as_str()));
    assert_eq!(get("PGUSER"), Some("postgres"));
}

#[tokio::test]
async fn password_role_logs_in_with_the_right_password_only() {
    let db = server().create_database("password").await;
    let role = unique_name("pw_user");
    db.execute(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'right horse' IN ROLE pgark_password_users"
    ))
    .await;

    let config = |password: Option<&str>| {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(server().socket_dir())
            .port(server().port())
            .user(&role)
            .dbname(db.name());
        if let Some(password) = password {
            config.password(password);
        }
        config
    };

    let (client, connection) = config(Some("right horse"))
        .connect(NoTls)
        .await
        .expect("the right password is accepted");
    tokio::spawn(connection);
    let user: String = client
        .query_one("SELECT current_user::text", &[])
        .await
        .expect("query")
        .get(0);
    assert_eq!(user, role);

    let Err(wrong) = config(Some("wrong horse")).connect(NoTls).await else {
        panic!("a wrong password was accepted");
    };
    assert_eq!(wrong.code(), Some(&SqlState::INVALID_PASSWORD), "{wrong}");

    assert!(
        config(None).connect(NoTls).await.is_err(),
        "a login without password was accepted"
    );
}

#[tokio::test]
async fn load_corpus_loads_chinook() {
    let db = server()
        .load_corpus("chinook", &unique_name("chinook"))
        .await;
    let client = db.client().await;
    let artists: i64 = client
        .query_one("SELECT count(*) FROM artist", &[])
        .await
        .expect("count artists")
        .get(0);
    assert_eq!(artists, 275);
    let first: String = client
        .query_one("SELECT name FROM artist WHERE artist_id = 1", &[])
        .await
        .expect("first artist")
        .get(0);
    assert_eq!(first, "AC/DC");
}

#[tokio::test]
async fn dedicated_server_takes_options_and_is_removed_on_drop() {
    let dedicated = PgServer::start(ServerOptions {
        // The included file exists only if `files` are written into the data directory.
        conf: vec!["include 'extra.conf'".to_owned()],
        files: vec![("extra.conf".to_owned(), b"work_mem = '7MB'\n".to_vec())],
        hba: vec!["# an extra hba line".to_owned()],
        tcp: true,
        bin_dir: None,
    });
    assert_ne!(dedicated.socket_dir(), server().socket_dir());
    let hba = std::fs::read_to_string(dedicated.data_dir().join("pg_hba.conf")).expect("hba");
    assert!(
        hba.starts_with("# written by pgark-testkit\n# an extra hba line\n"),
        "{hba}"
    );

    // Over TCP, where the settings from `conf` and `files` apply.
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(dedicated.port())
        .user("postgres")
        .dbname("postgres");
    let (client, connection) = config.connect(NoTls).await.expect("connect over TCP");
    let connection = tokio::spawn(connection);
    let work_mem: String = client
        .query_one("SHOW work_mem", &[])
        .await
        .expect("SHOW work_mem")
        .get(0);
    assert_eq!(work_mem, "7MB");
    drop(client);
    connection
        .await
        .expect("join")
        .expect("connection ends cleanly");

    let db = dedicated.create_database("dedicated").await;
    db.execute("CREATE TABLE t (id int)").await;

    let data_dir = dedicated.data_dir().to_owned();
    drop(dedicated);
    assert!(!data_dir.exists(), "{} still exists", data_dir.display());
}

#[test]
fn failed_start_reports_the_server_log() {
    let panic = std::panic::catch_unwind(|| {
        PgServer::start(ServerOptions {
            conf: vec!["no_such_setting = 1".to_owned()],
            ..ServerOptions::default()
        })
    })
    .expect_err("a server with an unknown setting must not start");
    let message = panic
        .downcast_ref::<String>()
        .expect("the panic carries a message");
    assert!(message.contains("pg_ctl"), "{message}");
    assert!(message.contains("server log"), "{message}");
    assert!(
        message.contains("unrecognized configuration parameter \"no_such_setting\""),
        "{message}"
    );
}
