//! The dump's metrics file: Prometheus text exposition format, written atomically (a temporary
//! file in the same directory, fsynced, then renamed over the old one) so that a node exporter's
//! textfile collector never reads half a file. A failed dump writes the file too, keeping the
//! time of the last success from the previous file, so alerting sees both "failed" and "stale".

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use pgark_archive::Timestamp;

/// What one dump run reports.
#[derive(Debug, Clone)]
pub struct DumpMetrics {
    pub database: String,
    pub success: bool,
    pub finished_at: Timestamp,
    pub duration: Duration,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    pub rows: u64,
    pub tables: u64,
    /// Jobs (pieces of tables, the large objects) tried again after a lost session or a failed
    /// upload.
    pub retries: u64,
    /// This backup's raw size over the previous complete backup's, when there is one.
    pub size_change_ratio: Option<f64>,
}

/// A size change beyond this factor (either way) is flagged as an anomaly.
pub const SIZE_ANOMALY_FACTOR: f64 = 2.0;

/// Whether a size change ratio is beyond [`SIZE_ANOMALY_FACTOR`] either way.
pub fn is_size_anomaly(ratio: f64) -> bool {
    !(1.0 / SIZE_ANOMALY_FACTOR..=SIZE_ANOMALY_FACTOR).contains(&ratio)
}

impl DumpMetrics {
    pub fn size_anomaly(&self) -> bool {
        self.size_change_ratio.is_some_and(is_size_anomaly)
    }

    /// The file's text. `previous_success` is the last success time to keep when this run failed.
    pub fn render(&self, previous_success: Option<i64>) -> String {
        render_runs(std::slice::from_ref(self), |_| previous_success)
    }

    /// Each gauge of this run, in the file's order: (name, help, value); those that do not
    /// apply (sizes of a failed run) are left out.
    fn gauges(&self, previous_success: Option<i64>) -> Vec<(&'static str, &'static str, String)> {
        let mut gauges = vec![(
            "pgark_dump_success",
            "Whether the last dump succeeded (1) or failed (0).",
            u8::from(self.success).to_string(),
        )];
        gauges.push((
            "pgark_dump_last_run_timestamp_seconds",
            "When the last dump ended, success or not.",
            self.finished_at.unix().to_string(),
        ));
        let last_success = if self.success {
            Some(self.finished_at.unix())
        } else {
            previous_success
        };
        if let Some(time) = last_success {
            gauges.push((
                "pgark_dump_last_success_timestamp_seconds",
                "When the last successful dump ended.",
                time.to_string(),
            ));
        }
        gauges.push((
            "pgark_dump_duration_seconds",
            "How long the last dump took.",
            format!("{:.3}", self.duration.as_secs_f64()),
        ));
        if !self.success {
            return gauges;
        }
        gauges.extend([
            (
                "pgark_dump_raw_bytes",
                "Uncompressed COPY bytes in the last backup.",
                self.raw_bytes.to_string(),
            ),
            (
                "pgark_dump_stored_bytes",
                "Compressed bytes stored for the last backup.",
                self.stored_bytes.to_string(),
            ),
            (
                "pgark_dump_rows",
                "Rows in the last backup.",
                self.rows.to_string(),
            ),
            (
                "pgark_dump_tables",
                "Tables in the last backup.",
                self.tables.to_string(),
            ),
            (
                "pgark_dump_retries",
                "Pieces of the last dump tried again after a lost session or a failed upload.",
                self.retries.to_string(),
            ),
        ]);
        if let Some(ratio) = self.size_change_ratio {
            gauges.push((
                "pgark_dump_size_change_ratio",
                "Raw size of the last backup over the previous one's.",
                format!("{ratio:.4}"),
            ));
        }
        gauges.push((
            "pgark_dump_size_anomaly",
            "1 when the raw size changed by more than a factor of two.",
            u8::from(self.size_anomaly()).to_string(),
        ));
        gauges
    }
}

/// The file's text for several runs (`dump --all`: one per database), one series each under
/// every gauge's HELP and TYPE lines. `previous_success` gives, by database, the last success
/// time to keep for a run that failed.
pub fn render_runs(runs: &[DumpMetrics], previous_success: impl Fn(&str) -> Option<i64>) -> String {
    let mut order: Vec<(&'static str, &'static str)> = Vec::new();
    let mut series: std::collections::HashMap<&'static str, Vec<String>> =
        std::collections::HashMap::new();
    for run in runs {
        let label = format!("{{database=\"{}\"}}", escape_label(&run.database));
        for (name, help, value) in run.gauges(previous_success(&run.database)) {
            if !series.contains_key(name) {
                order.push((name, help));
            }
            series
                .entry(name)
                .or_default()
                .push(format!("{name}{label} {value}\n"));
        }
    }
    let mut out = String::new();
    for (name, help) in order {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for line in series.get(name).into_iter().flatten() {
            out.push_str(line);
        }
    }
    out
}

/// The last success time an existing metrics file records for `database` (`None`: for the
/// one database the file is about, whatever its label — a dump's metrics file is its own), if
/// any.
pub fn previous_success(path: &Path, database: Option<&str>) -> Option<i64> {
    let text = std::fs::read_to_string(path).ok()?;
    let name = "pgark_dump_last_success_timestamp_seconds{";
    let series = database.map(|db| format!("{name}database=\"{}\"}} ", escape_label(db)));
    text.lines()
        .find_map(|line| match &series {
            Some(series) => line.strip_prefix(series.as_str()),
            None => line
                .starts_with(name)
                .then(|| line.rsplit(' ').next())
                .flatten(),
        })
        .and_then(|value| value.trim().parse().ok())
}

/// Writes `text` to `path` atomically.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(success: bool) -> DumpMetrics {
        DumpMetrics {
            database: "prod \"x\"".into(),
            success,
            finished_at: Timestamp::from_unix(1_800_000_000),
            duration: Duration::from_millis(1500),
            raw_bytes: 100,
            stored_bytes: 20,
            rows: 7,
            tables: 2,
            retries: 1,
            size_change_ratio: Some(2.5),
        }
    }

    #[test]
    fn success_reports_everything_and_flags_the_size_jump() {
        let text = sample(true).render(None);
        assert!(
            text.contains("pgark_dump_success{database=\"prod \\\"x\\\"\"} 1\n"),
            "{text}"
        );
        assert!(text.contains(
            "pgark_dump_last_success_timestamp_seconds{database=\"prod \\\"x\\\"\"} 1800000000\n"
        ));
        assert!(text.contains("pgark_dump_size_anomaly{database=\"prod \\\"x\\\"\"} 1\n"));
        assert!(text.contains("pgark_dump_duration_seconds{database=\"prod \\\"x\\\"\"} 1.500\n"));
    }

    #[test]
    fn failure_keeps_the_previous_success_time() {
        let text = sample(false).render(Some(1_700_000_000));
        assert!(text.contains("pgark_dump_success{database=\"prod \\\"x\\\"\"} 0\n"));
        assert!(text.contains(
            "pgark_dump_last_success_timestamp_seconds{database=\"prod \\\"x\\\"\"} 1700000000\n"
        ));
        assert!(!text.contains("pgark_dump_rows"));
    }

    #[test]
    fn several_databases_are_one_series_each_under_one_help_line() {
        let mut other = sample(false);
        other.database = "crm".into();
        let text = render_runs(&[sample(true), other], |db| {
            (db == "crm").then_some(1_600_000_000)
        });
        assert_eq!(
            text.matches("# HELP pgark_dump_success ").count(),
            1,
            "{text}"
        );
        assert!(text.contains("pgark_dump_success{database=\"crm\"} 0\n"));
        assert!(text.contains("pgark_dump_success{database=\"prod \\\"x\\\"\"} 1\n"));
        assert!(
            text.contains(
                "pgark_dump_last_success_timestamp_seconds{database=\"crm\"} 1600000000\n"
            )
        );
        // Sizes only for the run that succeeded.
        assert_eq!(text.matches("pgark_dump_rows{").count(), 1);
    }

    #[test]
    fn files_are_replaced_atomically_and_read_back() {
        let dir = std::env::temp_dir().join(format!("pgark-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("pgark.prom");
        write_atomically(&path, &sample(true).render(None)).expect("write");
        assert_eq!(
            previous_success(&path, Some("prod \"x\"")),
            Some(1_800_000_000)
        );
        assert_eq!(previous_success(&path, None), Some(1_800_000_000));
        assert_eq!(previous_success(&path, Some("other")), None);
        let leftovers: Vec<_> = std::fs::read_dir(&dir).expect("read").collect();
        assert_eq!(leftovers.len(), 1, "no temporary file may be left");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
