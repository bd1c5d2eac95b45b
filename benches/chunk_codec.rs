//! Throughput of the chunk codec alone (compress + SHA-256, verify + decompress) on COPY-like text,
//! per zstd level, single-threaded. Run with `cargo bench --bench chunk_codec`. It prints numbers;
//! it asserts nothing about time.

use std::time::{Duration, Instant};

use pgark_archive::key_summary::{KeyFields, KeyOrder};
use pgark_archive::{ChunkDecoder, ChunkEncoder, ChunkEntry, ContentDigest, sha256_hex};

/// COPY text resembling an orders table: integers, dates, short text, numerics, NULLs.
fn sample_rows(bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 256);
    let mut i: u64 = 0;
    while out.len() < bytes {
        i += 1;
        let line = format!(
            "{i}\t{}\t2026-{:02}-{:02}\tcustomer {} ordered {} items\t{}.{:02}\t{}\n",
            i * 7919 % 100_000,
            i % 12 + 1,
            i % 28 + 1,
            i % 5000,
            i % 17,
            i % 1000,
            i % 100,
            if i.is_multiple_of(11) {
                "\\N"
            } else {
                "shipped"
            }
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}

fn measure(mut run: impl FnMut()) -> Duration {
    let started = Instant::now();
    let mut rounds = 0u32;
    while rounds < 3 || started.elapsed() < Duration::from_secs(1) {
        run();
        rounds += 1;
    }
    started.elapsed() / rounds
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let chunk = sample_rows(8 << 20);
    let mb = chunk.len() as f64 / 1e6;
    println!("chunk: {:.1} MB of COPY text", mb);
    let digest_time = measure(|| {
        let mut digest = ContentDigest::default();
        digest.add_rows(&chunk);
    });
    let sha_time = measure(|| {
        let _ = sha256_hex(&chunk);
    });
    println!(
        "content digest alone: {:.0} MB/s; one SHA-256 over the chunk: {:.0} MB/s",
        mb / digest_time.as_secs_f64(),
        mb / sha_time.as_secs_f64()
    );
    // Encryption seals the compressed frame: its cost per MB of COPY text is the seal (or open)
    // of about a fifth of a megabyte.
    let data_key = pgark_archive::seal::DataKey::generate("bench")?;
    let piece = pgark_archive::seal::Piece::Chunk {
        object: "data/00001.0000.copy.zst",
        offset: 0,
        table: 1,
    };
    let seal_time = measure(|| {
        let _ = data_key.seal(piece, chunk.clone());
    });
    let sealed = data_key.seal(piece, chunk.clone())?;
    let open_time = measure(|| {
        let _ = data_key.open(piece, &sealed);
    });
    println!(
        "AES-256-GCM seal: {:.0} MB/s, open: {:.0} MB/s (of the bytes sealed)",
        mb / seal_time.as_secs_f64(),
        mb / open_time.as_secs_f64()
    );
    println!(
        "{:>5} {:>10} {:>14} {:>14}",
        "level", "ratio", "encode MB/s", "decode MB/s"
    );
    let key = KeyFields {
        fields: vec![0],
        order: Some(KeyOrder::Integer),
        filtered: true,
    };
    for level in [1, 3, 6, 9] {
        let mut encoder = ChunkEncoder::new(level)?;
        let encoded = encoder.encode(&chunk, Some(&key))?;
        let encode_time = measure(|| {
            let _ = encoder.encode(&chunk, Some(&key));
        });
        let entry = ChunkEntry {
            object: "bench".into(),
            offset: 0,
            length: encoded.frame.len() as u64,
            raw_length: encoded.raw_length,
            rows: encoded.rows,
            sha256: encoded.sha256.clone(),
            key_range: None,
            key_filter: None,
        };
        let mut decoder = ChunkDecoder::new()?;
        // Into one buffer used again, as a restore decodes.
        let mut rows_text = Vec::new();
        let decode_time = measure(|| {
            let buffer = std::mem::take(&mut rows_text);
            if let Ok(decoded) = decoder.decode(&encoded.frame, &entry, None, ("bench", 0), buffer)
            {
                rows_text = decoded;
            }
        });
        println!(
            "{level:>5} {:>10.2} {:>14.0} {:>14.0}",
            chunk.len() as f64 / encoded.frame.len() as f64,
            mb / encode_time.as_secs_f64(),
            mb / decode_time.as_secs_f64()
        );
    }
    Ok(())
}
