//! Surgical restore: one table, or some rows of it, put back into a live database in one
//! transaction. The live database is the dumped source itself, damaged after the dump.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use pgark_testkit::{TestDb, server};

/// A small shop: customers, tasks (foreign key to customers, an audit trigger, a jsonb column),
/// comments (foreign key to tasks, cascading), and the audit table the trigger writes.
async fn shop(prefix: &str) -> TestDb {
    let db = server().create_database(prefix).await;
    db.execute(
        "CREATE SCHEMA app;
         CREATE TABLE app.customers (id serial PRIMARY KEY, name text NOT NULL);
         CREATE TABLE app.tasks (
             id bigserial PRIMARY KEY,
             customer_id integer NOT NULL REFERENCES app.customers (id),
             title text NOT NULL,
             done boolean NOT NULL DEFAULT false,
             data jsonb);
         CREATE TABLE app.audit (id bigserial PRIMARY KEY, task_id bigint, op text);
         CREATE FUNCTION app.audit_task() RETURNS trigger LANGUAGE plpgsql AS
             $$BEGIN INSERT INTO app.audit (task_id, op) VALUES (NEW.id, TG_OP); RETURN NEW; END$$;
         CREATE TRIGGER tasks_audit AFTER INSERT OR UPDATE ON app.tasks
             FOR EACH ROW EXECUTE FUNCTION app.audit_task();
         CREATE TABLE app.comments (
             id serial PRIMARY KEY,
             task_id bigint NOT NULL REFERENCES app.tasks (id) ON DELETE CASCADE,
             body text);
         INSERT INTO app.customers (name) SELECT 'customer ' || g FROM generate_series(1, 10) g;
         INSERT INTO app.tasks (customer_id, title, done, data)
             SELECT 1 + g % 10, 'task ' || g, g % 3 = 0, jsonb_build_object('n', g)
             FROM generate_series(1, 1000) g;
         INSERT INTO app.comments (task_id, body) SELECT g, 'comment on ' || g FROM generate_series(1, 100) g;",
    )
    .await;
    db
}

/// Runs `pgark restore BACKUP --target DB ARGS...`.
async fn restore(backup: &Path, db: &TestDb, args: &[&str]) -> Run {
    common::restore(backup, &db.url(), args).await
}

/// The report line of `table`, e.g. `app.tasks: 3 backup rows selected, 3 inserted, ...`.
fn report_line<'a>(run: &'a Run, table: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| l.starts_with(&format!("{table}:")) || l.starts_with(&format!("{table} (")))
        .unwrap_or_else(|| panic!("no report line for {table}:\n{}", run.stdout))
}

/// The counts in a report line: "inserted" → 3, ...
fn counts(line: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    let words: Vec<&str> = line
        .split(|c: char| c == ',' || c == ';' || c == ':' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    for pair in words.windows(2) {
        if let Ok(n) = pair[0].parse::<u64>() {
            counts.insert(pair[1].to_owned(), n);
        }
    }
    counts
}

/// `chunks read X of Y` of a report line.
fn chunks_read(line: &str) -> (usize, usize) {
    let rest = line
        .split("chunks read ")
        .nth(1)
        .unwrap_or_else(|| panic!("no chunk count in {line}"));
    let mut numbers = rest.split(" of ").map(|n| {
        n.split_whitespace()
            .next()
            .unwrap_or_default()
            .parse::<usize>()
    });
    match (numbers.next(), numbers.next()) {
        (Some(Ok(read)), Some(Ok(total))) => (read, total),
        _ => panic!("bad chunk count in {line}"),
    }
}

async fn query_strings(db: &TestDb, sql: &str) -> Vec<String> {
    db.client()
        .await
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Asserts that everything but `except` (tables, and sequences named after them) is the same.
fn assert_same_except(before: &Contents, after: &Contents, except: &[&str]) {
    let skip = |name: &String| except.iter().any(|e| name.starts_with(e));
    for (table, rows) in &before.rows {
        if !skip(table) {
            assert_eq!(after.rows.get(table), Some(rows), "rows of {table} differ");
        }
    }
    assert_eq!(
        before.rows.keys().collect::<Vec<_>>(),
        after.rows.keys().collect::<Vec<_>>(),
        "tables differ"
    );
    for (sequence, state) in &before.sequences {
        if !skip(sequence) {
            assert_eq!(
                after.sequences.get(sequence),
                Some(state),
                "{sequence} differs"
            );
        }
    }
    assert_eq!(before.columns, after.columns, "columns differ");
    assert_eq!(before.constraints, after.constraints, "constraints differ");
    assert_eq!(before.indexes, after.indexes, "indexes differ");
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_deleted_by_mistake_are_put_back_exactly_and_nothing_else_changes() {
    let db = shop("runbook").await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    let original = contents(&db).await;
    db.execute("DELETE FROM app.tasks WHERE id IN (500, 501, 502)")
        .await;

    let run = restore(
        &backup,
        &db,
        &["--table", "app.tasks", "--where", "id IN (500, 501, 502)"],
    )
    .await
    .success();
    let line = report_line(&run, "app.tasks");
    let c = counts(line);
    assert_eq!(c["inserted"], 3, "{line}");
    assert_eq!(c["updated"] + c["skipped"] + c["deleted"], 0, "{line}");

    // Exactly the deleted rows are back; every other table and row is as before.
    let restored = contents(&db).await;
    assert_same_except(&original, &restored, &["app.audit"]);
    // Triggers fired (the default): the audit table saw the three inserts and nothing else.
    assert_eq!(
        query_strings(
            &db,
            "SELECT op || ' ' || task_id FROM app.audit WHERE id > 1000 ORDER BY task_id"
        )
        .await,
        vec!["INSERT 500", "INSERT 501", "INSERT 502"]
    );
    assert_eq!(query_i64(&db, "SELECT count(*) FROM app.audit").await, 1003);
}

#[tokio::test(flavor = "multi_thread")]
async fn disable_triggers_keeps_triggers_from_firing() {
    let db = shop("no_triggers").await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    let original = contents(&db).await;
    db.execute("DELETE FROM app.tasks WHERE id = 700").await;
    restore(
        &backup,
        &db,
        &[
            "--table",
            "app.tasks",
            "--where",
            "id = 700",
            "--disable-triggers",
        ],
    )
    .await
    .success();
    assert_same_except(&original, &contents(&db).await, &[]);
}

/// The target for the conflict tests: rows 10 and 11 differ from the backup, 12 and 13 are
/// missing, 14 is as in the backup. The restore selects 10..14.
async fn damaged_shop(prefix: &str) -> (TestDb, tempfile::TempDir, std::path::PathBuf) {
    let db = shop(prefix).await;
    let (dest, backup) = dump_to_temp(&db, &[]).await;
    db.execute(
        "UPDATE app.tasks SET title = 'changed', data = NULL WHERE id IN (10, 11);
         DELETE FROM app.tasks WHERE id IN (12, 13);",
    )
    .await;
    (db, dest, backup)
}

const TEN_TO_FOURTEEN: &str = "id BETWEEN 10 AND 14";

#[tokio::test(flavor = "multi_thread")]
async fn conflict_error_fails_on_existing_rows_and_changes_nothing() {
    let (db, _dest, backup) = damaged_shop("conflict_error").await;
    let before = contents(&db).await;
    let error = restore(
        &backup,
        &db,
        &["--table", "app.tasks", "--where", TEN_TO_FOURTEEN],
    )
    .await
    .failure();
    assert!(error.contains("duplicate key"), "{error}");
    assert!(
        error.contains("already exist in table app.tasks"),
        "{error}"
    );
    assert!(error.contains("--conflict skip"), "{error}");
    assert!(error.contains("rolled back"), "{error}");
    assert_eq!(contents(&db).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn conflict_skip_inserts_missing_rows_and_keeps_existing_ones() {
    let (db, _dest, backup) = damaged_shop("conflict_skip").await;
    let run = restore(
        &backup,
        &db,
        &[
            "--table",
            "app.tasks",
            "--where",
            TEN_TO_FOURTEEN,
            "--conflict",
            "skip",
        ],
    )
    .await
    .success();
    let c = counts(report_line(&run, "app.tasks"));
    assert_eq!(
        (c["inserted"], c["updated"], c["skipped"], c["deleted"]),
        (2, 0, 3, 0)
    );
    assert_eq!(
        query_strings(
            &db,
            "SELECT title FROM app.tasks WHERE id BETWEEN 10 AND 14 ORDER BY id"
        )
        .await,
        vec!["changed", "changed", "task 12", "task 13", "task 14"]
    );
    assert!(!run.stdout.contains("before-image"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn conflict_upsert_updates_differing_rows_inserts_missing_ones_and_can_be_undone() {
    let (db, _dest, backup) = damaged_shop("conflict_upsert").await;
    let before = contents(&db).await;
    let run = restore(
        &backup,
        &db,
        &[
            "--table",
            "app.tasks",
            "--where",
            TEN_TO_FOURTEEN,
            "--conflict",
            "upsert",
        ],
    )
    .await
    .success();
    let c = counts(report_line(&run, "app.tasks"));
    // 14 is identical, so it is left alone rather than rewritten.
    assert_eq!(
        (c["inserted"], c["updated"], c["skipped"], c["deleted"]),
        (2, 2, 1, 0)
    );
    assert_eq!(
        query_strings(&db, "SELECT title || ' ' || data::text FROM app.tasks WHERE id BETWEEN 10 AND 14 ORDER BY id").await,
        vec![
            "task 10 {\"n\": 10}",
            "task 11 {\"n\": 11}",
            "task 12 {\"n\": 12}",
            "task 13 {\"n\": 13}",
            "task 14 {\"n\": 14}"
        ]
    );
    undo_and_compare(&db, &run, &before).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn conflict_replace_deletes_matching_rows_then_inserts_and_can_be_undone() {
    let (db, _dest, backup) = damaged_shop("conflict_replace").await;
    // A row in the selected range that the backup does not have: replace removes it.
    db.execute(
        "INSERT INTO app.customers (id, name) VALUES (99, 'new');
         INSERT INTO app.tasks (id, customer_id, title) VALUES (1001, 99, 'new task');",
    )
    .await;
    let before = contents(&db).await;
    let run = restore(
        &backup,
        &db,
        &[
            "--table",
            "app.tasks",
            "--where",
            "id BETWEEN 10 AND 14 OR id > 1000",
            "--conflict",
            "replace",
        ],
    )
    .await
    .success();
    let c = counts(report_line(&run, "app.tasks"));
    // Deleted: 1001; overwritten in place: 10, 11 (14 is identical); inserted: 12, 13.
    assert_eq!(
        (c["inserted"], c["updated"], c["skipped"], c["deleted"]),
        (2, 2, 1, 1)
    );
    assert_eq!(
        query_strings(
            &db,
            "SELECT title FROM app.tasks WHERE id BETWEEN 10 AND 14 OR id > 1000 ORDER BY id"
        )
        .await,
        vec!["task 10", "task 11", "task 12", "task 13", "task 14"]
    );
    // Rows put back in place keep the rows that reference them (no cascade).
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM app.comments WHERE task_id IN (10, 11, 14)"
        )
        .await,
        3
    );
    // The undo puts back row 1001, which was inserted without the sequence, and the sequence
    // where the before-image recorded it: exactly as before the restore.
    undo_and_compare_except(&db, &run, &before, &["app.audit"]).await;
    assert_eq!(
        query_i64(&db, "SELECT nextval('app.tasks_id_seq')").await,
        1001
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn conflict_replace_without_where_replaces_the_whole_table() {
    let db = server().create_database("replace_all").await;
    db.execute("CREATE TABLE public.flags (name text, value boolean); INSERT INTO public.flags VALUES ('a', true), ('b', false);")
        .await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    db.execute("DELETE FROM public.flags WHERE name = 'a'; INSERT INTO public.flags VALUES ('c', true), ('c', true);")
        .await;
    let before = contents(&db).await;
    let run = restore(&backup, &db, &["--table", "flags", "--conflict", "replace"])
        .await
        .success();
    let c = counts(report_line(&run, "public.flags"));
    assert_eq!((c["inserted"], c["deleted"]), (2, 3));
    assert_eq!(
        query_strings(&db, "SELECT name || value FROM public.flags ORDER BY 1").await,
        vec!["afalse".replace("false", "true"), "bfalse".to_owned()]
    );
    undo_and_compare(&db, &run, &before).await;
}

/// Runs the undo command the restore printed and checks that the restored table is back to
/// `before` (the audit trigger's table aside, which the undo's own writes add to).
async fn undo_and_compare(db: &TestDb, run: &Run, before: &Contents) {
    undo_and_compare_except(db, run, before, &["app.audit"]).await;
}

async fn undo_and_compare_except(db: &TestDb, run: &Run, before: &Contents, except: &[&str]) {
    let mut lines = run.stdout.lines();
    assert!(
        lines.any(|l| l.starts_with("before-image saved to ")),
        "{}",
        run.stdout
    );
    let command = lines
        .next()
        .map(str::trim)
        .filter(|l| l.starts_with("pgark restore "))
        .unwrap_or_else(|| panic!("no undo command in:\n{}", run.stdout));
    assert!(command.contains("--conflict replace"), "{command}");
    let shell = format!(
        "exec {} {}",
        env!("CARGO_BIN_EXE_pgark"),
        command.trim_start_matches("pgark ")
    );
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&shell)
        .env_remove("PGHOST")
        .output()
        .await
        .expect("run the undo command");
    assert!(
        output.status.success(),
        "undo failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let after = contents(db).await;
    assert_same_except(before, &after, except);
}

/// Asserts `after` equals `before` except that the audit trigger's sequence may have advanced:
/// the trigger ran inside the rolled-back transaction, and PostgreSQL never rolls back `nextval`.
fn assert_unchanged_but_trigger_sequence(before: &Contents, after: &Contents) {
    let mut after = Contents {
        rows: after.rows.clone(),
        sequences: after.sequences.clone(),
        columns: after.columns.clone(),
        constraints: after.constraints.clone(),
        indexes: after.indexes.clone(),
        large_objects: after.large_objects.clone(),
    };
    let audit = "app.audit_id_seq".to_owned();
    let last_value = |state: &str| -> i64 {
        state
            .split("last_value=")
            .nth(1)
            .and_then(|v| v.split(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no last_value in {state}"))
    };
    assert!(last_value(&after.sequences[&audit]) >= last_value(&before.sequences[&audit]));
    after
        .sequences
        .insert(audit.clone(), before.sequences[&audit].clone());
    assert_eq!(&after, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_without_triggers_leaves_the_target_exactly_unchanged() {
    let (db, _dest, backup) = damaged_shop("dry_run_exact").await;
    db.execute("SELECT setval('app.tasks_id_seq', 5)").await;
    let before = contents(&db).await;
    let run = restore(
        &backup,
        &db,
        &[
            "--table",
            "app.tasks",
            "--where",
            TEN_TO_FOURTEEN,
            "--conflict",
            "replace",
            "--dry-run",
            "--disable-triggers",
        ],
    )
    .await
    .success();
    let c = counts(report_line(&run, "app.tasks"));
    assert_eq!(
        (c["inserted"], c["updated"], c["skipped"], c["deleted"]),
        (2, 2, 1, 0)
    );
    assert_eq!(contents(&db).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_reports_what_it_would_do_and_leaves_the_target_unchanged() {
    let (db, dest, backup) = damaged_shop("dry_run").await;
    // A sequence behind the table's keys would be moved; in a dry run it must not be.
    db.execute("SELECT setval('app.tasks_id_seq', 5)").await;
    let before = contents(&db).await;
    let run = restore(
        &backup,
        &db,
        &[
            "--table",
            "app.tasks",
            "--where",
            TEN_TO_FOURTEEN,
            "--conflict",
            "upsert",
            "--dry-run",
        ],
    )
    .await
    .success();
    let c = counts(report_line(&run, "app.tasks"));
    assert_eq!((c["inserted"], c["updated"], c["skipped"]), (2, 2, 1));
    assert!(
        run.stdout.contains("would be moved to 1000"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("dry run: rolled back"),
        "{}",
        run.stdout
    );
    assert_unchanged_but_trigger_sequence(&before, &contents(&db).await);
    // No before-image for a dry run.
    assert!(!dest.path().join("before-images").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn owned_sequences_move_past_restored_keys() {
    let db = shop("sequences").await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    db.execute("DELETE FROM app.tasks WHERE id > 990; SELECT setval('app.tasks_id_seq', 990)")
        .await;
    let run = restore(
        &backup,
        &db,
        &["--table", "app.tasks", "--where", "id > 990"],
    )
    .await
    .success();
    assert!(
        run.stdout
            .contains("sequence app.tasks_id_seq moved to 1000"),
        "{}",
        run.stdout
    );
    assert_eq!(
        query_i64(&db, "SELECT nextval('app.tasks_id_seq')").await,
        1001
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_violating_a_foreign_key_fail_the_restore_and_change_nothing() {
    let db = shop("fk_violation").await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    // The tasks go, and with them (cascade) their comments; restoring only the comments fails.
    db.execute("DELETE FROM app.tasks WHERE id IN (1, 2, 3)")
        .await;
    let before = contents(&db).await;
    let error = restore(
        &backup,
        &db,
        &["--table", "app.comments", "--where", "task_id IN (1, 2, 3)"],
    )
    .await
    .failure();
    assert!(error.contains("foreign key constraint"), "{error}");
    assert!(error.contains("comments_task_id_fkey"), "{error}");
    assert!(error.contains("the target was not changed"), "{error}");
    assert_eq!(contents(&db).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_held_by_another_session_times_out_and_changes_nothing() {
    let db = shop("lock_timeout").await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    db.execute("DELETE FROM app.tasks WHERE id = 42").await;
    let before = contents(&db).await;
    let holder = db.client().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE app.tasks IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("hold the lock");
    let error = restore(
        &backup,
        &db,
        &[
            "--table",
            "app.tasks",
            "--where",
            "id = 42",
            "--lock-timeout",
            "500ms",
        ],
    )
    .await
    .failure();
    assert!(error.contains("could not lock app.tasks"), "{error}");
    assert!(error.contains("--lock-timeout"), "{error}");
    holder.batch_execute("ROLLBACK").await.expect("release");
    assert_eq!(contents(&db).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_connection_fails_the_restore_and_changes_nothing() {
    let db = shop("killed").await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    // A trigger that waits for an advisory lock the test holds: the restore stops inside its
    // transaction, after writing, until the test lets it go.
    db.execute(
        "DELETE FROM app.tasks WHERE id IN (7, 8);
         CREATE FUNCTION app.wait_for_test() RETURNS trigger LANGUAGE plpgsql AS
             $$BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NEW; END$$;
         CREATE TRIGGER tasks_wait AFTER INSERT ON app.tasks FOR EACH ROW EXECUTE FUNCTION app.wait_for_test();",
    )
    .await;
    let before = contents(&db).await;
    let holder = db.client().await;
    holder
        .batch_execute("SELECT pg_advisory_lock(4242)")
        .await
        .expect("take the advisory lock");
    let url = db.url();
    let path = path_str(&backup).to_owned();
    let running = tokio::spawn(async move {
        pgark(&[
            "restore",
            &path,
            "--target",
            &url,
            "--table",
            "app.tasks",
            "--where",
            "id IN (7, 8)",
        ])
        .await
    });
    // Wait until the restore's session is blocked on the advisory lock, then kill it.
    let watcher = db.client().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let pid: i32 = loop {
        let row = watcher
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock' AND wait_event = 'advisory' AND application_name = 'pgark'",
                &[],
            )
            .await
            .expect("read pg_stat_activity");
        if let Some(row) = row {
            break row.get(0);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the restore never reached the trigger"
        );
        assert!(
            !running.is_finished(),
            "the restore finished without waiting"
        );
        tokio::task::yield_now().await;
    };
    watcher
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .expect("terminate the restore's session");
    let run = running.await.expect("restore task");
    holder
        .batch_execute("SELECT pg_advisory_unlock(4242)")
        .await
        .expect("release");
    let error = run.failure();
    assert!(error.contains("terminating connection"), "{error}");
    assert!(error.contains("app.tasks"), "{error}");
    assert_unchanged_but_trigger_sequence(&before, &contents(&db).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_limited_restore_reads_only_the_chunks_that_can_match() {
    let db = server().create_database("pruning").await;
    db.execute(
        "CREATE TABLE public.big (id bigint PRIMARY KEY, payload text);
         INSERT INTO public.big SELECT g, md5(g::text) FROM generate_series(1, 100000) g;",
    )
    .await;
    let (_dest, backup) = dump_to_temp(&db, &["--chunk-size", "64KiB"]).await;
    db.execute("DELETE FROM public.big WHERE id BETWEEN 50000 AND 50009")
        .await;
    let before_delete_count = 100000 - 10;
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM public.big").await,
        before_delete_count
    );

    let manifest = read_manifest(&backup);
    let chunks = manifest["tables"][0]["chunks"].as_array().expect("chunks");
    let overlapping = chunks
        .iter()
        .filter(|c| {
            let min: i64 = c["key_range"]["min"]
                .as_str()
                .expect("min")
                .parse()
                .expect("int");
            let max: i64 = c["key_range"]["max"]
                .as_str()
                .expect("max")
                .parse()
                .expect("int");
            min <= 50009 && 50000 <= max
        })
        .count();
    assert!(
        chunks.len() > 20,
        "expected many chunks, got {}",
        chunks.len()
    );

    let run = restore(
        &backup,
        &db,
        &["--table", "big", "--where", "id BETWEEN 50000 AND 50009"],
    )
    .await
    .success();
    let line = report_line(&run, "public.big");
    assert_eq!(chunks_read(line), (overlapping, chunks.len()), "{line}");
    assert!(overlapping <= 2, "{line}");
    assert_eq!(counts(line)["inserted"], 10, "{line}");
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM public.big").await,
        100000
    );

    // A predicate pgark cannot read as a key range fetches every chunk; the server still filters.
    db.execute("DELETE FROM public.big WHERE id = 77").await;
    let run = restore(
        &backup,
        &db,
        &["--table", "big", "--where", "id = 77 OR payload = 'none'"],
    )
    .await
    .success();
    let line = report_line(&run, "public.big");
    assert_eq!(chunks_read(line), (chunks.len(), chunks.len()), "{line}");
    assert_eq!(counts(line)["inserted"], 1, "{line}");
}

/// Customers 3 and 7, deleted by mistake, and everything the delete did through foreign keys.
const PUT_BACK_CUSTOMERS_3_AND_7: [&str; 5] = [
    "--table",
    "customer",
    "--where",
    "id IN (3, 7)",
    "--with-referencing",
];

/// Customers, their rentals, payments (referencing both), refunds, reviews (SET NULL), audits
/// (NO ACTION) and notes with replies to notes (CASCADE to itself).
async fn cascade_shop(prefix: &str) -> TestDb {
    let db = server().create_database(prefix).await;
    db.execute(
        "CREATE TABLE customer (id integer PRIMARY KEY, name text NOT NULL);
         CREATE TABLE rental (id integer PRIMARY KEY,
             customer_id integer NOT NULL REFERENCES customer ON DELETE CASCADE, film text);
         CREATE TABLE payment (id integer PRIMARY KEY,
             rental_id integer NOT NULL REFERENCES rental ON DELETE CASCADE,
             customer_id integer NOT NULL REFERENCES customer ON DELETE CASCADE, amount numeric);
         CREATE TABLE refund (id integer PRIMARY KEY,
             payment_id integer NOT NULL REFERENCES payment ON DELETE CASCADE, reason text);
         CREATE TABLE review (id integer PRIMARY KEY,
             customer_id integer REFERENCES customer ON DELETE SET NULL, body text);
         CREATE TABLE audit (id integer PRIMARY KEY,
             customer_id integer REFERENCES customer ON DELETE NO ACTION DEFERRABLE, note text);
         CREATE TABLE note (id integer PRIMARY KEY,
             rental_id integer REFERENCES rental ON DELETE CASCADE,
             reply_to integer REFERENCES note ON DELETE CASCADE, body text);
         INSERT INTO customer SELECT g, 'customer ' || g FROM generate_series(1, 20) g;
         INSERT INTO rental SELECT g, g % 20 + 1, 'film ' || g FROM generate_series(1, 100) g;
         INSERT INTO payment SELECT g, g % 100 + 1, (g % 100) % 20 + 1, g * 1.5
           FROM generate_series(1, 200) g;
         INSERT INTO refund SELECT g, g * 2, 'reason ' || g FROM generate_series(1, 100) g;
         INSERT INTO review SELECT g, g % 20 + 1, 'review ' || g FROM generate_series(1, 50) g;
         INSERT INTO audit SELECT g, g % 20 + 1, 'audit ' || g FROM generate_series(1, 10) g
           WHERE g % 20 + 1 NOT IN (3, 7);
         -- Notes on rentals, and replies to them (and replies to replies) with no rental:
         -- the delete took the replies through the note's own foreign key.
         INSERT INTO note SELECT g, g, NULL, 'note ' || g FROM generate_series(1, 100) g;
         INSERT INTO note SELECT 100 + g, NULL, g, 'reply ' || g FROM generate_series(1, 100) g;
         INSERT INTO note SELECT 200 + g, NULL, 100 + g, 'reply to reply ' || g
           FROM generate_series(1, 100) g;",
    )
    .await;
    db
}

/// `DELETE FROM customer` cascaded three levels down (rental → payment → refund; payment also
/// references customer directly) and cleared the customer key of reviews (SET NULL).
/// `--with-referencing` puts all of it back: the dry run lists the closure and changes nothing,
/// the restore leaves the database equal to its pre-incident copy.
#[tokio::test(flavor = "multi_thread")]
async fn a_cascaded_delete_is_put_back_whole_with_referencing_rows() {
    let db = cascade_shop("cascade").await;
    let before = contents(&db).await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    db.execute("DELETE FROM customer WHERE id IN (3, 7)").await;
    let incident = contents(&db).await;
    assert_ne!(incident, before);
    let lost = |table: &str| {
        let key = format!("public.{table}");
        (before.rows[&key].0 - incident.rows[&key].0) as u64
    };

    let args = PUT_BACK_CUSTOMERS_3_AND_7;
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let run = restore(&backup, &db, &dry).await.success();
    assert_eq!(contents(&db).await, incident, "a dry run changes nothing");
    for table in ["rental", "payment", "refund", "note"] {
        let line = report_line(&run, &format!("public.{table}"));
        assert!(lost(table) > 0, "{table}");
        assert_eq!(counts(line)["inserted"], lost(table), "{line}");
    }
    assert_eq!(counts(report_line(&run, "public.review"))["updated"], 6);
    assert!(
        run.stdout.contains(
            "through foreign key payment_customer_id_fkey to public.customer, ON DELETE CASCADE"
        ) && run.stdout.contains(
            "through foreign key payment_rental_id_fkey to public.rental, ON DELETE CASCADE"
        ),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("public.audit"),
        "NO ACTION keys are not followed: {}",
        run.stdout
    );

    let run = restore(&backup, &db, &args).await.success();
    assert_eq!(counts(report_line(&run, "public.customer"))["inserted"], 2);
    assert_eq!(contents(&db).await, before);

    // Not with replace, which would delete referencing rows it did not select.
    let mut replace = args.to_vec();
    replace.extend(["--conflict", "replace"]);
    let error = restore(&backup, &db, &replace).await.failure();
    assert!(
        error.contains("--with-referencing cannot be combined"),
        "{error}"
    );
    assert_eq!(contents(&db).await, before);
}

/// A failure in a referencing table (a lock held on it, a row put back that exists again) rolls
/// back everything, the named table's rows included.
#[tokio::test(flavor = "multi_thread")]
async fn a_failure_in_a_referencing_table_changes_nothing() {
    let db = cascade_shop("cascade_failure").await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    // A refund the delete takes (through its payment's customer).
    let refund = query_strings(
        &db,
        "SELECT min(r.id)::text FROM refund r JOIN payment p ON p.id = r.payment_id \
         WHERE p.customer_id IN (3, 7)",
    )
    .await
    .remove(0);
    db.execute("DELETE FROM customer WHERE id IN (3, 7)").await;
    let incident = contents(&db).await;
    let mut args = PUT_BACK_CUSTOMERS_3_AND_7.to_vec();
    args.extend(["--lock-timeout", "500ms"]);

    let holder = db.client().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE refund IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("hold the lock");
    let error = restore(&backup, &db, &args).await.failure();
    assert!(
        error.contains("could not lock") && error.contains("public.refund"),
        "{error}"
    );
    holder.batch_execute("ROLLBACK").await.expect("release");
    assert_eq!(contents(&db).await, incident);

    // A refund the delete took was written again since, by hand: putting it back conflicts.
    db.execute(&format!(
        "INSERT INTO customer VALUES (99, 'new'); INSERT INTO rental VALUES (999, 99, 'x');
         INSERT INTO payment VALUES (999, 999, 99, 1);
         INSERT INTO refund VALUES ({refund}, 999, 'again');"
    ))
    .await;
    let changed = contents(&db).await;
    let error = restore(&backup, &db, &args).await.failure();
    assert!(
        error.contains("rows of the backup already exist in table public.refund"),
        "{error}"
    );
    assert_eq!(contents(&db).await, changed);
}

/// Point lookups by keys that are not one integer column: a composite key whose leading column
/// is not clustered (tenants' rows interleaved at random), a random uuid, a timestamp and a text
/// key. Each reads at most two of many chunks, said in the report, and restores exactly the
/// deleted rows.
#[tokio::test(flavor = "multi_thread")]
async fn point_lookups_by_composite_uuid_timestamp_and_text_keys_read_at_most_two_chunks() {
    let db = server().create_database("key_kinds").await;
    db.execute(
        "CREATE TABLE events (tenant integer, seq integer, body text, PRIMARY KEY (tenant, seq));
         INSERT INTO events SELECT t, s, md5((t * s)::text)
           FROM generate_series(1, 1000) s, generate_series(1, 100) t
           ORDER BY md5((t * 7919 + s)::text);
         CREATE TABLE sessions (id uuid PRIMARY KEY, note text);
         INSERT INTO sessions SELECT md5(g::text)::uuid, md5(g::text)
           FROM generate_series(1, 30000) g;
         CREATE TABLE readings (at timestamptz PRIMARY KEY, value integer);
         INSERT INTO readings SELECT '2024-01-01'::timestamptz + g * interval '1 minute', g
           FROM generate_series(1, 80000) g;
         CREATE TABLE words (code text PRIMARY KEY, meaning text);
         INSERT INTO words SELECT 'w' || lpad(g::text, 6, '0'), md5(g::text)
           FROM generate_series(1, 60000) g;",
    )
    .await;
    let before = contents(&db).await;
    let (_dest, backup) = dump_to_temp(&db, &["--chunk-size", "128KiB"]).await;
    let manifest = read_manifest(&backup);
    let chunk_count = |table: &str| {
        manifest["tables"]
            .as_array()
            .expect("tables")
            .iter()
            .find(|t| t["name"] == table)
            .expect("table")["chunks"]
            .as_array()
            .expect("chunks")
            .len()
    };
    let uuid = query_strings(&db, "SELECT upper(md5('12345')::uuid::text)")
        .await
        .remove(0);
    let cases = [
        (
            "events",
            "DELETE FROM events WHERE tenant = 42 AND seq = 7".to_owned(),
            "tenant = 42 AND seq = 7".to_owned(),
            "key filters",
        ),
        (
            "sessions",
            format!("DELETE FROM sessions WHERE id = '{uuid}'"),
            // Upper case: the server prints it as the dump did.
            format!("id = '{uuid}'"),
            "key filters",
        ),
        (
            "readings",
            "DELETE FROM readings WHERE at = '2024-01-10 12:00:00+00'".to_owned(),
            "at = '2024-01-10 12:00'".to_owned(),
            "key ranges",
        ),
        (
            "words",
            "DELETE FROM words WHERE code IN ('w012345', 'w012346')".to_owned(),
            "code IN ('w012345', 'w012346') AND meaning IS NOT NULL".to_owned(),
            "key ranges",
        ),
    ];
    for (table, delete, predicate, pruned_by) in &cases {
        assert!(chunk_count(table) > 10, "{table}: {}", chunk_count(table));
        db.execute(delete).await;
        let run = restore(&backup, &db, &["--table", table, "--where", predicate])
            .await
            .success();
        let line = report_line(&run, &format!("public.{table}"));
        let (read, total) = chunks_read(line);
        assert!(
            (1..=2).contains(&read) && total == chunk_count(table),
            "{line}"
        );
        assert!(line.contains(&format!("(pruned by {pruned_by})")), "{line}");
        assert!(counts(line)["inserted"] >= 1, "{line}");
    }
    assert_eq!(contents(&db).await, before);

    // `cat --where-key` prunes with the same ranges and filters, printing constants itself.
    for (table, key, expected) in [
        ("sessions", format!("id = '{uuid}'"), 1),
        ("events", "tenant = 42 AND seq IN (7, 8)".to_owned(), 2),
    ] {
        let run = pgark(&[
            "cat",
            path_str(&backup),
            table,
            "--format",
            "copy",
            "--where-key",
            &key,
        ])
        .await
        .success();
        assert_eq!(
            run.stdout.lines().count(),
            expected,
            "{table}: {}",
            run.stdout
        );
        let log = run
            .stderr
            .lines()
            .find(|l| l.contains("table written"))
            .unwrap_or_else(|| panic!("no summary: {}", run.stderr));
        let read: usize = log
            .split("chunks_read=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no chunks_read in {log}"));
        // Each key's rows are in one chunk; a filter lets through about 2% of the others.
        assert!(read <= expected + 1, "{table}: {log}");
    }

    // Only the leading column of a key whose leading values are spread over every chunk: every
    // chunk is read, and the server picks the rows.
    db.execute("DELETE FROM events WHERE tenant = 7").await;
    let run = restore(
        &backup,
        &db,
        &["--table", "events", "--where", "tenant = 7"],
    )
    .await
    .success();
    let line = report_line(&run, "public.events");
    assert_eq!(chunks_read(line).0, chunk_count("events"), "{line}");
    assert_eq!(counts(line)["inserted"], 1000, "{line}");
    assert_eq!(contents(&db).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn table_patterns_and_exclusions_select_what_a_whole_database_restore_creates() {
    let db = shop("selection").await;
    db.execute(
        "CREATE SCHEMA other; CREATE TABLE other.keep (n int); INSERT INTO other.keep VALUES (1);",
    )
    .await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    let target = server().database(&pgark_testkit::unique_name("selected"));
    restore(
        &backup,
        &target,
        &[
            "--create",
            "--table",
            "app.c*",
            "--exclude-table",
            "app.comments",
        ],
    )
    .await
    .success();
    assert_eq!(
        query_strings(&target, "SELECT oid::regclass::text FROM pg_class WHERE relnamespace IN ('app'::regnamespace, 'other'::regnamespace) AND relkind IN ('r', 'S') ORDER BY 1").await,
        vec!["app.customers", "app.customers_id_seq"]
    );
    assert_eq!(
        query_i64(&target, "SELECT count(*) FROM app.customers").await,
        10
    );
    assert_eq!(
        query_i64(&target, "SELECT count(*) FROM pg_constraint WHERE conrelid = 'app.customers'::regclass AND contype = 'p'").await,
        1
    );

    let target = server().database(&pgark_testkit::unique_name("schema_selected"));
    restore(&backup, &target, &["--create", "--schema", "oth*"])
        .await
        .success();
    assert_eq!(
        query_strings(&target, "SELECT oid::regclass::text FROM pg_class WHERE relkind = 'r' AND relnamespace <> 'pg_catalog'::regnamespace AND relnamespace <> 'information_schema'::regnamespace AND relnamespace::regnamespace::text NOT LIKE 'pg_toast%' ORDER BY 1").await,
        vec!["other.keep"]
    );

    let error = restore(&backup, &target, &["--table", "app.nope*"])
        .await
        .failure();
    assert!(
        error.contains("app.nope*") && error.contains("app.tasks"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn into_schema_and_into_table_restore_beside_the_live_table() {
    let db = shop("into").await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    db.execute("UPDATE app.tasks SET title = 'changed' WHERE id <= 5")
        .await;
    let before = contents(&db).await;
    let run = restore(
        &backup,
        &db,
        &[
            "--table",
            "app.tasks",
            "--into-schema",
            "restored",
            "--where",
            "id <= 5",
        ],
    )
    .await
    .success();
    assert!(
        report_line(&run, "restored.tasks").contains("(created)"),
        "{}",
        run.stdout
    );
    assert_eq!(
        query_strings(&db, "SELECT title FROM restored.tasks ORDER BY id").await,
        vec!["task 1", "task 2", "task 3", "task 4", "task 5"]
    );
    // Created from the backup's definition: its columns and primary key.
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM pg_constraint WHERE conrelid = 'restored.tasks'::regclass AND contype = 'p'").await,
        1
    );
    // The live table is untouched.
    let after = contents(&db).await;
    assert_eq!(after.rows.get("app.tasks"), before.rows.get("app.tasks"));

    restore(
        &backup,
        &db,
        &[
            "--table",
            "app.tasks",
            "--into-table",
            "tasks_check",
            "--where",
            "id <= 3",
        ],
    )
    .await
    .success();
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM app.tasks_check").await,
        3
    );
    let error = restore(&backup, &db, &["--table", "app.*s", "--into-table", "x"])
        .await
        .failure();
    assert!(error.contains("--into-table names one table"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn columns_on_one_side_only_are_an_error_unless_ignored() {
    let db = shop("columns").await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    db.execute(
        "DELETE FROM app.tasks WHERE id IN (1, 2);
         ALTER TABLE app.tasks ADD COLUMN priority integer NOT NULL DEFAULT 3;
         ALTER TABLE app.tasks DROP COLUMN data;",
    )
    .await;
    let before = contents(&db).await;
    let args = ["--table", "app.tasks", "--where", "id IN (1, 2)"];
    let error = restore(&backup, &db, &args).await.failure();
    assert!(error.contains("only in the backup: data"), "{error}");
    assert!(error.contains("only in the target: priority"), "{error}");
    assert!(error.contains("--ignore-missing-columns"), "{error}");
    assert_eq!(contents(&db).await, before);

    let mut ignoring = args.to_vec();
    ignoring.push("--ignore-missing-columns");
    restore(&backup, &db, &ignoring).await.success();
    assert_eq!(
        query_strings(
            &db,
            "SELECT title || ' ' || priority FROM app.tasks WHERE id IN (1, 2) ORDER BY id"
        )
        .await,
        vec!["task 1 3", "task 2 3"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn types_are_cast_where_possible_and_an_uncastable_change_fails_before_writing() {
    let db = shop("casts").await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    db.execute(
        "DELETE FROM app.tasks WHERE id IN (1, 2);
         ALTER TABLE app.tasks ALTER COLUMN title TYPE varchar(100);",
    )
    .await;
    restore(
        &backup,
        &db,
        &["--table", "app.tasks", "--where", "id IN (1, 2)"],
    )
    .await
    .success();
    assert_eq!(query_i64(&db, "SELECT count(*) FROM app.tasks").await, 1000);

    db.execute(
        "DELETE FROM app.tasks WHERE id IN (1, 2);
         ALTER TABLE app.tasks ALTER COLUMN done DROP DEFAULT, ALTER COLUMN done DROP NOT NULL;
         ALTER TABLE app.tasks ALTER COLUMN done TYPE date USING NULL;",
    )
    .await;
    let before = contents(&db).await;
    let error = restore(
        &backup,
        &db,
        &["--table", "app.tasks", "--where", "id IN (1, 2)"],
    )
    .await
    .failure();
    assert!(error.contains("column done of table app.tasks"), "{error}");
    assert!(
        error.contains("boolean") && error.contains("date"),
        "{error}"
    );
    assert!(error.contains("nothing was written"), "{error}");
    assert_eq!(contents(&db).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_where_and_bad_combinations_are_refused_without_changes() {
    let db = shop("bad_input").await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    db.execute("DELETE FROM app.tasks WHERE id = 1").await;
    let before = contents(&db).await;

    let error = restore(
        &backup,
        &db,
        &["--table", "app.tasks", "--where", "id IN (1,"],
    )
    .await
    .failure();
    assert!(error.contains("invalid --where"), "{error}");
    let error = restore(
        &backup,
        &db,
        &[
            "--table",
            "app.tasks",
            "--where",
            "true; DROP TABLE app.comments",
        ],
    )
    .await
    .failure();
    assert!(error.contains("invalid --where"), "{error}");
    let error = restore(
        &backup,
        &db,
        &["--table", "app.audit", "--where", "nope = 1"],
    )
    .await
    .failure();
    assert!(error.contains("column \"nope\" does not exist"), "{error}");

    db.execute("CREATE TABLE app.nokey (n int)").await;
    let (_dest2, backup2) = dump_to_temp(&db, &[]).await;
    let error = restore(
        &backup2,
        &db,
        &["--table", "app.nokey", "--conflict", "upsert"],
    )
    .await
    .failure();
    assert!(error.contains("no primary key"), "{error}");
    db.execute("DROP TABLE app.nokey").await;

    // Surgical options need a table selection and exclude whole-database options.
    let run = restore(&backup, &db, &["--where", "id = 1"]).await;
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    let run = restore(
        &backup,
        &db,
        &["--table", "app.tasks", "--create", "--dry-run"],
    )
    .await;
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert_eq!(contents(&db).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn parents_go_in_before_the_rows_that_reference_them() {
    let db = shop("parents_first").await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    let original = contents(&db).await;
    // Comment n belongs to task n: deleting tasks 5 and 6 cascades to their comments.
    db.execute("DELETE FROM app.tasks WHERE id IN (5, 6)").await;
    let run = restore(
        &backup,
        &db,
        &[
            "--table",
            "app.comments",
            "--table",
            "app.tasks",
            "--where",
            "id IN (5, 6)",
        ],
    )
    .await
    .success();
    assert_eq!(counts(report_line(&run, "app.tasks"))["inserted"], 2);
    assert_eq!(counts(report_line(&run, "app.comments"))["inserted"], 2);
    assert_same_except(&original, &contents(&db).await, &["app.audit"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_and_generated_columns_and_an_explicit_before_image_location() {
    let db = server().create_database("identity").await;
    db.execute(
        "CREATE TABLE public.items (
             id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             name text NOT NULL,
             name_length integer GENERATED ALWAYS AS (length(name)) STORED);
         INSERT INTO public.items (name) SELECT 'item ' || g FROM generate_series(1, 20) g;",
    )
    .await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    let original = contents(&db).await;
    db.execute("DELETE FROM public.items WHERE id = 20; UPDATE public.items SET name = 'x' WHERE id = 3; SELECT setval(pg_get_serial_sequence('public.items', 'id'), 3)")
        .await;
    let images = tempfile::tempdir().expect("temp dir");
    let run = restore(
        &backup,
        &db,
        &[
            "--table",
            "items",
            "--where",
            "id IN (3, 20)",
            "--conflict",
            "upsert",
            "--before-image",
            path_str(images.path()),
        ],
    )
    .await
    .success();
    let c = counts(report_line(&run, "public.items"));
    assert_eq!((c["inserted"], c["updated"]), (1, 1));
    assert_same_except(&original, &contents(&db).await, &[]);
    // The before-image went where it was told, and is a complete backup pgark can read.
    let image = only_backup(images.path());
    assert!(run.stdout.contains(path_str(&image)), "{}", run.stdout);
    pgark(&["verify", path_str(&image)]).await.success();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_table_is_created_again_with_its_rows_keys_and_sequence() {
    let db = shop("dropped").await;
    db.execute("COMMENT ON TABLE app.comments IS 'what people said'; CREATE INDEX comments_body ON app.comments (body);")
        .await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    let original = contents(&db).await;
    db.execute("DROP TABLE app.comments").await;

    // Looking first changes nothing.
    let dropped = contents(&db).await;
    let run = restore(&backup, &db, &["--table", "app.comments", "--dry-run"])
        .await
        .success();
    assert!(
        report_line(&run, "app.comments").contains("(created)"),
        "{}",
        run.stdout
    );
    assert_eq!(contents(&db).await, dropped);

    let run = restore(&backup, &db, &["--table", "app.comments"])
        .await
        .success();
    assert_eq!(counts(report_line(&run, "app.comments"))["inserted"], 100);
    // Rows, sequence, primary key, foreign key, index: all as they were.
    assert_eq!(contents(&db).await, original);
    assert_eq!(
        query_strings(
            &db,
            "SELECT obj_description('app.comments'::regclass, 'pg_class')"
        )
        .await,
        vec!["what people said"]
    );
}

/// `DROP TABLE customer CASCADE` also dropped the foreign keys of two tables referencing it and
/// two views (one over the other). Restoring the table re-adds all of them in the same
/// transaction; with one referencing table gone as well, its foreign key is listed as not
/// re-added and the rest still comes back.
#[tokio::test(flavor = "multi_thread")]
async fn a_table_dropped_with_cascade_comes_back_with_inbound_foreign_keys_and_views() {
    let db = server().create_database("dropped_cascade").await;
    db.execute(
        "CREATE TABLE customer (id integer PRIMARY KEY, name text NOT NULL);
         CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer REFERENCES customer);
         CREATE TABLE ticket (id integer PRIMARY KEY,
             customer_id integer REFERENCES customer ON DELETE SET NULL);
         CREATE VIEW customer_orders AS SELECT c.name, count(o.id) AS orders
             FROM customer c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.name;
         COMMENT ON VIEW customer_orders IS 'orders per customer';
         CREATE VIEW big_customers AS SELECT name FROM customer_orders WHERE orders > 2;
         INSERT INTO customer SELECT g, 'customer ' || g FROM generate_series(1, 10) g;
         INSERT INTO orders SELECT g, g % 10 + 1 FROM generate_series(1, 40) g;
         INSERT INTO ticket SELECT g, g % 10 + 1 FROM generate_series(1, 15) g;",
    )
    .await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    let original = contents(&db).await;
    let objects = user_objects(&db).await;
    let views = "SELECT string_agg(viewname || ': ' || definition, ' | ' ORDER BY viewname) \
                 FROM pg_views WHERE schemaname = 'public'";
    let original_views = query_strings(&db, views).await;
    db.execute("DROP TABLE customer CASCADE").await;
    let dropped = contents(&db).await;

    let run = restore(&backup, &db, &["--table", "customer", "--dry-run"])
        .await
        .success();
    for item in [
        "re-added foreign key public.orders_customer_id_fkey",
        "re-added foreign key public.ticket_customer_id_fkey",
        "re-added view public.customer_orders",
        "re-added view public.big_customers",
    ] {
        assert!(run.stdout.contains(item), "{item}: {}", run.stdout);
    }
    assert_eq!(contents(&db).await, dropped, "a dry run changes nothing");

    restore(&backup, &db, &["--table", "customer"])
        .await
        .success();
    assert_eq!(contents(&db).await, original);
    assert_eq!(user_objects(&db).await, objects);
    assert_eq!(query_strings(&db, views).await, original_views);
    assert_eq!(
        query_strings(
            &db,
            "SELECT obj_description('customer_orders'::regclass, 'pg_class')"
        )
        .await,
        vec!["orders per customer"]
    );

    // The other side of one foreign key is gone too: that one is listed, the rest comes back.
    db.execute("DROP TABLE customer CASCADE; DROP TABLE ticket")
        .await;
    let run = restore(&backup, &db, &["--table", "customer"])
        .await
        .success();
    assert!(
        run.stdout
            .contains("not re-added: foreign key public.ticket_customer_id_fkey: ")
            && run.stdout.contains("re-added view public.big_customers"),
        "{}",
        run.stdout
    );
    assert_eq!(query_strings(&db, views).await, original_views);
    assert_eq!(
        contents(&db).await.constraints.get("public.orders"),
        original.constraints.get("public.orders")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn on_s3_the_before_image_goes_beside_the_backup_and_its_undo_command_works() {
    let s3 = pgark_testkit::s3::S3Server::start();
    let (db, _dest, _local) = damaged_shop("s3_undo").await;
    // A fresh dump to S3 of the undamaged rows is what we restore from: put 10..14 back first.
    let location = s3.location("prod");
    let url = db.url();
    db.execute("UPDATE app.tasks SET title = 'task ' || id, data = jsonb_build_object('n', id) WHERE id IN (10, 11)")
        .await;
    pgark_with_env(&["dump", &url, &location], s3.env())
        .await
        .success();
    db.execute("UPDATE app.tasks SET title = 'changed again' WHERE id = 10")
        .await;
    let before = contents(&db).await;

    let latest = format!("{location}/latest");
    let run = pgark_with_env(
        &[
            "restore",
            &latest,
            "--target",
            &url,
            "--table",
            "app.tasks",
            "--where",
            "id BETWEEN 10 AND 11",
            "--conflict",
            "upsert",
        ],
        s3.env(),
    )
    .await
    .success();
    assert_eq!(counts(report_line(&run, "app.tasks"))["updated"], 1);
    let image_prefix = format!("{location}/before-images/");
    assert!(run.stdout.contains(&image_prefix), "{}", run.stdout);
    let keys = s3.list_keys("prod/before-images/").await;
    assert!(
        keys.iter().any(|k| k.ends_with("/manifest.json")),
        "{keys:?}"
    );
    // `latest` of the backup location is still the dump, not the before-image.
    let listing = pgark_with_env(&["ls", &location], s3.env()).await.success();
    assert_eq!(
        listing.stdout.matches("complete").count(),
        1,
        "{}",
        listing.stdout
    );

    let command = run
        .stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("pgark restore "))
        .expect("undo command");
    let mut undo = tokio::process::Command::new("sh");
    undo.arg("-c")
        .arg(format!(
            "exec {} {}",
            env!("CARGO_BIN_EXE_pgark"),
            command.trim_start_matches("pgark ")
        ))
        .envs(s3.env());
    let output = undo.output().await.expect("run the undo command");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_same_except(&before, &contents(&db).await, &["app.audit"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_in_the_middle_rolls_back_and_exits_130() {
    let db = shop("sigint").await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    db.execute(
        "DELETE FROM app.tasks WHERE id IN (7, 8);
         CREATE FUNCTION app.wait_for_test() RETURNS trigger LANGUAGE plpgsql AS
             $$BEGIN PERFORM pg_advisory_xact_lock(4343); RETURN NEW; END$$;
         CREATE TRIGGER tasks_wait AFTER INSERT ON app.tasks FOR EACH ROW EXECUTE FUNCTION app.wait_for_test();",
    )
    .await;
    let before = contents(&db).await;
    let holder = db.client().await;
    holder
        .batch_execute("SELECT pg_advisory_lock(4343)")
        .await
        .expect("take the advisory lock");
    let url = db.url();
    let child = pgark_command(&[
        "restore",
        path_str(&backup),
        "--target",
        &url,
        "--table",
        "app.tasks",
        "--where",
        "id IN (7, 8)",
    ])
    .spawn()
    .expect("start pgark");
    // Wait until the restore is inside its transaction, rows written, blocked in the trigger.
    let watcher = db.client().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let waiting = watcher
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock' AND wait_event = 'advisory' AND application_name = 'pgark'",
                &[],
            )
            .await
            .expect("read pg_stat_activity");
        if waiting.is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the restore never reached the trigger"
        );
        tokio::task::yield_now().await;
    }
    let pid = child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("run kill");
    assert!(status.success());
    let output = child.wait_with_output().await.expect("wait for pgark");
    holder
        .batch_execute("SELECT pg_advisory_unlock(4343)")
        .await
        .expect("release");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    let error = stderr.lines().last().unwrap_or_default();
    assert!(
        error.contains("interrupted") && error.contains("rolled back"),
        "{stderr}"
    );
    assert_unchanged_but_trigger_sequence(&before, &contents(&db).await);
}

/// `partitions read X of Y` of a report line, if it has one.
fn partitions_read(line: &str) -> Option<(usize, usize)> {
    let rest = line.split("partitions read ").nth(1)?;
    let mut numbers = rest
        .split(" of ")
        .map(|n| n.trim_end_matches(')').trim().parse::<usize>());
    match (numbers.next(), numbers.next()) {
        (Some(Ok(read)), Some(Ok(total))) => Some((read, total)),
        _ => panic!("bad partition count in {line}"),
    }
}

/// Payments of pagila (`payment`, partitioned by month on `payment_date`: 7 partitions) deleted
/// after the dump, to be put back through the partitioned table.
const LOST_PAYMENTS: &str = "payment_id BETWEEN 20000 AND 20010";

/// pagila, dumped with small chunks (so partitions have several), and the backup.
async fn pagila_backup(prefix: &str) -> (TestDb, tempfile::TempDir, std::path::PathBuf) {
    let db = server()
        .load_corpus("pagila", &pgark_testkit::unique_name(prefix))
        .await;
    let (dest, backup) = dump_to_temp(&db, &["--chunk-size", "64KiB"]).await;
    (db, dest, backup)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partitioned_table_is_restored_by_its_own_name() {
    let (db, _dest, backup) = pagila_backup("partitioned_by_name").await;
    let original = contents(&db).await;
    db.execute(&format!("DELETE FROM public.payment WHERE {LOST_PAYMENTS}"))
        .await;
    let damaged = contents(&db).await;
    assert_ne!(original.rows, damaged.rows);

    let args = ["--table", "public.payment", "--where", LOST_PAYMENTS];
    let dry = restore(&backup, &db, &[&args[..], &["--dry-run"]].concat())
        .await
        .success();
    assert_eq!(counts(report_line(&dry, "public.payment"))["inserted"], 11);
    assert_eq!(contents(&db).await, damaged, "a dry run changes nothing");

    let run = restore(&backup, &db, &args).await.success();
    let line = report_line(&run, "public.payment");
    assert_eq!(counts(line)["inserted"], 11, "{line}");
    // Not a condition on the partition key: every partition is read.
    assert_eq!(partitions_read(line), Some((7, 7)), "{line}");
    assert_eq!(
        contents(&db).await,
        original,
        "every row back in its partition"
    );

    // Naming a leaf partition still works.
    db.execute("DELETE FROM public.payment_p2022_03 WHERE payment_id % 100 = 7")
        .await;
    let run = restore(
        &backup,
        &db,
        &["--table", "public.payment_p2022_03", "--conflict", "skip"],
    )
    .await
    .success();
    let line = report_line(&run, "public.payment_p2022_03");
    assert!(counts(line)["inserted"] > 0, "{line}");
    assert_eq!(contents(&db).await, original);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_condition_on_the_partition_key_reads_only_the_partitions_it_can_match() {
    let (db, _dest, backup) = pagila_backup("partition_pruning").await;
    let manifest = read_manifest(&backup);
    let chunks_of = |name: &str| {
        manifest["tables"]
            .as_array()
            .expect("tables")
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no table {name}"))["chunks"]
            .as_array()
            .expect("chunks")
            .len()
    };
    let original = contents(&db).await;
    db.execute(
        "DELETE FROM public.payment \
         WHERE payment_date >= '2022-02-20' AND payment_date < '2022-03-03'",
    )
    .await;
    let run = restore(
        &backup,
        &db,
        &[
            "--table",
            "payment",
            "--where",
            "payment_date >= '2022-02-20' AND payment_date < '2022-03-03'",
        ],
    )
    .await
    .success();
    let line = report_line(&run, "public.payment");
    assert_eq!(partitions_read(line), Some((2, 7)), "{line}");
    let (read, total) = chunks_read(line);
    assert_eq!(
        read,
        chunks_of("payment_p2022_02") + chunks_of("payment_p2022_03"),
        "{line}"
    );
    assert!(total > read + 5, "{line}");
    assert_eq!(contents(&db).await, original);

    // A condition no partition's bounds can meet reads nothing.
    let run = restore(
        &backup,
        &db,
        &[
            "--table",
            "payment",
            "--where",
            "payment_date < '2000-01-01'",
        ],
    )
    .await
    .success();
    let line = report_line(&run, "public.payment");
    assert_eq!(partitions_read(line), Some((0, 7)), "{line}");
    assert_eq!(chunks_read(line).0, 0, "{line}");
}

/// Two levels of partitioning (by year, then by region): a condition on both keys reads only
/// the one leaf partition that can hold matching rows; on the first key only, that year's.
#[tokio::test(flavor = "multi_thread")]
async fn pruning_follows_partitions_of_partitions() {
    let db = server().create_database("nested_partitions").await;
    db.execute(
        "CREATE TABLE sales (id integer, year integer, region text, amount numeric,
             PRIMARY KEY (id, year, region)) PARTITION BY RANGE (year);
         CREATE TABLE sales_2023 PARTITION OF sales FOR VALUES FROM (2023) TO (2024)
             PARTITION BY LIST (region);
         CREATE TABLE sales_2024 PARTITION OF sales FOR VALUES FROM (2024) TO (2025)
             PARTITION BY LIST (region);
         CREATE TABLE sales_2023_eu PARTITION OF sales_2023 FOR VALUES IN ('eu');
         CREATE TABLE sales_2023_us PARTITION OF sales_2023 FOR VALUES IN ('us');
         CREATE TABLE sales_2024_eu PARTITION OF sales_2024 FOR VALUES IN ('eu');
         CREATE TABLE sales_2024_us PARTITION OF sales_2024 FOR VALUES IN ('us');
         INSERT INTO sales SELECT g, 2023 + g % 2, CASE WHEN g % 4 < 2 THEN 'eu' ELSE 'us' END, g
             FROM generate_series(1, 4000) g;",
    )
    .await;
    let original = contents(&db).await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    let sales = |condition: &'static str, more: &'static [&'static str]| {
        let mut args = vec!["--table", "sales", "--where", condition];
        args.extend_from_slice(more);
        let (backup, db) = (&backup, &db);
        async move { restore(backup, db, &args).await.success() }
    };
    db.execute("DELETE FROM sales WHERE year = 2024 AND region = 'us' AND id < 100")
        .await;
    let run = sales("year = 2024 AND region = 'us' AND id < 100", &[]).await;
    let line = report_line(&run, "public.sales");
    assert_eq!(partitions_read(line), Some((1, 4)), "{line}");
    assert_eq!(counts(line)["inserted"], 25, "{line}");
    assert_eq!(contents(&db).await, original);

    let run = sales("year = 2023", &["--conflict", "skip", "--dry-run"]).await;
    let line = report_line(&run, "public.sales");
    assert_eq!(partitions_read(line), Some((2, 4)), "{line}");
    assert_eq!(counts(line)["skipped"], 2000, "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_go_to_the_partitions_the_target_has_today() {
    let (db, _dest, backup) = pagila_backup("partitioning_changed").await;
    db.execute(&format!("DELETE FROM public.payment WHERE {LOST_PAYMENTS}"))
        .await;
    // May's partition detached since the backup: May's lost rows have nowhere to go.
    db.execute("ALTER TABLE public.payment DETACH PARTITION public.payment_p2022_05")
        .await;
    let before = contents(&db).await;
    let args = ["--table", "public.payment", "--where", LOST_PAYMENTS];
    let error = restore(&backup, &db, &args).await.failure();
    assert!(
        error.contains("have no partition in table public.payment")
            && error.contains("2022-05-")
            && error.contains("attach or create a partition"),
        "{error}"
    );
    assert_eq!(contents(&db).await, before, "nothing was written");

    // A default partition created since takes them; the others go where they went before.
    db.execute("CREATE TABLE public.payment_rest PARTITION OF public.payment DEFAULT")
        .await;
    let run = restore(&backup, &db, &args).await.success();
    assert_eq!(counts(report_line(&run, "public.payment"))["inserted"], 11);
    let placed = query_strings(
        &db,
        &format!(
            "SELECT DISTINCT tableoid::regclass::text FROM public.payment \
             WHERE {LOST_PAYMENTS} ORDER BY 1"
        ),
    )
    .await;
    assert!(
        placed.iter().any(|p| p == "payment_rest")
            && placed.iter().any(|p| p == "payment_p2022_02"),
        "{placed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cat_verify_and_whole_restores_know_partitioned_tables() {
    let (db, _dest, backup) = pagila_backup("partitioned_cat").await;
    let source_rows = query_i64(&db, "SELECT count(*) FROM public.payment").await;
    let run = pgark(&["cat", path_str(&backup), "public.payment"])
        .await
        .success();
    assert_eq!(run.stdout.lines().count() as i64, source_rows);
    let verify = pgark(&["verify", path_str(&backup)]).await.success();
    assert!(
        verify.stdout.contains(&format!(
            "ok      public.payment (partitioned): 7 partitions, {}",
            {
                let n = source_rows.to_string();
                format!("{},{}", &n[..n.len() - 3], &n[n.len() - 3..])
            }
        )),
        "{}",
        verify.stdout
    );
    // A whole-database restore of the partitioned table by its name brings its partitions.
    let target = server().database(&pgark_testkit::unique_name("partitioned_whole"));
    let url = target.url();
    pgark(&[
        "restore",
        path_str(&backup),
        "--target",
        &url,
        "--create",
        "--table",
        "public.payment",
    ])
    .await
    .success();
    assert_eq!(
        query_i64(&target, "SELECT count(*) FROM public.payment").await,
        source_rows
    );
    assert_eq!(
        query_i64(
            &target,
            "SELECT count(*) FROM pg_catalog.pg_inherits \
             WHERE inhparent = 'public.payment'::regclass"
        )
        .await,
        7
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn conflict_modes_through_a_partitioned_table_use_its_key_and_can_be_undone() {
    let (db, _dest, backup) = pagila_backup("partitioned_conflicts").await;
    let original = contents(&db).await;
    // February's rows changed and some lost; one row of the same range added since.
    let range = "payment_date >= '2022-02-10' AND payment_date < '2022-02-12'";
    db.execute(&format!(
        "UPDATE public.payment SET amount = amount + 100 WHERE {range} AND payment_id % 2 = 0;
         DELETE FROM public.payment WHERE {range} AND payment_id % 5 = 0;
         INSERT INTO public.payment (customer_id, staff_id, rental_id, amount, payment_date)
             VALUES (1, 1, 76, 9.99, '2022-02-11 12:00:00+00');"
    ))
    .await;
    let damaged = contents(&db).await;

    let run = restore(
        &backup,
        &db,
        &[
            "--table",
            "payment",
            "--where",
            range,
            "--conflict",
            "upsert",
        ],
    )
    .await
    .success();
    let line = report_line(&run, "public.payment");
    let c = counts(line);
    assert!(
        c["inserted"] > 0 && c["updated"] > 0 && c["skipped"] > 0,
        "{line}"
    );
    assert_eq!(partitions_read(line), Some((1, 7)), "{line}");
    undo_and_compare(&db, &run, &damaged).await;

    let run = restore(
        &backup,
        &db,
        &[
            "--table",
            "payment",
            "--where",
            range,
            "--conflict",
            "replace",
        ],
    )
    .await
    .success();
    let line = report_line(&run, "public.payment");
    assert_eq!(counts(line)["deleted"], 1, "the row added since: {line}");
    // Back as in the backup, but for the sequence, which the added row moved on.
    assert_same_except(
        &original,
        &contents(&db).await,
        &["public.payment_payment_id_seq"],
    );
    undo_and_compare(&db, &run, &damaged).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_that_moved_on_gets_each_columns_fate_reported_and_renames_mapped() {
    let db = shop("drift").await;
    let (_dest, backup) = dump_to_temp(&db, &[]).await;
    // A migration since the backup: a column added with a default, one dropped, one widened,
    // one renamed.
    db.execute(
        "DELETE FROM app.tasks WHERE id IN (1, 2, 3);
         ALTER TABLE app.tasks ADD COLUMN priority integer NOT NULL DEFAULT 3;
         ALTER TABLE app.tasks DROP COLUMN data;
         ALTER TABLE app.tasks ALTER COLUMN customer_id TYPE bigint;
         ALTER TABLE app.tasks RENAME COLUMN title TO summary;",
    )
    .await;
    let before = contents(&db).await;
    let args = [
        "--table",
        "app.tasks",
        "--where",
        "id IN (1, 2, 3)",
        "--ignore-missing-columns",
    ];
    // Without the rename mapped, the renamed column looks dropped on one side and new on the
    // other; NOT NULL without a default then refuses the rows, and nothing is written.
    let error = restore(&backup, &db, &args).await.failure();
    assert!(error.contains("summary"), "{error}");
    assert_eq!(contents(&db).await, before);

    let run = restore(
        &backup,
        &db,
        &[&args[..], &["--column-map", "title=summary"]].concat(),
    )
    .await
    .success();
    for expected in [
        "  column customer_id: cast from integer to bigint",
        "  column title: written into column summary",
        "  column data: not in the target, left out",
        "  column priority: not in the backup, restored rows get its default",
    ] {
        assert!(
            run.stdout.lines().any(|l| l == expected),
            "{expected:?} in\n{}",
            run.stdout
        );
    }
    assert_eq!(
        query_strings(
            &db,
            "SELECT summary || ' ' || priority || ' ' || customer_id FROM app.tasks \
             WHERE id IN (1, 2, 3) ORDER BY id"
        )
        .await,
        vec!["task 1 3 2", "task 2 3 3", "task 3 3 4"]
    );

    // A map naming a column the backup does not have is refused before anything happens.
    let error = restore(
        &backup,
        &db,
        &[&args[..], &["--column-map", "titel=summary", "--dry-run"]].concat(),
    )
    .await
    .failure();
    assert!(
        error.contains("no selected table of the backup has a column \"titel\""),
        "{error}"
    );
}

/// Copies backup directory `from` to `to` (an older id beside it).
fn copy_backup(from: &Path, to: &Path) {
    for entry in files_under(from) {
        let target = to.join(entry.strip_prefix(from).expect("inside"));
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&entry, &target).expect("copy");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn before_images_are_listed_and_pruned_with_their_backup() {
    let (db, dest, backup) = damaged_shop("before_image_prune").await;
    let old = dest.path().join("2020-01-01T000000Z");
    copy_backup(&backup, &old);
    let upsert = [
        "--table",
        "app.tasks",
        "--where",
        "id BETWEEN 10 AND 14",
        "--conflict",
        "upsert",
    ];
    restore(&old, &db, &upsert).await.success();
    restore(&backup, &db, &upsert).await.success();
    let backup_id = backup
        .file_name()
        .expect("id")
        .to_string_lossy()
        .into_owned();

    let listed = pgark(&["ls", path_str(dest.path()), "--before-images", "--json"])
        .await
        .success();
    let images: serde_json::Value = serde_json::from_str(&listed.stdout).expect("json");
    let mut of: Vec<&str> = images
        .as_array()
        .expect("array")
        .iter()
        .map(|i| i["of_backup"].as_str().expect("of_backup"))
        .collect();
    of.sort_unstable();
    assert_eq!(
        of,
        ["2020-01-01T000000Z", backup_id.as_str()],
        "{}",
        listed.stdout
    );
    let old_image = images
        .as_array()
        .expect("array")
        .iter()
        .find(|i| i["of_backup"] == "2020-01-01T000000Z")
        .and_then(|i| i["path"].as_str())
        .expect("the old backup's before-image")
        .to_owned();

    let dry = pgark(&[
        "prune",
        path_str(dest.path()),
        "--keep-last",
        "1",
        "--dry-run",
    ])
    .await
    .success();
    assert!(
        dry.stdout.lines().any(|l| l.starts_with("would delete")
            && l.contains(&old_image)
            && l.contains("before-image of 2020-01-01T000000Z")),
        "{}",
        dry.stdout
    );
    assert!(dest.path().join(&old_image).join("manifest.json").exists());

    pgark(&["prune", path_str(dest.path()), "--keep-last", "1"])
        .await
        .success();
    assert!(
        !old.exists() || files_under(&old).is_empty(),
        "the old backup is gone"
    );
    assert!(
        !dest.path().join(&old_image).exists()
            || files_under(&dest.path().join(&old_image)).is_empty(),
        "its before-image went with it"
    );
    let listed = pgark(&["ls", path_str(dest.path()), "--before-images", "--json"])
        .await
        .success();
    let images: serde_json::Value = serde_json::from_str(&listed.stdout).expect("json");
    assert_eq!(
        images.as_array().expect("array").len(),
        1,
        "{}",
        listed.stdout
    );
    assert_eq!(images[0]["of_backup"], backup_id.as_str());
}
