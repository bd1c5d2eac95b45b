//! The before-image: the target rows a surgical restore is about to overwrite or delete, saved
//! first as a small backup in the ordinary format (started marker, data objects of zstd frames,
//! manifest last), so that `pgark restore` can put them back.

use std::sync::Arc;

use pgark_archive::key_summary::KeyOrder;
use pgark_archive::{
    BeforeImageInfo, ColumnEntry, DdlItem, DumpSettings, LookupKey, Manifest, ObjectKind, Section,
    SequenceValue, SourceInfo, TableEntry, Timestamp, layout,
};
use pgark_pg::{ConnConfig, Connection, PgError, quote, rows};
use pgark_storage::ObjectStore;

use super::plan::Plan;
use super::sequences::{owned_sequences, sequence_values};
use super::undo::{UndoRestore, undo_condition, undo_restore};
use super::{Conflict, SurgicalOptions};
use crate::cpu::CpuPool;
use crate::writer::{BackupWriter, CopySource, DataObject, Encryption, WriterSettings};
use crate::{EngineError, Progress};

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

/// Saves what the restore is about to overwrite or delete (`upsert`: the target's rows with the
/// restored keys; `replace`: the rows matching the row condition) and the sequences it may move,
/// as one before-image under `dest`; returns, per table, the command that undoes the restore.
/// `written` names the before-image as soon as it exists, for removal if the restore fails.
pub(super) async fn save(
    options: &SurgicalOptions,
    connection: &Connection,
    dest: &BeforeImageDest,
    cpu: &Arc<CpuPool>,
    plans: &[Plan<'_>],
    written: &mut Option<String>,
) -> Result<Vec<UndoRestore>, EngineError> {
    let mut image = BeforeImage::start(
        dest.clone(),
        connection,
        &options.target,
        &options.backup.id,
        cpu.clone(),
        options.manifest.settings.chunk_size,
        before_image_encryption(options)?.as_ref(),
    )
    .await?;
    *written = Some(image.location());
    for plan in plans {
        // The sequences the restore may move, as they are now: the undo puts them back.
        let owned = owned_sequences(connection, plan).await?;
        image.add_sequences(sequence_values(connection, &owned).await?);
        let saved = match options.conflict {
            Conflict::Upsert => Some(rows::key_in(&plan.key, &plan.rows)),
            _ => options.predicate.clone(),
        };
        image
            .add_table(
                connection,
                ImageTable {
                    schema: &plan.schema,
                    name: &plan.name,
                    columns: plan.target_columns.clone(),
                    key_column: plan.integer_key.clone(),
                    partitioned: plan.target_partitioned,
                    condition: saved,
                },
            )
            .await?;
    }
    let location = image.finish().await?;
    let mut undo = Vec::with_capacity(plans.len());
    for plan in plans {
        let condition = undo_condition(
            connection,
            options.conflict,
            plan.condition.as_deref(),
            plan,
        )
        .await?;
        undo.push(undo_restore(&location, options, plan, condition));
    }
    Ok(undo)
}

/// One table of the before-image: the target table and which of its rows to save.
/// A before-image of an encrypted backup's rows is encrypted to the same recipients (with a key
/// of its own): rows the backup protects stay protected when they come back out of the target.
fn before_image_encryption(options: &SurgicalOptions) -> Result<Option<Encryption>, EngineError> {
    let Some(info) = &options.manifest.encryption else {
        return Ok(None);
    };
    let recipients = info
        .recipients
        .iter()
        .map(|r| pgark_keys::Recipient::parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Encryption {
        recipients,
        kms: options.kms.clone(),
    }))
}

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
    writer: BackupWriter,
    manifest: Manifest,
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
        encryption: Option<&Encryption>,
    ) -> Result<BeforeImage, EngineError> {
        let source = source_info(session, target).await?;
        let started = Timestamp::now();
        let settings = WriterSettings {
            chunk_size,
            compress_level: crate::dump::DEFAULT_COMPRESS_LEVEL,
            stall_timeout: target.stall_timeout(),
        };
        let writer = BackupWriter::start(
            dest.store.clone(),
            &dest.prefix,
            started,
            &source.database,
            settings,
            cpu,
            Arc::new(Progress::default()),
            encryption,
        )
        .await?;
        let mut manifest = Manifest::new(
            writer.id().to_owned(),
            started.rfc3339(),
            source,
            DumpSettings {
                jobs: 1,
                chunk_size,
                compress_level: settings.compress_level,
                object_lock: writer.object_lock_record(),
            },
        );
        manifest.before_image = Some(BeforeImageInfo {
            of_backup: of_backup.to_owned(),
            sequences: Vec::new(),
        });
        Ok(BeforeImage { writer, manifest })
    }

    pub(super) fn location(&self) -> String {
        self.writer.location()
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
        let columns: Vec<(&str, &str)> = table
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.type_name.as_str()))
            .collect();
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        // A partitioned table's rows are in its partitions.
        let source = if table.partitioned {
            qualified.clone()
        } else {
            format!("ONLY {qualified}")
        };
        let sql = rows::copy_out_rows(&source, &names, table.condition.as_deref());
        let create = rows::create_table(&qualified, &columns);
        let lookup_key = table.key_column.as_ref().map(|column| LookupKey {
            columns: vec![column.clone()],
            order: Some(KeyOrder::Integer),
            filtered: false,
        });
        let keyed = lookup_key
            .as_ref()
            .is_some_and(|k| k.fields(&table.columns).is_some());
        let data = self
            .writer
            .copy_out(
                session,
                CopySource {
                    sql,
                    what: format!("the before-image of table {qualified}"),
                    table: id,
                    columns: &table.columns,
                    key: lookup_key.as_ref(),
                },
                DataObject {
                    name: &layout::data_object_name(id, 0),
                    expected_bytes: None,
                },
            )
            .await?;
        self.manifest.schema.push(DdlItem {
            id,
            kind: ObjectKind::Table,
            section: Section::PreData,
            schema: Some(table.schema.to_owned()),
            name: table.name.to_owned(),
            table: None,
            sql: create,
            deps: Vec::new(),
            roles: Vec::new(),
            via_index: None,
        });
        let rows = data.chunks.iter().map(|c| c.rows).sum();
        self.manifest.tables.push(TableEntry {
            id,
            schema: table.schema.to_owned(),
            name: table.name.to_owned(),
            item: id,
            columns: table.columns,
            row_count: rows,
            raw_bytes: data.chunks.iter().map(|c| c.raw_length).sum(),
            stored_bytes: data.stored_bytes,
            content_digest: data.content_digest.to_hex(),
            key_column: table.key_column.filter(|_| keyed),
            lookup_key: None,
            row_filter: None,
            chunk_index: None,
            chunks: data.chunks,
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
        self.writer.finish(&self.manifest).await?;
        Ok(self.location())
    }

    /// Removes a finished before-image (best effort), when the restore it belongs to did not
    /// commit.
    pub(super) async fn remove(dest: &BeforeImageDest, location: &str) {
        if let Some(id) = location.rsplit('/').next() {
            crate::writer::remove(dest.store.as_ref(), &dest.prefix, id).await;
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
