//! Large objects: `lo_create` with the object's own OID (pre-data, as `pg_dump` creates them),
//! so that owners, privileges and comments can follow and columns holding the OIDs still
//! point at them. Their contents are not DDL: the dump stores them as data objects.

use pgark_archive::{ObjectKind, Section};

use super::build::Builder;
use super::graph::NewItem;
use crate::catalog::{ObjAddr, class};

pub(super) fn add_large_objects(b: &mut Builder<'_>) {
    for lo in &b.catalog.large_objects {
        let oid = lo.oid;
        let created = b.add(NewItem {
            kind: ObjectKind::LargeObject,
            section: Section::PreData,
            schema: None,
            name: oid.to_string(),
            table: None,
            sql: format!("SELECT pg_catalog.lo_create('{oid}');"),
        });
        b.own_object(ObjAddr::new(class::PG_LARGEOBJECT, oid), created);
    }
}
