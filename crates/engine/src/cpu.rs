//! CPU-heavy work (decompression, hashing, sealing, large objects' compression) runs on a sized
//! rayon pool, not on the async runtime's threads. Each pool thread keeps its own zstd contexts.
//! The one exception is a dump's table rows, compressed a 128 kB piece at a time by the thread
//! that reads them (see `writer::pieces` for why).

use std::cell::RefCell;
use std::sync::Arc;

use pgark_archive::large_objects::RecordTotals;
use pgark_archive::seal::DataKey;
use pgark_archive::{ArchiveError, ChunkDecoder, ChunkEncoder, ChunkEntry, EncodedChunk};

use crate::EngineError;

#[derive(Debug)]
pub(crate) struct CpuPool {
    pool: rayon::ThreadPool,
}

thread_local! {
    static ENCODER: RefCell<Option<(i32, ChunkEncoder)>> = const { RefCell::new(None) };
    static DECODER: RefCell<Option<ChunkDecoder>> = const { RefCell::new(None) };
}

impl CpuPool {
    /// The process's pool, with one thread per core (compression and hashing are CPU-bound),
    /// started on first use and shared by every operation: threads are not started per
    /// operation, nor more of them than there are cores.
    pub(crate) fn shared() -> Result<Arc<CpuPool>, EngineError> {
        static SHARED: std::sync::OnceLock<Arc<CpuPool>> = std::sync::OnceLock::new();
        if let Some(pool) = SHARED.get() {
            return Ok(pool.clone());
        }
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let pool = Arc::new(Self::new(threads)?);
        Ok(SHARED.get_or_init(|| pool).clone())
    }

    pub(crate) fn new(threads: usize) -> Result<Self, EngineError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("pgark-cpu-{i}"))
            .build()
            .map_err(|source| EngineError::CpuPool { threads, source })?;
        Ok(CpuPool { pool })
    }

    pub(crate) fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs `work` on the pool and waits for it without blocking the runtime. The work starts
    /// at once, whether or not the returned future is polled.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = Result<T, EngineError>> + Send + 'static {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pool.spawn(move || {
            // The receiver may be gone if the operation was abandoned; nothing to do then.
            let _ = tx.send(work());
        });
        async move {
            rx.await.map_err(|_| EngineError::TaskFailed {
                task: "a CPU worker",
                source: None,
            })
        }
    }

    /// Compresses a large-object record stream into one chunk frame.
    pub(crate) fn encode_large_objects(
        &self,
        records: Vec<u8>,
        level: i32,
    ) -> impl Future<Output = Result<EncodedChunk, EngineError>> + Send + 'static {
        let work =
            self.run(move || with_encoder(level, |encoder| encoder.encode_large_objects(&records)));
        async move { Ok(work.await??) }
    }

    /// Checks and decompresses one stored large-object chunk; returns its record stream and
    /// what the records hold.
    pub(crate) fn decode_large_objects(
        &self,
        stored: bytes::Bytes,
        entry: ChunkEntry,
        key: Option<Arc<DataKey>>,
        index: usize,
    ) -> impl Future<Output = Result<(Vec<u8>, RecordTotals), EngineError>> + Send + 'static {
        let work = self.run(move || {
            with_decoder(|decoder| {
                decoder.decode_large_objects(&stored, &entry, key.as_deref(), index)
            })
        });
        async move { Ok(work.await??) }
    }

    /// Checks (and, sealed under `key`, opens) and decompresses one stored chunk of the table
    /// `table` names, whose id is `table_id`, into `buffer` (see [`ChunkDecoder::decode`]).
    pub(crate) fn decode(
        &self,
        stored: bytes::Bytes,
        entry: ChunkEntry,
        key: Option<Arc<DataKey>>,
        (table_id, table): (u32, String),
        index: usize,
        buffer: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, EngineError>> + Send + 'static {
        let work = self.run(move || {
            with_decoder(|decoder| {
                let sealed = key.as_deref().map(|key| (key, table_id));
                decoder.decode(&stored, &entry, sealed, (&table, index), buffer)
            })
        });
        async move { Ok(work.await??) }
    }
}

/// Runs `work` with this pool thread's encoder for `level`, made on first use.
fn with_encoder<T>(
    level: i32,
    work: impl FnOnce(&mut ChunkEncoder) -> Result<T, ArchiveError>,
) -> Result<T, ArchiveError> {
    ENCODER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let mut encoder = match slot.take() {
            Some((l, encoder)) if l == level => encoder,
            _ => ChunkEncoder::new(level)?,
        };
        let result = work(&mut encoder);
        *slot = Some((level, encoder));
        result
    })
}

/// Runs `work` with this pool thread's decoder, made on first use.
fn with_decoder<T>(
    work: impl FnOnce(&mut ChunkDecoder) -> Result<T, ArchiveError>,
) -> Result<T, ArchiveError> {
    DECODER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let mut decoder = match slot.take() {
            Some(decoder) => decoder,
            None => ChunkDecoder::new()?,
        };
        let result = work(&mut decoder);
        *slot = Some(decoder);
        result
    })
}
