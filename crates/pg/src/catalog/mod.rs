//! Reading the system catalogs into a plain model of the user's schema.
//!
//! Every reader issues a handful of set-based queries (never one per object, except sequence
//! states) valid on PostgreSQL 13 to 18; differences between versions are handled where they
//! occur, keyed on `server_version_num`. Objects in system schemas and objects created by
//! extensions are left out everywhere (see `filter`). Nothing here writes SQL for a target: that is
//! the `ddl` module's job.

mod access;
mod address;
mod casts;
mod collations;
mod column_options;
mod comments;
mod constraints;
mod database;
mod depend;
mod extension_config;
mod filter;
mod foreign;
mod globals;
mod indexes;
mod languages;
mod large_objects;
mod locks;
mod names;
mod opclasses;
mod operators;
mod policies;
mod privileges;
mod publications;
mod roles;
mod routines;
mod rows;
mod schemas;
mod sequences;
mod statistics;
mod tables;
mod text_search;
mod triggers;
mod types;
mod user_objects;
mod views;

use tokio_postgres::Client;

pub use access::{
    RestoreRights, Unreadable, UserTrigger, WriteGuards, installed_extensions, restore_rights,
    unavailable_extensions, unreadable_relations, unsettable_owners, write_guards,
};
pub(crate) use address::{FIRST_NORMAL_OID, ObjAddr, class};
pub(crate) use casts::{Cast, Conversion, PG_CAST};
pub(crate) use collations::Collation;
pub(crate) use column_options::{ColumnOptions, IndexStatistics, ReplicaIdentity};
pub(crate) use comments::Described;
pub(crate) use constraints::{Constraint, ConstraintKind};
pub use database::read_database;
pub(crate) use depend::{Depend, DependKind, ExtensionMember};
pub(crate) use extension_config::ConfigTable;
pub(crate) use foreign::{
    ForeignDataWrapper, ForeignServer, ForeignTable, PG_USER_MAPPING, UserMapping,
};
pub use globals::read_globals;
pub(crate) use indexes::Index;
pub(crate) use languages::{AccessMethod, Language, PG_AM, PG_LANGUAGE, PG_TRANSFORM, Transform};
pub(crate) use large_objects::LargeObject;
pub use locks::{LockTable, lock_table, relations_to_lock};
pub(crate) use names::QualName;
pub(crate) use opclasses::{OpClass, OpFamily, OpMember};
pub(crate) use operators::Operator;
pub(crate) use policies::{Policy, RowSecurity};
pub(crate) use privileges::{Acl, DefaultAcl, Grant, Owned};
pub(crate) use publications::{PG_PUBLICATION_NAMESPACE, PG_PUBLICATION_REL, Publication};
pub(crate) use roles::Role;
pub(crate) use routines::{Aggregate, Routine, RoutineDef};
pub(crate) use schemas::{Extension, Schema};
pub(crate) use sequences::Sequence;
pub(crate) use statistics::Statistics;
pub(crate) use tables::{Column, Generated, Identity, Table};
pub(crate) use text_search::TextSearchObject;
pub(crate) use triggers::{EventTrigger, Rule, Trigger};
pub(crate) use types::{Base, Composite, Domain, DomainCheck, Range, TypeDef, UserType};
pub use user_objects::user_objects;
pub(crate) use views::View;
#[cfg(test)]
pub(crate) use {
    tables::{ColumnDefault, Parent},
    types::Attribute,
};

use crate::PgError;

/// Everything pgark dumps from one database, as read in one snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    pub schemas: Vec<Schema>,
    pub extensions: Vec<Extension>,
    pub extension_members: Vec<ExtensionMember>,
    /// Extensions' configuration tables, whose users' rows are dumped.
    pub extension_tables: Vec<ConfigTable>,
    /// Extensions' configuration sequences, whose state is dumped.
    pub extension_sequences: Vec<Sequence>,
    pub types: Vec<UserType>,
    pub sequences: Vec<Sequence>,
    pub tables: Vec<Table>,
    pub constraints: Vec<Constraint>,
    pub indexes: Vec<Index>,
    pub depends: Vec<Depend>,
    pub collations: Vec<Collation>,
    pub routines: Vec<Routine>,
    pub views: Vec<View>,
    pub triggers: Vec<Trigger>,
    pub rules: Vec<Rule>,
    pub event_triggers: Vec<EventTrigger>,
    pub comments: Vec<Described>,
    pub security_labels: Vec<Described>,
    pub owners: Vec<Owned>,
    pub acls: Vec<Acl>,
    pub default_acls: Vec<DefaultAcl>,
    pub roles: Vec<Role>,
    pub row_security: Vec<RowSecurity>,
    pub policies: Vec<Policy>,
    pub operators: Vec<Operator>,
    pub text_search: Vec<TextSearchObject>,
    pub column_options: Vec<ColumnOptions>,
    pub replica_identities: Vec<ReplicaIdentity>,
    pub index_statistics: Vec<IndexStatistics>,
    pub opfamilies: Vec<OpFamily>,
    pub opclasses: Vec<OpClass>,
    pub casts: Vec<Cast>,
    pub conversions: Vec<Conversion>,
    pub wrappers: Vec<ForeignDataWrapper>,
    pub servers: Vec<ForeignServer>,
    pub user_mappings: Vec<UserMapping>,
    pub foreign_tables: Vec<ForeignTable>,
    pub publications: Vec<Publication>,
    pub statistics: Vec<Statistics>,
    pub languages: Vec<Language>,
    pub transforms: Vec<Transform>,
    pub access_methods: Vec<AccessMethod>,
    pub large_objects: Vec<LargeObject>,
}

/// Settings that make the server print expressions, types and constants the same way whatever
/// the session's defaults: names qualified unless in `pg_catalog` (empty `search_path`), dates in
/// ISO order (a partition bound printed `01/02/2024` would be read back differently under another
/// `DateStyle`), and floats exactly.
const SESSION_SETTINGS: [(&str, &str); 4] = [
    ("search_path", ""),
    ("DateStyle", "ISO, YMD"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "3"),
];

/// Reads the catalog inside the caller's transaction, whose snapshot it sees. The settings above
/// are set for the rest of that transaction.
pub(crate) async fn read(client: &Client) -> Result<Catalog, PgError> {
    prepare_session(client).await?;
    let server_version_num = server_version_num(client).await?;
    let tables = tables::read_tables(client).await?;
    let table_oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
    let views = views::read_views(client).await?;
    let matview_oids: Vec<u32> = views
        .iter()
        .filter(|v| v.materialized)
        .map(|v| v.oid)
        .collect();
    let indexed: Vec<u32> = table_oids.iter().chain(&matview_oids).copied().collect();
    let relations: Vec<u32> = table_oids
        .iter()
        .chain(views.iter().map(|v| &v.oid))
        .copied()
        .collect();
    let (opfamilies, opclasses) = opclasses::read_opfamilies(client).await?;
    Ok(Catalog {
        opfamilies,
        opclasses,
        casts: casts::read_casts(client).await?,
        conversions: casts::read_conversions(client).await?,
        wrappers: foreign::read_wrappers(client).await?,
        servers: foreign::read_servers(client).await?,
        user_mappings: foreign::read_user_mappings(client).await?,
        foreign_tables: foreign::read_foreign_tables(client).await?,
        publications: publications::read_publications(client, server_version_num).await?,
        statistics: statistics::read_statistics(client, server_version_num).await?,
        languages: languages::read_languages(client).await?,
        transforms: languages::read_transforms(client).await?,
        access_methods: languages::read_access_methods(client).await?,
        large_objects: large_objects::read_large_objects(client).await?,
        schemas: schemas::read_schemas(client).await?,
        extensions: schemas::read_extensions(client).await?,
        extension_members: depend::read_extension_members(client).await?,
        extension_tables: extension_config::read_config_tables(client).await?,
        extension_sequences: sequences::read_extension_sequences(client).await?,
        types: types::read_types(client, server_version_num).await?,
        sequences: sequences::read_sequences(client).await?,
        constraints: constraints::read_constraints(client, &table_oids).await?,
        indexes: indexes::read_indexes(client, &indexed).await?,
        depends: depend::read_depends(client).await?,
        collations: collations::read_collations(client, server_version_num).await?,
        routines: routines::read_routines(client, server_version_num).await?,
        triggers: triggers::read_triggers(client, &relations).await?,
        rules: triggers::read_rules(client, &relations).await?,
        event_triggers: triggers::read_event_triggers(client).await?,
        comments: comments::read_comments(client).await?,
        security_labels: comments::read_security_labels(client).await?,
        owners: privileges::read_owners(client).await?,
        acls: privileges::read_acls(client).await?,
        default_acls: privileges::read_default_acls(client).await?,
        roles: roles::read_roles(client).await?,
        row_security: policies::read_row_security(client, &table_oids).await?,
        policies: policies::read_policies(client, &table_oids).await?,
        operators: operators::read_operators(client).await?,
        text_search: text_search::read_text_search(client).await?,
        column_options: column_options::read_column_options(client, &indexed, server_version_num)
            .await?,
        replica_identities: column_options::read_replica_identities(client, &table_oids).await?,
        index_statistics: column_options::read_index_statistics(client, &indexed).await?,
        views,
        tables,
    })
}

/// Applies [`SESSION_SETTINGS`] for the current transaction and checks that they held: outside a
/// transaction block they would vanish after the statement, and the schema would be read
/// without a consistent snapshot anyway.
async fn prepare_session(client: &Client) -> Result<(), PgError> {
    for (name, value) in SESSION_SETTINGS {
        client
            .query_one(
                "SELECT pg_catalog.set_config($1, $2, true)",
                &[&name, &value],
            )
            .await
            .map_err(|e| PgError::query(format!("setting {name} for reading the schema"), e))?;
    }
    let row = client
        .query_one(
            "SELECT pg_catalog.current_setting('search_path') AS path",
            &[],
        )
        .await
        .map_err(|e| PgError::query("checking the session settings", e))?;
    let path: String = rows::get(&row, "path", "the search path")?;
    if path != "\"\"" && !path.is_empty() {
        return Err(PgError::Catalog {
            reason: "the schema must be read inside a transaction block (BEGIN ISOLATION LEVEL \
                     REPEATABLE READ), but the connection is not in one"
                .to_owned(),
        });
    }
    Ok(())
}

/// The server's `server_version_num` (e.g. 150018), for SQL that differs by version.
pub async fn server_version_num(client: &Client) -> Result<i32, PgError> {
    let row = client
        .query_one(
            "SELECT pg_catalog.current_setting('server_version_num')::int4 AS v",
            &[],
        )
        .await
        .map_err(|e| PgError::query("reading server_version_num", e))?;
    rows::get(&row, "v", "server_version_num")
}
