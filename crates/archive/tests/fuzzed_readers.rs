//! Property tests of every reader of backup bytes: the manifest, chunk frames, large-object
//! record streams, COPY text, key filters, backup ids and timestamps. Whatever the input, a
//! reader returns a value or an error: it never panics, never allocates beyond what its checked
//! sizes allow, and always ends. `PROPTEST_CASES` sets how many inputs each property tries (CI
//! fixes it, bounding the time).

use std::sync::Arc;

use pgark_archive::key_summary::KeyFilter;
use pgark_archive::large_objects::{record_totals, records};
use pgark_archive::seal::{DataKey, EncryptionInfo, Piece};
use pgark_archive::{
    ChunkDecoder, ChunkEncoder, ChunkEntry, DumpSettings, EncodedMetadata, Manifest, ManifestHead,
    ObjectRef, SourceInfo, Timestamp, copy_text, layout, sha256_hex,
};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

/// A valid manifest with one table of two chunks in one object, as JSON.
fn valid_manifest() -> Value {
    let manifest = Manifest::new(
        "2026-12-04T101500Z".to_owned(),
        "2026-12-04T10:15:00Z".to_owned(),
        SourceInfo {
            connection: "postgres://localhost/app".to_owned(),
            database: "app".to_owned(),
            server_version: "17.2".to_owned(),
            server_version_num: 170_002,
            encoding: "UTF8".to_owned(),
            snapshot_id: "00000003-00000002-1".to_owned(),
            snapshot_time: "2026-12-04T10:15:00Z".to_owned(),
        },
        DumpSettings {
            jobs: 2,
            chunk_size: 1 << 20,
            compress_level: 2,
            object_lock: None,
        },
    );
    let bytes = manifest.to_bytes().expect("serialize");
    let mut value: Value = serde_json::from_slice(&bytes).expect("parse");
    value["tables"] = json!([{
        "id": 1, "schema": "public", "name": "t", "item": 0,
        "columns": [{"name": "id", "type_name": "integer"}],
        "row_count": 3, "raw_bytes": 6, "stored_bytes": 40,
        "content_digest": "00".repeat(32),
        "chunks": [
            {"object": "data/00001.0000.copy.zst", "offset": 0, "length": 20,
             "raw_length": 4, "rows": 2, "sha256": "00".repeat(32)},
            {"object": "data/00001.0000.copy.zst", "offset": 20, "length": 20,
             "raw_length": 2, "rows": 1, "sha256": "00".repeat(32)}
        ]
    }]);
    value
}

/// The manifest file for `value`, with a matching checksum line (as `Manifest::to_bytes`
/// writes it), so that the reader's later checks are reached.
fn with_checksum(value: &Value) -> Vec<u8> {
    let mut value = value.clone();
    if let Some(object) = value.as_object_mut() {
        object.remove("manifest_sha256");
    }
    let body = serde_json::to_string_pretty(&value).expect("serialize");
    let mut rest = body.strip_prefix("{\n").unwrap_or(&body).to_owned();
    rest.push('\n');
    format!(
        "{{\n  \"manifest_sha256\": \"{}\",\n{rest}",
        sha256_hex(rest.as_bytes())
    )
    .into_bytes()
}

/// JSON numbers a damaged or crafted manifest may hold where a count or size belongs.
fn any_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        Just(Value::from(0)),
        Just(json!(-1)),
        Just(json!(1e300)),
        Just(json!("12")),
        Just(Value::Null),
    ]
}

/// COPY text rows: tab-separated fields of printable text, escapes and `\N`, each row ending in
/// a newline.
fn copy_rows() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        "[ -~&&[^\\\t]]{0,12}",
        Just("\\N".to_owned()),
        "\\\\[ntrb\\\\]"
    ];
    let row = prop::collection::vec(field, 1..5).prop_map(|fields| fields.join("\t") + "\n");
    prop::collection::vec(row, 0..40).prop_map(|rows| rows.concat().into_bytes())
}

#[test]
fn the_valid_manifest_reads() {
    let bytes = with_checksum(&valid_manifest());
    Manifest::from_bytes("manifest.json", &bytes).expect("the base of the properties is valid");
}

/// The valid manifest in format 2's three objects.
fn valid_format_2() -> EncodedMetadata {
    let manifest = Manifest::from_bytes("m", &with_checksum(&valid_manifest())).expect("valid");
    manifest.encode().expect("encode")
}

/// The same backup, encrypted (format 3), and its data key.
fn valid_format_3() -> (EncodedMetadata, Arc<DataKey>) {
    let manifest = Manifest::from_bytes("m", &with_checksum(&valid_manifest())).expect("valid");
    let key = Arc::new(DataKey::generate(&manifest.backup_id).expect("key"));
    let info = EncryptionInfo {
        cipher: pgark_archive::seal::CIPHER.to_owned(),
        recipients: vec!["kms:alias/test".to_owned()],
        key_check: key.check(),
        envelope: ObjectRef {
            object: EncryptionInfo::envelope_name(1),
            length: 0,
            sha256: String::new(),
        },
        checksums: None,
    };
    let encoded = manifest.encode_sealed(Some((&key, &info))).expect("encode");
    (encoded, key)
}

/// `bytes` with one byte changed and the rest cut at `cut` (when `cut` is within it).
fn damage(bytes: &[u8], flip: Index, cut: Index, truncate: bool) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    if !bytes.is_empty() {
        let at = flip.index(bytes.len());
        bytes[at] ^= 0x5a;
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
    }
    bytes
}

proptest! {
    /// A chunk encoded from rows decodes to exactly those rows, with their count and digest.
    #[test]
    fn a_chunk_round_trips(rows in copy_rows(), level in 1i32..4) {
        let chunk = ChunkEncoder::new(level).expect("encoder").encode(&rows, None).expect("encode");
        let entry = ChunkEntry {
            object: "data/00001.0000.copy.zst".to_owned(),
            offset: 0,
            length: chunk.frame.len() as u64,
            raw_length: chunk.raw_length,
            rows: chunk.rows,
            sha256: chunk.sha256.clone(),
            key_range: None,
            key_filter: None,
        };
        let decoded = ChunkDecoder::new()
            .expect("decoder")
            .decode(&chunk.frame, &entry, None, ("public.t", 0), Vec::new())
            .expect("decode");
        prop_assert_eq!(&decoded, &rows);
        prop_assert_eq!(chunk.rows, copy_text::rows(&rows).count() as u64);
    }

    /// What the manifest writer writes, the reader reads back as it was.
    #[test]
    fn a_manifest_round_trips(
        chunk_rows in prop::collection::vec((1u64..1000, 1u64..100), 0..6),
        database in "\\PC{0,16}",
    ) {
        let mut value = valid_manifest();
        let mut offset = 0;
        let chunks: Vec<Value> = chunk_rows
            .iter()
            .map(|(rows, extra)| {
                let chunk = json!({
                    "object": "data/00001.0000.copy.zst", "offset": offset, "length": 10,
                    "raw_length": rows + extra, "rows": rows, "sha256": "00".repeat(32),
                });
                offset += 10;
                chunk
            })
            .collect();
        value["tables"][0]["chunks"] = Value::from(chunks);
        value["tables"][0]["row_count"] = json!(chunk_rows.iter().map(|(r, _)| r).sum::<u64>());
        value["tables"][0]["raw_bytes"] = json!(chunk_rows.iter().map(|(r, e)| r + e).sum::<u64>());
        value["source"]["database"] = json!(database);
        let manifest = Manifest::from_bytes("manifest.json", &with_checksum(&value)).expect("valid");
        let written = manifest.to_bytes().expect("write");
        let read = Manifest::from_bytes("manifest.json", &written).expect("read back");
        prop_assert_eq!(read.to_bytes().expect("write again"), written);
        prop_assert_eq!(read.source.database, database);
    }

    #[test]
    fn the_manifest_reader_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Manifest::from_bytes("manifest.json", &bytes);
    }

    #[test]
    fn the_manifest_reader_takes_a_truncated_or_flipped_manifest(
        cut in any::<Index>(),
        flips in prop::collection::vec((any::<Index>(), any::<u8>()), 0..4),
    ) {
        let mut bytes = with_checksum(&valid_manifest());
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let _ = Manifest::from_bytes("manifest.json", &bytes);
    }

    /// Sizes, counts and offsets of any value behind a valid checksum: read or refused, and
    /// when read, the sizes readers allocate by are bounded and chunks do not overlap.
    #[test]
    fn a_manifest_with_any_sizes_is_read_only_when_they_are_possible(
        fields in prop::collection::vec(
            (0usize..2, prop::sample::select(vec![
                "offset", "length", "raw_length", "rows",
            ]), any_number()),
            1..6,
        ),
        totals in (any_number(), any_number()),
        chunk_size in any_number(),
        version in prop_oneof![Just(json!(1)), any_number()],
    ) {
        let mut value = valid_manifest();
        for (chunk, field, number) in fields {
            value["tables"][0]["chunks"][chunk][field] = number;
        }
        if totals.0.is_u64() {
            value["tables"][0]["row_count"] = totals.0;
        }
        if totals.1.is_u64() {
            value["tables"][0]["raw_bytes"] = totals.1;
        }
        if chunk_size.is_u64() {
            value["settings"]["chunk_size"] = chunk_size;
        }
        value["format_version"] = version;
        if let Ok(manifest) = Manifest::from_bytes("manifest.json", &with_checksum(&value)) {
            let chunks = &manifest.tables[0].chunks;
            let max_raw = manifest.settings.chunk_size.max(i32::MAX as u64);
            for chunk in chunks {
                prop_assert!(chunk.raw_length <= max_raw);
                prop_assert!(chunk.rows <= chunk.raw_length);
            }
            prop_assert!(
                chunks[0].offset.checked_add(chunks[0].length).is_some_and(|end| end <= chunks[1].offset)
                    || chunks[1].offset.checked_add(chunks[1].length).is_some_and(|end| end <= chunks[0].offset)
            );
        }
    }

    /// A frame that passes the stored-bytes checks (its SHA-256 is the entry's) but is not what
    /// the entry says: decoded or refused, never more than the entry's size allocated.
    #[test]
    fn the_chunk_decoder_takes_any_frame(
        frame in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            prop::collection::vec(any::<u8>(), 0..2048).prop_map(|rows| {
                ChunkEncoder::new(1).expect("encoder").encode(&rows, None).expect("encode").frame
            }),
        ],
        raw_length in 0u64..(1 << 20),
        rows in any::<u64>(),
    ) {
        let entry = ChunkEntry {
            object: "data/00001.0000.copy.zst".to_owned(),
            offset: 0,
            length: frame.len() as u64,
            raw_length,
            rows,
            sha256: sha256_hex(&frame),
            key_range: None,
            key_filter: None,
        };
        let mut decoder = ChunkDecoder::new().expect("decoder");
        if let Ok(rows_text) = decoder.decode(&frame, &entry, None, ("public.t", 0), Vec::new()) {
            prop_assert_eq!(rows_text.len() as u64, raw_length);
        }
        let _ = decoder.decode_large_objects(&frame, &entry, None, 0);
    }

    /// Large-object record streams: every record is read or an error ends the stream, in at
    /// most one step per byte.
    #[test]
    fn large_object_records_end_on_any_bytes(stream in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = record_totals(&stream);
        let steps = records(&stream).take(stream.len() + 2).count();
        prop_assert!(steps <= stream.len() + 1);
    }

    #[test]
    fn copy_text_reads_any_bytes(text in prop::collection::vec(any::<u8>(), 0..1024)) {
        for row in copy_text::rows(&text) {
            for field in copy_text::raw_fields(row) {
                if let Some(value) = copy_text::decode_field(field) {
                    prop_assert!(value.len() <= field.len());
                }
            }
        }
    }

    #[test]
    fn key_filters_read_any_bytes(
        frame in prop::collection::vec(any::<u8>(), 0..256),
        key in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        if let Ok(filter) = KeyFilter::parse(&frame) {
            let _ = filter.may_contain(&key);
        }
    }

    #[test]
    fn backup_ids_and_times_read_any_text(text in "\\PC{0,40}") {
        let _ = Timestamp::parse_rfc3339(&text);
        let _ = layout::backup_started(&text);
        let _ = layout::is_backup_id(&text);
    }

    /// Format 2's readers — the head, the catalog, a table's frame of the chunk index, the whole
    /// index — take any damage to their object: an error, never a panic.
    #[test]
    fn format_2_readers_take_damaged_objects(
        which in 0usize..3,
        flip: Index,
        cut: Index,
        truncate: bool,
    ) {
        let encoded = valid_format_2();
        match which {
            0 => {
                let head = damage(&encoded.head, flip, cut, truncate);
                let _ = ManifestHead::from_bytes("m", &head);
            }
            1 => {
                let (head, _) = ManifestHead::from_bytes("m", &encoded.head).expect("head");
                let catalog = damage(&encoded.catalog, flip, cut, truncate);
                prop_assert!(Manifest::from_catalog(head, "catalog", &catalog, None).is_err());
            }
            _ => {
                let (head, _) = ManifestHead::from_bytes("m", &encoded.head).expect("head");
                let mut manifest =
                    Manifest::from_catalog(head, "catalog", &encoded.catalog, None).expect("catalog");
                let index = damage(&encoded.chunk_index, flip, cut, truncate);
                prop_assert!(manifest.load_all_chunks("index", &index).is_err());
                prop_assert!(manifest.load_chunks(0, "index", &index).is_err());
                let _ = manifest.table_chunks(0, "index", &index);
            }
        }
    }

    /// An encrypted backup's metadata reads back whole with its key; with any byte of its
    /// catalog or chunk index changed (or either cut short), or with another key, it does not.
    #[test]
    fn format_3_metadata_opens_only_intact_and_with_its_key(
        which in 0usize..3,
        flip: Index,
        cut: Index,
        truncate: bool,
    ) {
        let (encoded, key) = valid_format_3();
        let (head, _) = ManifestHead::from_bytes("m", &encoded.head).expect("head");
        prop_assert_eq!(head.format_version, 3);
        prop_assert!(head.source.database.is_empty(), "the head names no database");
        let mut whole = Manifest::from_catalog(head.clone(), "catalog", &encoded.catalog, Some(key.clone()))
            .expect("catalog");
        whole.load_all_chunks("index", &encoded.chunk_index).expect("index");
        prop_assert!(!whole.source.database.is_empty());
        prop_assert!(Manifest::from_catalog(head.clone(), "catalog", &encoded.catalog, None).is_err());
        match which {
            0 => {
                let other = Arc::new(DataKey::generate(&head.backup_id).expect("key"));
                prop_assert!(Manifest::from_catalog(head, "catalog", &encoded.catalog, Some(other)).is_err());
            }
            1 => {
                let catalog = damage(&encoded.catalog, flip, cut, truncate);
                prop_assert!(Manifest::from_catalog(head, "catalog", &catalog, Some(key)).is_err());
            }
            _ => {
                let mut manifest = Manifest::from_catalog(head, "catalog", &encoded.catalog, Some(key))
                    .expect("catalog");
                let index = damage(&encoded.chunk_index, flip, cut, truncate);
                prop_assert!(manifest.load_all_chunks("index", &index).is_err());
            }
        }
    }

    /// A sealed chunk opens only as it was sealed: any changed byte or cut fails.
    #[test]
    fn a_sealed_chunk_opens_only_intact(rows in copy_rows(), flip: Index, cut: Index, truncate: bool) {
        let key = DataKey::generate("b").expect("key");
        let piece = Piece::Chunk { object: "data/00001.0000.copy.zst", offset: 7, table: 1 };
        let sealed = key.seal(piece, rows.clone()).expect("seal");
        prop_assert_eq!(key.open(piece, &sealed).expect("opens"), rows);
        prop_assert!(key.open(piece, &damage(&sealed, flip, cut, truncate)).is_err());
    }

    /// The readers of format 2 take any bytes for a head, a catalog or a chunk index.
    #[test]
    fn format_2_readers_take_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = ManifestHead::from_bytes("m", &bytes);
        let encoded = valid_format_2();
        let (head, _) = ManifestHead::from_bytes("m", &encoded.head).expect("head");
        let _ = Manifest::from_catalog(head.clone(), "catalog", &bytes, None);
        let mut manifest = Manifest::from_catalog(head, "catalog", &encoded.catalog, None).expect("catalog");
        let _ = manifest.load_all_chunks("index", &bytes);
        let _ = manifest.load_chunks(0, "index", &bytes);
        let _ = manifest.table_chunks(0, "index", &bytes);
    }
}
