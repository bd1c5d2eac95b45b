//! Catalog object addresses, the way `pg_depend` names objects: the OID of the system catalog
//! holding the object, and the object's OID in it.

/// OIDs of the system catalogs themselves. They are fixed at initdb (`genbki` assigns them from the
/// catalog headers) and have not changed since PostgreSQL 7.x, so they are safe to hard-code;
/// `pg_dump` does the same.
pub(crate) mod class {
    pub const PG_TYPE: u32 = 1247;
    pub const PG_PROC: u32 = 1255;
    pub const PG_CLASS: u32 = 1259;
    pub const PG_ATTRDEF: u32 = 2604;
    pub const PG_CONSTRAINT: u32 = 2606;
    pub const PG_NAMESPACE: u32 = 2615;
    pub const PG_EXTENSION: u32 = 3079;
    pub const PG_REWRITE: u32 = 2618;
    pub const PG_TRIGGER: u32 = 2620;
    pub const PG_EVENT_TRIGGER: u32 = 3466;
    pub const PG_COLLATION: u32 = 3456;
    pub const PG_LARGEOBJECT: u32 = 2613;
    pub const PG_PUBLICATION: u32 = 6104;
    pub const PG_FOREIGN_DATA_WRAPPER: u32 = 2328;
    pub const PG_FOREIGN_SERVER: u32 = 1417;
    pub const PG_OPERATOR: u32 = 2617;
    pub const PG_OPCLASS: u32 = 2616;
    pub const PG_OPFAMILY: u32 = 2753;
    pub const PG_CONVERSION: u32 = 2607;
    pub const PG_TS_DICT: u32 = 3600;
    pub const PG_TS_PARSER: u32 = 3601;
    pub const PG_TS_TEMPLATE: u32 = 3764;
    pub const PG_TS_CONFIG: u32 = 3602;
    pub const PG_STATISTIC_EXT: u32 = 3381;
    pub const PG_DEFAULT_ACL: u32 = 826;
}

/// Objects created by initdb have OIDs below this (`FirstNormalObjectId`); everything a user
/// creates is at or above it, even after OID wraparound.
pub(crate) const FIRST_NORMAL_OID: u32 = 16384;

/// One catalog object, e.g. `(pg_class, 16392)` for a table. Column-level references
/// (`objsubid`) are deliberately not part of it: a column is created by its table's DDL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ObjAddr {
    pub class: u32,
    pub oid: u32,
}

impl ObjAddr {
    pub fn new(class: u32, oid: u32) -> Self {
        ObjAddr { class, oid }
    }

    pub fn relation(oid: u32) -> Self {
        ObjAddr::new(class::PG_CLASS, oid)
    }

    pub fn type_(oid: u32) -> Self {
        ObjAddr::new(class::PG_TYPE, oid)
    }

    pub fn namespace(oid: u32) -> Self {
        ObjAddr::new(class::PG_NAMESPACE, oid)
    }

    pub fn constraint(oid: u32) -> Self {
        ObjAddr::new(class::PG_CONSTRAINT, oid)
    }

    pub fn proc(oid: u32) -> Self {
        ObjAddr::new(class::PG_PROC, oid)
    }

    /// A column default (`pg_attrdef` row).
    pub fn default(oid: u32) -> Self {
        ObjAddr::new(class::PG_ATTRDEF, oid)
    }
}
