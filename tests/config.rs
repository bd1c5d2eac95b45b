//! Options from the environment and from a config file: the command line wins over the
//! environment, the environment over the file, the file over the built-in defaults; a file with
//! a secret in it is refused without printing the secret.

mod common;

use common::*;
use pgark_testkit::{server, unique_name};

/// The settings a dump recorded: (jobs, compress level, chunk size).
fn recorded_settings(backup: &std::path::Path) -> (u64, u64, u64) {
    let manifest = read_manifest(backup);
    let settings = &manifest["settings"];
    let number = |key: &str| {
        settings[key]
            .as_u64()
            .unwrap_or_else(|| panic!("settings.{key} in {settings}"))
    };
    (
        number("jobs"),
        number("compress_level"),
        number("chunk_size"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn dump_options_come_from_flags_then_environment_then_the_config_file() {
    let source = server().create_database("config_dump").await;
    source
        .execute(
            "CREATE TABLE t (id int PRIMARY KEY, v text);
             INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 500) g;",
        )
        .await;
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("pgark.toml");
    std::fs::write(
        &config,
        "chunk_size = \"128KiB\"\n\n[dump]\njobs = 3\ncompress-level = 5\n\n[restore]\njobs = 1\n",
    )
    .expect("config");
    let config = path_str(&config).to_owned();
    let url = source.url();
    let dump = async |name: &str, args: &[&str], env: &[(&str, &str)]| {
        let dest = dir.path().join(name);
        let dest = path_str(&dest).to_owned();
        let mut all = vec!["dump", url.as_str(), dest.as_str()];
        all.extend_from_slice(args);
        pgark_with_env(&all, env.iter().copied()).await.success();
        recorded_settings(&only_backup(std::path::Path::new(&dest)))
    };
    assert_eq!(
        dump("defaults", &[], &[]).await,
        (2, 2, 8 << 20),
        "built-in defaults"
    );
    assert_eq!(
        dump("file", &["--config", &config], &[]).await,
        (3, 5, 128 << 10),
        "the file's [dump] table and top level"
    );
    assert_eq!(
        dump("file_by_env", &[], &[("PGARK_CONFIG", &config)]).await,
        (3, 5, 128 << 10),
        "the file named by PGARK_CONFIG"
    );
    assert_eq!(
        dump("env", &["--config", &config], &[("PGARK_JOBS", "4")]).await,
        (4, 5, 128 << 10),
        "the environment over the file"
    );
    assert_eq!(
        dump(
            "flag",
            &["--config", &config, "--jobs", "1"],
            &[("PGARK_JOBS", "4")]
        )
        .await,
        (1, 5, 128 << 10),
        "the command line over both"
    );

    // An argument from the file: DEST for every command that takes one.
    let dest = dir.path().join("from_file");
    let with_dest = dir.path().join("dest.toml");
    std::fs::write(&with_dest, format!("dest = {:?}\n", path_str(&dest))).expect("config");
    pgark(&["dump", &url, "--config", path_str(&with_dest)])
        .await
        .success();
    let listed = pgark(&["ls", "--config", path_str(&with_dest)])
        .await
        .success();
    let id = only_backup(&dest);
    let id = id.file_name().expect("id").to_string_lossy();
    assert!(listed.stdout.contains(id.as_ref()), "{}", listed.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_options_and_arguments_come_from_the_environment_and_the_config_file() {
    let source = server().create_database("config_restore").await;
    source
        .execute(
            "CREATE TABLE t (id int PRIMARY KEY);
             INSERT INTO t SELECT generate_series(1, 40);",
        )
        .await;
    let (_dest, backup) = dump_to_temp(&source, &[]).await;
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("pgark.toml");
    std::fs::write(&config, "[restore]\ncreate = true\nschema_only = true\n").expect("config");
    let config = path_str(&config).to_owned();

    // The target from PGARK_TARGET, --create and --schema-only from the file.
    let schema_only = server().database(&unique_name("config_schema_only"));
    pgark_with_env(
        &["restore", path_str(&backup), "--config", &config],
        [("PGARK_TARGET", schema_only.url().as_str())],
    )
    .await
    .success();
    assert_eq!(query_i64(&schema_only, "SELECT count(*) FROM t").await, 0);

    // A variable turns the file's flag off again.
    let whole = server().database(&unique_name("config_whole"));
    pgark_with_env(
        &["restore", path_str(&backup), "--config", &config],
        [
            ("PGARK_TARGET", whole.url().as_str()),
            ("PGARK_SCHEMA_ONLY", "false"),
        ],
    )
    .await
    .success();
    assert_eq!(query_i64(&whole, "SELECT count(*) FROM t").await, 40);
}

/// Runs pgark with a config file holding `contents`; returns its one error line, checking the
/// usage exit code and that `secret` appears nowhere.
async fn refused(contents: &str, secret: &str) -> String {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("pgark.toml");
    std::fs::write(&config, contents).expect("config");
    let run = pgark(&["--config", path_str(&config), "ls", path_str(dir.path())]).await;
    assert_eq!(run.status.code(), Some(2), "a usage error:\n{}", run.stderr);
    assert!(
        !run.stdout.contains(secret) && !run.stderr.contains(secret),
        "the secret is never printed:\n{}",
        run.stderr
    );
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("pgark: error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    errors[0].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_file_with_a_secret_or_an_unknown_key_is_refused_saying_which() {
    let error = refused(
        "[dump]\nsource = \"postgres://app:hunter2@db.internal/prod\"\n",
        "hunter2",
    )
    .await;
    assert!(
        error.contains("password inline")
            && error.contains("dump.source")
            && error.contains("PGPASSFILE"),
        "{error}"
    );
    let error = refused("password = \"hunter3\"\n", "hunter3").await;
    assert!(error.contains("secret inline (password)"), "{error}");
    let error = refused("[dump]\njbos = 4\n", "no-such-secret-in-the-file").await;
    assert!(
        error.contains("dump.jbos") && error.contains("no option --jbos"),
        "{error}"
    );
    let error = refused("[dupm]\njobs = 4\n", "no-such-secret-in-the-file").await;
    assert!(error.contains("[dupm]"), "{error}");
    let error = refused("jobs = [\n", "no-such-secret-in-the-file").await;
    assert!(error.contains("not valid TOML"), "{error}");
}
