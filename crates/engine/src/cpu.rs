//! CPU-heavy work (compression, decompression, hashing) runs on a sized rayon pool, never on the
//! async runtime's threads. Each pool thread keeps its own zstd contexts.

use std::cell::RefCell;

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
    /// A pool with one thread per core: compression and hashing are CPU-bound.
    pub(crate) fn for_machine() -> Result<Self, EngineError> {
        Self::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    pub(crate) fn new(threads: usize) -> Result<Self, EngineError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("pgark-cpu-{i}"))
            .build()
            .map_err(|e| {
                EngineError::Internal(format!("cannot start the compression pool: {e}"))
            })?;
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
            rx.await
                .map_err(|_| EngineError::Internal("a compression worker panicked".into()))
        }
    }

    /// Compresses whole rows into one chunk frame.
    pub(crate) fn encode(
        &self,
        rows_text: bytes::Bytes,
        level: i32,
        key_field: Option<usize>,
    ) -> impl Future<Output = Result<EncodedChunk, EngineError>> + Send + 'static {
        let work = self.run(move || {
            ENCODER.with(|cell| {
                let mut slot = cell.borrow_mut();
                let mut encoder = match slot.take() {
                    Some((l, encoder)) if l == level => encoder,
                    _ => ChunkEncoder::new(level)?,
                };
                let encoded = encoder.encode(&rows_text, key_field);
                *slot = Some((level, encoder));
                encoded
            })
        });
        async move { Ok(work.await??) }
    }

    /// Checks and decompresses one stored chunk.
    pub(crate) fn decode(
        &self,
        stored: bytes::Bytes,
        entry: ChunkEntry,
        table: String,
        index: usize,
    ) -> impl Future<Output = Result<Vec<u8>, EngineError>> + Send + 'static {
        let work = self.run(move || {
            DECODER.with(|cell| -> Result<Vec<u8>, ArchiveError> {
                let mut slot = cell.borrow_mut();
                let mut decoder = match slot.take() {
                    Some(decoder) => decoder,
                    None => ChunkDecoder::new()?,
                };
                let decoded = decoder.decode(&stored, &entry, &table, index);
                *slot = Some(decoder);
                decoded
            })
        });
        async move { Ok(work.await??) }
    }
}
