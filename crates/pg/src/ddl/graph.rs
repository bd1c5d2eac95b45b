//! The items being built and what they depend on, before they are ordered and numbered.
//!
//! Catalog objects are mapped onto the items that create them (`own`), so that a `pg_depend` row
//! between two objects becomes an edge between two items whatever created them: a column default
//! belongs to its table's `CREATE TABLE`, an array type to its element type's `CREATE TYPE`, an
//! extension's member objects to its `CREATE EXTENSION`.

use std::collections::{BTreeSet, HashMap};

use pgark_archive::{ConstraintViaIndex, ObjectKind, Section};

use crate::catalog::ObjAddr;

/// An item's position in the graph (not its final id).
pub(crate) type ItemIdx = usize;

/// An item as built, before ordering gives it an id.
#[derive(Debug, Clone)]
pub(crate) struct NewItem {
    pub kind: ObjectKind,
    pub section: Section,
    pub schema: Option<String>,
    pub name: String,
    /// The item creating the table this one belongs to.
    pub table: Option<ItemIdx>,
    pub sql: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub item: NewItem,
    pub deps: BTreeSet<ItemIdx>,
    /// Roles the item's SQL names (owners, grantees), which must exist in a target.
    pub roles: Vec<String>,
    /// A primary key or unique constraint's `sql` as an index build and an attach.
    pub via_index: Option<ConstraintViaIndex>,
}

#[derive(Debug, Default)]
pub(crate) struct Graph {
    pub nodes: Vec<Node>,
    owners: HashMap<ObjAddr, ItemIdx>,
}

impl Graph {
    pub fn add(&mut self, item: NewItem) -> ItemIdx {
        let deps = item.table.into_iter().collect();
        self.nodes.push(Node {
            item,
            deps,
            roles: Vec::new(),
            via_index: None,
        });
        self.nodes.len() - 1
    }

    /// Records that `item` creates the catalog object `addr`. The first owner wins: an object
    /// is created once, later items only alter it.
    pub fn own(&mut self, addr: ObjAddr, item: ItemIdx) {
        self.owners.entry(addr).or_insert(item);
    }

    pub fn owner(&self, addr: ObjAddr) -> Option<ItemIdx> {
        self.owners.get(&addr).copied()
    }

    /// `item` must run after `on`. Self-dependencies (two objects created by one item) vanish.
    pub fn depend(&mut self, item: ItemIdx, on: ItemIdx) {
        if item != on {
            self.nodes[item].deps.insert(on);
        }
    }

    /// `item` must run after whatever creates `addr`, if that is an item at all (built-in and
    /// not-yet-dumped objects are not).
    pub fn depend_on(&mut self, item: ItemIdx, addr: ObjAddr) {
        if let Some(on) = self.owner(addr) {
            self.depend(item, on);
        }
    }
}
