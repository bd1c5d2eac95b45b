//! Which catalog objects are the user's: the SQL conditions every reader shares, so that the
//! relations locked, the schema read and the emptiness check all agree.
//!
//! The arguments are fixed SQL fragments chosen by this crate (aliases and catalog OIDs), never
//! names from the server.

/// The namespace aliased `n` is a user schema: not `pg_catalog`, `pg_toast`, a temporary schema
/// (`pg_temp_N`, `pg_toast_temp_N`) — users cannot create `pg_`-prefixed schemas — nor
/// `information_schema`.
pub(crate) const USER_NAMESPACE: &str = "n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'";

/// The object `oid_expr` in catalog `class_oid` is not a member of an extension: members are
/// created by `CREATE EXTENSION`, never by us.
pub(crate) fn not_extension_member(class_oid: u32, oid_expr: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend x WHERE x.classid = {class_oid} \
         AND x.objid = {oid_expr} AND x.deptype = 'e')"
    )
}

/// The object `oid_expr` in catalog `class_oid` is a member of an extension.
fn extension_member(class_oid: u32, oid_expr: &str) -> String {
    format!("NOT {}", not_extension_member(class_oid, oid_expr))
}

/// The relation aliased `c` is an extension's configuration table or sequence
/// (`pg_extension_config_dump`, of kind `relkind`): `CREATE EXTENSION` creates it, but the rows
/// users add to it, and the sequence's state, belong to the dump.
pub(crate) fn extension_config(relkind: char) -> String {
    format!(
        "c.relkind = '{relkind}' AND c.oid IN (SELECT x.oid FROM pg_catalog.pg_extension e \
         CROSS JOIN LATERAL pg_catalog.unnest(e.extconfig) AS x(oid)) AND {}",
        extension_member(super::address::class::PG_CLASS, "c.oid")
    )
}

/// The relation aliased `c` (joined to namespace `n`) is a user table whose data and DDL pgark
/// dumps: ordinary or partitioned, in a user schema, not an extension member.
pub(crate) fn user_table() -> String {
    format!(
        "c.relkind IN ('r', 'p') AND {USER_NAMESPACE} AND {}",
        not_extension_member(super::address::class::PG_CLASS, "c.oid")
    )
}
