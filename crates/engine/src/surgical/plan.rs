//! Getting each table ready: finding (or creating) the table to write to, matching its columns
//! with the backup's, its primary key, and the order tables go in.

use pgark_archive::{ColumnEntry, DdlItem, Manifest, ObjectKind, PartitionedEntry, TableEntry};
use pgark_pg::{Connection, PgError, quote, rows};

use super::referencing::Reach;
use super::select::SelectedTable;
use super::{ColumnFate, SurgicalOptions, TableReport};
use crate::{EngineError, session};

/// The backup's side of a table being restored: one of its tables, or a partitioned table and
/// the partitions holding its rows.
pub(super) struct Source<'m> {
    pub(super) schema: &'m str,
    pub(super) name: &'m str,
    /// The id of the item creating the table.
    pub(super) item: u32,
    /// The columns rows are written with.
    pub(super) columns: &'m [ColumnEntry],
    /// The tables holding its rows: itself, or its leaf partitions.
    pub(super) parts: Vec<&'m TableEntry>,
    pub(super) partitioned: Option<&'m PartitionedEntry>,
}

impl<'m> Source<'m> {
    pub(super) fn new(manifest: &'m Manifest, selected: &SelectedTable) -> Source<'m> {
        let parts: Vec<&TableEntry> = selected
            .parts
            .iter()
            .map(|&i| &manifest.tables[i])
            .collect();
        match selected.partitioned.map(|i| &manifest.partitioned[i]) {
            Some(p) => Source {
                schema: &p.schema,
                name: &p.name,
                item: p.item,
                columns: &p.columns,
                parts,
                partitioned: Some(p),
            },
            None => {
                let t = &manifest.tables[selected.parts[0]];
                Source {
                    schema: &t.schema,
                    name: &t.name,
                    item: t.item,
                    columns: &t.columns,
                    parts,
                    partitioned: None,
                }
            }
        }
    }

    /// `schema.name` for messages (unquoted; not for SQL).
    pub(super) fn display_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    pub(super) fn qualified(&self) -> String {
        quote::qualified(self.schema, self.name)
    }

    /// The items creating the table and, for a partitioned one, every table of its tree.
    fn table_items(&self, manifest: &Manifest) -> std::collections::BTreeSet<u32> {
        let mut items: std::collections::BTreeSet<u32> =
            self.parts.iter().map(|t| t.item).collect();
        items.insert(self.item);
        if let Some(root) = self.partitioned {
            // The partitioned tables between the root and the leaves.
            items.extend(
                manifest
                    .partition_tree(root)
                    .iter()
                    .filter_map(|node| node.partitioned.map(|p| p.item)),
            );
        }
        items
    }
}

/// A column written: the backup's (as staged), and the target's it goes into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ColumnMapping {
    pub(super) backup: String,
    pub(super) target: String,
    pub(super) from_type: String,
    pub(super) to_type: String,
}

/// One table on its way in.
pub(super) struct Plan<'m> {
    pub(super) source: Source<'m>,
    pub(super) schema: String,
    pub(super) name: String,
    pub(super) oid: u32,
    /// The target's table is partitioned: statements name it without `ONLY`, so that they reach
    /// its partitions.
    pub(super) target_partitioned: bool,
    /// Columns written, each from the backup's column to the target's.
    pub(super) columns: Vec<ColumnMapping>,
    /// Every column of the target that is not generated, with its type (for the before-image).
    pub(super) target_columns: Vec<ColumnEntry>,
    pub(super) identity_always: Vec<String>,
    pub(super) key: Vec<String>,
    /// A single-column integer primary key, for the before-image's chunk key ranges.
    pub(super) integer_key: Option<String>,
    /// The chunks to read of each of `source.parts`.
    pub(super) chunks: Vec<Vec<usize>>,
    /// A re-created table's indexes, constraints and triggers, run after its rows are in.
    pub(super) post_data: Vec<&'m DdlItem>,
    /// What `DROP TABLE ... CASCADE` took from other objects when it dropped the re-created
    /// table: the foreign keys referencing it and the views over it (with their comments,
    /// owners and privileges), re-added where their other side exists.
    pub(super) dependents: Vec<&'m DdlItem>,
    pub(super) staging: String,
    pub(super) rows: String,
    /// Which of the backup's rows are restored: `--where` for a table the user named; for a
    /// referencing table, a condition on its parents' restored rows.
    pub(super) condition: Option<String>,
    pub(super) reach: Reach,
    pub(super) report: TableReport,
}

impl Plan<'_> {
    pub(super) fn qualified(&self) -> String {
        quote::qualified(&self.schema, &self.name)
    }

    /// The target table as statements that must not reach inheritance children name it: `ONLY
    /// t`, or `t` for a partitioned table (whose rows are all in its partitions).
    pub(super) fn only(&self) -> String {
        if self.target_partitioned {
            self.qualified()
        } else {
            format!("ONLY {}", self.qualified())
        }
    }
}

/// Finds (or, beside the live table, creates) the table to write to and matches its columns with
/// the backup's.
pub(super) async fn prepare<'m>(
    options: &'m SurgicalOptions,
    connection: &Connection,
    selected: &SelectedTable,
    n: usize,
) -> Result<Plan<'m>, EngineError> {
    let backup = Source::new(&options.manifest, selected);
    let schema = options
        .into_schema
        .clone()
        .unwrap_or_else(|| backup.schema.to_owned());
    let name = options
        .into_table
        .clone()
        .unwrap_or_else(|| backup.name.to_owned());
    let beside = options.into_schema.is_some() || options.into_table.is_some();
    let mut created = false;
    let mut post_data = Vec::new();
    let mut dependents = Vec::new();
    let (oid, target_partitioned) = match relation_oid(connection, &schema, &name).await? {
        Some(found) => found,
        None => {
            if beside {
                create_beside(connection, &options.manifest, &backup, &schema, &name).await?;
            } else {
                // Dropped from the target: created again from the backup's definition, inside
                // the transaction (a partitioned table with its partitions); its indexes,
                // constraints and triggers come after the rows.
                let table_items = backup.table_items(&options.manifest);
                let (now, later) = own_ddl(&options.manifest, &table_items);
                let own: std::collections::BTreeSet<u32> = table_items
                    .iter()
                    .copied()
                    .chain(now.iter().chain(&later).map(|i| i.id))
                    .collect();
                dependents = dropped_with(&options.manifest, &own);
                for item in now {
                    session::execute(connection, &item.sql, || {
                        format!(
                            "re-creating table {} from the backup ({})",
                            backup.display_name(),
                            describe(item)
                        )
                    })
                    .await?;
                }
                post_data = later;
            }
            created = true;
            relation_oid(connection, &schema, &name)
                .await?
                .ok_or_else(|| EngineError::TableVanished {
                    table: quote::qualified(&schema, &name),
                })?
        }
    };
    let qualified = quote::qualified(&schema, &name);
    let rows = connection
        .client()
        .query(
            "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), \
                    a.attgenerated::text <> '', a.attidentity::text = 'a' \
             FROM pg_catalog.pg_attribute a \
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&oid],
        )
        .await
        .map_err(|e| PgError::query(format!("reading the columns of table {qualified}"), e))?;
    let target: Vec<(String, String, bool, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let writable = |column: &str| target.iter().find(|t| t.0 == column && !t.2);
    // `--column-map old=new`: the backup's column `old` is the target's `new` (renamed since).
    let target_name = |backup_column: &str| -> String {
        options
            .column_map
            .iter()
            .find(|(old, _)| old == backup_column)
            .map_or_else(|| backup_column.to_owned(), |(_, new)| new.clone())
    };
    let only_backup: Vec<String> = backup
        .columns
        .iter()
        .filter(|c| writable(&target_name(&c.name)).is_none())
        .map(|c| c.name.clone())
        .collect();
    let only_target: Vec<String> = target
        .iter()
        .filter(|t| !t.2 && !backup.columns.iter().any(|c| target_name(&c.name) == t.0))
        .map(|t| t.0.clone())
        .collect();
    let differ = !only_backup.is_empty() || !only_target.is_empty();
    if differ && !options.ignore_missing_columns {
        let mut differences = Vec::new();
        if !only_backup.is_empty() {
            differences.push(format!("only in the backup: {}", only_backup.join(", ")));
        }
        if !only_target.is_empty() {
            differences.push(format!("only in the target: {}", only_target.join(", ")));
        }
        return Err(EngineError::ColumnMismatch {
            table: qualified,
            differences: differences.join("; "),
        });
    }
    let mut columns = Vec::new();
    let mut fates = Vec::new();
    for c in backup.columns {
        let name = target_name(&c.name);
        let Some(t) = writable(&name) else {
            fates.push(ColumnFate::Dropped {
                column: c.name.clone(),
            });
            continue;
        };
        if c.type_name != t.1 {
            // A parse-time check: does any cast from the backup's type to the target's exist?
            let check = format!("SELECT NULL::{}::{}", c.type_name, t.1);
            if let Err(e) = connection.client().execute(&check, &[]).await {
                return Err(EngineError::UncastableColumn {
                    table: qualified,
                    column: quote::ident(&c.name),
                    from: c.type_name.clone(),
                    to: t.1.clone(),
                    reason: pgark_pg::ServerMessage(&e).to_string(),
                });
            }
        }
        if name != c.name || c.type_name != t.1 {
            fates.push(ColumnFate::Mapped {
                from: c.name.clone(),
                to: name.clone(),
                from_type: c.type_name.clone(),
                to_type: t.1.clone(),
            });
        }
        columns.push(ColumnMapping {
            backup: c.name.clone(),
            target: name,
            from_type: c.type_name.clone(),
            to_type: t.1.clone(),
        });
    }
    fates.extend(
        only_target
            .into_iter()
            .map(|column| ColumnFate::Defaulted { column }),
    );
    let key_rows = connection
        .client()
        .query(
            "SELECT a.attname::text, a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) \
             FROM pg_catalog.pg_index i \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
             WHERE i.indrelid = $1 AND i.indisprimary \
             ORDER BY pg_catalog.array_position(i.indkey::int2[], a.attnum)",
            &[&oid],
        )
        .await
        .map_err(|e| PgError::query(format!("reading the primary key of table {qualified}"), e))?;
    let mut key: Vec<String> = key_rows.iter().map(|r| r.get(0)).collect();
    if !key.iter().all(|k| columns.iter().any(|c| &c.target == k)) {
        // The key is not among the restored columns; it cannot identify restored rows.
        key.clear();
    }
    let integer_key = match key_rows.as_slice() {
        [one] if one.get::<_, bool>(1) && !key.is_empty() => Some(one.get::<_, String>(0)),
        _ => None,
    };
    Ok(Plan {
        source: backup,
        target_partitioned,
        report: TableReport {
            table: qualified,
            created,
            columns: fates,
            ..TableReport::default()
        },
        schema,
        name,
        oid,
        identity_always: target
            .iter()
            .filter(|t| t.3 && columns.iter().any(|c| c.target == t.0))
            .map(|t| t.0.clone())
            .collect(),
        target_columns: target
            .iter()
            .filter(|t| !t.2)
            .map(|t| ColumnEntry {
                name: t.0.clone(),
                type_name: t.1.clone(),
            })
            .collect(),
        columns,
        key,
        integer_key,
        chunks: Vec::new(),
        post_data,
        dependents,
        staging: format!("pg_temp.pgark_staging_{n}"),
        rows: format!("pg_temp.pgark_rows_{n}"),
        condition: options.predicate.clone(),
        reach: Reach::Selected,
    })
}

/// The table's OID in the target, and whether it is partitioned.
pub(super) async fn relation_oid(
    connection: &Connection,
    schema: &str,
    name: &str,
) -> Result<Option<(u32, bool)>, EngineError> {
    let row = connection
        .client()
        .query_opt(
            "SELECT c.oid, c.relkind = 'p' FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
            &[&schema, &name],
        )
        .await
        .map_err(|e| {
            PgError::query(
                format!("looking for table {schema}.{name} in the target"),
                e,
            )
        })?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// `--into-schema`/`--into-table`: creates the table from the backup's definition (its
/// `CREATE TABLE` and primary key, under the new name), or from its columns when the definition
/// cannot be moved safely (and for a partitioned table, which would have no partitions there).
pub(super) async fn create_beside(
    connection: &Connection,
    manifest: &Manifest,
    backup: &Source<'_>,
    schema: &str,
    name: &str,
) -> Result<(), EngineError> {
    let old = backup.qualified();
    let new = quote::qualified(schema, name);
    let mut statements = vec![format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        quote::ident(schema)
    )];
    let item = manifest.schema.iter().find(|i| i.id == backup.item);
    match item.filter(|i| i.sql.matches(&old).count() == 1 && backup.partitioned.is_none()) {
        Some(item) => statements.push(item.sql.replacen(
            &format!("TABLE {old}"),
            &format!("TABLE {new}"),
            1,
        )),
        None => {
            let columns: Vec<(&str, &str)> = backup
                .columns
                .iter()
                .map(|c| (c.name.as_str(), c.type_name.as_str()))
                .collect();
            statements.push(rows::create_table(&new, &columns));
        }
    }
    if let Some(key) = primary_key_item(manifest, backup.item) {
        let prefix = format!(
            "ALTER TABLE ONLY {old} ADD CONSTRAINT {} ",
            quote::ident(&key.name)
        );
        if let Some(definition) = key.sql.strip_prefix(&prefix)
            && !definition.contains(&old)
        {
            statements.push(format!("ALTER TABLE ONLY {new} ADD {definition}"));
        }
    }
    for statement in statements {
        session::execute(connection, &statement, || {
            format!("creating table {new} beside {old}")
        })
        .await?;
    }
    Ok(())
}

/// Tables' own DDL (of the items `tables` creating them), as a selective whole-database restore
/// would run it: the tables, the sequences they own, their defaults, options, indexes,
/// constraints, foreign keys, triggers, rules, policies and partition attachments, and the
/// comments, owners and privileges of all of these. Split into what runs before their rows
/// (pre-data and data sections) and after them (post-data).
pub(super) fn own_ddl<'m>(
    manifest: &'m Manifest,
    tables: &std::collections::BTreeSet<u32>,
) -> (Vec<&'m DdlItem>, Vec<&'m DdlItem>) {
    let of_tables = |table: Option<u32>| table.is_some_and(|t| tables.contains(&t));
    let sequences: std::collections::BTreeSet<u32> = manifest
        .schema
        .iter()
        .filter(|i| i.kind == ObjectKind::SequenceOwnedBy && of_tables(i.table))
        .flat_map(|i| i.deps.iter().copied())
        .filter(|dep| {
            manifest
                .schema
                .iter()
                .any(|i| i.id == *dep && i.kind == ObjectKind::Sequence)
        })
        .collect();
    let mut included = std::collections::BTreeSet::new();
    let mut before = Vec::new();
    let mut after = Vec::new();
    for item in &manifest.schema {
        let attached = matches!(
            item.kind,
            ObjectKind::Comment | ObjectKind::SecurityLabel | ObjectKind::Owner | ObjectKind::Acl
        ) && item.deps.iter().any(|d| included.contains(d));
        let own = tables.contains(&item.id)
            || sequences.contains(&item.id)
            || of_tables(item.table)
            || attached;
        if !own || item.kind == ObjectKind::MaterializedViewData {
            continue;
        }
        included.insert(item.id);
        match item.section {
            pgark_archive::Section::PostData => after.push(item),
            _ => before.push(item),
        }
    }
    (before, after)
}

/// What dropping the objects `own` (a table and everything of its own) with CASCADE drops
/// elsewhere, in the backup's order: foreign keys of other tables referencing them, views (and
/// materialized views) over them or over such views, and the comments, owners and privileges of
/// those.
pub(super) fn dropped_with<'m>(
    manifest: &'m Manifest,
    own: &std::collections::BTreeSet<u32>,
) -> Vec<&'m DdlItem> {
    let mut gone = own.clone();
    let mut found = Vec::new();
    for item in &manifest.schema {
        let on_gone = item.deps.iter().any(|d| gone.contains(d));
        let depends = match item.kind {
            ObjectKind::ForeignKey => on_gone && !item.table.is_some_and(|t| own.contains(&t)),
            ObjectKind::View | ObjectKind::MaterializedView | ObjectKind::MaterializedViewData => {
                on_gone
            }
            ObjectKind::Comment | ObjectKind::Owner | ObjectKind::Acl => {
                on_gone && item.deps.iter().all(|d| !own.contains(d))
            }
            _ => false,
        };
        if depends && !own.contains(&item.id) {
            gone.insert(item.id);
            found.push(item);
        }
    }
    found
}

/// Names an item in messages, e.g. `index app.tasks_pkey`.
pub(super) fn describe(item: &DdlItem) -> String {
    let kind = pgark_archive::kind_word(item.kind);
    match &item.schema {
        Some(schema) => format!("{kind} {schema}.{}", item.name),
        None => format!("{kind} {}", item.name),
    }
}

pub(super) fn primary_key_item(manifest: &Manifest, table_item: u32) -> Option<&DdlItem> {
    manifest.schema.iter().find(|i| {
        i.kind == ObjectKind::Constraint
            && i.table == Some(table_item)
            && i.sql.contains(" PRIMARY KEY ")
    })
}

/// Puts tables that others among them reference first, so inserts meet their parents.
pub(super) async fn order_by_foreign_keys(
    connection: &Connection,
    plans: &mut Vec<Plan<'_>>,
) -> Result<(), EngineError> {
    if plans.len() < 2 {
        return Ok(());
    }
    let oids: Vec<u32> = plans.iter().map(|p| p.oid).collect();
    let rows = connection
        .client()
        .query(
            "SELECT conrelid, confrelid FROM pg_catalog.pg_constraint \
             WHERE contype = 'f' AND conrelid = ANY ($1) AND confrelid = ANY ($1) \
             AND conrelid <> confrelid",
            &[&oids],
        )
        .await
        .map_err(|e| PgError::query("reading the foreign keys among the restored tables", e))?;
    let references: Vec<(u32, u32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut ordered = Vec::with_capacity(plans.len());
    while !plans.is_empty() {
        // A table whose referenced tables are all placed; with a cycle, the first remaining.
        let next = plans
            .iter()
            .position(|p| {
                references
                    .iter()
                    .filter(|(child, _)| *child == p.oid)
                    .all(|(_, parent)| !plans.iter().any(|q| q.oid == *parent))
            })
            .unwrap_or(0);
        ordered.push(plans.remove(next));
    }
    *plans = ordered;
    Ok(())
}
