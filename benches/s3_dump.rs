//! Dump to S3 against dump to a local directory, same database, same run: the S3 server is the
//! test kit's in-process `s3s-fs` on 127.0.0.1 (which also stores each object twice — parts, then
//! the assembled object — and checks every part's SHA-256), the database a throw-away PostgreSQL
//! server started by the test kit. Prints the median wall time of each, their ratio, and pgark's
//! peak resident memory (VmHWM, sampled). It asserts nothing.
//!
//! `cargo bench --bench s3_dump` (or `scripts/bench-s3.sh`); `PGARK_BENCH_ROWS` (default
//! 2,000,000, about 250 MB of COPY text), `PGARK_BENCH_ROUNDS` (default 3), `PGARK_BENCH_JOBS`
//! (default 2).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pgark_testkit::S3Server;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident memory of a running process so far, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user + system) a process has used so far; /proc counts in USER_HZ, 100 on Linux.
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// What one pgark run cost.
struct Cost {
    wall: Duration,
    /// Peak resident memory, KiB.
    peak: u64,
    /// pgark's CPU time (last sample before it exited).
    cpu: Duration,
    /// CPU time of this process (the S3 server) during the run.
    server_cpu: Duration,
}

/// Runs pgark to completion and measures it.
fn run(args: &[&str], env: &[(&'static str, String)]) -> Cost {
    let server_before = cpu_time("self").unwrap_or_default();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgark"))
        .args(args)
        .args(["--no-progress", "-q"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start pgark");
    let mut peak = 0;
    let mut cpu = Duration::ZERO;
    loop {
        if let Some(rss) = peak_rss_kib(child.id()) {
            peak = peak.max(rss);
        }
        if let Some(used) = cpu_time(&child.id().to_string()) {
            cpu = cpu.max(used);
        }
        if let Some(status) = child.try_wait().expect("wait for pgark") {
            assert!(status.success(), "pgark {args:?} failed: {status}");
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Cost {
        wall: started.elapsed(),
        peak,
        cpu,
        server_cpu: cpu_time("self").unwrap_or_default() - server_before,
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn du(path: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
        let meta = entry.metadata().expect("metadata");
        total += if meta.is_dir() {
            du(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

#[tokio::main]
async fn main() {
    let rows = env_or("PGARK_BENCH_ROWS", 2_000_000);
    let rounds = env_or("PGARK_BENCH_ROUNDS", 3).max(1);
    let jobs = env_or("PGARK_BENCH_JOBS", 2).to_string();

    let source = pgark_testkit::server().create_database("bench_s3").await;
    println!("loading {rows} rows…");
    source
        .execute(&format!(
            "CREATE TABLE accounts (aid bigint PRIMARY KEY, bid integer, abalance integer, filler text);
             INSERT INTO accounts SELECT g, g % 1000, (g * 7919) % 100000, md5(g::text) || repeat(' ', 40)
               FROM generate_series(1::bigint, {rows}) g;
             CREATE TABLE history (id bigint, aid bigint, delta integer, note text);
             INSERT INTO history SELECT g, g * 13 % {rows}, g % 5000 - 2500, 'payment ' || md5((g * 3)::text)
               FROM generate_series(1::bigint, {rows} / 2) g;
             ANALYZE;"
        ))
        .await;
    let url = source.url();
    let s3 = S3Server::start();
    let env = s3.env();
    let local = tempfile::tempdir().expect("temp dir");

    // One unmeasured dump each, so caches are warm for both.
    let warm_local = local.path().join("warm");
    run(
        &[
            "dump",
            &url,
            warm_local.to_str().expect("utf-8"),
            "--jobs",
            &jobs,
        ],
        &[],
    );
    run(&["dump", &url, &s3.location("warm"), "--jobs", &jobs], &env);
    let stored = du(&warm_local);

    let (mut local_times, mut s3_times) = (Vec::new(), Vec::new());
    let (mut local_cpu, mut s3_cpu, mut server_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let (mut local_peak, mut s3_peak) = (0, 0);
    for round in 0..rounds {
        let dir = local.path().join(format!("round{round}"));
        let local_cost = run(
            &["dump", &url, dir.to_str().expect("utf-8"), "--jobs", &jobs],
            &[],
        );
        std::fs::remove_dir_all(&dir).expect("remove local backup");
        let s3_cost = run(
            &[
                "dump",
                &url,
                &s3.location(&format!("round{round}")),
                "--jobs",
                &jobs,
            ],
            &env,
        );
        println!(
            "round {round}: local {:.2}s (pgark CPU {:.2}s), s3 {:.2}s (pgark CPU {:.2}s, S3 server CPU {:.2}s)",
            local_cost.wall.as_secs_f64(),
            local_cost.cpu.as_secs_f64(),
            s3_cost.wall.as_secs_f64(),
            s3_cost.cpu.as_secs_f64(),
            s3_cost.server_cpu.as_secs_f64(),
        );
        local_times.push(local_cost.wall);
        local_cpu.push(local_cost.cpu);
        local_peak = local_peak.max(local_cost.peak);
        s3_times.push(s3_cost.wall);
        s3_cpu.push(s3_cost.cpu);
        server_cpu.push(s3_cost.server_cpu);
        s3_peak = s3_peak.max(s3_cost.peak);
    }
    let (local_time, s3_time) = (median(local_times), median(s3_times));
    println!(
        "backup: {:.0} MB stored, --jobs {jobs}, {rounds} rounds",
        stored as f64 / 1e6
    );
    println!(
        "dump to local directory: {:.2}s (median), peak RSS {} MiB",
        local_time.as_secs_f64(),
        local_peak / 1024
    );
    println!(
        "dump to S3 (s3s-fs on 127.0.0.1): {:.2}s (median), peak RSS {} MiB",
        s3_time.as_secs_f64(),
        s3_peak / 1024
    );
    println!(
        "pgark CPU (median): local {:.2}s, S3 {:.2}s; S3 server CPU (median) {:.2}s",
        median(local_cpu).as_secs_f64(),
        median(s3_cpu).as_secs_f64(),
        median(server_cpu).as_secs_f64(),
    );
    println!(
        "S3 / local time ratio: {:.3}",
        s3_time.as_secs_f64() / local_time.as_secs_f64()
    );
}
