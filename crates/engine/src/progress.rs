use std::sync::atomic::{AtomicU64, Ordering};

/// Counters the engines update as they go; the binary reads them to draw progress. Shared via
/// `Arc`, updated with relaxed atomics: they are statistics, not synchronisation.
#[derive(Debug, Default)]
pub struct Progress {
    pub tables_total: AtomicU64,
    pub tables_done: AtomicU64,
    pub rows: AtomicU64,
    /// Uncompressed COPY bytes.
    pub raw_bytes: AtomicU64,
    /// Compressed bytes written or read.
    pub stored_bytes: AtomicU64,
    /// Jobs tried again after a lost session or a failed upload.
    pub retries: AtomicU64,
    /// The uncompressed bytes the run expects to move: for a dump the server's size estimates
    /// of the tables (so only an estimate), for a restore the manifest's exact count. 0 when
    /// unknown.
    pub bytes_expected: AtomicU64,
    /// Steps of a restore's schedule (loads, index builds, constraints, ...), and those done.
    pub steps_total: AtomicU64,
    pub steps_done: AtomicU64,
}

impl Progress {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
