//! Dumping large objects' contents: read piece by piece in a worker's snapshot, packed into
//! record-stream chunks of about `chunk_size` bytes, compressed and hashed on the CPU pool and
//! appended to `data/lo.0000.bin.zst`. Memory is bounded like a table's: the chunk being filled,
//! [`MAX_COMPRESSING`] being compressed, and the reader's few pieces; never a whole object.

use std::collections::VecDeque;

use pgark_archive::large_objects::{LargeObjectPiece, PIECE_SIZE, append_record};
use pgark_archive::{LargeObjectsEntry, layout};
use pgark_pg::{Connection, LargeObjectReader};
use tracing::info;

use super::{BackupWriter, ObjectWriter};

/// Chunks the large objects may have compressing at once, so that the session keeps the CPU
/// pool busy while it reads on.
const MAX_COMPRESSING: usize = 2;
use crate::EngineError;

impl BackupWriter {
    /// Dumps every large object's contents. `expected` is how many large objects the schema
    /// recorded, in the same snapshot: the two must agree.
    pub(crate) async fn dump_large_objects(
        &self,
        session: &Connection,
        expected: u64,
    ) -> Result<LargeObjectsEntry, EngineError> {
        let object = layout::large_object_data_name(0);
        let expected_bytes = pgark_pg::large_objects_bytes(session.client()).await?;
        let mut writer = ObjectWriter::for_large_objects(self, &object, Some(expected_bytes))?;
        let read = self
            .read_large_objects(session, expected, &mut writer)
            .await;
        let (count, content_bytes) = match read {
            Ok(read) => read,
            Err(e) => {
                writer.abort().await;
                return Err(e);
            }
        };
        let written = writer.complete().await?;
        let entry = LargeObjectsEntry {
            count,
            content_bytes,
            raw_bytes: written.chunks.iter().map(|c| c.raw_length).sum(),
            stored_bytes: written.stored_bytes,
            piece_size: PIECE_SIZE,
            content_digest: written.content_digest.to_hex(),
            chunks: written.chunks,
        };
        info!(
            large_objects = entry.count,
            content_bytes = entry.content_bytes,
            stored_bytes = entry.stored_bytes,
            chunks = entry.chunks.len(),
            "large objects dumped"
        );
        Ok(entry)
    }

    /// Reads every large object into `writer`; returns how many there were and their bytes.
    async fn read_large_objects(
        &self,
        session: &Connection,
        expected: u64,
        writer: &mut ObjectWriter<'_>,
    ) -> Result<(u64, u64), EngineError> {
        let reading = || "reading large objects".to_owned();
        let mut reader = crate::session::unless_stalled(
            self.stall_timeout,
            &reading,
            LargeObjectReader::open(session.client(), self.chunk_size),
        )
        .await??;
        let mut chunker = RecordChunker::new(self.chunk_size);
        let mut compressing = VecDeque::new();
        let mut content_bytes = 0u64;
        while let Some(piece) =
            crate::session::unless_stalled(self.stall_timeout, &reading, reader.next()).await??
        {
            content_bytes += piece.data.len() as u64;
            let piece = LargeObjectPiece {
                oid: piece.oid,
                offset: piece.offset,
                data: &piece.data,
            };
            if let Some(full) = chunker.push(&piece)? {
                compressing.push_back(self.cpu.encode_large_objects(full, self.compress_level));
                if compressing.len() >= MAX_COMPRESSING
                    && let Some(done) = compressing.pop_front()
                {
                    writer.append(done.await?).await?;
                }
            }
        }
        if let Some(rest) = chunker.finish() {
            compressing.push_back(self.cpu.encode_large_objects(rest, self.compress_level));
        }
        while let Some(done) = compressing.pop_front() {
            writer.append(done.await?).await?;
        }
        let count = reader.objects();
        if count != expected {
            return Err(EngineError::LargeObjectsChanged {
                listed: expected,
                read: count,
            });
        }
        Ok((count, content_bytes))
    }
}

/// Packs records into chunks: a chunk is cut before the record that would take it past
/// `chunk_size`, so a chunk is at most `chunk_size` bytes, or one record when a single record
/// is larger. It holds at most one chunk's worth of records.
pub(super) struct RecordChunker {
    chunk_size: usize,
    buffer: Vec<u8>,
}

impl RecordChunker {
    pub(super) fn new(chunk_size: usize) -> Self {
        RecordChunker {
            chunk_size: chunk_size.max(1),
            buffer: Vec::new(),
        }
    }

    /// Adds one piece's record; returns the previous chunk when this record starts a new one.
    pub(super) fn push(
        &mut self,
        piece: &LargeObjectPiece<'_>,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        let full = if !self.buffer.is_empty()
            && self.buffer.len() + piece.record_len() > self.chunk_size
        {
            Some(std::mem::take(&mut self.buffer))
        } else {
            None
        };
        if self.buffer.capacity() == 0 {
            self.buffer
                .reserve_exact(self.chunk_size.max(piece.record_len()));
        }
        if !append_record(&mut self.buffer, piece) {
            return Err(EngineError::bug(format!(
                "a piece of large object {} is {} bytes, more than a record holds",
                piece.oid,
                piece.data.len()
            )));
        }
        Ok(full)
    }

    /// The last, partly filled chunk, if any.
    pub(super) fn finish(self) -> Option<Vec<u8>> {
        (!self.buffer.is_empty()).then_some(self.buffer)
    }

    /// Bytes of records held.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.buffer.len()
    }
}

#[cfg(test)]
mod tests {
    use pgark_archive::large_objects::{RECORD_HEADER_LEN, records};

    use super::*;

    /// A 1 GiB object (streamed, never built) passes through the chunker holding at most one
    /// chunk of records, and every chunk is within the chunk size.
    #[test]
    fn chunker_holds_at_most_one_chunk_of_a_huge_object() {
        let chunk_size = 8 << 20;
        let piece_data = vec![0xA5u8; PIECE_SIZE as usize];
        let mut chunker = RecordChunker::new(chunk_size);
        let mut chunks = 0u64;
        let mut content = 0u64;
        let mut next_offset = 0u64;
        let mut check = |chunk: Vec<u8>, content: &mut u64| {
            assert!(chunk.len() <= chunk_size, "chunk of {} bytes", chunk.len());
            for piece in records(&chunk) {
                let piece = piece.expect("valid records");
                assert_eq!(piece.offset, next_offset, "pieces stay in order");
                next_offset += piece.data.len() as u64;
                *content += piece.data.len() as u64;
            }
        };
        for n in 0..(1u64 << 30) / u64::from(PIECE_SIZE) {
            let piece = LargeObjectPiece {
                oid: 42,
                offset: n * u64::from(PIECE_SIZE),
                data: &piece_data,
            };
            if let Some(chunk) = chunker.push(&piece).expect("fits") {
                chunks += 1;
                check(chunk, &mut content);
            }
            assert!(chunker.held() <= chunk_size, "holds {}", chunker.held());
        }
        if let Some(chunk) = chunker.finish() {
            chunks += 1;
            check(chunk, &mut content);
        }
        assert_eq!(content, 1 << 30);
        // Thirty-one 256 KiB records (with headers) fit in 8 MiB.
        assert_eq!(chunks, (1u64 << 30).div_ceil(31 * u64::from(PIECE_SIZE)));
    }

    #[test]
    fn a_record_larger_than_the_chunk_size_is_a_chunk_of_its_own() {
        let mut chunker = RecordChunker::new(64 << 10);
        let big = vec![1u8; 100 << 10];
        let small = LargeObjectPiece {
            oid: 1,
            offset: 0,
            data: b"tiny",
        };
        assert!(chunker.push(&small).expect("fits").is_none());
        let first = chunker
            .push(&LargeObjectPiece {
                oid: 2,
                offset: 0,
                data: &big,
            })
            .expect("fits")
            .expect("the small record's chunk is cut");
        assert_eq!(first.len(), RECORD_HEADER_LEN + 4);
        let second = chunker.push(&small).expect("fits").expect("the big one");
        assert_eq!(second.len(), RECORD_HEADER_LEN + big.len());
        assert_eq!(
            chunker.finish().map(|c| c.len()),
            Some(RECORD_HEADER_LEN + 4)
        );
    }
}
