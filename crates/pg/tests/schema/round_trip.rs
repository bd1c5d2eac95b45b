//! DDL idempotence: a schema read, applied to a fresh database and read again is unchanged.

use futures::{SinkExt, TryStreamExt};
use pgark_archive::{ObjectKind, Section};

use super::fixture::{WEIRD_SCHEMA, long_name, rich_schema};
use super::{assert_round_trips, find, read};

async fn rich_database() -> pgark_testkit::TestDb {
    let server = pgark_testkit::server();
    let db = server.create_database("rich").await;
    db.execute(&rich_schema(server.version_num())).await;
    db
}

#[tokio::test]
async fn every_object_kind_round_trips_unchanged() {
    let db = rich_database().await;
    let (dump, _) = assert_round_trips(&db).await;
    let kinds: std::collections::BTreeSet<ObjectKind> = dump.items.iter().map(|i| i.kind).collect();
    for kind in [
        ObjectKind::Schema,
        ObjectKind::Extension,
        ObjectKind::Type,
        ObjectKind::Domain,
        ObjectKind::Sequence,
        ObjectKind::Table,
        ObjectKind::TableAttach,
        ObjectKind::ColumnDefault,
        ObjectKind::SequenceOwnedBy,
        ObjectKind::SequenceSet,
        ObjectKind::Constraint,
        ObjectKind::ForeignKey,
        ObjectKind::Index,
        ObjectKind::IndexAttach,
        ObjectKind::ClusterOn,
        ObjectKind::Collation,
        ObjectKind::ShellType,
        ObjectKind::Function,
        ObjectKind::Procedure,
        ObjectKind::Aggregate,
        ObjectKind::View,
        ObjectKind::MaterializedView,
        ObjectKind::MaterializedViewData,
        ObjectKind::Trigger,
        ObjectKind::Rule,
        ObjectKind::TableOption,
        ObjectKind::Policy,
        ObjectKind::Comment,
        ObjectKind::Owner,
        ObjectKind::Acl,
        ObjectKind::DefaultAcl,
        ObjectKind::Operator,
        ObjectKind::TextSearchDictionary,
        ObjectKind::TextSearchConfiguration,
        ObjectKind::OperatorFamily,
        ObjectKind::OperatorClass,
        ObjectKind::Cast,
        ObjectKind::Conversion,
        ObjectKind::ForeignDataWrapper,
        ObjectKind::ForeignServer,
        ObjectKind::UserMapping,
        ObjectKind::ForeignTable,
        ObjectKind::Publication,
        ObjectKind::PublicationMember,
        ObjectKind::Statistics,
        ObjectKind::AccessMethod,
        ObjectKind::Language,
        ObjectKind::Transform,
        ObjectKind::LargeObject,
        ObjectKind::ColumnDefault,
        ObjectKind::EventTrigger,
    ] {
        assert!(
            kinds.contains(&kind),
            "no {kind:?} item in {:#?}",
            dump.items
        );
    }
}

#[tokio::test]
async fn cycles_are_broken_and_views_on_keys_wait_for_them() {
    let dump = read(&rich_database().await).await;
    let cyc: Vec<&pgark_archive::DdlItem> = dump
        .items
        .iter()
        .filter(|i| i.kind == ObjectKind::View && i.name == "cyc")
        .collect();
    assert_eq!(cyc.len(), 2, "placeholder and definition: {cyc:#?}");
    assert!(cyc[0].sql.contains("NULL::integer AS a"), "{}", cyc[0].sql);
    assert!(
        cyc[1].sql.starts_with("CREATE OR REPLACE VIEW app.cyc"),
        "{}",
        cyc[1].sql
    );
    let grouped: Vec<&pgark_archive::DdlItem> = dump
        .items
        .iter()
        .filter(|i| i.kind == ObjectKind::View && i.name == "grouped")
        .collect();
    assert_eq!(grouped.len(), 2);
    assert_eq!(grouped[1].section, Section::PostData);
    let pkey = find(&dump.items, ObjectKind::Constraint, "orders_pkey");
    assert!(grouped[1].deps.contains(&pkey.id));
    // The materialized view built on another is refreshed after it; an unpopulated one is not.
    let mv = find(&dump.items, ObjectKind::MaterializedViewData, "mv");
    let mv_of_mv = find(&dump.items, ObjectKind::MaterializedViewData, "mv_of_mv");
    assert!(mv_of_mv.deps.contains(&mv.id), "{mv_of_mv:?}");
    assert!(
        !dump
            .items
            .iter()
            .any(|i| i.kind == ObjectKind::MaterializedViewData && i.name == "mv_empty")
    );
    // The base type's I/O functions need only the shell type.
    let shell = find(&dump.items, ObjectKind::ShellType, "int42");
    let input = find(&dump.items, ObjectKind::Function, "int42_in(cstring)");
    assert!(input.deps.contains(&shell.id), "{input:?}");
}

#[tokio::test]
async fn extension_members_and_system_objects_are_left_out() {
    let dump = read(&rich_database().await).await;
    let public = find(&dump.items, ObjectKind::Schema, "public");
    assert!(!public.sql.contains("CREATE"), "{public:?}");
    for item in &dump.items {
        assert!(
            !item.sql.contains("citext_") && item.name != "citext_ops",
            "extension member dumped: {item:?}"
        );
        assert_ne!(item.schema.as_deref(), Some("pg_catalog"));
        assert_ne!(item.name, "plpgsql");
    }
    let ext = find(&dump.items, ObjectKind::Extension, "citext");
    assert_eq!(
        ext.sql,
        "CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA ext;"
    );
    // A column of an extension's type waits for the extension.
    let orders = find(&dump.items, ObjectKind::Table, "orders");
    assert!(orders.deps.contains(&ext.id), "{orders:?}");
}

#[tokio::test]
async fn serial_sequences_come_before_their_table_and_are_owned_after_it() {
    let dump = read(&rich_database().await).await;
    let seq = find(&dump.items, ObjectKind::Sequence, "orders_id_seq");
    let table = find(&dump.items, ObjectKind::Table, "orders");
    let owned = find(&dump.items, ObjectKind::SequenceOwnedBy, "orders_id_seq");
    assert!(
        table.deps.contains(&seq.id),
        "the default calls nextval: {table:?}"
    );
    assert!(owned.deps.contains(&seq.id) && owned.table == Some(table.id));
    assert_eq!(
        owned.sql,
        "ALTER SEQUENCE app.orders_id_seq OWNED BY app.orders.id;"
    );
    let set = find(&dump.items, ObjectKind::SequenceSet, "orders_id_seq");
    assert_eq!(set.section, Section::Data);
    assert_eq!(
        set.sql,
        "SELECT pg_catalog.setval('app.orders_id_seq', 2, true);"
    );
    // CACHE 3: the first nextval took 7, 12 and 17 at once, as the sequence relation records.
    let counter = find(&dump.items, ObjectKind::SequenceSet, "counter");
    assert_eq!(
        counter.sql,
        "SELECT pg_catalog.setval('app.counter', 17, true);"
    );
    let fresh = find(&dump.items, ObjectKind::SequenceSet, "fresh");
    assert!(fresh.sql.ends_with(", 1, false);"), "{fresh:?}");
}

#[tokio::test]
async fn identity_sequences_are_created_by_their_column() {
    let dump = read(&rich_database().await).await;
    assert!(
        !dump
            .items
            .iter()
            .any(|i| i.kind == ObjectKind::Sequence && i.name == "items_id_seq"),
        "identity sequences have no CREATE SEQUENCE of their own"
    );
    let table = find(&dump.items, ObjectKind::Table, "items");
    assert!(
        table.sql.contains(
            "id integer GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME app.items_id_seq START WITH 10 \
             INCREMENT BY 3 MINVALUE 1 MAXVALUE 2147483647 CACHE 1 NO CYCLE) NOT NULL"
        ),
        "{}",
        table.sql
    );
    let set = find(&dump.items, ObjectKind::SequenceSet, "items_id_seq");
    assert_eq!(set.table, Some(table.id));
    assert_eq!(
        set.sql,
        "SELECT pg_catalog.setval('app.items_id_seq', 13, true);"
    );
}

#[tokio::test]
async fn constraints_indexes_and_foreign_keys_follow_the_data() {
    let dump = read(&rich_database().await).await;
    let pkey = find(&dump.items, ObjectKind::Constraint, "orders_pkey");
    assert_eq!(pkey.section, Section::PostData);
    assert_eq!(
        pkey.sql,
        "ALTER TABLE ONLY app.orders ADD CONSTRAINT orders_pkey PRIMARY KEY (id);"
    );
    // The same key as an index build and an attach, for restores that build it beside other
    // indexes; not for a deferrable constraint (its index must not check immediately) nor on
    // partitioned tables and partitions (their indexes attach to the parent's).
    let split = pkey
        .via_index
        .as_ref()
        .expect("the primary key's index form");
    assert_eq!(
        split.create_index,
        "CREATE UNIQUE INDEX orders_pkey ON app.orders USING btree (id);"
    );
    assert_eq!(
        split.add_constraint,
        "ALTER TABLE ONLY app.orders ADD CONSTRAINT orders_pkey PRIMARY KEY USING INDEX orders_pkey;"
    );
    let deferred = find(&dump.items, ObjectKind::Constraint, "orders_label_unique");
    assert_eq!(deferred.via_index, None, "{deferred:?}");
    for partitioned in ["events_pkey", "events_old_pkey"] {
        let key = find(&dump.items, ObjectKind::Constraint, partitioned);
        assert_eq!(key.via_index, None, "{key:?}");
    }
    let fk = find(&dump.items, ObjectKind::ForeignKey, "items_order_id_fkey");
    assert!(
        fk.deps.contains(&pkey.id),
        "FK must wait for the key it references: {fk:?}"
    );
    // A foreign key on a unique index that backs no constraint waits for that index.
    let index = find(&dump.items, ObjectKind::Index, "orders_customer_idx");
    let fk = find(
        &dump.items,
        ObjectKind::ForeignKey,
        "by_customer_customer_fkey",
    );
    assert!(fk.deps.contains(&index.id), "{fk:?}");
    let not_valid = find(&dump.items, ObjectKind::Constraint, "qty_check");
    assert_eq!(not_valid.section, Section::PostData);
    assert!(not_valid.sql.ends_with("NOT VALID;"), "{not_valid:?}");
    let orders = find(&dump.items, ObjectKind::Table, "orders");
    assert!(
        orders.sql.contains("CONSTRAINT amount_check CHECK"),
        "{}",
        orders.sql
    );
    assert!(!orders.sql.contains("qty_check"), "{}", orders.sql);
    let cluster = find(&dump.items, ObjectKind::ClusterOn, "orders_expr_idx");
    assert_eq!(
        cluster.sql,
        "ALTER TABLE app.orders CLUSTER ON orders_expr_idx;"
    );
    let small = find(&dump.items, ObjectKind::Constraint, "small");
    assert_eq!(
        small.sql,
        "ALTER DOMAIN app.positive ADD CONSTRAINT small CHECK ((VALUE < 1000000)) NOT VALID;"
    );
}

#[tokio::test]
async fn partitions_are_created_standalone_then_attached() {
    let dump = read(&rich_database().await).await;
    let old = find(&dump.items, ObjectKind::Table, "events_old");
    // Its own column order, and the parent's CHECK, which ATTACH requires.
    assert!(
        old.sql
            .starts_with("CREATE TABLE app.events_old (\n    kind text NOT NULL,\n    id bigint"),
        "{}",
        old.sql
    );
    assert!(old.sql.contains("events_kind_check") && old.sql.contains("old_only"));
    let attach = find(&dump.items, ObjectKind::TableAttach, "events_old");
    assert_eq!(
        attach.sql,
        "ALTER TABLE ONLY app.events ATTACH PARTITION app.events_old FOR VALUES FROM (MINVALUE) \
         TO ('2024-01-01');"
    );
    let mid = find(&dump.items, ObjectKind::Table, "events_2024");
    assert!(mid.sql.contains("PARTITION BY LIST (kind)"), "{}", mid.sql);
    let leaf = find(&dump.items, ObjectKind::TableAttach, "events_2024_click");
    assert!(leaf.deps.contains(&mid.id), "{leaf:?}");
    let parent_index = find(&dump.items, ObjectKind::Index, "events_payload_idx");
    assert!(
        parent_index.sql.contains(" ON ONLY app.events "),
        "{parent_index:?}"
    );
    let attach = find(&dump.items, ObjectKind::IndexAttach, "events_old_pkey");
    assert_eq!(
        attach.sql,
        "ALTER INDEX app.events_pkey ATTACH PARTITION app.events_old_pkey;"
    );
    // A foreign key to a partitioned table waits until its key's index is complete, at every
    // level of partitioning.
    let fk = find(
        &dump.items,
        ObjectKind::ForeignKey,
        "event_refs_event_id_at_kind_fkey",
    );
    for partition_key in [
        "events_old_pkey",
        "events_2024_pkey",
        "events_2024_click_pkey",
    ] {
        let attach = find(&dump.items, ObjectKind::IndexAttach, partition_key);
        assert!(
            fk.deps.contains(&attach.id),
            "{fk:?} must wait for {attach:?}"
        );
    }
    // Foreign keys cloned onto partitions come back with the parent's; partitioned tables hold
    // no rows of their own.
    assert_eq!(
        dump.items
            .iter()
            .filter(|i| i.kind == ObjectKind::ForeignKey && i.name == "events_self_fk")
            .count(),
        1
    );
    assert!(
        !dump
            .tables
            .iter()
            .any(|t| t.name == "events" || t.name == "events_2024")
    );
}

#[tokio::test]
async fn inheritance_children_declare_only_their_own_columns() {
    let dump = read(&rich_database().await).await;
    let derived = find(&dump.items, ObjectKind::Table, "derived");
    // The child's own NOT NULL on an inherited column: from PostgreSQL 18 a constraint of the
    // child's, declared with its name; before, a flag set once the table exists.
    let expected = if pgark_testkit::server().version_num() >= 180_000 {
        "CREATE TABLE app.derived (\n    name text DEFAULT 'derived'::text,\n    extra text,\n    \
         CONSTRAINT derived_note_not_null NOT NULL note\n)\nINHERITS (app.base);"
    } else {
        "CREATE TABLE app.derived (\n    name text DEFAULT 'derived'::text,\n    extra text\n)\n\
         INHERITS (app.base);\nALTER TABLE ONLY app.derived ALTER COLUMN note SET NOT NULL;"
    };
    assert_eq!(derived.sql, expected);
    // An inherited column's own default is set once the table exists.
    let default = find(&dump.items, ObjectKind::ColumnDefault, "note");
    assert_eq!(default.table, Some(derived.id));
    assert_eq!(
        default.sql,
        "ALTER TABLE ONLY app.derived ALTER COLUMN note SET DEFAULT 'child note'::text;"
    );
    let base = find(&dump.items, ObjectKind::Table, "base");
    assert!(derived.deps.contains(&base.id));
    let multi = find(&dump.items, ObjectKind::Table, "multi");
    assert!(
        multi.sql.ends_with("INHERITS (app.base, app.other_base);"),
        "{}",
        multi.sql
    );
    // The inherited CHECK is not repeated in the children.
    assert!(!derived.sql.contains("base_id_check"));
}

#[tokio::test]
async fn awkward_identifiers_survive() {
    let db = rich_database().await;
    let (dump, target) = assert_round_trips(&db).await;
    let long = long_name();
    let table = find(&dump.items, ObjectKind::Table, &long);
    assert_eq!(table.schema.as_deref(), Some(WEIRD_SCHEMA));
    let data = dump
        .tables
        .iter()
        .find(|t| t.name == long)
        .expect("table data");
    let columns: Vec<&str> = data.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(columns, ["ü col", "user", "quo\"te", "new\nline"]);
    // Rows move with the COPY statements built from the table description.
    let source = db.client().await;
    source
        .batch_execute(&format!(
            "INSERT INTO {} (\"user\", \"quo\"\"te\", \"new\nline\") VALUES ('a\tb', 1, NULL)",
            pgark_pg::quote::qualified(WEIRD_SCHEMA, &long)
        ))
        .await
        .expect("insert");
    let rows = copy_rows(&source, data).await;
    assert_eq!(rows, "1\ta\\tb\t1\t\\N\n");
    let client = target.client().await;
    let sql = pgark_pg::copy_in_sql(&data.schema, &data.name, &data.columns);
    let sink = client
        .copy_in::<_, bytes::Bytes>(&sql)
        .await
        .expect("copy in");
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from(rows.clone()))
        .await
        .expect("send");
    sink.finish().await.expect("finish");
    assert_eq!(copy_rows(&client, data).await, rows);
}

async fn copy_rows(client: &tokio_postgres::Client, table: &pgark_pg::TableData) -> String {
    let stream = client
        .copy_out(&pgark_pg::copy_out_sql(table))
        .await
        .expect("copy out");
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await.expect("copy data");
    String::from_utf8(chunks.concat()).expect("utf8")
}

async fn corpus(name: &str) -> pgark_testkit::TestDb {
    let server = pgark_testkit::server();
    server
        .load_corpus(name, &pgark_testkit::unique_name(name))
        .await
}

#[tokio::test]
async fn pagila_round_trips() {
    let (dump, _) = assert_round_trips(&corpus("pagila").await).await;
    for (kind, name) in [
        (ObjectKind::View, "actor_info"),
        (ObjectKind::MaterializedView, "rental_by_category"),
        (ObjectKind::Aggregate, "group_concat(text)"),
        (ObjectKind::Domain, "bıgınt"),
        (ObjectKind::Domain, "year"),
        (ObjectKind::Type, "mpaa_rating"),
        (ObjectKind::Table, "payment"),
        (ObjectKind::TableAttach, "payment_p2022_01"),
        (ObjectKind::IndexAttach, "payment_p2022_01_pkey"),
        (ObjectKind::ForeignKey, "film_language_id_fkey"),
    ] {
        find(&dump.items, kind, name);
    }
    assert!(
        dump.items
            .iter()
            .any(|i| i.kind == ObjectKind::Trigger && i.name == "last_updated")
    );
    let payment = dump
        .tables
        .iter()
        .find(|t| t.name == "payment_p2022_01")
        .expect("partition");
    assert!(payment.estimated_bytes > 0);
}

/// Partitioned tables with partitioned indexes, bigint[] and jsonb.
#[tokio::test]
async fn gisia_round_trips() {
    let (dump, _) = assert_round_trips(&corpus("gisia").await).await;
    assert!(dump.items.iter().any(|i| i.kind == ObjectKind::IndexAttach));
}

/// Enums, many foreign keys, btree_gist.
#[tokio::test]
async fn osm_round_trips() {
    let (dump, _) = assert_round_trips(&corpus("osm").await).await;
    find(&dump.items, ObjectKind::Extension, "btree_gist");
}

/// Tables with zero columns, hundreds of views with deep dependencies, functions.
#[tokio::test]
async fn postgrest_round_trips() {
    let (dump, _) = assert_round_trips(&corpus("postgrest").await).await;
    assert!(dump.tables.iter().any(|t| t.columns.is_empty()));
}

#[tokio::test]
async fn event_triggers_follow_every_other_post_data_item() {
    use pgark_archive::{ObjectKind, Section};
    let dump = read(&rich_database().await).await;
    let trigger = find(&dump.items, ObjectKind::EventTrigger, "app ddl");
    let after: Vec<&pgark_archive::DdlItem> =
        dump.items.iter().filter(|i| i.id > trigger.id).collect();
    assert!(!after.is_empty(), "the trigger's comment follows it");
    for item in after {
        assert!(
            item.deps.contains(&trigger.id) && item.section == Section::PostData,
            "{item:#?} comes after the event trigger without belonging to it"
        );
    }
    // Comments on other post-data objects (an index's) come before it.
    let comment = dump
        .items
        .iter()
        .find(|i| i.kind == ObjectKind::Comment && i.sql.starts_with("COMMENT ON INDEX"))
        .expect("the index comment");
    assert!(comment.id < trigger.id);
}

/// `information_schema` is the server's, whatever its OIDs and `pg_init_privs` say: nothing of
/// it is dumped (some servers record no initial privileges for it, which once made every dump
/// re-grant its ~70 views to PUBLIC).
#[tokio::test]
async fn nothing_from_information_schema_is_dumped() {
    let db = pgark_testkit::server()
        .create_database("no_infoschema")
        .await;
    db.execute("CREATE TABLE t (a integer)").await;
    let dump = read(&db).await;
    let offending: Vec<&str> = dump
        .items
        .iter()
        .filter(|i| i.sql.contains("information_schema"))
        .map(|i| i.sql.as_str())
        .collect();
    assert!(offending.is_empty(), "{offending:#?}");
    assert!(dump.items.iter().any(|i| i.name == "t"));
}
