//! The before-image: the target rows a surgical restore is about to overwrite or delete, saved
//! first as a small backup in the ordinary format (started marker, data objects of zstd frames,
//! manifest last), so that `pgark restore` can put them back.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use pgark_archive::key_summary::KeyOrder;
use pgark_archive::{
    BeforeImageInfo, ChunkEntry, ColumnEntry, ContentDigest, DdlItem, DumpSettings, KeyRange,
    LookupKey, Manifest, ObjectKind, Section, SequenceValue, SourceInfo, TableEntry, Timestamp,
    layout,
};
use pgark_pg::{ConnConfig, Connection, PgError, quote};
use pgark_storage::{ObjectKey, ObjectStore};

use crate::EngineError;
use crate::cpu::CpuPool;

/// Where before-images go by default: this folder beside the source backup, so that they are not
/// taken for backups of the database by `ls`, `latest` or `prune` there.
pub const DEFAULT_FOLDER: &str = "before-images";

/// A store and a key prefix inside it under which before-images are created.
#[derive(Debug, Clone)]
pub struct BeforeImageDest {
    pub store: Arc<dyn ObjectStore>,
    /// `""` or `folder/`.
    pub prefix: String,
}

impl BeforeImageDest {
    /// The location of backup `id` here, as `pgark restore` takes it.
    fn location(&self, id: &str) -> String {
        format!(
            "{}/{}{id}",
            self.store.location().trim_end_matches('/'),
            self.prefix
        )
    }

    fn key(&self, name: &str) -> Result<ObjectKey, EngineError> {
        Ok(ObjectKey::new(format!("{}{name}", self.prefix))?)
    }
}

/// One table of the before-image: the target table and which of its rows to save.
pub(super) struct ImageTable<'a> {
    pub schema: &'a str,
    pub name: &'a str,
    pub columns: Vec<ColumnEntry>,
    pub key_column: Option<String>,
    /// A condition on the target table (no `WHERE`), or `None` for every row.
    pub condition: Option<String>,
    /// The target table is partitioned: its rows are read from its partitions.
    pub partitioned: bool,
}

/// A before-image being written; `finish` writes the manifest that makes it complete.
pub(super) struct BeforeImage {
    dest: BeforeImageDest,
    id: String,
    manifest: Manifest,
    cpu: Arc<CpuPool>,
    chunk_size: usize,
}

impl BeforeImage {
    /// Claims a new backup id (its start marker) under `dest`.
    pub(super) async fn start(
        dest: BeforeImageDest,
        session: &Connection,
        target: &ConnConfig,
        of_backup: &str,
        cpu: Arc<CpuPool>,
        chunk_size: u64,
    ) -> Result<BeforeImage, EngineError> {
        let source = source_info(session, target).await?;
        let started = Timestamp::now();
        let id = crate::backup::claim_backup_id(
            dest.store.as_ref(),
            &dest.prefix,
            started,
            &source.database,
        )
        .await?;
        let mut manifest = Manifest::new(
            id.clone(),
            started.rfc3339(),
            source,
            DumpSettings {
                jobs: 1,
                chunk_size,
                compress_level: crate::dump::DEFAULT_COMPRESS_LEVEL,
            },
        );
        manifest.before_image = Some(BeforeImageInfo {
            of_backup: of_backup.to_owned(),
            sequences: Vec::new(),
        });
        Ok(BeforeImage {
            dest,
            id,
            manifest,
            cpu,
            chunk_size: usize::try_from(chunk_size).unwrap_or(usize::MAX).max(1),
        })
    }

    pub(super) fn location(&self) -> String {
        self.dest.location(&self.id)
    }

    /// Copies the chosen rows of one table out of the target (in the restore's transaction, so
    /// exactly the rows it will change) into the before-image. Returns the rows saved.
    pub(super) async fn add_table(
        &mut self,
        session: &Connection,
        table: ImageTable<'_>,
    ) -> Result<u64, EngineError> {
        let id = u32::try_from(self.manifest.tables.len() + 1).unwrap_or(u32::MAX);
        let qualified = quote::qualified(table.schema, table.name);
        let columns: Vec<String> = table
            .columns
            .iter()
            .map(|c| quote::ident(&c.name))
            .collect();
        let condition = table
            .condition
            .as_deref()
            .map(|c| format!(" WHERE ({c})"))
            .unwrap_or_default();
        // A partitioned table's rows are in its partitions.
        let only = if table.partitioned { "" } else { "ONLY " };
        let sql = format!(
            "COPY (SELECT {} FROM {only}{qualified}{condition}) TO STDOUT",
            columns.join(", ")
        );
        let context = || format!("saving the before-image of table {qualified}");
        let stream = session
            .client()
            .copy_out(&sql)
            .await
            .map_err(|e| PgError::query(context(), e))?;
        let mut stream = std::pin::pin!(stream);
        let lookup_key = table.key_column.as_ref().map(|column| LookupKey {
            columns: vec![column.clone()],
            order: Some(KeyOrder::Integer),
            filtered: false,
        });
        let key_fields = lookup_key
            .as_ref()
            .and_then(|k| k.fields(&table.columns))
            .map(Arc::new);
        let object = layout::data_object_name(id, 0);
        let key = self.dest.key(&layout::object_name(&self.id, &object))?;
        let mut upload = None;
        let mut chunks = Vec::new();
        let mut offset = 0u64;
        let mut digest = ContentDigest::default();
        let mut buffer = BytesMut::new();
        let mut encoding = VecDeque::new();
        let mut done = false;
        while !done {
            match stream.next().await {
                Some(row) => {
                    buffer.extend_from_slice(&row.map_err(|e| PgError::query(context(), e))?)
                }
                None => done = true,
            }
            if buffer.len() >= self.chunk_size || (done && !buffer.is_empty()) {
                let raw = std::mem::take(&mut buffer).freeze();
                encoding.push_back(self.cpu.encode(
                    raw,
                    crate::dump::DEFAULT_COMPRESS_LEVEL,
                    key_fields.clone(),
                ));
            }
            while encoding.len() > 1 || (done && !encoding.is_empty()) {
                let Some(next) = encoding.pop_front() else {
                    break;
                };
                let chunk = next.await?;
                let upload = match &mut upload {
                    Some(upload) => upload,
                    None => upload.insert(self.dest.store.start_upload(&key).await?),
                };
                let length = chunk.frame.len() as u64;
                upload.write(Bytes::from(chunk.frame)).await?;
                chunks.push(ChunkEntry {
                    object: object.clone(),
                    offset,
                    length,
                    raw_length: chunk.raw_length,
                    rows: chunk.rows,
                    sha256: chunk.sha256,
                    key_range: table
                        .key_column
                        .clone()
                        .zip(chunk.key_range)
                        .map(|(column, (min, max))| KeyRange { column, min, max }),
                    key_filter: None,
                });
                digest = digest.combine(chunk.content_digest);
                offset += length;
            }
        }
        if let Some(upload) = upload {
            let size = upload.complete().await?;
            if size != offset {
                return Err(EngineError::Internal(format!(
                    "{key} was stored with {size} bytes, {offset} were written"
                )));
            }
        }
        let definitions: Vec<String> = table
            .columns
            .iter()
            .map(|c| format!("    {} {}", quote::ident(&c.name), c.type_name))
            .collect();
        self.manifest.schema.push(DdlItem {
            id,
            kind: ObjectKind::Table,
            section: Section::PreData,
            schema: Some(table.schema.to_owned()),
            name: table.name.to_owned(),
            table: None,
            sql: format!(
                "CREATE TABLE {qualified} (\n{}\n);",
                definitions.join(",\n")
            ),
            deps: Vec::new(),
            roles: Vec::new(),
            via_index: None,
        });
        let rows = chunks.iter().map(|c| c.rows).sum();
        self.manifest.tables.push(TableEntry {
            id,
            schema: table.schema.to_owned(),
            name: table.name.to_owned(),
            item: id,
            columns: table.columns,
            row_count: rows,
            raw_bytes: chunks.iter().map(|c| c.raw_length).sum(),
            stored_bytes: offset,
            content_digest: digest.to_hex(),
            key_column: table.key_column.filter(|_| key_fields.is_some()),
            lookup_key: None,
            row_filter: None,
            chunks,
        });
        Ok(rows)
    }

    /// Records sequences' states as they were before the restore, for its undo.
    pub(super) fn add_sequences(&mut self, values: Vec<SequenceValue>) {
        if let Some(info) = &mut self.manifest.before_image {
            info.sequences.extend(values);
        }
    }

    /// Writes the manifest: from now on the before-image is a complete backup.
    pub(super) async fn finish(mut self) -> Result<String, EngineError> {
        self.manifest.finished_at = Timestamp::now().rfc3339();
        let key = self.dest.key(&layout::manifest_name(&self.id))?;
        self.dest
            .store
            .put_if_absent(&key, self.manifest.to_bytes()?.into())
            .await?;
        Ok(self.location())
    }

    /// Removes what was written (best effort), when the restore it belongs to did not commit.
    pub(super) async fn remove(dest: &BeforeImageDest, location: &str) {
        let Some(id) = location.rsplit('/').next() else {
            return;
        };
        let Ok(prefix) = dest.key(id) else { return };
        match dest.store.list(Some(&prefix)).await {
            Ok(objects) => {
                // The manifest first, so an interrupted removal leaves an incomplete backup.
                let mut keys: Vec<ObjectKey> = objects.into_iter().map(|o| o.key).collect();
                keys.sort_by_key(|k| !k.as_str().ends_with(layout::MANIFEST_NAME));
                for key in keys {
                    if let Err(e) = dest.store.delete(&key).await {
                        tracing::warn!("could not remove {key} of an unused before-image: {e}");
                    }
                }
            }
            Err(e) => tracing::warn!("could not list the unused before-image {location}: {e}"),
        }
    }
}

async fn source_info(session: &Connection, target: &ConnConfig) -> Result<SourceInfo, EngineError> {
    let row = session
        .client()
        .query_one(
            "SELECT current_database()::text, current_setting('server_version'), \
                    current_setting('server_version_num')::int4, \
                    pg_catalog.pg_encoding_to_char(d.encoding)::text, txid_current()::text \
             FROM pg_catalog.pg_database d WHERE d.datname = current_database()",
            &[],
        )
        .await
        .map_err(|e| PgError::query("reading the target's version for the before-image", e))?;
    Ok(SourceInfo {
        connection: target.redacted(),
        database: row.get(0),
        server_version: row.get(1),
        server_version_num: u32::try_from(row.get::<_, i32>(2)).unwrap_or(0),
        encoding: row.get(3),
        snapshot_id: format!("transaction {}", row.get::<_, String>(4)),
        snapshot_time: Timestamp::now().rfc3339(),
    })
}
