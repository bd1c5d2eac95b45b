//! Helpers shared by the end-to-end tests: run the real `pgark` binary, load fixtures, and compare
//! databases (every table's rows as a multiset, sequences, and the shape of the schema).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use pgark_testkit::TestDb;

/// The outcome of one `pgark` run.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns self, printing everything pgark said otherwise.
    #[track_caller]
    pub fn success(self) -> Self {
        assert!(
            self.status.success(),
            "pgark failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts a non-zero exit with exactly one error line, which is returned.
    #[track_caller]
    pub fn failure(self) -> String {
        assert_eq!(
            self.status.code(),
            Some(1),
            "expected exit code 1:\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|line| line.starts_with("pgark: error: "))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "expected one error line, stderr:\n{}",
            self.stderr
        );
        assert_eq!(
            self.stderr.lines().last(),
            Some(errors[0]),
            "the error must be the last line:\n{}",
            self.stderr
        );
        errors[0].to_owned()
    }
}

/// A `pgark` command with no PG* variables inherited from the environment running the tests.
pub fn pgark_command(args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_pgark"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            command.env_remove(&key);
        }
    }
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.kill_on_drop(true);
    command
}

/// Runs `pgark` to completion.
pub async fn pgark(args: &[&str]) -> Run {
    pgark_with_env(args, std::iter::empty::<(&str, String)>()).await
}

/// `pgark restore BACKUP --target TARGET_URL OPTIONS...`.
pub async fn restore(backup: &Path, target_url: &str, options: &[&str]) -> Run {
    let mut args = vec!["restore", path_str(backup), "--target", target_url];
    args.extend_from_slice(options);
    pgark(&args).await
}

/// Runs `pgark` to completion with extra environment variables (e.g. an S3 server's).
pub async fn pgark_with_env<K, V>(args: &[&str], env: impl IntoIterator<Item = (K, V)>) -> Run
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let output = pgark_command(args)
        .envs(env)
        .output()
        .await
        .expect("start the pgark binary");
    Run {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The project's own fixture database (testdata/fixture.sql).
pub async fn load_fixture(db: &TestDb) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/fixture.sql");
    let sql = std::fs::read_to_string(&path).expect("read testdata/fixture.sql");
    db.execute(&sql).await;
}

/// The one backup directory under `dest`.
pub fn only_backup(dest: &Path) -> PathBuf {
    let entries: Vec<PathBuf> = std::fs::read_dir(dest)
        .expect("read the backup destination")
        .map(|e| e.expect("dir entry").path())
        .collect();
    assert_eq!(
        entries.len(),
        1,
        "expected one backup in {}: {entries:?}",
        dest.display()
    );
    entries.into_iter().next().expect("one entry")
}

/// Every file under `dir`, at any depth.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// The whole manifest of a backup directory as one JSON document, as format 1 had it: for format
/// 2, the head with the catalog's members and every table's chunks put back in — read with
/// `zstd` as the README says a person would.
pub fn read_manifest(backup: &Path) -> serde_json::Value {
    let bytes = std::fs::read(backup.join("manifest.json")).expect("read manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_slice(&bytes).expect("manifest is JSON");
    if manifest["format_version"] == 1 {
        return manifest;
    }
    let unzstd = |name: &str| {
        let stored =
            std::fs::read(backup.join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"));
        zstd::decode_all(stored.as_slice()).unwrap_or_else(|e| panic!("decode {name}: {e}"))
    };
    let catalog: serde_json::Value =
        serde_json::from_slice(&unzstd("catalog.json.zst")).expect("catalog is JSON");
    let mut chunks: std::collections::BTreeMap<u64, Vec<serde_json::Value>> = Default::default();
    for line in String::from_utf8(unzstd("chunks.jsonl.zst"))
        .expect("UTF-8")
        .lines()
    {
        let mut chunk: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let table = chunk["table"].as_u64().expect("the chunk's table");
        chunk.as_object_mut().expect("object").remove("table");
        chunks.entry(table).or_default().push(chunk);
    }
    let (Some(head), serde_json::Value::Object(catalog)) = (manifest.as_object_mut(), catalog)
    else {
        panic!("the head and the catalog are JSON objects");
    };
    for (member, mut value) in catalog {
        if member == "tables" {
            for table in value.as_array_mut().expect("tables") {
                let id = table["id"].as_u64().expect("table id");
                table["chunks"] = serde_json::Value::Array(chunks.remove(&id).unwrap_or_default());
            }
        }
        head.insert(member, value);
    }
    manifest
}

/// Dumps `source` into a new temporary destination with the real binary; returns the destination
/// (which must stay alive) and the backup directory in it.
pub async fn dump_to_temp(source: &TestDb, args: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let dest = tempfile::tempdir().expect("temp dir");
    let url = source.url();
    let mut all = vec!["dump", url.as_str(), path_str(dest.path())];
    all.extend_from_slice(args);
    pgark(&all).await.success();
    let backup = only_backup(dest.path());
    (dest, backup)
}

/// Dumps `source` with the real binary and restores it into a new database with `--create`;
/// returns the restored database.
pub async fn dump_and_restore(
    source: &TestDb,
    dump_args: &[&str],
    restore_args: &[&str],
) -> TestDb {
    let (_dest, backup) = dump_to_temp(source, dump_args).await;

    let target = pgark_testkit::server().database(&pgark_testkit::unique_name("restored"));
    let target_url = target.url();
    let mut args = vec![
        "restore",
        path_str(&backup),
        "--target",
        &target_url,
        "--create",
    ];
    args.extend_from_slice(restore_args);
    pgark(&args).await.success();
    target
}

/// Everything the comparison looks at, keyed for readable diffs.
#[derive(Debug, PartialEq, Eq)]
pub struct Contents {
    /// table → (row count, order-independent digest of its rows)
    pub rows: BTreeMap<String, (i64, String)>,
    /// sequence → its definition and state
    pub sequences: BTreeMap<String, String>,
    /// table → its columns' definitions (name, type, nullability, default, identity, generated)
    pub columns: BTreeMap<String, Vec<String>>,
    /// table or domain → its constraints' definitions
    pub constraints: BTreeMap<String, Vec<String>>,
    /// Indexes on tables (those on materialized views come with the schema-coverage work).
    pub indexes: Vec<String>,
    /// Large objects: OID, owner, size and MD5 of the contents.
    pub large_objects: Vec<String>,
}

const USER_NAMESPACES: &str = "SELECT oid FROM pg_catalog.pg_namespace \
     WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'";

/// Reads what [`Contents`] holds from `db`.
pub async fn contents(db: &TestDb) -> Contents {
    let client = db.client().await;
    client
        .batch_execute("SET search_path = ''; SET extra_float_digits = 3; SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET IntervalStyle = 'postgres'")
        .await
        .expect("session setup");

    let tables = client
        .query(
            &format!(
                "SELECT c.oid, format('%I.%I', n.nspname, c.relname), c.relkind::text \
                 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p') AND n.oid IN ({USER_NAMESPACES}) ORDER BY 2"
            ),
            &[],
        )
        .await
        .expect("list tables");

    let mut rows = BTreeMap::new();
    let mut columns = BTreeMap::new();
    for table in &tables {
        let oid: u32 = table.get(0);
        let name: String = table.get(1);
        let kind: String = table.get(2);
        let cols = client
            .query(
                "SELECT quote_ident(a.attname), \
                        concat_ws(' ', quote_ident(a.attname), pg_catalog.format_type(a.atttypid, a.atttypmod), \
                           CASE WHEN a.attnotnull THEN 'NOT NULL' END, \
                           'default:' || pg_catalog.pg_get_expr(d.adbin, d.adrelid), \
                           'identity:' || nullif(a.attidentity::text, ''), \
                           'generated:' || nullif(a.attgenerated::text, ''), \
                           'collation:' || nullif(a.attcollation, 0)::regcollation::text) \
                 FROM pg_catalog.pg_attribute a \
                 LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
                 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attname",
                &[&oid],
            )
            .await
            .expect("read columns");
        columns.insert(
            name.clone(),
            cols.iter().map(|r| r.get::<_, String>(1)).collect(),
        );
        if kind == "r" {
            let row_expr = cols
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join(", ");
            let digest = client
                .query_one(
                    &format!(
                        "SELECT count(*), coalesce(md5(string_agg(r, E'\\n' ORDER BY r)), '') \
                         FROM (SELECT ROW({row_expr})::text COLLATE \"C\" AS r FROM ONLY {name}) s"
                    ),
                    &[],
                )
                .await
                .unwrap_or_else(|e| panic!("digest of {name}: {e}"));
            rows.insert(name, (digest.get(0), digest.get(1)));
        }
    }

    let mut sequences = BTreeMap::new();
    let seqs = client
        .query(
            &format!(
                "SELECT format('%I.%I', n.nspname, c.relname), \
                        concat_ws(' ', pg_catalog.format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmax, s.seqmin, s.seqcache, s.seqcycle) \
                 FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.oid IN ({USER_NAMESPACES})"
            ),
            &[],
        )
        .await
        .expect("list sequences");
    for seq in &seqs {
        let name: String = seq.get(0);
        let definition: String = seq.get(1);
        let state = client
            .query_one(&format!("SELECT last_value, is_called FROM {name}"), &[])
            .await
            .expect("read sequence state");
        let last_value: i64 = state.get(0);
        let is_called: bool = state.get(1);
        sequences.insert(
            name,
            format!("{definition} last_value={last_value} is_called={is_called}"),
        );
    }

    let mut constraints: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in client
        .query(
            &format!(
                "SELECT coalesce(c.conrelid::regclass::text, c.contypid::regtype::text), \
                        format('%I %s', c.conname, pg_catalog.pg_get_constraintdef(c.oid)) \
                 FROM pg_catalog.pg_constraint c WHERE c.connamespace IN ({USER_NAMESPACES}) \
                 AND c.contype <> 'n' ORDER BY 1, 2"
            ),
            &[],
        )
        .await
        .expect("list constraints")
    {
        constraints.entry(row.get(0)).or_default().push(row.get(1));
    }
    let indexes = client
        .query(
            &format!(
                "SELECT pg_catalog.pg_get_indexdef(i.indexrelid) FROM pg_catalog.pg_index i \
                 JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid \
                 JOIN pg_catalog.pg_class t ON t.oid = i.indrelid AND t.relkind IN ('r', 'p') \
                 WHERE c.relnamespace IN ({USER_NAMESPACES}) ORDER BY 1"
            ),
            &[],
        )
        .await
        .expect("list indexes")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let large_objects = client
        .query(
            "SELECT concat_ws(' ', l.oid, pg_catalog.pg_get_userbyid(l.lomowner), \
                    length(pg_catalog.lo_get(l.oid)), md5(pg_catalog.lo_get(l.oid))) \
             FROM pg_catalog.pg_largeobject_metadata l ORDER BY l.oid",
            &[],
        )
        .await
        .expect("read large objects")
        .iter()
        .map(|r| r.get(0))
        .collect();
    Contents {
        rows,
        sequences,
        columns,
        constraints,
        indexes,
        large_objects,
    }
}

/// Asserts that two databases hold the same tables, rows, sequences, constraints, indexes and
/// large objects.
pub async fn assert_same_contents(source: &TestDb, restored: &TestDb) {
    let expected = contents(source).await;
    let actual = contents(restored).await;
    assert!(
        !expected.rows.is_empty(),
        "the source database has no tables; the comparison would prove nothing"
    );
    assert_eq!(
        actual.rows.keys().collect::<Vec<_>>(),
        expected.rows.keys().collect::<Vec<_>>(),
        "tables differ"
    );
    for (table, rows) in &expected.rows {
        assert_eq!(actual.rows.get(table), Some(rows), "rows of {table} differ");
    }
    assert_eq!(actual.sequences, expected.sequences, "sequences differ");
    assert_eq!(actual.columns, expected.columns, "columns differ");
    assert_eq!(
        actual.constraints, expected.constraints,
        "constraints differ"
    );
    let missing: Vec<_> = expected
        .indexes
        .iter()
        .filter(|i| !actual.indexes.contains(i))
        .collect();
    let extra: Vec<_> = actual
        .indexes
        .iter()
        .filter(|i| !expected.indexes.contains(i))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "indexes differ: missing {missing:#?}, extra {extra:#?}"
    );
    assert_eq!(
        actual.large_objects, expected.large_objects,
        "large objects differ"
    );
}

/// The one `bigint` value `sql` selects in `db`.
pub async fn query_i64(db: &TestDb, sql: &str) -> i64 {
    db.client()
        .await
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// Names of user objects in `db` (relations, types, schemas other than public, routines), to
/// check that a failed restore left nothing behind.
pub async fn user_objects(db: &TestDb) -> Vec<String> {
    let client = db.client().await;
    client
        .query(
            &format!(
                "SELECT 'relation ' || c.oid::regclass::text FROM pg_catalog.pg_class c WHERE c.relnamespace IN ({USER_NAMESPACES}) \
                 UNION ALL SELECT 'type ' || t.oid::regtype::text FROM pg_catalog.pg_type t WHERE t.typnamespace IN ({USER_NAMESPACES}) AND t.typrelid = 0 AND t.typelem = 0 \
                 UNION ALL SELECT 'schema ' || n.nspname FROM pg_catalog.pg_namespace n WHERE n.oid IN ({USER_NAMESPACES}) AND n.nspname <> 'public' \
                 UNION ALL SELECT 'routine ' || p.oid::regprocedure::text FROM pg_catalog.pg_proc p WHERE p.pronamespace IN ({USER_NAMESPACES}) \
                 ORDER BY 1"
            ),
            &[],
        )
        .await
        .expect("list user objects")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Whether database `name` exists on the test server.
pub async fn database_exists(name: &str) -> bool {
    let client = pgark_testkit::server().database("postgres").client().await;
    client
        .query_opt(
            "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1",
            &[&name],
        )
        .await
        .expect("query pg_database")
        .is_some()
}

/// Bytes in [`large_object_source`]'s big object: 24 MiB and a little, so not a whole number of
/// 256 KiB pieces, and well over what a manifest could carry.
pub const BIG_LARGE_OBJECT_BYTES: i64 = (24 << 20) + 224;

/// A database with large objects of every shape: one of [`BIG_LARGE_OBJECT_BYTES`] of
/// incompressible bytes (SHA-256 output), one of exactly one 256 KiB piece, several small ones,
/// an empty one, and one with its own owner, privileges and comment. Returns the database and
/// the owner role (created here, uniquely named: roles are global to the test server; the
/// creating role is made a member, as a managed admin must be to give it objects).
pub async fn large_object_source(prefix: &str) -> (TestDb, String) {
    let owner = pgark_testkit::unique_name("pgark_lo_owner");
    let db = pgark_testkit::server().create_database(prefix).await;
    db.execute(&format!(
        "CREATE ROLE {owner} NOLOGIN;
         GRANT {owner} TO CURRENT_USER;
         CREATE TABLE docs (id int PRIMARY KEY, body oid);
         SELECT lo_from_bytea(800001, (SELECT string_agg(sha256(int4send(g)), ''::bytea ORDER BY g)
                                       FROM generate_series(1, {pieces}) g));
         SELECT lo_from_bytea(800002, (SELECT string_agg(sha256(int4send(-g)), ''::bytea ORDER BY g)
                                       FROM generate_series(1, 8192) g));
         SELECT lo_from_bytea(800100 + g, convert_to(repeat('small ' || g, g), 'UTF8'))
           FROM generate_series(1, 20) g;
         SELECT lo_create(800200);
         SELECT lo_from_bytea(800300, convert_to('owned, shared and described', 'UTF8'));
         ALTER LARGE OBJECT 800300 OWNER TO {owner};
         GRANT SELECT ON LARGE OBJECT 800300 TO PUBLIC;
         COMMENT ON LARGE OBJECT 800300 IS 'a described object';
         INSERT INTO docs VALUES (1, 800001), (2, 800300);",
        pieces = BIG_LARGE_OBJECT_BYTES / 32,
    ))
    .await;
    let size: i64 = db
        .client()
        .await
        .query_one(
            "SELECT sum(length(lo_get(oid)))::int8 FROM pg_largeobject_metadata",
            &[],
        )
        .await
        .expect("large objects' size")
        .get(0);
    assert!(
        size > 24 << 20,
        "the source holds {size} bytes of large objects"
    );
    (db, owner)
}

/// The number of large objects in `db` and the sizes of their contents, by OID.
pub async fn large_object_sizes(db: &TestDb) -> Vec<(u32, i64)> {
    db.client()
        .await
        .query(
            "SELECT oid, length(lo_get(oid))::int8 FROM pg_largeobject_metadata ORDER BY oid",
            &[],
        )
        .await
        .expect("large objects")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Restores `backup` (a path, or `DEST/latest`) into a new database and checks that it holds what
/// `source` holds now.
pub async fn restore_into_new_and_compare(backup: &str, source: &TestDb, prefix: &str) {
    restore_into_new_and_compare_with(backup, source, prefix, Vec::new()).await;
}

/// [`restore_into_new_and_compare`] with `env` for pgark (a store's credentials).
pub async fn restore_into_new_and_compare_with(
    backup: &str,
    source: &TestDb,
    prefix: &str,
    env: Vec<(&'static str, String)>,
) {
    let target = pgark_testkit::server().database(&pgark_testkit::unique_name(prefix));
    pgark_with_env(
        &["restore", backup, "--target", &target.url(), "--create"],
        env,
    )
    .await
    .success();
    assert_same_contents(source, &target).await;
}

/// A TCP endpoint on localhost that accepts every connection and holds it open without reading
/// or answering: a stalled server, whatever the protocol.
pub fn silent_endpoint() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    address
}

/// Database `name`'s own properties, comparable between databases of different names: owner,
/// encoding, locale, connection limit, comment, privileges, and the settings of the database
/// and of roles in it.
pub async fn database_properties(name: &str) -> Vec<String> {
    let client = pgark_testkit::server().database("postgres").client().await;
    let row = client
        .query_one(
            "SELECT pg_catalog.pg_get_userbyid(d.datdba)::text, \
                    pg_catalog.pg_encoding_to_char(d.encoding)::text, \
                    d.datcollate::text, d.datctype::text, d.datconnlimit::text, \
                    COALESCE(pg_catalog.shobj_description(d.oid, 'pg_database'), '<none>'), \
                    COALESCE((SELECT pg_catalog.string_agg(a::text, ' ' ORDER BY a::text) \
                              FROM pg_catalog.unnest(d.datacl) a), '<default>'), \
                    COALESCE((SELECT pg_catalog.string_agg( \
                                COALESCE(pg_catalog.pg_get_userbyid(NULLIF(s.setrole, 0))::text, \
                                         '<database>') || ': ' || s.setconfig::text, \
                                ' | ' ORDER BY 1) \
                              FROM pg_catalog.pg_db_role_setting s \
                              WHERE s.setdatabase = d.oid), '<none>') \
             FROM pg_catalog.pg_database d WHERE d.datname = $1",
            &[&name],
        )
        .await
        .unwrap_or_else(|e| panic!("properties of database {name:?}: {e}"));
    [
        "owner",
        "encoding",
        "collate",
        "ctype",
        "connection limit",
        "comment",
        "acl",
        "settings",
    ]
    .iter()
    .enumerate()
    .map(|(i, label)| format!("{label}: {}", row.get::<_, String>(i)))
    .collect()
}
