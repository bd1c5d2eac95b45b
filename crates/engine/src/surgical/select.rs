//! Which tables a restore touches: `--table`, `--schema` and `--exclude-table` patterns, and the
//! part of a manifest they select (the tables, and the DDL that belongs to them).
//!
//! A pattern is `name` or `schema.name`, quoted like SQL (`"Odd Schema"."Tasks"`; unquoted parts
//! are folded to lower case), where `*` matches any run of characters and `?` one character. An
//! unqualified table pattern matches the name in any schema.

use std::collections::BTreeSet;

use pgark_archive::{DdlItem, Manifest, ObjectKind};

use crate::EngineError;

/// One `--table`/`--exclude-table` pattern, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePattern {
    text: String,
    schema: Option<String>,
    name: String,
}

impl TablePattern {
    pub fn parse(text: &str) -> Result<TablePattern, EngineError> {
        let invalid = || EngineError::InvalidPattern {
            pattern: text.to_owned(),
        };
        let parts = crate::cat::split_qualified(text.trim()).ok_or_else(invalid)?;
        let (schema, name) = match parts.as_slice() {
            [name] => (None, name.clone()),
            [schema, name] => (Some(schema.clone()), name.clone()),
            _ => return Err(invalid()),
        };
        Ok(TablePattern {
            text: text.to_owned(),
            schema,
            name,
        })
    }

    fn matches(&self, schema: &str, name: &str) -> bool {
        self.schema.as_deref().is_none_or(|s| glob(s, schema)) && glob(&self.name, name)
    }
}

/// A table a surgical restore writes to: one of the backup's tables, or a partitioned table,
/// whose partitions' rows go in through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedTable {
    /// For a partitioned table, its index in `manifest.partitioned`.
    pub partitioned: Option<usize>,
    /// The tables holding its rows, as indexes into `manifest.tables`: itself, or its leaf
    /// partitions.
    pub parts: Vec<usize>,
}

impl SelectedTable {
    /// The backup's table (or partitioned table, with its leaf partitions) of this name.
    pub fn named(manifest: &Manifest, schema: &str, name: &str) -> Option<SelectedTable> {
        if let Some(i) = manifest
            .partitioned
            .iter()
            .position(|p| p.schema == schema && p.name == name)
        {
            return Some(SelectedTable {
                partitioned: Some(i),
                parts: manifest.leaf_partitions(schema, name).unwrap_or_default(),
            });
        }
        let i = manifest
            .tables
            .iter()
            .position(|t| t.schema == schema && t.name == name)?;
        Some(SelectedTable {
            partitioned: None,
            parts: vec![i],
        })
    }
}

/// The tables selected by name patterns; empty means every table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSelection {
    pub tables: Vec<TablePattern>,
    /// `--schema` patterns: every table in a matching schema.
    pub schemas: Vec<String>,
    pub exclude: Vec<TablePattern>,
}

impl TableSelection {
    /// Parses the three lists of patterns as given on the command line.
    pub fn parse(
        tables: &[String],
        schemas: &[String],
        exclude: &[String],
    ) -> Result<TableSelection, EngineError> {
        let schemas = schemas
            .iter()
            .map(|s| match crate::cat::split_qualified(s.trim()).as_deref() {
                Some([one]) => Ok(one.clone()),
                _ => Err(EngineError::InvalidPattern { pattern: s.clone() }),
            })
            .collect::<Result<_, _>>()?;
        Ok(TableSelection {
            tables: tables
                .iter()
                .map(|t| TablePattern::parse(t))
                .collect::<Result<_, _>>()?,
            schemas,
            exclude: exclude
                .iter()
                .map(|t| TablePattern::parse(t))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Whether any pattern was given.
    pub fn is_active(&self) -> bool {
        !(self.tables.is_empty() && self.schemas.is_empty() && self.exclude.is_empty())
    }

    fn includes(&self, schema: &str, name: &str) -> bool {
        let included = (self.tables.is_empty() && self.schemas.is_empty())
            || self.tables.iter().any(|p| p.matches(schema, name))
            || self.schemas.iter().any(|s| glob(s, schema));
        included && !self.exclude.iter().any(|p| p.matches(schema, name))
    }

    /// The indexes of the selected tables in `manifest.tables`: those selected by name, and the
    /// partitions holding the rows of the partitioned tables selected. Every `--table` and
    /// `--schema` pattern must match at least one table, so a typo is an error rather than a
    /// restore of nothing.
    pub fn select(&self, manifest: &Manifest) -> Result<Vec<usize>, EngineError> {
        let mut selected: Vec<usize> = self
            .select_tables(manifest)?
            .into_iter()
            .flat_map(|t| t.parts)
            .collect();
        selected.sort_unstable();
        selected.dedup();
        Ok(selected)
    }

    /// The tables a surgical restore writes to: each selected partitioned table (the topmost,
    /// when a partitioned partition is selected too) with its leaf partitions that are not
    /// excluded, and each other selected table on its own. Errors as [`TableSelection::select`].
    pub fn select_tables(&self, manifest: &Manifest) -> Result<Vec<SelectedTable>, EngineError> {
        let names = || {
            manifest
                .tables
                .iter()
                .map(|t| (t.schema.as_str(), t.name.as_str()))
                .chain(
                    manifest
                        .partitioned
                        .iter()
                        .map(|p| (p.schema.as_str(), p.name.as_str())),
                )
        };
        for pattern in &self.tables {
            if !names().any(|(schema, name)| pattern.matches(schema, name)) {
                return Err(EngineError::UnknownTable {
                    table: pattern.text.clone(),
                    known: crate::cat::known_tables(manifest),
                });
            }
        }
        for schema in &self.schemas {
            if !names().any(|(s, _)| glob(schema, s)) {
                return Err(EngineError::UnknownTable {
                    table: format!("in schema {schema}"),
                    known: crate::cat::known_tables(manifest),
                });
            }
        }
        let parents: Vec<usize> = (0..manifest.partitioned.len())
            .filter(|&i| {
                let p = &manifest.partitioned[i];
                self.includes(&p.schema, &p.name)
            })
            .collect();
        // A selected partitioned table that is a partition of another selected one is part of it.
        let nested: BTreeSet<(&str, &str)> = parents
            .iter()
            .flat_map(|&i| &manifest.partitioned[i].partitions)
            .map(|part| (part.schema.as_str(), part.name.as_str()))
            .collect();
        let mut selected = Vec::new();
        let mut covered = BTreeSet::new();
        for &i in &parents {
            let p = &manifest.partitioned[i];
            if nested.contains(&(p.schema.as_str(), p.name.as_str())) {
                continue;
            }
            let parts: Vec<usize> = manifest
                .leaf_partitions(&p.schema, &p.name)
                .unwrap_or_default()
                .into_iter()
                .filter(|&t| {
                    let t = &manifest.tables[t];
                    !self.exclude.iter().any(|x| x.matches(&t.schema, &t.name))
                })
                .collect();
            covered.extend(parts.iter().copied());
            selected.push(SelectedTable {
                partitioned: Some(i),
                parts,
            });
        }
        for (i, t) in manifest.tables.iter().enumerate() {
            if !covered.contains(&i) && self.includes(&t.schema, &t.name) {
                selected.push(SelectedTable {
                    partitioned: None,
                    parts: vec![i],
                });
            }
        }
        if selected.is_empty() {
            return Err(EngineError::NothingSelected);
        }
        Ok(selected)
    }

    /// The manifest a whole-database restore of the selection runs: the selected tables, the
    /// DDL that belongs to them (indexes, constraints, triggers, policies, defaults, owned
    /// sequences' links, comments, owners, privileges), and every object that is not a table
    /// (schemas, types, functions, standalone sequences, views over selected tables...); left
    /// out are other tables, everything belonging to them or depending on them (a foreign key
    /// to an unselected table, a view over one), and large objects.
    pub fn apply(&self, manifest: &Manifest) -> Result<Manifest, EngineError> {
        if !self.is_active() {
            return Ok(manifest.clone());
        }
        let selected = self.select(manifest)?;
        let table_items: BTreeSet<u32> = manifest.tables.iter().map(|t| t.item).collect();
        let kept_tables: BTreeSet<u32> =
            selected.iter().map(|&i| manifest.tables[i].item).collect();
        // Sequences owned by a table that is left out go with it.
        let sequences: BTreeSet<u32> = manifest
            .schema
            .iter()
            .filter(|i| i.kind == ObjectKind::Sequence)
            .map(|i| i.id)
            .collect();
        let others_sequences: BTreeSet<u32> = manifest
            .schema
            .iter()
            .filter(|i| {
                i.kind == ObjectKind::SequenceOwnedBy
                    && i.table.is_some_and(|t| !kept_tables.contains(&t))
            })
            .flat_map(|i| i.deps.iter().copied())
            .filter(|dep| sequences.contains(dep))
            .collect();
        let mut kept: BTreeSet<u32> = BTreeSet::new();
        // Items come in execution order, so an item's dependencies are decided before it.
        for item in &manifest.schema {
            if !others_sequences.contains(&item.id)
                && keeps(item, &table_items, &kept_tables, &kept)
            {
                kept.insert(item.id);
            }
        }
        // Built from the parts kept, not a clone of the whole: a backup's catalog can be large.
        Ok(Manifest {
            format: manifest.format.clone(),
            format_version: manifest.format_version,
            pgark_version: manifest.pgark_version.clone(),
            backup_id: manifest.backup_id.clone(),
            started_at: manifest.started_at.clone(),
            finished_at: manifest.finished_at.clone(),
            source: manifest.source.clone(),
            settings: manifest.settings.clone(),
            schema: manifest
                .schema
                .iter()
                .filter(|item| kept.contains(&item.id))
                .cloned()
                .collect(),
            tables: selected
                .iter()
                .map(|&i| manifest.tables[i].clone())
                .collect(),
            roles: manifest.roles.clone(),
            large_objects: None,
            warnings: manifest.warnings.clone(),
            partitioned: manifest.partitioned.clone(),
            before_image: manifest.before_image.clone(),
            database: manifest.database.clone(),
            globals: None,
            chunk_index: manifest.chunk_index.clone(),
            encryption: manifest.encryption.clone(),
            data_key: manifest.data_key.clone(),
        })
    }
}

fn keeps(
    item: &DdlItem,
    table_items: &BTreeSet<u32>,
    kept_tables: &BTreeSet<u32>,
    kept: &BTreeSet<u32>,
) -> bool {
    if item.kind == ObjectKind::LargeObject {
        return false;
    }
    if table_items.contains(&item.id) {
        return kept_tables.contains(&item.id);
    }
    if let Some(table) = item.table
        && table_items.contains(&table)
        && !kept_tables.contains(&table)
    {
        return false;
    }
    item.deps.iter().all(|dep| kept.contains(dep))
}

/// Glob matching with `*` (any run, also empty) and `?` (one character).
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((star, matched)) => {
                    p = star + 1;
                    t = matched + 1;
                    backtrack = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_shell_patterns() {
        for (pattern, text, expected) in [
            ("tasks", "tasks", true),
            ("tasks", "task", false),
            ("task*", "tasks", true),
            ("task*", "task", true),
            ("*s", "tasks", true),
            ("t?sks", "tasks", true),
            ("t?sks", "tsks", false),
            ("*a*b*", "xaxxbx", true),
            ("*a*b", "xaxxbx", false),
            ("*", "", true),
        ] {
            assert_eq!(glob(pattern, text), expected, "{pattern} vs {text}");
        }
    }

    #[test]
    fn patterns_are_schema_qualified_quoted_and_excludable() {
        let selection = TableSelection::parse(
            &["app.task*".into(), "\"Odd\".\"T\"".into(), "notes".into()],
            &["audit*".into()],
            &["app.tasks_old".into()],
        )
        .expect("parses");
        assert!(selection.includes("app", "tasks"));
        assert!(!selection.includes("app", "tasks_old"));
        assert!(!selection.includes("public", "tasks"));
        assert!(selection.includes("Odd", "T"));
        assert!(!selection.includes("odd", "t"));
        assert!(selection.includes("public", "notes"));
        assert!(selection.includes("audit_2024", "log"));
        assert!(TablePattern::parse("a.b.c").is_err());
        assert!(TablePattern::parse("\"open").is_err());
    }
}
