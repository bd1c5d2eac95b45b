//! `CREATE TABLE`, partitions' `ATTACH PARTITION`, and defaults of inherited columns.
//!
//! Like `pg_dump`, a partition is created as a standalone table with all its columns and then
//! attached, so it keeps its own column order and multi-level partitioning needs nothing special.
//! An inheritance child (`INHERITS`) declares only the columns it defines itself.

use std::collections::HashMap;

use pgark_archive::{ObjectKind, Section};

use super::build::{Builder, Detached};
use super::columns::{column_definition, inherited_not_null, inherits_default, is_declared};
use super::graph::{ItemIdx, NewItem};
use crate::catalog::{Column, Constraint, ConstraintKind, Generated, ObjAddr, Sequence, Table};
use crate::quote::{ident, literal};

/// What a table's `CREATE TABLE` needs besides the table itself.
#[derive(Debug, Default)]
pub(super) struct TableParts<'a> {
    /// CHECK constraints written inside the statement.
    pub checks: Vec<&'a Constraint>,
    /// Identity columns' sequences, by column name.
    pub identities: HashMap<&'a str, &'a Sequence>,
    /// An inheritance child's generated columns whose expression a parent gives them: the
    /// child may not repeat it (PostgreSQL refuses a generation expression there before 16).
    pub inherited_generation: Vec<&'a str>,
    /// Columns whose default is set by a statement of its own (see [`Detached`]).
    pub detached_defaults: Vec<&'a str>,
}

pub(super) fn add_tables(b: &mut Builder<'_>) {
    let mut parts = table_parts(b);
    for table in &b.catalog.tables {
        let mut part = parts.remove(&table.oid).unwrap_or_default();
        if !table.is_partition() {
            let parents = parent_tables(b, table);
            part.inherited_generation = table
                .columns
                .iter()
                .filter(|c| c.generated != Generated::No && inherits_default(&parents, c))
                .map(|c| c.name.as_str())
                .collect();
        }
        part.detached_defaults = table
            .columns
            .iter()
            .filter(|c| b.detached.has_default(c))
            .map(|c| c.name.as_str())
            .collect();
        add_table(b, table, &part);
        add_detached_defaults(b, table);
    }
    // Second pass: parents' items exist now whatever the name order.
    for table in &b.catalog.tables {
        add_table_links(b, table);
    }
}

/// Inline CHECK constraints and identity sequences, by table OID.
fn table_parts<'c>(b: &Builder<'c>) -> HashMap<u32, TableParts<'c>> {
    let catalog = b.catalog;
    let mut parts: HashMap<u32, TableParts<'c>> = HashMap::new();
    for c in &catalog.constraints {
        if let Some(table) = b.tables.get(&c.table_oid)
            && is_inline_check(table, c, b.detached)
        {
            parts.entry(c.table_oid).or_default().checks.push(c);
        }
    }
    for seq in &catalog.sequences {
        if let Some(o) = seq.owner.as_ref().filter(|o| o.identity) {
            let part = parts.entry(o.table_oid).or_default();
            part.identities.insert(o.column.as_str(), seq);
        }
    }
    parts
}

fn add_table(b: &mut Builder<'_>, table: &Table, part: &TableParts<'_>) {
    let parents = parent_tables(b, table);
    let mut sql = create_table(table, part);
    for fix in inherited_not_null(table, &parents) {
        sql.push('\n');
        sql.push_str(&fix);
    }
    let idx = b.add(NewItem {
        kind: ObjectKind::Table,
        section: Section::PreData,
        schema: Some(table.name.schema.clone()),
        name: table.name.name.clone(),
        table: None,
        sql,
    });
    b.table_items.insert(table.oid, idx);
    b.own_object(ObjAddr::relation(table.oid), idx);
    for addr in created_objects(table, part) {
        b.graph.own(addr, idx);
    }
}

/// What `CREATE TABLE` creates besides the relation: its row type and that type's array, inline
/// constraints, identity sequences and the defaults of the columns it declares.
fn created_objects(table: &Table, part: &TableParts<'_>) -> Vec<ObjAddr> {
    let mut created = vec![
        ObjAddr::relation(table.oid),
        ObjAddr::type_(table.row_type),
        ObjAddr::type_(table.row_array_type),
    ];
    created.extend(part.checks.iter().map(|c| ObjAddr::constraint(c.oid)));
    created.extend(part.identities.values().map(|s| ObjAddr::relation(s.oid)));
    let declared = table.columns.iter().filter(|c| is_declared(table, c));
    created.extend(
        declared
            .filter(|c| !part.detached_defaults.contains(&c.name.as_str()))
            .filter_map(|c| c.default.as_ref())
            .map(|d| ObjAddr::default(d.oid)),
    );
    created.retain(|a| a.oid != 0);
    created
}

/// The table's parents as read, `None` for a parent pgark does not dump.
fn parent_tables<'c>(b: &Builder<'c>, table: &Table) -> Vec<Option<&'c Table>> {
    table
        .parents
        .iter()
        .map(|p| b.tables.get(&p.oid).copied())
        .collect()
}

/// Dependencies on parents, `ATTACH PARTITION`, and defaults of columns not declared here.
fn add_table_links(b: &mut Builder<'_>, table: &Table) {
    let Some(&idx) = b.table_items.get(&table.oid) else {
        return;
    };
    add_parent_links(b, table, idx);
    add_inherited_defaults(b, table, idx);
}

/// An inheritance child waits for its parents; a partition is attached once both exist.
fn add_parent_links(b: &mut Builder<'_>, table: &Table, idx: ItemIdx) {
    let parent_items: Vec<_> = table
        .parents
        .iter()
        .filter_map(|p| b.table_items.get(&p.oid).copied())
        .collect();
    if let (Some(bound), Some(parent)) = (&table.partition_bound, table.parents.first()) {
        let attach = b.add(NewItem {
            kind: ObjectKind::TableAttach,
            section: Section::PreData,
            schema: Some(table.name.schema.clone()),
            name: table.name.name.clone(),
            table: Some(idx),
            sql: format!(
                "ALTER TABLE ONLY {} ATTACH PARTITION {} {bound};",
                parent.name.sql(),
                table.name.sql()
            ),
        });
        for p in parent_items {
            b.graph.depend(attach, p);
        }
    } else {
        for p in parent_items {
            b.graph.depend(idx, p);
        }
    }
}

/// `SET DEFAULT` for an inherited column whose default is its own, not a parent's.
fn add_inherited_defaults(b: &mut Builder<'_>, table: &Table, idx: ItemIdx) {
    let parents = parent_tables(b, table);
    for column in table.columns.iter().filter(|c| !is_declared(table, c)) {
        if column.generated != Generated::No || inherits_default(&parents, column) {
            continue;
        }
        add_set_default(b, table, idx, column);
    }
}

/// `SET DEFAULT` for declared columns whose default is part of a dependency loop.
fn add_detached_defaults(b: &mut Builder<'_>, table: &Table) {
    let Some(&idx) = b.table_items.get(&table.oid) else {
        return;
    };
    for column in table.columns.iter().filter(|c| is_declared(table, c)) {
        if b.detached.has_default(column) {
            add_set_default(b, table, idx, column);
        }
    }
}

/// `ALTER TABLE ONLY ... ALTER COLUMN ... SET DEFAULT`, owning the column's default.
fn add_set_default(b: &mut Builder<'_>, table: &Table, idx: ItemIdx, column: &Column) {
    let Some(default) = &column.default else {
        return;
    };
    let item = b.add(NewItem {
        kind: ObjectKind::ColumnDefault,
        section: Section::PreData,
        schema: Some(table.name.schema.clone()),
        name: column.name.clone(),
        table: Some(idx),
        sql: format!(
            "ALTER TABLE ONLY {} ALTER COLUMN {} SET DEFAULT {};",
            table.name.sql(),
            ident(&column.name),
            default.expr
        ),
    });
    b.graph.own(ObjAddr::default(default.oid), item);
}

/// CHECK constraints written inside `CREATE TABLE`: validated ones the table defines itself,
/// and for partitions also inherited ones, which `ATTACH PARTITION` requires to be there already.
/// NOT VALID ones and those in a dependency loop are added after the data (see `constraints`).
pub(super) fn is_inline_check(table: &Table, c: &Constraint, detached: &Detached) -> bool {
    c.kind == ConstraintKind::Check
        && c.validated
        && (c.is_local || table.is_partition())
        && !detached.constraints.contains(&c.oid)
}

pub(super) fn create_table(table: &Table, parts: &TableParts<'_>) -> String {
    let mut elements: Vec<String> = if table.of_type.is_some() {
        typed_column_options(table, parts)
    } else {
        declared_columns(table, parts)
    };
    elements.extend(
        parts
            .checks
            .iter()
            .map(|c| format!("CONSTRAINT {} {}", ident(&c.name), c.definition)),
    );
    let unlogged = if table.unlogged { "UNLOGGED " } else { "" };
    let mut sql = format!("CREATE {unlogged}TABLE {}", table.name.sql());
    if let Some(of_type) = &table.of_type {
        sql.push_str(&format!(" OF {of_type}"));
    }
    if !elements.is_empty() {
        sql.push_str(" (\n    ");
        sql.push_str(&elements.join(",\n    "));
        sql.push_str("\n)");
    } else if table.of_type.is_none() {
        sql.push_str(" ()");
    }
    finish_create_table(table, sql)
}

/// A typed table's columns come from its type: only their defaults and NOT NULLs are written
/// (`name WITH OPTIONS DEFAULT ... NOT NULL`), as `pg_dump` does.
fn typed_column_options(table: &Table, parts: &TableParts<'_>) -> Vec<String> {
    table
        .columns
        .iter()
        .filter_map(|c| {
            let mut options = String::new();
            if let Some(d) = &c.default
                && c.generated == Generated::No
                && !parts.detached_defaults.contains(&c.name.as_str())
            {
                options.push_str(&format!(" DEFAULT {}", d.expr));
            }
            if c.not_null {
                options.push_str(" NOT NULL");
            }
            (!options.is_empty()).then(|| format!("{} WITH OPTIONS{options}", ident(&c.name)))
        })
        .collect()
}

fn declared_columns(table: &Table, parts: &TableParts<'_>) -> Vec<String> {
    table
        .columns
        .iter()
        .filter(|c| is_declared(table, c))
        .map(|c| {
            let identity = parts.identities.get(c.name.as_str()).copied();
            let inherited_generation = parts.inherited_generation.contains(&c.name.as_str());
            let detached_default = parts.detached_defaults.contains(&c.name.as_str());
            let inherited_not_null = inherits_not_null_only(table, c);
            if inherited_generation || detached_default || inherited_not_null {
                let plain = Column {
                    default: if inherited_generation || detached_default {
                        None
                    } else {
                        c.default.clone()
                    },
                    generated: if inherited_generation {
                        Generated::No
                    } else {
                        c.generated
                    },
                    not_null: c.not_null && !inherited_not_null,
                    ..c.clone()
                };
                return column_definition(table, &plain, identity);
            }
            column_definition(table, c, identity)
        })
        .chain(local_not_null_of_inherited(table))
        .collect()
}

/// PostgreSQL 18+: a column the child declares itself whose NOT NULL constraint is only its
/// parent's (`conislocal` false): declaring it NOT NULL would make the constraint the child's own
/// too, and `INHERITS` brings it anyway. (Partitions are created standalone and attached, so they
/// keep theirs.)
fn inherits_not_null_only(table: &Table, c: &Column) -> bool {
    c.not_null && c.not_null_name.is_some() && !c.not_null_local && !table.is_partition()
}

/// PostgreSQL 18+: `CONSTRAINT name NOT NULL column` for an inherited column whose NOT NULL
/// constraint is the child's own: `INHERITS` alone would give it the parent's, by the parent's
/// name, and lose it if the column is ever no longer inherited.
fn local_not_null_of_inherited(table: &Table) -> impl Iterator<Item = String> + '_ {
    table
        .columns
        .iter()
        .filter(|c| !is_declared(table, c) && c.not_null && c.not_null_local)
        .filter_map(|c| {
            let name = c.not_null_name.as_deref()?;
            Some(format!(
                "CONSTRAINT {} NOT NULL {}",
                ident(name),
                ident(&c.name)
            ))
        })
}

/// `INHERITS`, `PARTITION BY`, `USING`, `WITH` and the semicolon.
fn finish_create_table(table: &Table, mut sql: String) -> String {
    if !table.is_partition() && !table.parents.is_empty() {
        let parents: Vec<String> = table.parents.iter().map(|p| p.name.sql()).collect();
        sql.push_str(&format!("\nINHERITS ({})", parents.join(", ")));
    }
    if let Some(key) = &table.partition_key {
        sql.push_str(&format!("\nPARTITION BY {key}"));
    }
    if let Some(am) = &table.access_method {
        sql.push_str(&format!("\nUSING {}", ident(am)));
    }
    let options = storage_options(table);
    if !options.is_empty() {
        sql.push_str(&format!("\nWITH ({})", options.join(", ")));
    }
    sql.push(';');
    sql
}

/// `reloptions` (`fillfactor=70`) and the TOAST table's (`toast.autovacuum_enabled=false`).
fn storage_options(table: &Table) -> Vec<String> {
    let option = |prefix: &str, kv: &String| match kv.split_once('=') {
        Some((k, v)) => format!("{prefix}{}={}", ident(k), literal(v)),
        None => format!("{prefix}{}", ident(kv)),
    };
    let own = table.options.iter().map(|kv| option("", kv));
    let toast = table.toast_options.iter().map(|kv| option("toast.", kv));
    own.chain(toast).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Column, ColumnDefault, Identity, Parent, QualName};

    fn column(name: &str, type_name: &str) -> Column {
        Column {
            name: name.into(),
            type_name: type_name.into(),
            collation: None,
            not_null: false,
            not_null_name: None,
            not_null_local: false,
            default: None,
            generated: Generated::No,
            identity: Identity::No,
            is_local: true,
        }
    }

    fn table(name: &str, columns: Vec<Column>) -> Table {
        Table {
            oid: 1,
            name: QualName::new("public".into(), name.into()),
            partitioned: false,
            unlogged: false,
            access_method: None,
            options: Vec::new(),
            toast_options: Vec::new(),
            of_type: None,
            partition_key: None,
            partition_bound: None,
            parents: Vec::new(),
            columns,
            estimated_bytes: 0,
            row_type: 0,
            row_array_type: 0,
        }
    }

    #[test]
    fn a_table_without_columns_is_still_valid_sql() {
        let sql = create_table(&table("empty", vec![]), &TableParts::default());
        assert_eq!(sql, "CREATE TABLE public.empty ();");
    }

    #[test]
    fn columns_carry_collation_default_generation_and_not_null() {
        let mut name = column("Name", "text");
        name.collation = Some(QualName::new("pg_catalog".into(), "C".into()));
        name.not_null = true;
        name.default = Some(ColumnDefault {
            oid: 2,
            expr: "'x'::text".into(),
        });
        let mut twice = column("twice", "integer");
        twice.generated = Generated::Stored;
        twice.default = Some(ColumnDefault {
            oid: 3,
            expr: "(n * 2)".into(),
        });
        let mut t = table("t", vec![column("n", "integer"), name, twice]);
        t.unlogged = true;
        t.options = vec!["fillfactor=70".into()];
        t.toast_options = vec!["autovacuum_enabled=false".into()];
        assert_eq!(
            create_table(&t, &TableParts::default()),
            "CREATE UNLOGGED TABLE public.t (\n    n integer,\n    \
             \"Name\" text COLLATE pg_catalog.\"C\" DEFAULT 'x'::text NOT NULL,\n    \
             twice integer GENERATED ALWAYS AS ((n * 2)) STORED\n)\n\
             WITH (fillfactor='70', toast.autovacuum_enabled='false');"
        );
    }

    #[test]
    fn inheritance_children_declare_only_their_own_columns() {
        let mut inherited = column("id", "integer");
        inherited.is_local = false;
        inherited.not_null = true;
        let mut t = table("child", vec![inherited, column("extra", "text")]);
        t.parents = vec![Parent {
            oid: 9,
            name: QualName::new("public".into(), "parent".into()),
        }];
        assert_eq!(
            create_table(&t, &TableParts::default()),
            "CREATE TABLE public.child (\n    extra text\n)\nINHERITS (public.parent);"
        );
        // The parent is not dumped here, so the child's NOT NULL must be set explicitly.
        assert_eq!(
            inherited_not_null(&t, &[None]),
            vec!["ALTER TABLE ONLY public.child ALTER COLUMN id SET NOT NULL;"]
        );
    }

    #[test]
    fn partitions_declare_every_column_and_no_inherits() {
        let mut inherited = column("id", "integer");
        inherited.is_local = false;
        let mut t = table("p1", vec![inherited]);
        t.partition_bound = Some("FOR VALUES IN (1)".into());
        t.parents = vec![Parent {
            oid: 9,
            name: QualName::new("public".into(), "p".into()),
        }];
        assert_eq!(
            create_table(&t, &TableParts::default()),
            "CREATE TABLE public.p1 (\n    id integer\n);"
        );
    }
}
