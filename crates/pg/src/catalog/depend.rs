//! `pg_depend`: what each user object needs to exist first, and which objects extensions own.

use tokio_postgres::Client;

use super::address::{FIRST_NORMAL_OID, ObjAddr, class};
use super::rows::{get, query};
use crate::PgError;

/// `dependent` needs `referenced` (`pg_depend` row, column numbers dropped).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Depend {
    pub dependent: ObjAddr,
    pub referenced: ObjAddr,
    pub kind: DependKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DependKind {
    /// 'n'
    Normal,
    /// 'a': dropped with the referenced object (also `OWNED BY`).
    Auto,
    /// 'i': part of the referenced object's implementation (array types, identity sequences).
    Internal,
    /// 'P'/'S': partition objects (indexes, constraints) attached to their parent's.
    Partition,
}

/// An object an extension created, and the extension.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExtensionMember {
    pub member: ObjAddr,
    pub extension_oid: u32,
}

/// Dependencies of user-created objects (OID at or above `FirstNormalObjectId`; initdb's own
/// objects are never dumped), except extension membership, which is [`read_extension_members`].
pub(crate) async fn read_depends(client: &Client) -> Result<Vec<Depend>, PgError> {
    let sql = format!(
        "SELECT d.classid, d.objid, d.refclassid, d.refobjid, d.deptype::text AS deptype \
         FROM pg_catalog.pg_depend d \
         WHERE d.objid >= {FIRST_NORMAL_OID} AND d.deptype IN ('n', 'a', 'i', 'P', 'S') \
         ORDER BY 1, 2, 3, 4"
    );
    let what = "dependencies";
    let mut depends = Vec::new();
    for row in query(client, what, &sql, &[]).await? {
        let deptype: String = get(&row, "deptype", what)?;
        let kind = match deptype.as_str() {
            "n" => DependKind::Normal,
            "a" => DependKind::Auto,
            "i" => DependKind::Internal,
            _ => DependKind::Partition,
        };
        depends.push(Depend {
            dependent: ObjAddr::new(get(&row, "classid", what)?, get(&row, "objid", what)?),
            referenced: ObjAddr::new(get(&row, "refclassid", what)?, get(&row, "refobjid", what)?),
            kind,
        });
    }
    Ok(depends)
}

pub(crate) async fn read_extension_members(
    client: &Client,
) -> Result<Vec<ExtensionMember>, PgError> {
    let sql = format!(
        "SELECT d.classid, d.objid, d.refobjid FROM pg_catalog.pg_depend d \
         WHERE d.refclassid = {} AND d.deptype = 'e'",
        class::PG_EXTENSION
    );
    let what = "extension members";
    query(client, what, &sql, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(ExtensionMember {
                member: ObjAddr::new(get(row, "classid", what)?, get(row, "objid", what)?),
                extension_oid: get(row, "refobjid", what)?,
            })
        })
        .collect()
}
