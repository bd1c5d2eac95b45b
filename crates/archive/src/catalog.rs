//! Format 2's metadata: a small head, a catalog, and a chunk index — so that a command reads only
//! the metadata it needs, and none of it grows with the database unless the command does.
//!
//! - `manifest.json`, the **head**, written last (its presence still makes a backup complete):
//!   identity, times, source, settings, totals, warnings, and the length and SHA-256 of the two
//!   objects below. Its first member is its own checksum, as in format 1. `ls`, `prune`,
//!   `--check-max-age` and the metrics read only this.
//! - `catalog.json.zst`: one zstd-compressed JSON document with the schema, the roles, the
//!   partitioned tables, the large objects' entry and every table's entry *without* its chunks;
//!   instead each table says where its chunk list is (`chunk_index`: offset, length, SHA-256 and
//!   count). `zstd -dc catalog.json.zst | jq` reads it.
//! - `chunks.jsonl.zst`: the chunk lists, one zstd frame per table (in table order), each frame
//!   one JSON line per chunk with the table's id first. `zstd -dc chunks.jsonl.zst` prints every
//!   line; a reader that needs one table fetches its frame with one ranged read.
//!
//! The head's checksum covers the head; the head records the SHA-256 of the catalog and of the
//! chunk index; the catalog records each frame's SHA-256: every byte of metadata is checked before
//! it is used (SPEC I2), and it is all written before the head (SPEC I1).

use std::io::Read;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::manifest::{
    BeforeImageInfo, ChunkEntry, DatabaseEntry, DdlItem, DumpSettings, GlobalsEntry,
    LargeObjectsEntry, Manifest, PartitionedEntry, RoleEntry, SourceInfo, TableEntry,
};
use crate::seal::{DataKey, EncryptionInfo, Piece, StoredPiece};
use crate::{ArchiveError, sha256_hex};

/// The catalog's name inside a backup (format 2).
pub const CATALOG_NAME: &str = "catalog.json.zst";

/// The chunk index's name inside a backup (format 2).
pub const CHUNK_INDEX_NAME: &str = "chunks.jsonl.zst";

/// The name of an encrypted backup's list of stored pieces (format 3): one JSON line per chunk
/// and key filter (`object`, `offset`, `length`, `sha256`), in the clear, so that `verify`
/// checks every stored byte without a key.
pub const CHECKSUMS_NAME: &str = "checksums.jsonl.zst";

/// How hard metadata is compressed: it is small next to the data, and read often.
const METADATA_COMPRESS_LEVEL: i32 = 3;

/// At most this many times its stored size is a metadata object allowed to decode to, so that a
/// damaged or crafted object cannot make a reader allocate without bound. JSON of this shape
/// compresses 5–20 times.
const MAX_EXPANSION: u64 = 256;

/// An object of the backup the head vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Relative to the backup, e.g. `catalog.json.zst`.
    pub object: String,
    pub length: u64,
    /// SHA-256 of the object's bytes.
    pub sha256: String,
}

/// Where a table's chunk list is in the chunk index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkIndexRef {
    pub offset: u64,
    pub length: u64,
    /// SHA-256 of the frame's stored bytes.
    pub sha256: String,
    /// How many chunks the table has.
    pub chunks: u64,
}

/// What a listing shows of a backup without reading more than its head.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub tables: u64,
    pub rows: u64,
    /// Uncompressed COPY text of every table and the large objects' records.
    pub raw_bytes: u64,
    /// Stored bytes of every table and the large objects.
    pub stored_bytes: u64,
    /// Chunks of every table and of the large objects.
    pub chunks: u64,
}

/// The manifest's head: everything but the schema and the tables (format 2; derived from the
/// whole manifest for format 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestHead {
    pub format: String,
    pub format_version: u32,
    pub pgark_version: String,
    pub backup_id: String,
    pub started_at: String,
    pub finished_at: String,
    pub source: SourceInfo,
    pub settings: DumpSettings,
    pub totals: Totals,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_image: Option<BeforeImageInfo>,
    /// Where the schema and the tables are (format 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<ObjectRef>,
    /// Where the tables' chunk lists are (format 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_index: Option<ObjectRef>,
    /// Present when the backup is encrypted (format 3): recipients, key envelope, checksums.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionInfo>,
}

/// The catalog object's document.
#[derive(Serialize, Deserialize)]
struct Catalog {
    schema: Vec<DdlItem>,
    tables: Vec<TableEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    roles: Vec<RoleEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    large_objects: Option<LargeObjectsEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    partitioned: Vec<PartitionedEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    database: Option<DatabaseEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    globals: Option<GlobalsEntry>,
    /// An encrypted backup's head fields that name things (the head has them redacted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed_head: Option<SealedHead>,
}

/// What an encrypted backup's head leaves out, kept in its (sealed) catalog instead.
#[derive(Serialize, Deserialize)]
struct SealedHead {
    source: SourceInfo,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    before_image: Option<BeforeImageInfo>,
}

/// One line of the chunk index: a chunk and the id of its table.
#[derive(Serialize)]
struct ChunkLine<'a> {
    table: u32,
    #[serde(flatten)]
    chunk: &'a ChunkEntry,
}

#[derive(Deserialize)]
struct ChunkLineRead {
    table: u32,
    #[serde(flatten)]
    chunk: ChunkEntry,
}

/// Format 2's metadata objects for one backup, in the order they are written: the head last.
#[derive(Debug)]
pub struct EncodedMetadata {
    pub chunk_index: Vec<u8>,
    pub catalog: Vec<u8>,
    /// The stored pieces' checksums ([`CHECKSUMS_NAME`]), for an encrypted backup.
    pub checksums: Option<Vec<u8>>,
    pub head: Vec<u8>,
}

impl Manifest {
    /// The totals a listing shows.
    pub fn totals(&self) -> Totals {
        let large_object_chunks = self.large_objects.as_ref().map_or(0, |lo| lo.chunks.len());
        Totals {
            tables: self.tables.len() as u64,
            rows: self.total_rows(),
            raw_bytes: self.raw_bytes(),
            stored_bytes: self.stored_bytes(),
            chunks: self.chunk_count() + large_object_chunks as u64,
        }
    }

    /// Chunks of every table, counted from the chunk index where the lists are not loaded.
    fn chunk_count(&self) -> u64 {
        self.tables.iter().map(TableEntry::chunk_count).sum()
    }

    /// The head of this manifest, with no catalog: what a format 1 backup's listing shows.
    pub fn head(&self) -> ManifestHead {
        ManifestHead {
            format: self.format.clone(),
            format_version: self.format_version,
            pgark_version: self.pgark_version.clone(),
            backup_id: self.backup_id.clone(),
            started_at: self.started_at.clone(),
            finished_at: self.finished_at.clone(),
            source: self.source.clone(),
            settings: self.settings.clone(),
            totals: self.totals(),
            warnings: self.warnings.clone(),
            before_image: self.before_image.clone(),
            catalog: None,
            chunk_index: None,
            encryption: self.encryption.clone(),
        }
    }

    /// The three metadata objects of format 2 (see the module docs). Every table's chunk list
    /// must be loaded.
    pub fn encode(&self) -> Result<EncodedMetadata, ArchiveError> {
        self.encode_sealed(None)
    }

    /// [`Manifest::encode`], for an encrypted backup (format 3) when `sealing` has its data key
    /// and the head's record of its encryption: the chunk index's frames and the catalog are
    /// sealed, the head's naming fields move into the catalog, and the clear list of stored
    /// pieces is added.
    pub fn encode_sealed(
        &self,
        sealing: Option<(&DataKey, &EncryptionInfo)>,
    ) -> Result<EncodedMetadata, ArchiveError> {
        let failed = |reason: String| ArchiveError::ManifestCorrupt {
            object: self.backup_id.clone(),
            reason,
        };
        let key = sealing.map(|(key, _)| key);
        let mut chunk_index = Vec::new();
        let mut tables = Vec::with_capacity(self.tables.len());
        // One context for every table's frame: setting one up costs more than compressing a
        // small table's few lines.
        let mut compressor =
            zstd::bulk::Compressor::new(METADATA_COMPRESS_LEVEL).map_err(ArchiveError::Compress)?;
        for table in &self.tables {
            if !table.chunks_loaded() {
                return Err(failed(format!(
                    "cannot write: the chunks of table {} are not loaded",
                    table.display_name()
                )));
            }
            let mut lines = Vec::new();
            for chunk in &table.chunks {
                serde_json::to_writer(
                    &mut lines,
                    &ChunkLine {
                        table: table.id,
                        chunk,
                    },
                )
                .map_err(|e| failed(format!("cannot serialize a chunk: {e}")))?;
                lines.push(b'\n');
            }
            let mut frame = compressor
                .compress(&lines)
                .map_err(ArchiveError::Compress)?;
            if let Some(key) = key {
                let piece = Piece::IndexFrame {
                    offset: chunk_index.len() as u64,
                    table: table.id,
                };
                frame = key.seal(piece, frame)?;
            }
            let mut entry = table.clone();
            entry.chunks = Vec::new();
            entry.chunk_index = Some(ChunkIndexRef {
                offset: chunk_index.len() as u64,
                length: frame.len() as u64,
                sha256: sha256_hex(&frame),
                chunks: table.chunks.len() as u64,
            });
            chunk_index.extend_from_slice(&frame);
            tables.push(entry);
        }
        let mut head = self.head();
        head.format_version = crate::FORMAT_VERSION;
        head.encryption = sealing.map(|(_, info)| info.clone());
        let mut sealed_head = None;
        let mut checksums = None;
        if key.is_some() {
            head.format_version = crate::seal::ENCRYPTED_FORMAT_VERSION;
            sealed_head = Some(SealedHead {
                source: std::mem::replace(&mut head.source, self.source.redacted()),
                warnings: std::mem::take(&mut head.warnings),
                before_image: head.before_image.clone(),
            });
            if let Some(before_image) = &mut head.before_image {
                before_image.sequences.clear();
            }
            let list = self.stored_pieces_list()?;
            if let Some(info) = &mut head.encryption {
                info.checksums = Some(ObjectRef {
                    object: CHECKSUMS_NAME.to_owned(),
                    length: list.len() as u64,
                    sha256: sha256_hex(&list),
                });
            }
            checksums = Some(list);
        }
        let catalog = Catalog {
            schema: self.schema.clone(),
            tables,
            roles: self.roles.clone(),
            large_objects: self.large_objects.clone(),
            partitioned: self.partitioned.clone(),
            database: self.database.clone(),
            globals: self.globals.clone(),
            sealed_head,
        };
        let json = serde_json::to_vec(&catalog)
            .map_err(|e| failed(format!("cannot serialize the catalog: {e}")))?;
        let mut catalog =
            zstd::bulk::compress(&json, METADATA_COMPRESS_LEVEL).map_err(ArchiveError::Compress)?;
        if let Some(key) = key {
            catalog = key.seal(Piece::Catalog, catalog)?;
        }
        head.catalog = Some(ObjectRef {
            object: CATALOG_NAME.to_owned(),
            length: catalog.len() as u64,
            sha256: sha256_hex(&catalog),
        });
        head.chunk_index = Some(ObjectRef {
            object: CHUNK_INDEX_NAME.to_owned(),
            length: chunk_index.len() as u64,
            sha256: sha256_hex(&chunk_index),
        });
        let head = crate::manifest::checksummed_json(&head, &self.backup_id)?;
        Ok(EncodedMetadata {
            chunk_index,
            catalog,
            checksums,
            head,
        })
    }

    /// The stored pieces of every data object (each chunk and key filter), one JSON line each,
    /// compressed: [`CHECKSUMS_NAME`]'s contents.
    fn stored_pieces_list(&self) -> Result<Vec<u8>, ArchiveError> {
        let large_objects = self.large_objects.iter().flat_map(|lo| &lo.chunks);
        let mut lines = Vec::new();
        for chunk in self
            .tables
            .iter()
            .flat_map(|t| &t.chunks)
            .chain(large_objects)
        {
            let mut pieces = vec![StoredPiece {
                object: chunk.object.clone(),
                offset: chunk.offset,
                length: chunk.length,
                sha256: chunk.sha256.clone(),
            }];
            if let Some(filter) = &chunk.key_filter {
                pieces.push(StoredPiece {
                    object: chunk.object.clone(),
                    offset: filter.offset,
                    length: filter.length,
                    sha256: filter.sha256.clone(),
                });
            }
            for piece in pieces {
                serde_json::to_writer(&mut lines, &piece).map_err(|e| {
                    ArchiveError::ManifestCorrupt {
                        object: self.backup_id.clone(),
                        reason: format!("cannot serialize the checksums: {e}"),
                    }
                })?;
                lines.push(b'\n');
            }
        }
        zstd::bulk::compress(&lines, METADATA_COMPRESS_LEVEL).map_err(ArchiveError::Compress)
    }

    /// A format 2 manifest from its head and its catalog object's bytes (`object` names it in
    /// errors). Every table's chunk list is left to load ([`Manifest::load_chunks`]).
    pub fn from_catalog(
        head: ManifestHead,
        object: &str,
        catalog: &[u8],
        data_key: Option<Arc<DataKey>>,
    ) -> Result<Manifest, ArchiveError> {
        let corrupt = |reason: String| ArchiveError::ManifestCorrupt {
            object: object.to_owned(),
            reason,
        };
        let expected = head
            .catalog
            .as_ref()
            .ok_or_else(|| corrupt("the head names no catalog".to_owned()))?;
        check_object(object, expected, catalog)?;
        let data_key = match (&head.encryption, data_key) {
            (Some(info), Some(key)) if key.check() == info.key_check => Some(key),
            (Some(_), Some(_)) => {
                return Err(corrupt("the key given is not this backup's".to_owned()));
            }
            (Some(_), None) => {
                return Err(ArchiveError::Crypto {
                    reason: format!("{object} is encrypted and no data key was given"),
                });
            }
            (None, _) => None,
        };
        let opened;
        let catalog = match &data_key {
            Some(key) => {
                opened = key.open(Piece::Catalog, catalog).map_err(|_| {
                    corrupt("it does not authenticate under the backup's key".to_owned())
                })?;
                &opened[..]
            }
            None => catalog,
        };
        // Parsed as it is decoded: the decoded JSON is never held whole.
        let catalog: Catalog = serde_json::from_reader(std::io::BufReader::new(
            decoder(catalog, expansion_limit(catalog)).map_err(corrupt)?,
        ))
        .map_err(|e| corrupt(e.to_string()))?;
        if data_key.is_some() != catalog.sealed_head.is_some() {
            return Err(corrupt(
                "its encryption does not match the head's record of it".to_owned(),
            ));
        }
        let (source, warnings, before_image) = match catalog.sealed_head {
            Some(sealed) => (sealed.source, sealed.warnings, sealed.before_image),
            None => (head.source, head.warnings, head.before_image),
        };
        if let Some(table) = catalog.tables.iter().find(|t| t.chunk_index.is_none()) {
            return Err(corrupt(format!(
                "table {} has no chunk index entry",
                table.display_name()
            )));
        }
        let manifest = Manifest {
            format: head.format,
            format_version: head.format_version,
            pgark_version: head.pgark_version,
            backup_id: head.backup_id,
            started_at: head.started_at,
            finished_at: head.finished_at,
            source,
            settings: head.settings,
            schema: catalog.schema,
            tables: catalog.tables,
            roles: catalog.roles,
            large_objects: catalog.large_objects,
            warnings,
            partitioned: catalog.partitioned,
            database: catalog.database,
            globals: catalog.globals,
            before_image,
            chunk_index: head.chunk_index,
            encryption: head.encryption,
            data_key,
        };
        let totals = manifest.totals();
        if totals != head.totals {
            return Err(corrupt(format!(
                "the head records {:?} but the catalog holds {totals:?}",
                head.totals
            )));
        }
        manifest.check_chunks().map_err(corrupt)?;
        Ok(manifest)
    }

    /// Fills table `table`'s chunk list from its frame of the chunk index (`object` names the
    /// index in errors), checked against the catalog's record of it.
    pub fn load_chunks(
        &mut self,
        table: usize,
        object: &str,
        frame: &[u8],
    ) -> Result<(), ArchiveError> {
        self.fill_chunks(table, object, frame)?;
        self.check_chunks()
            .map_err(|reason| ArchiveError::ManifestCorrupt {
                object: object.to_owned(),
                reason,
            })
    }

    /// Fills every table's chunk list from the whole chunk index object, checked against the
    /// head's record of it.
    pub fn load_all_chunks(&mut self, object: &str, index: &[u8]) -> Result<(), ArchiveError> {
        let Some(expected) = self.chunk_index.clone() else {
            return Ok(());
        };
        check_object(object, &expected, index)?;
        for table in 0..self.tables.len() {
            let Some(at) = self.tables[table].chunk_index.clone() else {
                continue;
            };
            if self.tables[table].chunks_loaded() {
                continue;
            }
            let frame = frame_of(&self.tables[table], &at, object, index)?;
            self.fill_chunks(table, object, frame)?;
        }
        self.check_chunks()
            .map_err(|reason| ArchiveError::ManifestCorrupt {
                object: object.to_owned(),
                reason,
            })
    }

    /// Parses a table's frame into its chunk list, checking the frame's SHA-256 and count; the
    /// caller checks the manifest's chunks as a whole.
    fn fill_chunks(
        &mut self,
        table: usize,
        object: &str,
        frame: &[u8],
    ) -> Result<(), ArchiveError> {
        let chunks = self.parse_frame(table, object, frame)?;
        self.tables[table].chunks = chunks;
        Ok(())
    }

    /// Checks the whole chunk index object against the head's record of it (`object` names it in
    /// errors).
    pub fn check_chunk_index(&self, object: &str, index: &[u8]) -> Result<(), ArchiveError> {
        match &self.chunk_index {
            Some(expected) => check_object(object, expected, index),
            None => Ok(()),
        }
    }

    /// Table `table`'s chunk list from the whole chunk index `index` (checked beforehand with
    /// [`Manifest::check_chunk_index`]), checked on its own — its frame's SHA-256 and count, its
    /// chunks' sizes, that they do not overlap, that they sum to the table's totals — without
    /// keeping it: for readers that go through a large backup one table at a time. A table whose
    /// list is loaded already gets a copy of it.
    pub fn table_chunks(
        &self,
        table: usize,
        object: &str,
        index: &[u8],
    ) -> Result<Vec<ChunkEntry>, ArchiveError> {
        let corrupt = |reason: String| ArchiveError::ManifestCorrupt {
            object: object.to_owned(),
            reason,
        };
        let entry = self
            .tables
            .get(table)
            .ok_or_else(|| corrupt(format!("no table number {table}")))?;
        if entry.chunks_loaded() {
            return Ok(entry.chunks.clone());
        }
        let Some(at) = &entry.chunk_index else {
            return Err(corrupt(format!(
                "the chunk list of table {} is not in the chunk index",
                entry.display_name()
            )));
        };
        let frame = frame_of(entry, at, object, index)?;
        let chunks = self.parse_frame(table, object, frame)?;
        let mut alone = entry.clone();
        alone.chunks = chunks;
        crate::manifest::check_table_chunks(&alone, self.settings.chunk_size).map_err(corrupt)?;
        Ok(alone.chunks)
    }

    fn parse_frame(
        &self,
        table: usize,
        object: &str,
        frame: &[u8],
    ) -> Result<Vec<ChunkEntry>, ArchiveError> {
        let corrupt = |reason: String| ArchiveError::ManifestCorrupt {
            object: object.to_owned(),
            reason,
        };
        let Some(entry) = self.tables.get(table) else {
            return Err(corrupt(format!("no table number {table}")));
        };
        let at = || format!("the chunk list of table {}", entry.display_name());
        let Some(index) = &entry.chunk_index else {
            return Err(corrupt(format!("{} is not in the chunk index", at())));
        };
        let actual = sha256_hex(frame);
        if frame.len() as u64 != index.length || actual != index.sha256 {
            return Err(ArchiveError::ManifestChecksumMismatch {
                object: format!("{object} ({})", at()),
                expected: index.sha256.clone(),
                actual,
            });
        }
        let opened;
        let frame = match &self.data_key {
            Some(key) => {
                let piece = Piece::IndexFrame {
                    offset: index.offset,
                    table: entry.id,
                };
                opened = key.open(piece, frame).map_err(|_| {
                    corrupt(format!(
                        "{} does not authenticate under the backup's key",
                        at()
                    ))
                })?;
                &opened[..]
            }
            None => frame,
        };
        let lines = decompress(frame).map_err(|e| corrupt(format!("{}: {e}", at())))?;
        // Bounded by the decoded size: a line is at least a few bytes.
        let mut chunks = Vec::new();
        for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let read: ChunkLineRead =
                serde_json::from_slice(line).map_err(|e| corrupt(format!("{}: {e}", at())))?;
            if read.table != entry.id {
                return Err(corrupt(format!(
                    "{} holds a chunk of table number {}",
                    at(),
                    read.table
                )));
            }
            chunks.push(read.chunk);
        }
        if chunks.len() as u64 != index.chunks {
            return Err(corrupt(format!(
                "{} holds {} chunks, the catalog records {}",
                at(),
                chunks.len(),
                index.chunks
            )));
        }
        Ok(chunks)
    }

    /// Whether every table's chunk list is loaded.
    pub fn all_chunks_loaded(&self) -> bool {
        self.tables.iter().all(TableEntry::chunks_loaded)
    }
}

impl TableEntry {
    /// Whether the chunk list is in memory: always for format 1, once loaded for format 2.
    pub fn chunks_loaded(&self) -> bool {
        self.chunk_index
            .as_ref()
            .is_none_or(|index| index.chunks == self.chunks.len() as u64)
    }

    /// How many chunks the table has, loaded or not.
    pub fn chunk_count(&self) -> u64 {
        self.chunk_index
            .as_ref()
            .map_or(self.chunks.len() as u64, |index| index.chunks)
    }
}

impl ManifestHead {
    /// The head file's bytes: checksum line first, as [`Manifest::encode`] writes it (for a
    /// rekey, which changes only the head's record of the encryption).
    pub fn to_bytes(&self) -> Result<Vec<u8>, ArchiveError> {
        crate::manifest::checksummed_json(self, &self.backup_id)
    }

    /// Parses a manifest file of either format, checking its checksum and format version first.
    /// A format 1 file is the whole manifest, returned beside its head; a format 2 file is the
    /// head alone.
    pub fn from_bytes(
        object: &str,
        bytes: &[u8],
    ) -> Result<(ManifestHead, Option<Manifest>), ArchiveError> {
        let version = crate::manifest::checked_format_version(object, bytes)?;
        if version == 1 {
            let manifest = Manifest::from_bytes(object, bytes)?;
            return Ok((manifest.head(), Some(manifest)));
        }
        let head: ManifestHead =
            serde_json::from_slice(bytes).map_err(|e| ArchiveError::ManifestCorrupt {
                object: object.to_owned(),
                reason: e.to_string(),
            })?;
        if head.catalog.is_none() || head.chunk_index.is_none() {
            return Err(ArchiveError::ManifestCorrupt {
                object: object.to_owned(),
                reason: "it names no catalog or chunk index".to_owned(),
            });
        }
        let encrypted = version == crate::seal::ENCRYPTED_FORMAT_VERSION;
        if encrypted != head.encryption.is_some() {
            return Err(ArchiveError::ManifestCorrupt {
                object: object.to_owned(),
                reason: format!(
                    "format {version} {} an encryption record",
                    if encrypted {
                        "needs"
                    } else {
                        "has no place for"
                    }
                ),
            });
        }
        Ok((head, None))
    }
}

/// The stored pieces an encrypted backup's checksum list `bytes` records, one at a time, once
/// the list itself matched the head's record `expected` (`object` names it in errors).
pub fn stored_pieces<'a>(
    object: &'a str,
    expected: &ObjectRef,
    bytes: &'a [u8],
) -> Result<impl Iterator<Item = Result<StoredPiece, ArchiveError>> + Send + 'a, ArchiveError> {
    use std::io::BufRead;
    check_object(object, expected, bytes)?;
    let corrupt = move |reason: String| ArchiveError::ManifestCorrupt {
        object: object.to_owned(),
        reason,
    };
    let lines =
        std::io::BufReader::new(decoder(bytes, expansion_limit(bytes)).map_err(corrupt)?).lines();
    Ok(lines.filter_map(move |line| match line {
        Ok(line) if line.is_empty() => None,
        Ok(line) => Some(serde_json::from_str(&line).map_err(|e| corrupt(e.to_string()))),
        Err(e) => Some(Err(corrupt(e.to_string()))),
    }))
}

/// Table `entry`'s frame (at `at`) in the whole chunk index `index`.
fn frame_of<'i>(
    entry: &TableEntry,
    at: &ChunkIndexRef,
    object: &str,
    index: &'i [u8],
) -> Result<&'i [u8], ArchiveError> {
    usize::try_from(at.offset)
        .ok()
        .zip(
            at.offset
                .checked_add(at.length)
                .and_then(|end| usize::try_from(end).ok()),
        )
        .and_then(|(start, end)| index.get(start..end))
        .ok_or_else(|| ArchiveError::ManifestCorrupt {
            object: object.to_owned(),
            reason: format!(
                "the chunk list of table {} lies outside the index",
                entry.display_name()
            ),
        })
}

/// Checks an object's length and SHA-256 against the head's record of it.
pub fn check_object(object: &str, expected: &ObjectRef, bytes: &[u8]) -> Result<(), ArchiveError> {
    let actual = sha256_hex(bytes);
    if bytes.len() as u64 != expected.length || actual != expected.sha256 {
        return Err(ArchiveError::ManifestChecksumMismatch {
            object: object.to_owned(),
            expected: format!("{} ({} bytes)", expected.sha256, expected.length),
            actual: format!("{actual} ({} bytes)", bytes.len()),
        });
    }
    Ok(())
}

/// The most a metadata object of `stored` bytes may decode to (see [`MAX_EXPANSION`]).
fn expansion_limit(stored: &[u8]) -> u64 {
    (stored.len() as u64)
        .saturating_mul(MAX_EXPANSION)
        .saturating_add(1 << 20)
}

/// A reader of a metadata object's decoded bytes that ends after `limit` of them (and so fails a
/// parse that needs more).
fn decoder(stored: &[u8], limit: u64) -> Result<impl Read + '_, String> {
    let decoder = zstd::stream::read::Decoder::with_buffer(stored)
        .map_err(|e| format!("does not decode: {e}"))?;
    Ok(decoder.take(limit))
}

/// Decodes a metadata object (one or more zstd frames), refusing to grow past
/// [`MAX_EXPANSION`] times its size.
fn decompress(stored: &[u8]) -> Result<Vec<u8>, String> {
    let limit = expansion_limit(stored);
    let mut out = Vec::new();
    decoder(stored, limit + 1)?
        .read_to_end(&mut out)
        .map_err(|e| format!("does not decode: {e}"))?;
    if out.len() as u64 > limit {
        return Err(format!(
            "decodes to more than {limit} bytes, {MAX_EXPANSION} times its size"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{ChunkEntry, ColumnEntry, DumpSettings, SourceInfo};

    fn chunk(object: &str, offset: u64) -> ChunkEntry {
        ChunkEntry {
            object: object.to_owned(),
            offset,
            length: 10,
            raw_length: 40,
            rows: 4,
            sha256: "ab".repeat(32),
            key_range: None,
            key_filter: None,
        }
    }

    fn table(id: u32, name: &str, chunks: usize) -> TableEntry {
        let object = crate::layout::data_object_name(id, 0);
        TableEntry {
            id,
            schema: "public".into(),
            name: name.into(),
            item: id,
            columns: vec![ColumnEntry {
                name: "id".into(),
                type_name: "integer".into(),
            }],
            row_count: 4 * chunks as u64,
            raw_bytes: 40 * chunks as u64,
            stored_bytes: 10 * chunks as u64,
            content_digest: "0".repeat(32),
            key_column: None,
            lookup_key: None,
            row_filter: None,
            chunk_index: None,
            chunks: (0..chunks).map(|i| chunk(&object, 10 * i as u64)).collect(),
        }
    }

    fn manifest() -> Manifest {
        let mut manifest = Manifest::new(
            "2026-12-05T030000Z".into(),
            "2026-12-05T03:00:00Z".into(),
            SourceInfo {
                connection: "postgres://app@db/prod".into(),
                database: "prod".into(),
                server_version: "17.2".into(),
                server_version_num: 170002,
                encoding: "UTF8".into(),
                snapshot_id: "00000003-0000001B-1".into(),
                snapshot_time: "2026-12-05T03:00:00Z".into(),
            },
            DumpSettings {
                jobs: 2,
                chunk_size: 1 << 20,
                compress_level: 3,
                object_lock: None,
            },
        );
        manifest.tables = vec![table(1, "a", 3), table(2, "empty", 0), table(3, "c", 2)];
        manifest
    }

    /// `loaded` with the chunk index references a reader adds, taken away again.
    fn without_index_refs(mut loaded: Manifest) -> Manifest {
        loaded.chunk_index = None;
        for table in &mut loaded.tables {
            table.chunk_index = None;
        }
        loaded
    }

    fn read_back(encoded: &EncodedMetadata) -> Manifest {
        let (head, whole) = ManifestHead::from_bytes("m", &encoded.head).expect("head");
        assert!(whole.is_none(), "a format 2 head is not a whole manifest");
        Manifest::from_catalog(head, "catalog", &encoded.catalog, None).expect("catalog")
    }

    #[test]
    fn the_three_objects_read_back_into_the_same_manifest() {
        let original = manifest();
        let encoded = original.encode().expect("encodes");
        let (head, _) = ManifestHead::from_bytes("m", &encoded.head).expect("head");
        assert_eq!(head.format_version, crate::FORMAT_VERSION);
        assert_eq!(head.totals, original.totals());
        assert_eq!(head.totals.chunks, 5);

        let mut loaded = read_back(&encoded);
        assert!(!loaded.all_chunks_loaded());
        assert_eq!(
            loaded.totals(),
            original.totals(),
            "totals need no chunk list"
        );
        loaded
            .load_all_chunks("chunks", &encoded.chunk_index)
            .expect("chunks");
        assert!(loaded.all_chunks_loaded());
        let mut expected = original.clone();
        expected.format_version = crate::FORMAT_VERSION;
        assert_eq!(without_index_refs(loaded), expected);
    }

    #[test]
    fn one_tables_frame_loads_that_table_alone() {
        let encoded = manifest().encode().expect("encodes");
        let mut loaded = read_back(&encoded);
        let at = loaded.tables[2].chunk_index.clone().expect("indexed");
        let frame = &encoded.chunk_index[at.offset as usize..(at.offset + at.length) as usize];
        loaded.load_chunks(2, "chunks", frame).expect("loads");
        assert!(loaded.tables[2].chunks_loaded());
        assert_eq!(loaded.tables[2].chunks, manifest().tables[2].chunks);
        assert!(!loaded.tables[0].chunks_loaded());
        // Another table's frame is refused, by its checksum.
        let err = loaded
            .load_chunks(0, "chunks", frame)
            .expect_err("wrong frame");
        assert!(
            matches!(err, ArchiveError::ManifestChecksumMismatch { .. }),
            "{err}"
        );
    }

    #[test]
    fn changed_metadata_is_refused_naming_the_object() {
        let encoded = manifest().encode().expect("encodes");
        let (head, _) = ManifestHead::from_bytes("m", &encoded.head).expect("head");
        let mut catalog = encoded.catalog.clone();
        let middle = catalog.len() / 2;
        catalog[middle] ^= 1;
        let err =
            Manifest::from_catalog(head, "b/catalog.json.zst", &catalog, None).expect_err("edited");
        assert!(
            matches!(err, ArchiveError::ManifestChecksumMismatch { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("b/catalog.json.zst"), "{err}");

        let mut loaded = read_back(&encoded);
        let mut index = encoded.chunk_index.clone();
        index[0] ^= 1;
        let err = loaded
            .load_all_chunks("b/chunks.jsonl.zst", &index)
            .expect_err("edited");
        assert!(err.to_string().contains("b/chunks.jsonl.zst"), "{err}");
    }

    #[test]
    fn a_format_1_file_reads_as_a_head_and_its_whole_manifest() {
        let original = manifest();
        let bytes = original.to_bytes().expect("format 1");
        let (head, whole) = ManifestHead::from_bytes("m", &bytes).expect("reads");
        let whole = whole.expect("the whole manifest");
        assert_eq!(head.format_version, 1);
        assert_eq!(head.totals, original.totals());
        assert!(head.catalog.is_none());
        assert_eq!(whole.tables, original.tables);
    }

    #[test]
    fn a_bomb_is_refused_before_it_is_decoded_whole() {
        let zeros = vec![0u8; 64 << 20];
        let bomb = zstd::bulk::compress(&zeros, 19).expect("compress");
        let err = decompress(&bomb).expect_err("too large");
        assert!(err.contains("times its size"), "{err}");
    }
}
