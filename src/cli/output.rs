//! What pgark prints: logs (plain text or JSON lines on stderr), a progress line when stderr is
//! a terminal, a one-line summary on stdout, and errors as one line on stderr.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pgark_engine::Progress;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// More detail in the logs (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors on stderr; no progress and no per-table lines.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// No progress line even on a terminal (as --progress none).
    #[arg(long, global = true)]
    no_progress: bool,
    /// Progress: `auto` draws a line with percent, throughput and ETA on a terminal (nothing
    /// otherwise); `json` writes one JSON event per second to stderr, terminal or not, for
    /// wrappers; `none` shows nothing.
    #[arg(long, global = true, value_enum, default_value_t = ProgressMode::Auto)]
    progress: ProgressMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    Auto,
    Json,
    None,
}

#[derive(Debug)]
pub struct Output {
    show_progress: bool,
    /// One JSON event per second on stderr instead of the line.
    json_progress: bool,
    json: bool,
}

impl Output {
    /// Sets up logging. `PGARK_LOG` (an `EnvFilter` directive such as `pgark_engine=debug`)
    /// overrides the level chosen by the flags.
    pub fn init(args: &OutputArgs) -> Result<Output, String> {
        let terminal = std::io::stderr().is_terminal();
        let json_progress = args.progress == ProgressMode::Json && !args.no_progress;
        let show_progress =
            terminal && !args.quiet && !args.no_progress && args.progress == ProgressMode::Auto;
        // On a terminal the progress line replaces the per-table log lines.
        let level = match (args.quiet, args.verbose, show_progress) {
            (true, _, _) => "error",
            (false, 0, true) => "warn",
            (false, 0, false) => "info",
            (false, 1, _) => "debug",
            (false, _, _) => "trace",
        };
        let filter = match std::env::var("PGARK_LOG") {
            Ok(directive) => EnvFilter::try_new(&directive)
                .map_err(|e| format!("PGARK_LOG={directive:?} is not a valid log filter: {e}"))?,
            // The AWS signer logs request parts at debug level; they stay out even at -vv.
            Err(_) => EnvFilter::new(format!("{level},aws_sigv4=info")),
        };
        let json = args.log_format == LogFormat::Json;
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(terminal)
            .with_target(false);
        // Logs read later (cron, CI) need times; a person watching a terminal does not.
        let installed = match (json, terminal) {
            (true, _) => builder.json().flatten_event(true).try_init(),
            (false, true) => builder.without_time().try_init(),
            (false, false) => builder.try_init(),
        };
        installed.map_err(|e| format!("cannot set up logging: {e}"))?;
        Ok(Output {
            show_progress,
            json_progress,
            json,
        })
    }

    /// Starts the progress line (on a terminal) for an operation described by `verb`.
    pub fn progress(&self, verb: &'static str, progress: Arc<Progress>) -> ProgressLine {
        if self.json_progress {
            let started = Instant::now();
            let task = tokio::spawn(async move {
                let mut interval = tokio::time::interval(Duration::from_secs(1));
                interval.tick().await;
                loop {
                    interval.tick().await;
                    let event = progress_event(verb, &Snapshot::of(&progress, started.elapsed()));
                    eprintln!("{event}");
                }
            });
            return ProgressLine {
                bar: None,
                task: Some(task),
            };
        }
        if !self.show_progress {
            return ProgressLine {
                bar: None,
                task: None,
            };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(verb);
        let ticker = bar.clone();
        let started = Instant::now();
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(200));
            loop {
                interval.tick().await;
                ticker.set_message(progress_message(&progress, started.elapsed()));
                ticker.tick();
            }
        });
        ProgressLine {
            bar: Some(bar),
            task: Some(task),
        }
    }

    /// The final one-line summary, on stdout.
    pub fn summary(&self, line: &str) {
        use std::io::Write;
        // A reader that went away (`pgark ls | head -1`) is not worth a panic; nothing to do.
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }

    /// An error, as one line on stderr.
    /// Prints the error that ended the run; in JSON with its class (see `super::outcome`).
    pub fn error(&self, error: &anyhow::Error, class: &str) {
        let message = render_error(error);
        if self.json {
            let line = serde_json::json!({"level": "ERROR", "class": class, "message": message});
            eprintln!("{line}");
        } else {
            eprintln!("pgark: error: {message}");
        }
    }
}

/// The progress line on a terminal; cleared when dropped.
pub struct ProgressLine {
    bar: Option<ProgressBar>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// The counters at one moment, and what follows from them.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    elapsed: Duration,
    tables_done: u64,
    tables_total: u64,
    rows: u64,
    bytes_done: u64,
    bytes_expected: u64,
    steps_done: u64,
    steps_total: u64,
}

impl Snapshot {
    fn of(progress: &Progress, elapsed: Duration) -> Snapshot {
        Snapshot {
            elapsed,
            tables_done: Progress::get(&progress.tables_done),
            tables_total: Progress::get(&progress.tables_total),
            rows: Progress::get(&progress.rows),
            bytes_done: Progress::get(&progress.raw_bytes),
            bytes_expected: Progress::get(&progress.bytes_expected),
            steps_done: Progress::get(&progress.steps_done),
            steps_total: Progress::get(&progress.steps_total),
        }
    }

    /// Percent of the bytes expected, held below 100 until the run says it is done (a dump's
    /// total is the server's estimate).
    fn percent(&self) -> Option<u64> {
        (self.bytes_expected > 0)
            .then(|| (self.bytes_done.saturating_mul(100) / self.bytes_expected).min(99))
    }

    fn rate(&self) -> u64 {
        rate(self.bytes_done, self.elapsed)
    }

    /// Time left at the average rate so far, once there is one.
    fn eta(&self) -> Option<Duration> {
        let rate = self.rate();
        if self.bytes_expected == 0 || rate == 0 || self.elapsed < Duration::from_millis(500) {
            return None;
        }
        let left = self.bytes_expected.saturating_sub(self.bytes_done);
        Some(Duration::from_secs(left.div_ceil(rate)))
    }
}

fn progress_message(progress: &Progress, elapsed: Duration) -> String {
    let now = Snapshot::of(progress, elapsed);
    let mut parts = Vec::new();
    if let Some(percent) = now.percent() {
        parts.push(format!("{percent}%"));
    }
    parts.push(format!("tables {}/{}", now.tables_done, now.tables_total));
    if now.steps_total > 0 {
        parts.push(format!("steps {}/{}", now.steps_done, now.steps_total));
    }
    parts.push(format!("{} rows", thousands(now.rows)));
    parts.push(match now.bytes_expected {
        0 => bytes(now.bytes_done),
        expected => format!("{} of {}", bytes(now.bytes_done), bytes(expected)),
    });
    parts.push(format!("{}/s", bytes(now.rate())));
    if let Some(eta) = now.eta() {
        parts.push(format!("ETA {}", age(eta)));
    }
    parts.join(" · ")
}

/// One `--progress json` event.
fn progress_event(operation: &str, now: &Snapshot) -> serde_json::Value {
    serde_json::json!({
        "event": "progress",
        "operation": operation,
        "elapsed_seconds": now.elapsed.as_secs(),
        "percent": now.percent(),
        "eta_seconds": now.eta().map(|d| d.as_secs()),
        "bytes_done": now.bytes_done,
        "bytes_expected": now.bytes_expected,
        "bytes_per_second": now.rate(),
        "rows": now.rows,
        "tables_done": now.tables_done,
        "tables_total": now.tables_total,
        "steps_done": now.steps_done,
        "steps_total": now.steps_total,
    })
}

/// Bytes per second over `elapsed`.
pub fn rate(bytes: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        (bytes as f64 / secs) as u64
    } else {
        0
    }
}

/// `1,234,567`
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `3d 4h`, `5h 12m`, `42s`: a rough age for people.
pub fn age(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// `512.0 MiB`
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The error and those of its causes whose text it does not already contain, joined by `: `.
/// Engine errors are worded for the command line (see `hints`).
pub fn render_error(error: &anyhow::Error) -> String {
    let text_of = |cause: &(dyn std::error::Error + 'static)| match cause
        .downcast_ref::<pgark_engine::EngineError>()
    {
        Some(engine) => super::hints::message(engine),
        None => cause.to_string(),
    };
    // A store's error already words what its SDK error says (server code and message, or what
    // failed on the way), so the SDK's own layers are not added after it.
    let is_store_error = |cause: &(dyn std::error::Error + 'static)| {
        cause.is::<pgark_storage::StoreError>()
            || matches!(
                cause.downcast_ref::<pgark_engine::EngineError>(),
                Some(pgark_engine::EngineError::Store(_))
            )
    };
    let mut message = text_of(error.as_ref());
    if is_store_error(error.as_ref()) {
        return message.replace('\n', " ");
    }
    for cause in error.chain().skip(1) {
        // Server errors are already rendered (message, SQLSTATE, hint) by the error wrapping them.
        if let Some(server) = cause.downcast_ref::<tokio_postgres::Error>()
            && server
                .as_db_error()
                .is_some_and(|db| message.contains(db.message()))
        {
            continue;
        }
        let text = text_of(cause);
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        if is_store_error(cause) {
            break;
        }
    }
    message.replace('\n', " ")
}

/// `object lock (compliance) until 2027-03-05T02:00:00Z, legal hold`.
pub fn describe_lock(lock: &pgark_storage::ObjectLock) -> String {
    let record = pgark_engine::lock_record(lock);
    describe_lock_record(&record)
}

/// How `ls`, `show` and `prune` word a backup's Object Lock.
pub fn describe_lock_record(lock: &pgark_archive::ObjectLockRecord) -> String {
    let mut parts = Vec::new();
    if let (Some(mode), Some(until)) = (&lock.mode, &lock.retain_until) {
        parts.push(format!("object lock ({mode}) until {until}"));
    }
    if lock.legal_hold {
        parts.push("legal hold".to_owned());
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_formatted_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
    }

    #[test]
    fn error_chains_are_not_repeated() {
        let inner = std::io::Error::other("disk full");
        let error = anyhow::Error::new(inner).context("writing x: disk full");
        assert_eq!(render_error(&error), "writing x: disk full");
        let error = anyhow::Error::new(std::io::Error::other("boom")).context("writing y");
        assert_eq!(render_error(&error), "writing y: boom");
    }
}
