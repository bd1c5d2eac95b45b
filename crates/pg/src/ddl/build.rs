//! Building every item from the catalog: one pass per kind of object, then the catalog's
//! dependencies, then the order.

use std::collections::{HashMap, HashSet};

use pgark_archive::{ColumnEntry, PartitionRef, PartitionedEntry};

use super::graph::{Graph, ItemIdx, NewItem};
use super::order::order;
use super::target::{RoutineUse, routine_identity};
use super::{
    SchemaDump, TableData, collations, comments, constraints, depend, indexes, privileges,
    routines, schemas, sequences, tables, triggers, types, views,
};
use crate::PgError;
use crate::catalog::{Catalog, Column, Generated, ObjAddr, QualName, Routine, Table, class};

/// The graph being built and the lookups the passes share.
#[derive(Debug)]
pub(super) struct Builder<'c> {
    pub catalog: &'c Catalog,
    pub graph: Graph,
    /// The item creating each schema, by name (`public` included, though it creates nothing).
    schema_items: HashMap<&'c str, ItemIdx>,
    /// The item creating each table, by OID.
    pub table_items: HashMap<u32, ItemIdx>,
    /// The item standing for each extension configuration table, by OID (see
    /// `schemas::add_extension_config`).
    pub config_table_items: HashMap<u32, ItemIdx>,
    pub tables: HashMap<u32, &'c Table>,
    /// `ALTER INDEX parent ATTACH PARTITION child` items by parent index OID, with the child's OID.
    pub index_attaches: HashMap<u32, Vec<(u32, ItemIdx)>>,
    /// The item whose main job is creating each object (not objects it creates on the side,
    /// such as a table's row type): what comments, owners and privileges attach to.
    pub objects: HashMap<ObjAddr, ItemIdx>,
    /// Qualified names of tables, views and materialized views, by OID.
    pub relation_names: HashMap<u32, QualName>,
    /// A base type's I/O functions, by function OID: the type's OID and its shell type's item,
    /// which the function depends on instead of the finished type.
    pub shell_types: HashMap<u32, (u32, ItemIdx)>,
    /// Plain views' placeholder and real definitions, for breaking cycles.
    pub view_splits: super::cycles::ViewSplits,
    /// `ALTER ... OWNER TO` items by object.
    pub owner_items: HashMap<ObjAddr, ItemIdx>,
    /// `REFRESH MATERIALIZED VIEW` items by the view's OID.
    pub refreshes: HashMap<u32, ItemIdx>,
    /// Constraints and defaults written as statements of their own (see [`Detached`]).
    pub detached: &'c Detached,
    /// Functions, procedures and aggregates by OID.
    routines: HashMap<u32, &'c Routine>,
}

/// CHECK constraints (of tables and domains) and column defaults that would normally be written
/// inside their table's or domain's `CREATE`, but take part in a dependency loop through it (a
/// CHECK calling a function that takes the table's row type): they are added by a statement of
/// their own once what they need exists, as `pg_dump` does.
#[derive(Debug, Default)]
pub(super) struct Detached {
    /// `pg_constraint` OIDs.
    pub constraints: HashSet<u32>,
    /// `pg_attrdef` OIDs.
    pub defaults: HashSet<u32>,
}

impl Detached {
    /// Whether `column`'s default is set by a statement of its own.
    pub fn has_default(&self, column: &Column) -> bool {
        column
            .default
            .as_ref()
            .is_some_and(|d| self.defaults.contains(&d.oid))
    }
}

impl<'c> Builder<'c> {
    fn new(catalog: &'c Catalog, detached: &'c Detached) -> Self {
        Builder {
            catalog,
            graph: Graph::default(),
            schema_items: HashMap::new(),
            table_items: HashMap::new(),
            config_table_items: HashMap::new(),
            tables: catalog.tables.iter().map(|t| (t.oid, t)).collect(),
            index_attaches: HashMap::new(),
            objects: HashMap::new(),
            relation_names: catalog
                .tables
                .iter()
                .map(|t| (t.oid, t.name.clone()))
                .chain(catalog.views.iter().map(|v| (v.oid, v.name.clone())))
                .collect(),
            shell_types: HashMap::new(),
            refreshes: HashMap::new(),
            owner_items: HashMap::new(),
            view_splits: HashMap::new(),
            detached,
            routines: catalog.routines.iter().map(|r| (r.oid, r)).collect(),
        }
    }

    /// Adds an item, after the schema named by its `schema` when that schema is dumped.
    pub fn add(&mut self, item: NewItem) -> ItemIdx {
        let schema = item.schema.clone();
        let idx = self.graph.add(item);
        if let Some(on) = schema.and_then(|s| self.schema_items.get(s.as_str()).copied()) {
            self.graph.depend(idx, on);
        }
        idx
    }

    pub fn add_schema_item(&mut self, name: &'c str, item: NewItem) -> ItemIdx {
        let idx = self.graph.add(item);
        self.schema_items.insert(name, idx);
        idx
    }

    pub fn schema_item(&self, name: &str) -> Option<ItemIdx> {
        self.schema_items.get(name).copied()
    }

    /// The identity statements name the object at `addr` by: the server's (`pg_identify_object`,
    /// given as `identity`) except for routines, whose forms it gets wrong for some statements
    /// (see [`routine_identity`]).
    pub fn identity(&self, addr: ObjAddr, identity: &str, usage: RoutineUse) -> String {
        (addr.class == class::PG_PROC)
            .then(|| self.routines.get(&addr.oid))
            .flatten()
            .and_then(|r| routine_identity(r, usage))
            .unwrap_or_else(|| identity.to_owned())
    }

    /// Records that `item` creates `addr` as its main object (see [`Builder::objects`]).
    pub fn own_object(&mut self, addr: ObjAddr, item: ItemIdx) {
        self.graph.own(addr, item);
        self.objects.entry(addr).or_insert(item);
    }
}

pub(super) fn build(catalog: &Catalog) -> Result<SchemaDump, PgError> {
    // Each round detaches at least one more constraint or default, or ends.
    let mut detached = Detached::default();
    loop {
        let b = build_graph(catalog, &detached);
        let more = super::cycles::inline_parts_in_loops(&b);
        if more.constraints.is_empty() && more.defaults.is_empty() {
            return finish(b);
        }
        detached.constraints.extend(more.constraints);
        detached.defaults.extend(more.defaults);
    }
}

fn build_graph<'c>(catalog: &'c Catalog, detached: &'c Detached) -> Builder<'c> {
    let mut b = Builder::new(catalog, detached);
    schemas::add_schemas(&mut b);
    schemas::add_extensions(&mut b);
    schemas::add_extension_config(&mut b);
    super::languages::add_languages(&mut b);
    collations::add_collations(&mut b);
    types::add_types(&mut b);
    routines::add_routines(&mut b);
    super::operators::add_operators(&mut b);
    super::opclasses::add_opclasses(&mut b);
    super::casts::add_casts(&mut b);
    super::foreign::add_foreign(&mut b);
    super::text_search::add_text_search(&mut b);
    sequences::add_sequences(&mut b);
    tables::add_tables(&mut b);
    super::foreign::add_foreign_tables(&mut b);
    views::add_views(&mut b);
    super::large_objects::add_large_objects(&mut b);
    sequences::add_sequence_links(&mut b);
    constraints::add_constraints(&mut b);
    indexes::add_indexes(&mut b);
    super::column_options::add_column_options(&mut b);
    super::statistics::add_statistics(&mut b);
    triggers::add_triggers(&mut b);
    triggers::add_rules(&mut b);
    super::policies::add_row_security(&mut b);
    super::publications::add_publications(&mut b);
    triggers::add_event_triggers(&mut b);
    depend::add_catalog_dependencies(&mut b);
    views::add_refresh_order(&mut b);
    comments::add_comments(&mut b);
    privileges::add_owners(&mut b);
    privileges::add_acls(&mut b);
    privileges::order_owners_after_schema_grants(&mut b);
    privileges::add_default_acls(&mut b);
    triggers::event_triggers_last(&mut b);
    super::cycles::break_cycles(&mut b.graph, &b.view_splits);
    b
}

fn finish(b: Builder<'_>) -> Result<SchemaDump, PgError> {
    let ordered = order(&b.graph)?;
    let tables = table_data(&b, &ordered.ids);
    let roles = privileges::roles(&b);
    let partitioned = partition_tree(&b, &ordered.ids);
    Ok(SchemaDump {
        items: ordered.items,
        tables,
        roles,
        warnings: ordered.warnings,
        partitioned,
    })
}

/// Each partitioned table with its direct partitions and their bounds.
fn partition_tree(b: &Builder<'_>, ids: &[u32]) -> Vec<PartitionedEntry> {
    let mut partitions: HashMap<u32, Vec<PartitionRef>> = HashMap::new();
    for t in &b.catalog.tables {
        if let (Some(bound), [parent]) = (&t.partition_bound, t.parents.as_slice()) {
            partitions
                .entry(parent.oid)
                .or_default()
                .push(PartitionRef {
                    schema: t.name.schema.clone(),
                    name: t.name.name.clone(),
                    bound: bound.clone(),
                });
        }
    }
    b.catalog
        .tables
        .iter()
        .filter(|t| t.partitioned)
        .filter_map(|t| {
            Some(PartitionedEntry {
                schema: t.name.schema.clone(),
                name: t.name.name.clone(),
                item: ids[*b.table_items.get(&t.oid)?],
                partition_key: t.partition_key.clone().unwrap_or_default(),
                columns: copy_columns(t),
                partitions: partitions.remove(&t.oid).unwrap_or_default(),
            })
        })
        .collect()
}

/// The columns rows are copied with: not generated, in `attnum` order.
fn copy_columns(t: &Table) -> Vec<ColumnEntry> {
    t.columns
        .iter()
        .filter(|c| c.generated == Generated::No)
        .map(|c| ColumnEntry {
            name: c.name.clone(),
            type_name: c.type_name.clone(),
        })
        .collect()
}

/// The tables holding rows, with the final id of the item creating each; extensions'
/// configuration tables last, with their filters.
fn table_data(b: &Builder<'_>, ids: &[u32]) -> Vec<TableData> {
    let user = b
        .catalog
        .tables
        .iter()
        .filter(|t| !t.partitioned)
        .filter_map(|t| Some(rows_of(t, ids[*b.table_items.get(&t.oid)?], None)));
    let config = b.catalog.extension_tables.iter().filter_map(|c| {
        let item = ids[*b.config_table_items.get(&c.table.oid)?];
        Some(rows_of(&c.table, item, Some(c.condition.clone())))
    });
    user.chain(config).collect()
}

fn rows_of(t: &Table, item: u32, row_filter: Option<String>) -> TableData {
    TableData {
        item,
        oid: t.oid,
        schema: t.name.schema.clone(),
        name: t.name.name.clone(),
        columns: copy_columns(t),
        estimated_bytes: t.estimated_bytes,
        row_filter,
    }
}
