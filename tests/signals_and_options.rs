//! Interruptions (SIGTERM during a dump or a restore), lock waits, connection settings from the
//! environment, and secrets kept out of every output.

mod common;

use std::path::Path;

use common::*;
use pgark_testkit::{TestDb, server, unique_name};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A database with one large table (tens of MB of COPY text) and one small one.
async fn large_source(prefix: &str) -> TestDb {
    let source = server().create_database(prefix).await;
    source
        .execute(
            "CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 4) AS filler FROM generate_series(1, 600000) g;
             CREATE TABLE small (id integer PRIMARY KEY);
             INSERT INTO small SELECT generate_series(1, 10);",
        )
        .await;
    source
}

/// Starts `pgark args`, waits for a stderr line containing `marker`, sends SIGTERM, and returns
/// the exit code and the rest of stderr.
async fn terminate_when(args: &[&str], log_filter: &str, marker: &str) -> (Option<i32>, String) {
    let mut command = pgark_command(args);
    command.env("PGARK_LOG", log_filter);
    let mut child = command.spawn().expect("start pgark");
    let pid = child.id().expect("pid").to_string();
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    loop {
        let line = lines.next_line().await.expect("read stderr");
        let line = line.unwrap_or_else(|| panic!("pgark ended before logging {marker:?}"));
        if line.contains(marker) {
            break;
        }
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM {pid}");
    let mut rest = String::new();
    while let Some(line) = lines.next_line().await.expect("read stderr") {
        rest.push_str(&line);
        rest.push('\n');
    }
    let status = child.wait().await.expect("wait for pgark");
    (status.code(), rest)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_restore_drops_the_database_it_created() {
    let source = large_source("term_restore").await;
    let (_dest, backup) = dump_to_temp(&source, &["--chunk-size", "256KiB"]).await;

    let target_name = unique_name("term_restore_target");
    let target = server().database(&target_name);
    // `small` is restored while `big` is still loading on the other session.
    let (code, stderr) = terminate_when(
        &[
            "restore",
            path_str(&backup),
            "--target",
            &target.url(),
            "--create",
            "--jobs",
            "2",
        ],
        "pgark_engine=info",
        "table restored",
    )
    .await;
    assert_eq!(
        code,
        Some(130),
        "exit code for an interrupted restore; stderr:\n{stderr}"
    );
    let error = stderr.lines().last().unwrap_or_default();
    assert!(error.starts_with("pgark: error: interrupted"), "{stderr}");
    assert!(error.contains("was dropped"), "{stderr}");
    assert!(
        !database_exists(&target_name).await,
        "the created database must be gone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_restore_into_an_existing_database_removes_what_it_created() {
    let source = large_source("term_existing").await;
    let (_dest, backup) = dump_to_temp(&source, &["--chunk-size", "256KiB"]).await;

    let target = server().create_database("term_existing_target").await;
    let (code, stderr) = terminate_when(
        &[
            "restore",
            path_str(&backup),
            "--target",
            &target.url(),
            "--jobs",
            "2",
        ],
        "pgark_engine=info",
        "table restored",
    )
    .await;
    assert_eq!(code, Some(130), "stderr:\n{stderr}");
    assert!(stderr.contains("left as it was"), "{stderr}");
    assert!(
        user_objects(&target).await.is_empty(),
        "the target must be empty again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_dump_leaves_no_backup_behind() {
    let source = large_source("term_dump").await;
    let dest = tempfile::tempdir().expect("temp dir");
    let (code, stderr) = terminate_when(
        &[
            "--log-format",
            "json",
            "dump",
            &source.url(),
            path_str(dest.path()),
            "--jobs",
            "1",
            "--chunk-size",
            "64KiB",
        ],
        "pgark_engine=debug",
        "chunk stored",
    )
    .await;
    assert_eq!(code, Some(130), "stderr:\n{stderr}");
    assert_eq!(json_error(&stderr)["class"], "interrupted", "{stderr}");
    let left: Vec<_> = files_under(dest.path());
    assert!(
        left.is_empty(),
        "an interrupted dump must remove what it wrote: {left:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_locked_by_another_session_times_out_with_a_clear_error() {
    let source = server().create_database("locked").await;
    source
        .execute("CREATE TABLE busy (id integer); CREATE TABLE free (id integer);")
        .await;
    let holder = source.client().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");

    let dest = tempfile::tempdir().expect("temp dir");
    let out = dest.path().join("backups");
    let error = pgark(&[
        "dump",
        &source.url(),
        path_str(&out),
        "--lock-wait-timeout",
        "200ms",
    ])
    .await
    .failure();
    assert!(error.contains("public.busy"), "{error}");
    assert!(error.contains("--lock-wait-timeout"), "{error}");
    assert!(!out.exists(), "nothing may be written");
    holder.batch_execute("ROLLBACK").await.expect("release");

    pgark(&[
        "dump",
        &source.url(),
        path_str(&out),
        "--lock-wait-timeout",
        "200ms",
    ])
    .await
    .success();
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_settings_come_from_the_pg_environment() {
    let source = server().create_database("pgenv").await;
    source
        .execute("CREATE TABLE t (x integer); INSERT INTO t VALUES (1), (2);")
        .await;
    let dest = tempfile::tempdir().expect("temp dir");
    let mut command = pgark_command(&["dump", "", path_str(dest.path())]);
    command
        .envs(server().libpq_env())
        .env("PGDATABASE", source.name());
    let output = command.output().await.expect("run pgark");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let manifest = read_manifest(&only_backup(dest.path()));
    assert_eq!(manifest["source"]["database"], source.name());
    assert_eq!(manifest["tables"][0]["row_count"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_never_appears_in_output_logs_or_the_archive() {
    const PASSWORD: &str = "Sup3r-S3cret-Pa55";
    let source = server().create_database("secret").await;
    source
        .execute(&format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgark_secret_owner') THEN
                 CREATE ROLE pgark_secret_owner LOGIN SUPERUSER PASSWORD '{PASSWORD}' IN ROLE pgark_password_users;
               END IF;
             END $$;
             CREATE TABLE t (x text); INSERT INTO t VALUES ('visible');"
        ))
        .await;
    let socket = server()
        .socket_dir()
        .to_str()
        .expect("utf-8")
        .replace('/', "%2F");
    let url = |db: &str| {
        format!(
            "postgresql://pgark_secret_owner:{PASSWORD}@{socket}:{}/{db}",
            server().port()
        )
    };
    let dest = tempfile::tempdir().expect("temp dir");
    let dump = pgark(&["-vv", "dump", &url(source.name()), path_str(dest.path())]).await;
    let dump_output = format!("{}{}", dump.stdout, dump.stderr);
    let dump = dump.success();
    assert!(dump.stdout.contains("complete"), "{}", dump.stdout);

    let target = unique_name("secret_target");
    let restore = pgark(&[
        "-vv",
        "restore",
        &format!("{}/latest", path_str(dest.path())),
        "--target",
        &url(&target),
        "--create",
    ])
    .await;
    let restore_output = format!("{}{}", restore.stdout, restore.stderr);
    restore.success();
    let failed = pgark(&[
        "restore",
        &format!("{}/latest", path_str(dest.path())),
        "--target",
        &url(&target),
        "--create",
    ])
    .await;
    let failed_output = format!("{}{}", failed.stdout, failed.stderr);
    assert!(failed.failure().contains("already exists"));

    let mut archive = String::new();
    for file in files_under(dest.path()) {
        archive.push_str(&String::from_utf8_lossy(
            &std::fs::read(&file).expect("read"),
        ));
    }
    assert!(
        archive.contains("pgark_secret_owner"),
        "the manifest names the connection (without password)"
    );
    for (what, text) in [
        ("dump output", &dump_output),
        ("restore output", &restore_output),
        ("error output", &failed_output),
        ("archive", &archive),
    ] {
        assert!(
            !text.contains(PASSWORD),
            "the password appears in the {what}"
        );
    }
}

/// `--timeout` bounds a whole run: a dump waiting forever for a lock (no `--lock-wait-timeout`)
/// and a restore stuck behind a lock on its target both stop, clean up as on SIGTERM, and say so.
#[tokio::test(flavor = "multi_thread")]
async fn timeout_stops_a_stuck_run_and_cleans_up() {
    let source = server().create_database("timeout").await;
    source
        .execute("CREATE TABLE busy (id integer); INSERT INTO busy VALUES (1);")
        .await;
    let dest = tempfile::tempdir().expect("temp dir");
    let out = dest.path().join("backups");
    pgark(&["dump", &source.url(), path_str(&out)])
        .await
        .success();
    let holder = source.client().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");

    let run = pgark(&["--timeout", "2s", "dump", &source.url(), path_str(&out)]).await;
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let error = run.failure();
    assert!(error.contains("stopped after --timeout 2s"), "{error}");
    assert_eq!(
        std::fs::read_dir(&out).expect("list").count(),
        1,
        "only the earlier backup remains"
    );

    // A surgical restore into the locked table, with no lock timeout of its own.
    let run = pgark(&[
        "restore",
        &format!("{}/latest", path_str(&out)),
        "--target",
        &source.url(),
        "--table",
        "busy",
        "--conflict",
        "skip",
        "--lock-timeout",
        "0s",
        "--timeout",
        "2s",
    ])
    .await;
    let error = run.failure();
    assert!(error.contains("stopped after --timeout 2s"), "{error}");
    holder.batch_execute("ROLLBACK").await.expect("release");
    assert_eq!(
        source
            .client()
            .await
            .query_one("SELECT count(*) FROM busy", &[])
            .await
            .expect("count")
            .get::<_, i64>(0),
        1
    );
}

/// Starts `pgark args` and polls the server with `poll` until it finds what it waits for;
/// returns the running child and what was found. Fails, with pgark's stderr, if pgark ends first.
async fn start_until<T, F, Fut>(args: &[&str], mut poll: F) -> (tokio::process::Child, T)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let mut child = pgark_command(args).spawn().expect("start pgark");
    loop {
        if child.try_wait().expect("poll pgark").is_some() {
            let output = child.wait_with_output().await.expect("pgark's output");
            panic!(
                "pgark ended ({}) before the point awaited:\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        if let Some(found) = poll().await {
            return (child, found);
        }
        // Polling the server's state, not waiting for time to pass.
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Starts `pgark args` and kills it with SIGKILL (nothing can clean up) as soon as `ready`
/// holds; returns what it had written to stderr.
async fn kill_when<F, Fut>(args: &[&str], mut ready: F) -> String
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let (mut child, ()) = start_until(args, || {
        let ready = ready();
        async move { ready.await.then_some(()) }
    })
    .await;
    child.kill().await.expect("SIGKILL pgark");
    let output = child.wait_with_output().await.expect("pgark's output");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Whether a session on a database whose name starts with `prefix` runs a statement matching
/// `query` (SQL LIKE) in `wait` (`Lock`, or any).
async fn session_running(prefix: &str, query: &str, waiting_on_lock: bool) -> bool {
    let client = server().database("postgres").client().await;
    client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity \
             WHERE starts_with(datname, $1) AND state = 'active' AND query ILIKE $2 \
               AND (NOT $3 OR wait_event_type = 'Lock'))",
            &[&prefix, &query, &waiting_on_lock],
        )
        .await
        .expect("query pg_stat_activity")
        .get(0)
}

/// Databases whose name starts with `prefix`, with their comments.
async fn databases_named(prefix: &str) -> Vec<(String, Option<String>)> {
    let client = server().database("postgres").client().await;
    client
        .query(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_catalog.pg_database \
             WHERE starts_with(datname, $1) ORDER BY 1",
            &[&prefix],
        )
        .await
        .expect("list databases")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Exactly one leftover of an interrupted `--create` restore to `target_name`, marked as such;
/// and no database under the name itself.
async fn assert_only_a_marked_leftover(target_name: &str, phase: &str) -> String {
    assert!(
        !database_exists(target_name).await,
        "killed during {phase}: no database may exist under the requested name"
    );
    let leftovers = databases_named(&format!("{target_name}~pgark-")).await;
    assert_eq!(leftovers.len(), 1, "killed during {phase}: {leftovers:?}");
    let (name, comment) = &leftovers[0];
    let comment = comment.as_deref().unwrap_or_default();
    assert!(
        comment.starts_with("pgark: incomplete restore, not a usable database: {"),
        "killed during {phase}: the leftover {name} must say what it is: {comment:?}"
    );
    name.clone()
}

/// SIGKILL during each phase of a `restore --create` (the schema, rows, index builds) leaves no
/// database under the requested name, only a temporary one marked as incomplete; each next
/// restore drops the leftover, saying so, and the last one completes.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_a_create_restore_never_leaves_the_requested_database() {
    let source = large_source("kill_restore").await;
    let role = unique_name("kill_restore_owner");
    source
        .execute(&format!(
            "CREATE INDEX big_filler ON big (filler, id);
             CREATE ROLE {role};
             CREATE TABLE owned (id integer);
             ALTER TABLE owned OWNER TO {role};"
        ))
        .await;
    let (_dest, backup) = dump_to_temp(&source, &["--chunk-size", "256KiB"]).await;
    // The role is missing at restore time, so that the restore creates it in its schema
    // transaction: the point where the first kill holds it.
    source
        .execute(&format!(
            "ALTER TABLE owned OWNER TO CURRENT_USER; DROP ROLE {role};"
        ))
        .await;

    let target_name = unique_name("kill_restore_target");
    let target = server().database(&target_name);
    let temporary_prefix = format!("{target_name}~pgark-");
    let url = target.url();
    let args = [
        "restore",
        path_str(&backup),
        "--target",
        &url,
        "--create",
        "--create-roles",
        "--jobs",
        "2",
    ];

    // During the schema: another session creating the same role (uncommitted) holds the
    // restore's CREATE ROLE.
    let holder = server().database("postgres").client().await;
    holder
        .batch_execute(&format!("BEGIN; CREATE ROLE {role}"))
        .await
        .expect("hold the role");
    let stderr = kill_when(&args, || {
        session_running(&temporary_prefix, "CREATE ROLE%", true)
    })
    .await;
    holder.batch_execute("ROLLBACK").await.expect("release");
    let mut leftover = assert_only_a_marked_leftover(&target_name, "the schema").await;
    assert!(!stderr.contains("error"), "{stderr}");

    // During the rows, then during the index builds: each restore first drops the previous one's
    // leftover and says so.
    // An index build's query sets its memory first (SET ...; CREATE INDEX ...).
    for (phase, query) in [
        ("the rows", "COPY%"),
        ("the index builds", "%CREATE INDEX%"),
    ] {
        let stderr = kill_when(&args, || session_running(&temporary_prefix, query, false)).await;
        assert!(
            stderr.contains(&format!(
                "dropped database {leftover:?}, left by an interrupted restore"
            )),
            "killed during {phase}: the previous leftover is dropped and named:\n{stderr}"
        );
        leftover = assert_only_a_marked_leftover(&target_name, phase).await;
    }

    let run = pgark(&args).await.success();
    assert!(
        run.stderr
            .contains(&format!("dropped database {leftover:?}")),
        "{}",
        run.stderr
    );
    assert!(
        databases_named(&temporary_prefix).await.is_empty(),
        "no temporary database remains"
    );
    let comment = databases_named(&target_name).await;
    assert_eq!(
        comment,
        vec![(target_name.clone(), None)],
        "the mark is gone"
    );
    assert_same_contents(&source, &target).await;
}

/// A restore into an existing database killed midway leaves the database marked: the next
/// restore refuses it and changes nothing, and with --force removes what the killed restore of
/// the same backup created, then restores.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_an_interrupted_restore_marked_is_refused_until_forced() {
    let source = large_source("kill_existing").await;
    let (_dest, backup) = dump_to_temp(&source, &["--chunk-size", "256KiB"]).await;
    let target = server().create_database("kill_existing_target").await;
    target
        .execute(&format!(
            "COMMENT ON DATABASE {} IS 'reporting replica'",
            target.name()
        ))
        .await;
    let url = target.url();
    let args = [
        "restore",
        path_str(&backup),
        "--target",
        &url,
        "--jobs",
        "2",
    ];
    kill_when(&args, || session_running(target.name(), "COPY%", false)).await;

    let objects = user_objects(&target).await;
    assert!(!objects.is_empty(), "the killed restore had created tables");
    let error = pgark(&args).await.failure();
    assert!(
        error.contains("carries the mark of an interrupted restore (backup "),
        "{error}"
    );
    assert!(error.contains("--force"), "{error}");
    assert_eq!(user_objects(&target).await, objects, "nothing changed");
    let error = restore(&backup, &url, &["--create"]).await.failure();
    assert!(
        error.contains("is what an interrupted restore left"),
        "{error}"
    );

    let mut forced = args.to_vec();
    forced.push("--force");
    let run = pgark(&forced).await.success();
    assert!(
        run.stderr.contains("although an interrupted restore"),
        "{}",
        run.stderr
    );
    assert_same_contents(&source, &target).await;
    assert_eq!(
        databases_named(target.name()).await,
        vec![(
            target.name().to_owned(),
            Some("reporting replica".to_owned())
        )],
        "the database's own comment is back"
    );
}

/// The pid of a backend running a COPY on a database whose name starts with `database`, if one
/// is.
async fn copying_backend(database: &str) -> Option<i32> {
    let client = server().database("postgres").client().await;
    client
        .query_opt(
            "SELECT pid FROM pg_catalog.pg_stat_activity \
             WHERE starts_with(datname, $1) AND state = 'active' AND query LIKE 'COPY%' LIMIT 1",
            &[&database],
        )
        .await
        .expect("query pg_stat_activity")
        .map(|r| r.get(0))
}

/// Starts `pgark args` and waits until it runs a COPY on `database`; returns the child and the
/// COPY's backend pid.
async fn start_until_copying(args: &[&str], database: &str) -> (tokio::process::Child, i32) {
    start_until(args, || copying_backend(database)).await
}

/// Ends a server session the way an administrator (or a failover) does.
async fn terminate_backend(pid: i32) {
    let admin = server().database("postgres").client().await;
    let terminated: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .expect("pg_terminate_backend")
        .get(0);
    assert!(terminated, "backend {pid} was not terminated");
}

/// A server process stopped with SIGSTOP, continued again when dropped (whatever the test's
/// outcome).
struct Stopped(i32);

impl Stopped {
    fn new(pid: i32) -> Stopped {
        signal(pid, "-STOP");
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

fn signal(pid: i32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid}");
}

/// Waits for a child that must end by itself, failing (rather than hanging the suite) if it
/// does not within `limit`.
async fn output_within(child: tokio::process::Child, limit: std::time::Duration) -> Run {
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("pgark still runs after {limit:?}: it hangs"))
        .expect("wait for pgark");
    Run {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A worker's backend stopped with SIGSTOP in the middle of a COPY still answers TCP keepalives
/// (its kernel does); the stall timeout notices that no data comes, and the dump fails naming
/// what stalled and leaves no backup.
#[tokio::test(flavor = "multi_thread")]
async fn a_dump_from_a_stopped_backend_fails_after_the_stall_timeout() {
    let source = large_source("stall_dump").await;
    let dest = tempfile::tempdir().expect("temp dir");
    let out = dest.path().join("backups");
    let url = source.url();
    let args = [
        "dump",
        &url,
        path_str(&out),
        "--chunk-size",
        "256KiB",
        "--jobs",
        "1",
        "--stall-timeout",
        "2s",
    ];
    let (child, pid) = start_until_copying(&args, source.name()).await;
    let stopped = Stopped::new(pid);
    let run = output_within(child, std::time::Duration::from_secs(120)).await;
    drop(stopped);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let error = run.failure();
    assert!(
        error.contains("the PostgreSQL server sent nothing for 2s while copying table public.big"),
        "{error}"
    );
    assert!(error.contains("--stall-timeout"), "{error}");
    assert!(
        files_under(&out).is_empty(),
        "the failed dump removed what it wrote: {:?}",
        files_under(&out)
    );
}

/// A worker terminated by `pg_terminate_backend` mid-piece: the piece is read again by a new
/// session in the same snapshot (rows committed since are not in the backup), the dump completes,
/// the backup restores to the snapshot's contents, and the metrics file counts the retry.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_terminated_mid_piece_is_retried_in_the_same_snapshot() {
    let source = large_source("retry_dump").await;
    let dest = tempfile::tempdir().expect("temp dir");
    let out = dest.path().join("backups");
    let metrics = dest.path().join("pgark.prom");
    let url = source.url();
    let args = [
        "dump",
        &url,
        path_str(&out),
        "--chunk-size",
        "256KiB",
        "--jobs",
        "2",
        "--metrics-file",
        path_str(&metrics),
    ];
    let (child, pid) = start_until_copying(&args, source.name()).await;
    terminate_backend(pid).await;
    // Committed after the snapshot: not part of the backup, retry or not.
    source
        .execute("INSERT INTO big SELECT g, 'late' FROM generate_series(700001, 700100) g")
        .await;
    let run = output_within(child, std::time::Duration::from_secs(300)).await;
    let run = run.success();
    assert!(
        run.stderr
            .contains("trying again on a new session in the same snapshot (1 of 3)"),
        "{}",
        run.stderr
    );
    let metrics = std::fs::read_to_string(&metrics).expect("read the metrics file");
    assert!(
        metrics.contains(&format!(
            "pgark_dump_retries{{database=\"{}\"}} 1\n",
            source.name()
        )),
        "{metrics}"
    );

    source
        .execute("DELETE FROM big WHERE filler = 'late'")
        .await;
    let latest = format!("{}/latest", path_str(&out));
    restore_into_new_and_compare(&latest, &source, "retry_dump_target").await;
}

/// A restore session terminated in the middle of loading a table: the unit, not yet committed,
/// is loaded again on a new session, and the restore completes with every row once.
#[tokio::test(flavor = "multi_thread")]
async fn a_restore_session_terminated_mid_load_is_replaced_and_the_unit_loaded_again() {
    let source = large_source("retry_restore").await;
    let (_dest, backup) = dump_to_temp(&source, &["--chunk-size", "256KiB"]).await;
    let target_name = unique_name("retry_restore_target");
    let target = server().database(&target_name);
    let url = target.url();
    let args = [
        "restore",
        path_str(&backup),
        "--target",
        &url,
        "--create",
        "--jobs",
        "2",
    ];
    let (child, pid) = start_until_copying(&args, &format!("{target_name}~pgark-")).await;
    terminate_backend(pid).await;
    let run = output_within(child, std::time::Duration::from_secs(300))
        .await
        .success();
    // Lost mid-COPY, the unit runs again; lost with its COMMIT unanswered, the server is asked
    // how the transaction ended (and the unit runs again only if it was rolled back).
    assert!(
        run.stderr
            .contains("running it again on a new session (1 of 3)")
            || run.stderr.contains("its transaction had committed"),
        "{}",
        run.stderr
    );
    assert_same_contents(&source, &target).await;
}

/// The last stderr line of a `--log-format json` run: the error that ended it.
fn json_error(stderr: &str) -> serde_json::Value {
    let line = stderr.lines().last().unwrap_or_else(|| panic!("no stderr"));
    let event: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(event["level"], "ERROR", "{line}");
    event
}

/// Each class of failure has its exit code, and `--log-format json` names the class, so a wrapper
/// can tell a failure worth retrying later (`transient`) from one that needs a person.
#[tokio::test(flavor = "multi_thread")]
async fn every_class_of_failure_has_its_exit_code_and_its_class() {
    let source = large_source("classes").await;
    let (_dest, backup) = dump_to_temp(&source, &["--chunk-size", "256KiB"]).await;
    let backup = path_str(&backup).to_owned();
    let json = ["--log-format", "json"];
    let run_json = |args: Vec<String>| async move {
        let mut all: Vec<&str> = json.to_vec();
        all.extend(args.iter().map(String::as_str));
        let run = pgark(&all).await;
        let event = json_error(&run.stderr);
        (
            run.status.code(),
            event["class"].as_str().unwrap_or("").to_owned(),
            run.stderr,
        )
    };
    let strings = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();

    // The command line itself is wrong: clap's usage error.
    let run = pgark(&["restore", &backup, "--conflict", "sometimes"]).await;
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);

    // What was asked for does not exist in the backup.
    let target = server().create_database("classes_request").await;
    let (code, class, stderr) = run_json(strings(&[
        "restore",
        &backup,
        "--target",
        &target.url(),
        "--table",
        "no_such_table",
    ]))
    .await;
    assert_eq!((code, class.as_str()), (Some(1), "request"), "{stderr}");

    // The target refuses: it is not empty.
    target.execute("CREATE TABLE occupied (x integer)").await;
    let (code, class, stderr) =
        run_json(strings(&["restore", &backup, "--target", &target.url()])).await;
    assert_eq!((code, class.as_str()), (Some(1), "refused"), "{stderr}");

    // The server never answers: worth retrying later.
    let address = silent_endpoint();
    let url = format!(
        "postgres://app@{}:{}/prod?connect_timeout=1&sslmode=disable",
        address.ip(),
        address.port()
    );
    let out = tempfile::tempdir().expect("temp dir");
    let (code, class, stderr) = run_json(strings(&["dump", &url, path_str(out.path())])).await;
    assert_eq!((code, class.as_str()), (Some(1), "transient"), "{stderr}");

    // A damaged backup: a restore fails on it, `verify` reports it as a failed check.
    let manifest = read_manifest(Path::new(&backup));
    let chunk = &manifest["tables"][0]["chunks"][0];
    let object = Path::new(&backup).join(chunk["object"].as_str().expect("object"));
    let mut bytes = std::fs::read(&object).expect("read data object");
    let middle =
        chunk["offset"].as_u64().expect("offset") + chunk["length"].as_u64().expect("length") / 2;
    bytes[usize::try_from(middle).expect("fits")] ^= 0x40;
    std::fs::write(&object, bytes).expect("damage the object");
    let fresh = unique_name("classes_damaged");
    let (code, class, stderr) = run_json(strings(&[
        "restore",
        &backup,
        "--target",
        &server().database(&fresh).url(),
        "--create",
    ]))
    .await;
    assert_eq!((code, class.as_str()), (Some(1), "damaged"), "{stderr}");
    let (code, class, stderr) = run_json(strings(&["verify", &backup])).await;
    assert_eq!((code, class.as_str()), (Some(3), "check"), "{stderr}");

    // Anything else: a destination below a plain file cannot be used.
    let file = out.path().join("plain-file");
    std::fs::write(&file, b"").expect("write a file");
    let below = file.join("backups");
    let (code, class, stderr) = run_json(strings(&["ls", path_str(&below)])).await;
    assert_eq!((code, class.as_str()), (Some(1), "failed"), "{stderr}");

    // Interrupted (130, `interrupted`): see sigterm_during_a_dump_leaves_no_backup_behind.
}
