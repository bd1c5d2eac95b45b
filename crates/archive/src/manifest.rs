//! The manifest: everything a reader needs to check and restore a backup, as JSON.
//!
//! On disk the manifest's first member is its own checksum: the file starts with the two lines
//! `{` and `  "manifest_sha256": "<hex>",`, and the hex is the SHA-256 of every byte after the
//! second line. So `tail -n +3 manifest.json | sha256sum` reproduces it, and `jq` reads the file as
//! an ordinary object.

use crate::key_summary::{KeyFields, KeyOrder};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ArchiveError, sha256_hex};

/// Written into every manifest; readers refuse other formats.
pub const FORMAT_NAME: &str = "pgark-backup";

/// Bumped on any change a reader of the previous version would misread. Version 2 split the
/// manifest into a head, a catalog and a chunk index (see `catalog`); version 1 backups are
/// still read.
pub const FORMAT_VERSION: u32 = 2;

/// The oldest format version this pgark reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;

const PGARK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The largest chunk size a dump may be asked for (and a manifest may record).
pub const MAX_CHUNK_SIZE: u64 = 1 << 30;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub pgark_version: String,
    pub backup_id: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: String,
    pub source: SourceInfo,
    pub settings: DumpSettings,
    /// DDL in a valid execution order; `deps` make the partial order explicit for parallel restore.
    pub schema: Vec<DdlItem>,
    pub tables: Vec<TableEntry>,
    /// The roles the schema names (owners, grantees, policy and mapping roles), for checking a
    /// target before restoring and for `--create-roles`. Never passwords.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RoleEntry>,
    /// The large objects' contents, when the database has large objects (each is created by
    /// its `large_object` schema item; this holds what goes into them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub large_objects: Option<LargeObjectsEntry>,
    /// What the dump completed despite, for whoever restores it: dependency loops in the schema
    /// that were broken at a guess, naming the items a restore may fail at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The partitioned tables, which hold no rows themselves: their partitions (in `tables`, or
    /// partitioned again here) do. Lets a table be selected by its parent's name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitioned: Vec<PartitionedEntry>,
    /// Present when this backup is a surgical restore's before-image: the target rows it was
    /// about to overwrite or delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_image: Option<BeforeImageInfo>,
    /// The database's own properties (owner, locale, settings, privileges, comment), which a
    /// restore that creates the database gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseEntry>,
    /// Present when this is a globals backup (`dump --all`): the instance's roles, memberships
    /// and tablespaces, and no schema or tables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub globals: Option<GlobalsEntry>,
    /// Format 2: the chunk index object the tables' chunk lists are loaded from (from the head).
    #[serde(skip)]
    pub chunk_index: Option<crate::catalog::ObjectRef>,
    /// Format 3: the head's record of the backup's encryption.
    #[serde(skip)]
    pub encryption: Option<crate::seal::EncryptionInfo>,
    /// Format 3: the data key, once unwrapped (a reader), or to seal with (the writer).
    #[serde(skip)]
    pub data_key: Option<std::sync::Arc<crate::seal::DataKey>>,
}

/// A database's properties, as `CREATE DATABASE` and `ALTER DATABASE` set them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseEntry {
    pub name: String,
    pub owner: String,
    /// `LC_COLLATE` and `LC_CTYPE` (of the libc provider, or the fallback of another).
    pub collate: String,
    pub ctype: String,
    /// `libc`, `icu` or `builtin` (PostgreSQL 15+; `libc` before).
    pub locale_provider: String,
    /// The ICU or builtin locale, when that is the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// The ICU collation rules (PostgreSQL 16+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icu_rules: Option<String>,
    /// `-1` for no limit.
    pub connection_limit: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Privileges the database's defaults (`acldefault`) have and it does not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revokes: Vec<DatabaseGrant>,
    /// Privileges it has beyond the defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<DatabaseGrant>,
    /// `ALTER DATABASE ... SET`, each as the catalog has it (`name=value`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<String>,
    /// `ALTER ROLE ... IN DATABASE ... SET`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role_settings: Vec<RoleSetting>,
}

/// What an instance holds beside its databases, as far as the dumping role may read it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalsEntry {
    pub roles: Vec<GlobalRole>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub memberships: Vec<Membership>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tablespaces: Vec<TablespaceEntry>,
}

/// A role with its attributes, comment and settings (from `pg_roles`, never `pg_authid`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalRole {
    pub name: String,
    /// `CREATE ROLE` attribute keywords, every one stated: `NOSUPERUSER`, `LOGIN`,
    /// `CONNECTION LIMIT 3`, `VALID UNTIL '...'`.
    pub attributes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// `ALTER ROLE ... SET`, each as the catalog has it (`name=value`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<String>,
    /// The password hash (SCRAM or MD5), only when asked for and the source exposes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
}

/// `GRANT role TO member`, with its options (INHERIT and SET from PostgreSQL 16).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub role: String,
    pub member: String,
    pub admin_option: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inherit_option: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_option: Option<bool>,
}

/// A tablespace other than `pg_default` and `pg_global`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TablespaceEntry {
    pub name: String,
    pub owner: String,
    pub location: String,
    /// `seq_page_cost=2`, ... as the catalog has them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// One privilege on a database.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DatabaseGrant {
    /// A role, or `""` for PUBLIC.
    pub grantee: String,
    /// `CONNECT`, `CREATE` or `TEMPORARY`.
    pub privilege: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub grantable: bool,
}

/// A setting of one role (in one database, or everywhere), as the catalog has it: `name=value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleSetting {
    pub role: String,
    pub setting: String,
}

/// What a before-image belongs to and what its undo puts back besides rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeforeImageInfo {
    /// The id of the backup whose rows the restore wrote; the before-image goes with it.
    pub of_backup: String,
    /// The sequences owned by the restored tables, as they were before the restore moved them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequences: Vec<SequenceValue>,
}

/// A sequence's state: `setval(sequence, last_value, is_called)` puts it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceValue {
    /// Schema-qualified and quoted, as `regclass` prints it.
    pub sequence: String,
    pub last_value: i64,
    pub is_called: bool,
}

/// A partitioned table and its direct partitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionedEntry {
    pub schema: String,
    pub name: String,
    /// The id of the [`DdlItem`] that creates the table.
    pub item: u32,
    /// `RANGE (created_at)`, `LIST (region)`, `HASH (id)`, as `pg_get_partkeydef` gives it.
    pub partition_key: String,
    /// The columns rows are written with (not generated), in the parent's order.
    pub columns: Vec<ColumnEntry>,
    pub partitions: Vec<PartitionRef>,
}

/// One partition of a [`PartitionedEntry`]: a table with rows (in `Manifest::tables`) or a
/// partitioned table itself (in `Manifest::partitioned`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionRef {
    pub schema: String,
    pub name: String,
    /// `FOR VALUES ...` or `DEFAULT`.
    pub bound: String,
}

/// Large objects' contents: chunks whose payloads are record streams (`oid u32 | offset u64 |
/// length u32 | bytes`, big-endian, see the `large_objects` module), one record per piece.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LargeObjectsEntry {
    /// How many large objects there are, empty ones included.
    pub count: u64,
    /// The total size of their contents.
    pub content_bytes: u64,
    /// The records' uncompressed bytes (contents plus a 16-byte header per record).
    pub raw_bytes: u64,
    /// Compressed bytes as stored.
    pub stored_bytes: u64,
    /// Pieces are read at multiples of this size and are this long, except each object's last.
    pub piece_size: u32,
    /// Order-independent digest of the records (see `ContentDigest`), 32 hex digits.
    pub content_digest: String,
    /// In each, `rows` counts records.
    pub chunks: Vec<ChunkEntry>,
}

/// A role as the source knew it: attributes and memberships, never its password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleEntry {
    pub name: String,
    /// `CREATE ROLE` attribute keywords as the source had them, e.g. `LOGIN`, `CREATEDB`,
    /// `CONNECTION LIMIT 3`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<String>,
    /// Roles this role is a member of (among the recorded ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub member_of: Vec<String>,
}

/// Where the data came from and the snapshot it was read in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// The source connection, redacted (never a password).
    pub connection: String,
    pub database: String,
    /// `server_version`, e.g. `15.18 (Debian 15.18-0+deb12u1)`.
    pub server_version: String,
    pub server_version_num: u32,
    pub encoding: String,
    /// The exported snapshot every worker read from.
    pub snapshot_id: String,
    /// The server's clock when the snapshot was taken, RFC 3339.
    pub snapshot_time: String,
}

impl SourceInfo {
    /// What an encrypted backup's head shows of its source: the server's version and encoding
    /// and the snapshot's time, nothing that names the host, the database or the role.
    pub fn redacted(&self) -> SourceInfo {
        SourceInfo {
            connection: String::new(),
            database: String::new(),
            server_version: self.server_version.clone(),
            server_version_num: self.server_version_num,
            encoding: self.encoding.clone(),
            snapshot_id: String::new(),
            snapshot_time: self.snapshot_time.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DumpSettings {
    pub jobs: u32,
    /// Target uncompressed bytes per chunk; a chunk ends at the first row boundary past it.
    pub chunk_size: u64,
    pub compress_level: i32,
    /// The S3 Object Lock every object of the backup was written with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<ObjectLockRecord>,
}

/// The Object Lock a backup's objects were written with, as recorded when it was taken (the
/// store's own record, per object, is what S3 enforces).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLockRecord {
    /// `governance` or `compliance`, with a retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Until when the retention holds (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_until: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legal_hold: bool,
}

/// Which phase of a restore an item belongs to, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Section {
    PreData,
    Data,
    PostData,
}

/// What kind of object a DDL item creates or changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Schema,
    Extension,
    /// An extension's configuration table: created by `CREATE EXTENSION`, its item only checks
    /// that it exists; the users' rows in it are the table's data.
    ExtensionTable,
    Type,
    Domain,
    Function,
    Sequence,
    Table,
    /// `ALTER TABLE parent ATTACH PARTITION child`.
    TableAttach,
    /// A column default set after the table exists (e.g. one that calls a later function).
    ColumnDefault,
    /// `ALTER SEQUENCE ... OWNED BY`.
    SequenceOwnedBy,
    /// `setval`: a sequence's current value, in the data section.
    SequenceSet,
    /// Primary key, unique, exclusion and check constraints added after the data.
    Constraint,
    ForeignKey,
    Index,
    /// `ALTER INDEX parent ATTACH PARTITION child`.
    IndexAttach,
    /// `ALTER TABLE ... CLUSTER ON`.
    ClusterOn,
    Collation,
    /// `CREATE TYPE name;`: a base type's placeholder, so its I/O functions can be created.
    ShellType,
    Procedure,
    Aggregate,
    View,
    MaterializedView,
    /// `REFRESH MATERIALIZED VIEW` of a view that was populated in the source (post-data).
    MaterializedViewData,
    Trigger,
    Rule,
    EventTrigger,
    /// Column options set after `CREATE TABLE`: statistics targets, storage, compression,
    /// replica identity, row security.
    TableOption,
    Policy,
    Publication,
    /// `ALTER PUBLICATION ... ADD TABLE` / `ADD TABLES IN SCHEMA`.
    PublicationMember,
    ForeignDataWrapper,
    ForeignServer,
    UserMapping,
    ForeignTable,
    Operator,
    OperatorClass,
    OperatorFamily,
    Cast,
    Conversion,
    TextSearchParser,
    TextSearchTemplate,
    TextSearchDictionary,
    TextSearchConfiguration,
    /// `CREATE STATISTICS` (post-data).
    Statistics,
    /// `CREATE ACCESS METHOD`.
    AccessMethod,
    /// `CREATE LANGUAGE` (procedural languages not created by an extension).
    Language,
    /// `CREATE TRANSFORM`.
    Transform,
    /// `SELECT lo_create(oid)` (pre-data); the contents are data objects (`large_objects`).
    LargeObject,
    Comment,
    SecurityLabel,
    /// `ALTER ... OWNER TO`.
    Owner,
    /// `GRANT`/`REVOKE` on an object.
    Acl,
    /// `ALTER DEFAULT PRIVILEGES`.
    DefaultAcl,
}

/// How messages name a kind of item: `index`, `materialized view data`.
pub fn kind_word(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Schema => "schema",
        ObjectKind::Extension => "extension",
        ObjectKind::ExtensionTable => "extension configuration table",
        ObjectKind::Type => "type",
        ObjectKind::Domain => "domain",
        ObjectKind::Function => "function",
        ObjectKind::Sequence => "sequence",
        ObjectKind::Table => "table",
        ObjectKind::TableAttach => "partition attachment",
        ObjectKind::ColumnDefault => "column default",
        ObjectKind::SequenceOwnedBy => "sequence ownership",
        ObjectKind::SequenceSet => "sequence value",
        ObjectKind::Constraint => "constraint",
        ObjectKind::ForeignKey => "foreign key",
        ObjectKind::Index => "index",
        ObjectKind::IndexAttach => "index attachment",
        ObjectKind::ClusterOn => "cluster index",
        ObjectKind::Collation => "collation",
        ObjectKind::ShellType => "shell type",
        ObjectKind::Procedure => "procedure",
        ObjectKind::Aggregate => "aggregate",
        ObjectKind::View => "view",
        ObjectKind::MaterializedView => "materialized view",
        ObjectKind::MaterializedViewData => "materialized view data",
        ObjectKind::Trigger => "trigger",
        ObjectKind::Rule => "rule",
        ObjectKind::EventTrigger => "event trigger",
        ObjectKind::TableOption => "table option",
        ObjectKind::Policy => "policy",
        ObjectKind::Publication => "publication",
        ObjectKind::PublicationMember => "publication member",
        ObjectKind::ForeignDataWrapper => "foreign-data wrapper",
        ObjectKind::ForeignServer => "server",
        ObjectKind::UserMapping => "user mapping",
        ObjectKind::ForeignTable => "foreign table",
        ObjectKind::Operator => "operator",
        ObjectKind::OperatorClass => "operator class",
        ObjectKind::OperatorFamily => "operator family",
        ObjectKind::Cast => "cast",
        ObjectKind::Conversion => "conversion",
        ObjectKind::TextSearchParser => "text search parser",
        ObjectKind::TextSearchTemplate => "text search template",
        ObjectKind::TextSearchDictionary => "text search dictionary",
        ObjectKind::TextSearchConfiguration => "text search configuration",
        ObjectKind::Statistics => "statistics object",
        ObjectKind::AccessMethod => "access method",
        ObjectKind::Language => "language",
        ObjectKind::Transform => "transform",
        ObjectKind::LargeObject => "large object",
        ObjectKind::Comment => "comment",
        ObjectKind::SecurityLabel => "security label",
        ObjectKind::Owner => "owner",
        ObjectKind::Acl => "privileges",
        ObjectKind::DefaultAcl => "default privileges",
    }
}

/// One DDL statement (or a few that belong together) and what it depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DdlItem {
    /// Unique within the manifest; referenced by `deps` and `TableEntry::item`.
    pub id: u32,
    pub kind: ObjectKind,
    pub section: Section,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The object's own name (constraint or index name for those kinds).
    pub name: String,
    /// For objects that belong to a table (constraints, indexes, defaults): the table's item id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    pub sql: String,
    /// Items that must have run before this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deps: Vec<u32>,
    /// Roles the statement names (an owner, grantees, a policy's roles): they must exist in the
    /// target before it runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// For a primary key or unique constraint: the same constraint as two statements, an index
    /// build and a constraint added on top of it, so that a restore can build the index beside
    /// the table's other index builds and only then take the brief exclusive lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_index: Option<ConstraintViaIndex>,
}

/// `sql` of a primary key or unique constraint split in two. The index build takes a SHARE lock,
/// which other `CREATE INDEX` on the table share; `ALTER TABLE ... ADD CONSTRAINT` takes ACCESS
/// EXCLUSIVE, which would stall them all for the whole build if the constraint built its index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConstraintViaIndex {
    /// `CREATE UNIQUE INDEX <constraint name> ON ONLY? table ...`.
    pub create_index: String,
    /// `ALTER TABLE ONLY table ADD CONSTRAINT name PRIMARY KEY|UNIQUE USING INDEX name;` — no
    /// scan: the key columns of a primary key are already NOT NULL.
    pub add_constraint: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableEntry {
    /// Number used in this table's data object names.
    pub id: u32,
    pub schema: String,
    pub name: String,
    /// The `DdlItem` that creates the table.
    pub item: u32,
    /// The columns in the data, in COPY order (generated and dropped columns are not in it).
    pub columns: Vec<ColumnEntry>,
    pub row_count: u64,
    /// Uncompressed COPY text bytes.
    pub raw_bytes: u64,
    /// Compressed bytes as stored.
    pub stored_bytes: u64,
    /// Order-independent digest of the rows' COPY text (see `ContentDigest`), 32 hex digits.
    pub content_digest: String,
    /// The single-column integer key whose range each chunk records, if the table has one
    /// (`--where-key` filters on it; backups written before `lookup_key` have only this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_column: Option<String>,
    /// The primary key that chunks summarise (ranges of its leading column, membership
    /// filters), if the table has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup_key: Option<LookupKey>,
    /// For an extension's configuration table (whose item is an `ExtensionTable`): the
    /// extension's filter (a `WHERE` clause, or empty for every row) that selected the rows
    /// dumped. The table's other rows are the extension's own, created with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_filter: Option<String>,
    /// Format 2: where the chunk list is in the chunk index. `chunks` is empty until it is
    /// loaded (see [`TableEntry::chunks_loaded`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_index: Option<crate::catalog::ChunkIndexRef>,
    /// Format 1 always; format 2 once loaded.
    #[serde(default)]
    pub chunks: Vec<ChunkEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnEntry {
    pub name: String,
    /// As `format_type` prints it, e.g. `character varying(20)[]`.
    pub type_name: String,
}

/// One zstd frame of whole rows inside a data object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkEntry {
    /// Object name relative to the backup, e.g. `data/00003.0000.copy.zst`.
    pub object: String,
    pub offset: u64,
    /// Stored (compressed) length.
    pub length: u64,
    pub raw_length: u64,
    pub rows: u64,
    /// SHA-256 of the stored bytes.
    pub sha256: String,
    /// The key values the chunk's rows lie between, when the table has a usable key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_range: Option<KeyRange>,
    /// The chunk's key membership filter, stored right after it in the same object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_filter: Option<FilterEntry>,
}

/// Where a chunk's key filter is, and its SHA-256 (see `key_summary`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterEntry {
    pub offset: u64,
    pub length: u64,
    pub sha256: String,
}

/// A table's primary key, as chunks summarise it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupKey {
    /// The key's columns, in key order.
    pub columns: Vec<String>,
    /// How the leading column's values are ordered; without one, chunks record no range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<KeyOrder>,
    /// Whether chunks may carry a membership filter over the whole key.
    #[serde(default)]
    pub filtered: bool,
}

impl LookupKey {
    /// Where the key's columns are in rows of `columns`; `None` if one is not among them.
    pub fn fields(&self, columns: &[ColumnEntry]) -> Option<KeyFields> {
        let fields = self
            .columns
            .iter()
            .map(|k| columns.iter().position(|c| &c.name == k))
            .collect::<Option<Vec<usize>>>()?;
        Some(KeyFields {
            fields,
            order: self.order,
            filtered: self.filtered,
        })
    }
}

impl TableEntry {
    /// The key chunks summarise: the recorded one, or for an older backup its integer key.
    pub fn lookup_key(&self) -> Option<LookupKey> {
        self.lookup_key.clone().or_else(|| {
            self.key_column.as_ref().map(|column| LookupKey {
                columns: vec![column.clone()],
                order: Some(KeyOrder::Integer),
                filtered: false,
            })
        })
    }
}

/// Inclusive key bounds, as PostgreSQL text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRange {
    pub column: String,
    pub min: String,
    pub max: String,
}

/// The fields a reader looks at before trusting the rest of the document.
#[derive(Deserialize)]
struct FormatHeader {
    format: String,
    format_version: u64,
}

const CHECKSUM_LINE_PREFIX: &str = "  \"manifest_sha256\": \"";

/// `value` as pretty JSON whose first member is the checksum of the rest (see the module docs).
/// `name` names the document in errors.
pub(crate) fn checksummed_json<T: Serialize>(
    value: &T,
    name: &str,
) -> Result<Vec<u8>, ArchiveError> {
    let body = serde_json::to_string_pretty(value).map_err(|e| ArchiveError::ManifestCorrupt {
        object: name.to_owned(),
        reason: format!("cannot serialize: {e}"),
    })?;
    // `body` is "{\n  ...\n}"; the checksum covers everything after its opening line.
    let mut rest = body.strip_prefix("{\n").unwrap_or(&body).to_owned();
    rest.push('\n');
    let mut out = String::with_capacity(rest.len() + 100);
    out.push_str("{\n");
    out.push_str(CHECKSUM_LINE_PREFIX);
    out.push_str(&sha256_hex(rest.as_bytes()));
    out.push_str("\",\n");
    out.push_str(&rest);
    Ok(out.into_bytes())
}

/// Checks a manifest file's checksum line, its format name and that this pgark reads its format
/// version, before anything else is parsed; returns the version.
pub(crate) fn checked_format_version(object: &str, bytes: &[u8]) -> Result<u32, ArchiveError> {
    let corrupt = |reason: String| ArchiveError::ManifestCorrupt {
        object: object.to_owned(),
        reason,
    };
    let header_end = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(1)
        .map(|(i, _)| i + 1)
        .ok_or_else(|| corrupt("too short to be a manifest".to_owned()))?;
    let header = std::str::from_utf8(&bytes[..header_end])
        .map_err(|_| corrupt("the checksum line is not UTF-8".to_owned()))?;
    let expected = header
        .strip_prefix("{\n")
        .and_then(|line| line.strip_prefix(CHECKSUM_LINE_PREFIX))
        .and_then(|line| line.strip_suffix("\",\n"))
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| corrupt("it does not start with its manifest_sha256 line".to_owned()))?;
    let actual = sha256_hex(&bytes[header_end..]);
    if actual != expected {
        return Err(ArchiveError::ManifestChecksumMismatch {
            object: object.to_owned(),
            expected: expected.to_owned(),
            actual,
        });
    }
    let header: FormatHeader =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("not a pgark manifest: {e}")))?;
    if header.format != FORMAT_NAME {
        return Err(corrupt(format!(
            "format is {:?}, expected {FORMAT_NAME:?}",
            header.format
        )));
    }
    match u32::try_from(header.format_version) {
        Ok(version)
            if (OLDEST_FORMAT_VERSION..=crate::seal::ENCRYPTED_FORMAT_VERSION)
                .contains(&version) =>
        {
            Ok(version)
        }
        _ => Err(ArchiveError::UnsupportedFormatVersion {
            object: object.to_owned(),
            found: header.format_version,
            supported: crate::seal::ENCRYPTED_FORMAT_VERSION,
            pgark_version: PGARK_VERSION,
        }),
    }
}

impl Manifest {
    /// A manifest for this pgark version, with no schema or tables yet.
    pub fn new(
        backup_id: String,
        started_at: String,
        source: SourceInfo,
        settings: DumpSettings,
    ) -> Self {
        Manifest {
            format: FORMAT_NAME.to_owned(),
            format_version: FORMAT_VERSION,
            pgark_version: PGARK_VERSION.to_owned(),
            backup_id,
            started_at,
            finished_at: String::new(),
            source,
            settings,
            schema: Vec::new(),
            tables: Vec::new(),
            roles: Vec::new(),
            large_objects: None,
            warnings: Vec::new(),
            partitioned: Vec::new(),
            before_image: None,
            database: None,
            globals: None,
            chunk_index: None,
            encryption: None,
            data_key: None,
        }
    }

    /// The whole manifest as one format 1 document, checksum first (see the module docs): what
    /// pgark wrote before format 2, kept to read and test old backups. Every table's chunk list
    /// must be loaded.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ArchiveError> {
        let mut v1 = self.clone();
        v1.format_version = 1;
        for table in &mut v1.tables {
            table.chunk_index = None;
        }
        checksummed_json(&v1, &self.backup_id)
    }

    /// Parses a whole-manifest (format 1) file, checking its checksum and format version before
    /// anything else. `object` names the file in errors. A format 2 file is a head: see
    /// `ManifestHead::from_bytes`.
    pub fn from_bytes(object: &str, bytes: &[u8]) -> Result<Manifest, ArchiveError> {
        let corrupt = |reason: String| ArchiveError::ManifestCorrupt {
            object: object.to_owned(),
            reason,
        };
        let version = checked_format_version(object, bytes)?;
        if version != 1 {
            return Err(corrupt(format!(
                "it is a format {version} head, not a whole manifest"
            )));
        }
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        if manifest.tables.iter().any(|t| t.chunk_index.is_some()) {
            return Err(corrupt(
                "a format 1 table refers to a chunk index".to_owned(),
            ));
        }
        manifest.check_chunks().map_err(corrupt)?;
        Ok(manifest)
    }

    /// Checks what readers size memory and reads by: every chunk's sizes are possible (no chunk
    /// decodes to more than a chunk or one row can be, no more rows than bytes), chunks and key
    /// filters do not overlap within their object (nor repeat), and each table's totals are its
    /// chunks' sums. A manifest whose checksum matches was written by a dump, but the checksum
    /// is no signature: these checks keep a crafted one from making a reader allocate without
    /// bound or read the same bytes twice.
    pub(crate) fn check_chunks(&self) -> Result<(), String> {
        let large_objects = self
            .large_objects
            .iter()
            .map(|lo| ("the large objects".to_owned(), lo.chunks.as_slice()));
        let tables = self
            .tables
            .iter()
            .map(|t| (format!("table {}", t.display_name()), t.chunks.as_slice()));
        check_extents(tables.chain(large_objects), self.settings.chunk_size)?;
        self.tables
            .iter()
            .filter(|t| t.chunks_loaded())
            .try_for_each(check_totals)
    }

    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.row_count).sum()
    }

    /// Uncompressed bytes of every table and of the large objects' records.
    pub fn raw_bytes(&self) -> u64 {
        let large_objects = self.large_objects.as_ref().map_or(0, |lo| lo.raw_bytes);
        self.tables.iter().map(|t| t.raw_bytes).sum::<u64>() + large_objects
    }

    /// Stored bytes of every table and of the large objects.
    pub fn stored_bytes(&self) -> u64 {
        let large_objects = self.large_objects.as_ref().map_or(0, |lo| lo.stored_bytes);
        self.tables.iter().map(|t| t.stored_bytes).sum::<u64>() + large_objects
    }
}

/// [`Manifest::check_chunks`] for one table alone, its chunk list loaded: for readers that go
/// through a backup one table at a time (a table's chunks are in objects of its own).
pub(crate) fn check_table_chunks(table: &TableEntry, chunk_size: u64) -> Result<(), String> {
    check_extents(
        [(
            format!("table {}", table.display_name()),
            table.chunks.as_slice(),
        )],
        chunk_size,
    )?;
    check_totals(table)
}

/// Every chunk's sizes are possible, and chunks and key filters do not overlap within their
/// object (nor repeat).
fn check_extents<'c>(
    lists: impl IntoIterator<Item = (String, &'c [ChunkEntry])>,
    chunk_size: u64,
) -> Result<(), String> {
    if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
        return Err(format!(
            "chunk size {chunk_size} is outside 1..={MAX_CHUNK_SIZE}"
        ));
    }
    // A chunk holds rows up to the chunk size, or one larger row: a row is one protocol
    // message, whose length is a 32-bit signed integer.
    let max_raw = chunk_size.max(i32::MAX as u64);
    let mut extents: BTreeMap<&str, Vec<(u64, u64, String)>> = BTreeMap::new();
    for (of, chunks) in lists {
        for (index, chunk) in chunks.iter().enumerate() {
            let at = || format!("{of}, chunk {index}");
            if chunk.length == 0 || chunk.raw_length > max_raw || chunk.rows > chunk.raw_length {
                return Err(format!(
                    "{}: impossible sizes ({} bytes stored, {} decoded, {} rows)",
                    at(),
                    chunk.length,
                    chunk.raw_length,
                    chunk.rows
                ));
            }
            let object = extents.entry(chunk.object.as_str()).or_default();
            object.push((chunk.offset, chunk.length, at()));
            if let Some(filter) = &chunk.key_filter {
                object.push((
                    filter.offset,
                    filter.length,
                    format!("{}'s key filter", at()),
                ));
            }
        }
    }
    for (object, mut spans) in extents {
        spans.sort_by_key(|(offset, length, _)| (*offset, *length));
        let mut end = 0u64;
        let mut previous = None;
        for (offset, length, what) in spans {
            if offset < end {
                return Err(format!(
                    "{what} overlaps {} in {object}",
                    previous.unwrap_or_default()
                ));
            }
            end = offset
                .checked_add(length)
                .ok_or_else(|| format!("{what}: offset {offset} + length {length} overflows"))?;
            previous = Some(what);
        }
    }
    Ok(())
}

/// A table's totals are its chunks' sums.
fn check_totals(table: &TableEntry) -> Result<(), String> {
    let rows = table
        .chunks
        .iter()
        .try_fold(0u64, |sum, c| sum.checked_add(c.rows));
    let raw = table
        .chunks
        .iter()
        .try_fold(0u64, |sum, c| sum.checked_add(c.raw_length));
    if rows != Some(table.row_count) || raw != Some(table.raw_bytes) {
        return Err(format!(
            "table {} records {} rows and {} bytes, its chunks hold {} and {}",
            table.display_name(),
            table.row_count,
            table.raw_bytes,
            rows.map_or_else(|| "too many".to_owned(), |n| n.to_string()),
            raw.map_or_else(|| "too many".to_owned(), |n| n.to_string()),
        ));
    }
    Ok(())
}

/// One partition in the tree below a partitioned table (see [`Manifest::partition_tree`]).
#[derive(Debug, Clone, Copy)]
pub struct PartitionNode<'m> {
    /// The node this is a partition of, as an index into the same list; `None` for the root's
    /// own partitions.
    pub parent: Option<usize>,
    pub partition: &'m PartitionRef,
    /// Its entry in `partitioned`, when it is partitioned itself.
    pub partitioned: Option<&'m PartitionedEntry>,
    /// Its index in `tables`, when it holds rows.
    pub table: Option<usize>,
}

impl Manifest {
    /// Every partition below `root`, at any depth, each after the node it is a partition of.
    pub fn partition_tree<'m>(&'m self, root: &'m PartitionedEntry) -> Vec<PartitionNode<'m>> {
        // Looked up by name once per partition: linear searches would make a tree of 100,000
        // partitions cost 10^10 comparisons. (Reversed, so that the first of a repeated name
        // wins, as a search would find it.)
        let partitioned_by_name: std::collections::HashMap<(&str, &str), &PartitionedEntry> = self
            .partitioned
            .iter()
            .rev()
            .map(|p| ((p.schema.as_str(), p.name.as_str()), p))
            .collect();
        let table_by_name: std::collections::HashMap<(&str, &str), usize> = self
            .tables
            .iter()
            .enumerate()
            .rev()
            .map(|(index, t)| ((t.schema.as_str(), t.name.as_str()), index))
            .collect();
        let mut nodes: Vec<PartitionNode<'m>> = Vec::new();
        let mut pending: Vec<(Option<usize>, &'m PartitionedEntry)> = vec![(None, root)];
        // A tree has no more nodes than entries; a damaged manifest whose tree loops stops there.
        let limit = self.partitioned.len() + self.tables.len();
        while let Some((parent, entry)) = pending.pop() {
            for partition in &entry.partitions {
                if nodes.len() >= limit {
                    return nodes;
                }
                let name = (partition.schema.as_str(), partition.name.as_str());
                let partitioned = partitioned_by_name.get(&name).copied();
                let table = table_by_name.get(&name).copied();
                if let Some(sub) = partitioned {
                    pending.push((Some(nodes.len()), sub));
                }
                nodes.push(PartitionNode {
                    parent,
                    partition,
                    partitioned,
                    table,
                });
            }
        }
        nodes
    }

    /// The tables holding the rows of partitioned table `schema.name`, as indexes into `tables`;
    /// `None` if it is not a partitioned table of this backup.
    pub fn leaf_partitions(&self, schema: &str, name: &str) -> Option<Vec<usize>> {
        let root = self
            .partitioned
            .iter()
            .find(|p| p.schema == schema && p.name == name)?;
        let mut leaves: Vec<usize> = self
            .partition_tree(root)
            .iter()
            .filter_map(|node| node.table)
            .collect();
        leaves.sort_unstable();
        Some(leaves)
    }
}

impl TableEntry {
    /// `schema.name` for messages (unquoted; not for SQL).
    pub fn display_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let mut manifest = Manifest::new(
            "2026-11-17T030000Z".into(),
            "2026-11-17T03:00:00Z".into(),
            SourceInfo {
                connection: "postgres://app@db:5432/prod".into(),
                database: "prod".into(),
                server_version: "15.18".into(),
                server_version_num: 150_018,
                encoding: "UTF8".into(),
                snapshot_id: "00000003-0000001B-1".into(),
                snapshot_time: "2026-11-17T03:00:00Z".into(),
            },
            DumpSettings {
                jobs: 2,
                chunk_size: 1 << 22,
                compress_level: 3,
                object_lock: None,
            },
        );
        manifest.schema.push(DdlItem {
            id: 1,
            kind: ObjectKind::Table,
            section: Section::PreData,
            schema: Some("public".into()),
            name: "tasks \"quoted\"\nnewline ü".into(),
            table: None,
            sql: "CREATE TABLE public.\"tasks\" (id integer);".into(),
            deps: vec![],
            roles: vec!["app owner".into()],
            via_index: None,
        });
        manifest.tables.push(TableEntry {
            id: 1,
            schema: "public".into(),
            name: "tasks".into(),
            item: 1,
            columns: vec![ColumnEntry {
                name: "id".into(),
                type_name: "integer".into(),
            }],
            row_count: 2,
            raw_bytes: 4,
            stored_bytes: 20,
            content_digest: "0".repeat(32),
            key_column: Some("id".into()),
            lookup_key: None,
            row_filter: None,
            chunk_index: None,
            chunks: vec![ChunkEntry {
                object: "data/00001.0000.copy.zst".into(),
                offset: 0,
                length: 20,
                raw_length: 4,
                rows: 2,
                sha256: "ab".repeat(32),
                key_range: Some(KeyRange {
                    column: "id".into(),
                    min: "1".into(),
                    max: "2".into(),
                }),
                key_filter: Some(FilterEntry {
                    offset: 20,
                    length: 19,
                    sha256: "ef".repeat(32),
                }),
            }],
        });
        manifest
    }

    #[test]
    fn a_partition_tree_is_walked_to_its_leaves_at_every_depth() {
        let mut manifest = sample();
        let leaf = |name: &str| {
            let mut t = manifest.tables[0].clone();
            t.name = name.into();
            t
        };
        let (a, b1, b2) = (leaf("m_a"), leaf("m_b1"), leaf("m_b2"));
        manifest.tables.extend([a, b1, b2]);
        let part = |name: &str| PartitionRef {
            schema: "public".into(),
            name: name.into(),
            bound: "DEFAULT".into(),
        };
        let entry = |name: &str, partitions: Vec<PartitionRef>| PartitionedEntry {
            schema: "public".into(),
            name: name.into(),
            item: 9,
            partition_key: "LIST (id)".into(),
            columns: Vec::new(),
            partitions,
        };
        manifest.partitioned = vec![
            entry("m", vec![part("m_a"), part("m_b")]),
            entry("m_b", vec![part("m_b1"), part("m_b2")]),
        ];
        assert_eq!(manifest.leaf_partitions("public", "m"), Some(vec![1, 2, 3]));
        assert_eq!(manifest.leaf_partitions("public", "m_b"), Some(vec![2, 3]));
        assert_eq!(manifest.leaf_partitions("public", "tasks"), None);
        let tree = manifest.partition_tree(&manifest.partitioned[0]);
        let m_b = tree
            .iter()
            .position(|n| n.partition.name == "m_b")
            .expect("m_b");
        assert!(tree[m_b].partitioned.is_some() && tree[m_b].table.is_none());
        for node in tree.iter().filter(|n| n.partition.name.starts_with("m_b")) {
            if node.partition.name != "m_b" {
                assert_eq!(node.parent, Some(m_b));
            }
        }
        // A damaged manifest whose tree loops still ends.
        manifest.partitioned[1].partitions.push(part("m_b"));
        assert!(manifest.partition_tree(&manifest.partitioned[0]).len() <= 6);
    }

    /// `sample()` as a format 1 file reads it back.
    fn as_format_1(mut manifest: Manifest) -> Manifest {
        manifest.format_version = 1;
        manifest
    }

    #[test]
    fn manifest_round_trips_through_its_file_form() {
        let manifest = sample();
        let bytes = manifest.to_bytes().expect("serializes");
        assert_eq!(
            Manifest::from_bytes("m", &bytes).expect("parses"),
            as_format_1(manifest)
        );
    }

    #[test]
    fn large_objects_member_round_trips_and_is_absent_without_large_objects() {
        let plain = sample().to_bytes().expect("serializes");
        assert!(!String::from_utf8_lossy(&plain).contains("large_objects"));
        let mut manifest = sample();
        manifest.large_objects = Some(LargeObjectsEntry {
            count: 2,
            content_bytes: 10,
            raw_bytes: 42,
            stored_bytes: 30,
            piece_size: 256 << 10,
            content_digest: "0".repeat(32),
            chunks: vec![ChunkEntry {
                object: "data/lo.0000.bin.zst".into(),
                offset: 0,
                length: 30,
                raw_length: 42,
                rows: 2,
                sha256: "cd".repeat(32),
                key_range: None,
                key_filter: None,
            }],
        });
        let bytes = manifest.to_bytes().expect("serializes");
        assert_eq!(
            Manifest::from_bytes("m", &bytes).expect("parses"),
            as_format_1(manifest.clone())
        );
        assert_eq!(manifest.raw_bytes(), 4 + 42);
        assert_eq!(manifest.stored_bytes(), 20 + 30);
    }

    #[test]
    fn checksum_covers_the_bytes_after_the_second_line() {
        let bytes = sample().to_bytes().expect("serializes");
        let text = String::from_utf8(bytes).expect("utf8");
        let mut lines = text.splitn(3, '\n');
        assert_eq!(lines.next(), Some("{"));
        let checksum_line = lines.next().expect("line 2");
        let rest = lines.next().expect("rest");
        // What `tail -n +3 manifest.json | sha256sum` prints.
        let shell_sum = sha256_hex(rest.as_bytes());
        assert_eq!(
            checksum_line,
            format!("  \"manifest_sha256\": \"{shell_sum}\",")
        );
        serde_json::from_str::<serde_json::Value>(&text).expect("plain JSON for jq");
    }

    #[test]
    fn any_edit_fails_the_checksum() {
        let bytes = sample().to_bytes().expect("serializes");
        let text = String::from_utf8(bytes)
            .expect("utf8")
            .replace("\"row_count\": 2", "\"row_count\": 3");
        let err = Manifest::from_bytes("b/manifest.json", text.as_bytes()).expect_err("edited");
        assert!(
            matches!(err, ArchiveError::ManifestChecksumMismatch { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("b/manifest.json"));
    }

    #[test]
    fn unknown_format_versions_are_refused_with_an_upgrade_hint() {
        let mut manifest = sample();
        manifest.format_version = 99;
        let bytes = checksummed_json(&manifest, "m").expect("serializes");
        let err = Manifest::from_bytes("m", &bytes).expect_err("newer version");
        assert!(matches!(
            err,
            ArchiveError::UnsupportedFormatVersion { found: 99, .. }
        ));
        assert!(err.to_string().contains("upgrade pgark"), "{err}");
    }

    #[test]
    fn garbage_is_reported_as_a_damaged_manifest() {
        for bad in [&b""[..], b"{}", b"{\n  \"x\": 1\n}\n", b"\xff\xfe\n\n"] {
            let err = Manifest::from_bytes("m", bad).expect_err("garbage");
            assert!(matches!(err, ArchiveError::ManifestCorrupt { .. }), "{err}");
        }
    }
}
