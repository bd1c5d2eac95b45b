//! The scale simulator: what each command's metadata costs on a backup far larger than this
//! machine holds. It writes a synthetic format 2 backup of `PGARK_SCALE_TABLES` tables (default
//! 100,000, each with a primary key: 200,000 schema items) and `PGARK_SCALE_CHUNKS` chunks
//! (default 1,000,000) — a real head, catalog and chunk index, and sparse data objects of the
//! recorded sizes (1 MiB stored per chunk: about 1 TB that takes no disk) — plus 999 more
//! backups sharing its metadata files (hard links). Then it runs each step `PGARK_SCALE_ROUNDS`
//! times (default 3), each in a process of its own, and prints the median wall time and the
//! largest peak resident memory (`VmHWM`, sampled). It asserts nothing.
//!
//! Steps: `pgark ls` of the 1,000 backups; `pgark show`; `pgark verify --metadata-only`; and, in
//! this program's own child process (no database needed), the planning of a one-table restore
//! (head, catalog, that table's chunk list, the selection, the step graph) and of a whole restore
//! (every chunk list, the step graph). `cargo bench --bench scale` or `scripts/bench-scale.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pgark_archive::{
    ChunkEntry, ColumnEntry, DdlItem, DumpSettings, KeyRange, Manifest, ObjectKind, Section,
    SourceInfo, TableEntry, layout,
};

const STORED_PER_CHUNK: u64 = 1 << 20;
const RAW_PER_CHUNK: u64 = 8 << 20;
const ROWS_PER_CHUNK: u64 = 80_000;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if let Ok(step) = std::env::var("PGARK_SCALE_STEP") {
        plan_step(&step);
        return;
    }
    let tables = env_or("PGARK_SCALE_TABLES", 100_000).max(1);
    let chunks = env_or("PGARK_SCALE_CHUNKS", 1_000_000).max(tables);
    let rounds = env_or("PGARK_SCALE_ROUNDS", 3).max(1);
    let work = tempfile::tempdir().expect("temp dir");
    let dest = work.path().join("backups");
    let started = Instant::now();
    let backup = write_backup(&dest, tables, chunks);
    let manifest_bytes =
        std::fs::metadata(backup.join(layout::MANIFEST_NAME)).map_or(0, |m| m.len());
    let catalog_bytes =
        std::fs::metadata(backup.join(pgark_archive::CATALOG_NAME)).map_or(0, |m| m.len());
    let index_bytes =
        std::fs::metadata(backup.join(pgark_archive::CHUNK_INDEX_NAME)).map_or(0, |m| m.len());
    eprintln!(
        "wrote a backup of {tables} tables and {chunks} chunks in {:.1}s: head {manifest_bytes} B, \
         catalog {catalog_bytes} B, chunk index {index_bytes} B",
        started.elapsed().as_secs_f64()
    );
    let many = work.path().join("many");
    link_copies(&backup, &many, 1_000);

    let pgark = env!("CARGO_BIN_EXE_pgark");
    let backup_arg = backup.to_str().expect("UTF-8 path").to_owned();
    let many_arg = many.to_str().expect("UTF-8 path").to_owned();
    let table = format!("public.t{:06}", tables / 2);
    let this = std::env::current_exe().expect("this benchmark's path");
    let steps: Vec<(String, Command)> = vec![
        (
            "ls (1,000 backups)".into(),
            command(pgark, &["ls", &many_arg], &[]),
        ),
        ("show".into(), command(pgark, &["show", &backup_arg], &[])),
        (
            "verify --metadata-only".into(),
            command(pgark, &["verify", "--metadata-only", &backup_arg], &[]),
        ),
        (
            format!("plan restore --table {table}"),
            command(
                this.to_str().expect("UTF-8 path"),
                &[],
                &[
                    ("PGARK_SCALE_STEP", "one"),
                    ("PGARK_SCALE_BACKUP", &backup_arg),
                    ("PGARK_SCALE_TABLE", &table),
                ],
            ),
        ),
        (
            "plan a whole restore".into(),
            command(
                this.to_str().expect("UTF-8 path"),
                &[],
                &[
                    ("PGARK_SCALE_STEP", "whole"),
                    ("PGARK_SCALE_BACKUP", &backup_arg),
                ],
            ),
        ),
    ];
    println!(
        "\n{tables} tables, {chunks} chunks; time: median of {rounds} (fastest–slowest), peak \
         RSS: the largest\n"
    );
    println!("| step | time | peak RSS |");
    println!("|---|---|---|");
    for (name, mut command) in steps {
        let mut times = Vec::new();
        let mut peak = 0;
        for _ in 0..rounds {
            let (time, rss) = measure(&mut command);
            times.push(time);
            peak = peak.max(rss);
        }
        times.sort();
        let median = times[times.len() / 2];
        println!(
            "| {name} | {:.2} s ({:.2}–{:.2}) | {} MiB |",
            median.as_secs_f64(),
            times[0].as_secs_f64(),
            times[times.len() - 1].as_secs_f64(),
            peak / 1024
        );
    }
}

fn command(program: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(program);
    command.args(args).stdout(std::process::Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    if program.ends_with("pgark") {
        command.args(["--no-progress", "-q"]);
    }
    command
}

/// Runs `command` to its end; its wall time and peak resident memory in KiB (the kernel's
/// high-water mark, `VmHWM`, sampled every 2 ms until the process ends).
fn measure(command: &mut Command) -> (Duration, u64) {
    let started = Instant::now();
    let mut child = command.spawn().expect("start the step");
    let mut peak = 0;
    loop {
        if let Some(rss) = peak_rss_kib(child.id()) {
            peak = peak.max(rss);
        }
        if let Some(status) = child.try_wait().expect("wait for the step") {
            assert!(status.success(), "{command:?} failed: {status}");
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    (started.elapsed(), peak)
}

/// Peak resident memory of a running process so far, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The restore planning steps, in a process of their own.
fn plan_step(step: &str) {
    let backup = std::env::var("PGARK_SCALE_BACKUP").expect("PGARK_SCALE_BACKUP");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let (opened, mut manifest) = pgark_engine::open_backup(&backup).await.expect("open");
        let parts = pgark_engine::restore::RestoreParts::default();
        let plan = match step {
            "one" => {
                let table = std::env::var("PGARK_SCALE_TABLE").expect("PGARK_SCALE_TABLE");
                let selection = pgark_engine::surgical::TableSelection::parse(&[table], &[], &[])
                    .expect("selection");
                let selected = selection.select_tables(&manifest).expect("select");
                let wanted: Vec<usize> = selected.iter().flat_map(|t| t.parts.clone()).collect();
                opened
                    .load_chunks(&mut manifest, Some(&wanted))
                    .await
                    .expect("chunk list");
                // As `restore --table` does: the whole catalog is let go once the subset is made.
                let mut subset = selection.apply(&manifest).expect("apply");
                drop(manifest);
                let every: Vec<usize> = (0..subset.tables.len()).collect();
                opened
                    .load_chunks(&mut subset, Some(&every))
                    .await
                    .expect("chunk list");
                pgark_engine::restore::plan(&subset, &parts, 8).expect("plan")
            }
            // A whole restore plans from the catalog alone; its sessions decode each table's
            // chunk list while they load the table.
            _ => pgark_engine::restore::plan(&manifest, &parts, 8).expect("plan"),
        };
        eprintln!(
            "{step}: {} load units, {} steps",
            plan.load_units, plan.steps
        );
    });
}

/// Writes the synthetic backup under `dest`; returns its directory.
fn write_backup(dest: &Path, tables: u64, chunks: u64) -> PathBuf {
    let id = "2026-12-01T030000Z";
    let dir = dest.join(id);
    std::fs::create_dir_all(dir.join(layout::DATA_DIR)).expect("mkdir");
    let mut manifest = Manifest::new(
        id.into(),
        "2026-12-01T03:00:00Z".into(),
        SourceInfo {
            connection: "postgres://backup@db.internal/big".into(),
            database: "big".into(),
            server_version: "17.2".into(),
            server_version_num: 170002,
            encoding: "UTF8".into(),
            snapshot_id: "00000003-0000001B-1".into(),
            snapshot_time: "2026-12-01T03:00:00Z".into(),
        },
        DumpSettings {
            jobs: 8,
            chunk_size: RAW_PER_CHUNK,
            compress_level: 2,
            object_lock: None,
        },
    );
    manifest.finished_at = "2026-12-01T09:00:00Z".into();
    let columns = vec![
        ColumnEntry {
            name: "id".into(),
            type_name: "bigint".into(),
        },
        ColumnEntry {
            name: "created_at".into(),
            type_name: "timestamp with time zone".into(),
        },
        ColumnEntry {
            name: "payload".into(),
            type_name: "jsonb".into(),
        },
    ];
    for n in 0..tables {
        let id = u32::try_from(n + 1).expect("table id");
        let name = format!("t{n:06}");
        let own = chunks / tables + u64::from(n < chunks % tables);
        let object = layout::data_object_name(id, 0);
        let mut table_chunks = Vec::new();
        for c in 0..own {
            let first = c * ROWS_PER_CHUNK + 1;
            table_chunks.push(ChunkEntry {
                object: object.clone(),
                offset: c * STORED_PER_CHUNK,
                length: STORED_PER_CHUNK,
                raw_length: RAW_PER_CHUNK,
                rows: ROWS_PER_CHUNK,
                sha256: format!("{:064x}", u128::from(id) << 64 | u128::from(c)),
                key_range: Some(KeyRange {
                    column: "id".into(),
                    min: first.to_string(),
                    max: (first + ROWS_PER_CHUNK - 1).to_string(),
                }),
                key_filter: None,
            });
        }
        std::fs::File::create(dir.join(&object))
            .and_then(|file| file.set_len(own * STORED_PER_CHUNK))
            .expect("sparse data object");
        manifest.schema.push(DdlItem {
            id: 2 * id - 1,
            kind: ObjectKind::Table,
            section: Section::PreData,
            schema: Some("public".into()),
            name: name.clone(),
            table: None,
            sql: format!(
                "CREATE TABLE public.{name} (id bigint NOT NULL, created_at timestamp with time \
                 zone, payload jsonb);"
            ),
            deps: Vec::new(),
            roles: Vec::new(),
            via_index: None,
        });
        manifest.schema.push(DdlItem {
            id: 2 * id,
            kind: ObjectKind::Constraint,
            section: Section::PostData,
            schema: Some("public".into()),
            name: format!("{name}_pkey"),
            table: Some(2 * id - 1),
            sql: format!(
                "ALTER TABLE ONLY public.{name} ADD CONSTRAINT {name}_pkey PRIMARY KEY (id);"
            ),
            deps: vec![2 * id - 1],
            roles: Vec::new(),
            via_index: None,
        });
        manifest.tables.push(TableEntry {
            id,
            schema: "public".into(),
            name,
            item: 2 * id - 1,
            columns: columns.clone(),
            row_count: own * ROWS_PER_CHUNK,
            raw_bytes: own * RAW_PER_CHUNK,
            stored_bytes: own * STORED_PER_CHUNK,
            content_digest: "0".repeat(32),
            key_column: Some("id".into()),
            lookup_key: None,
            row_filter: None,
            chunk_index: None,
            chunks: table_chunks,
        });
    }
    let encoded = manifest.encode().expect("encode");
    std::fs::write(
        dir.join(pgark_archive::CHUNK_INDEX_NAME),
        &encoded.chunk_index,
    )
    .expect("write");
    std::fs::write(dir.join(pgark_archive::CATALOG_NAME), &encoded.catalog).expect("write");
    std::fs::write(dir.join(layout::STARTED_NAME), b"{}").expect("write");
    std::fs::write(dir.join(layout::MANIFEST_NAME), &encoded.head).expect("write");
    dir
}

/// `count` backups under `dest` whose metadata files are hard links to `backup`'s: what `ls`
/// reads of each is its head (and the listing's sizes of the others).
fn link_copies(backup: &Path, dest: &Path, count: u32) {
    for n in 0..count {
        let dir = dest.join(format!(
            "2026-09-{:02}T{:02}{:02}00Z",
            1 + n / 100 % 28,
            n / 10 % 10,
            n % 10 * 5
        ));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for name in [
            layout::MANIFEST_NAME,
            pgark_archive::CATALOG_NAME,
            pgark_archive::CHUNK_INDEX_NAME,
            layout::STARTED_NAME,
        ] {
            std::fs::hard_link(backup.join(name), dir.join(name)).expect("link");
        }
    }
}
