//! Catalog reading and DDL generation against a real server: what `read_schema` reads from one
//! database, applied to a fresh one, must read back identically.

mod cleanup;
mod fixture;
mod locks;
mod round_trip;

use pgark_archive::{DdlItem, Section};
use pgark_pg::{SchemaDump, read_schema};
use pgark_testkit::TestDb;
use tokio_postgres::Client;

/// `read_schema` inside a REPEATABLE READ transaction, as a dump does.
async fn read(db: &TestDb) -> SchemaDump {
    let client = db.client().await;
    read_with(&client).await
}

async fn read_with(client: &Client) -> SchemaDump {
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .expect("begin");
    let dump = read_schema(client)
        .await
        .unwrap_or_else(|e| panic!("read_schema failed: {e}"));
    client.batch_execute("COMMIT").await.expect("commit");
    check_order(&dump.items);
    dump
}

/// Runs every item in order, as a restore does (pre-data, data, post-data).
async fn apply(db: &TestDb, items: &[DdlItem]) {
    let client = db.client().await;
    client
        .batch_execute("SET check_function_bodies = false")
        .await
        .expect("session setup");
    for item in items {
        if let Err(e) = client.batch_execute(&item.sql).await {
            panic!(
                "item {} ({:?} {:?}) failed in {}: {e:?}\n--- SQL ---\n{}",
                item.id,
                item.kind,
                item.name,
                db.name(),
                item.sql
            );
        }
    }
}

/// Reads `source`, applies it to a fresh database, reads that back, and asserts the two reads
/// are the same: same items, same SQL, same order, same dependencies.
async fn assert_round_trips(source: &TestDb) -> (SchemaDump, TestDb) {
    let dump = read(source).await;
    let target = pgark_testkit::server().create_database("target").await;
    apply(&target, &dump.items).await;
    let again = read(&target).await;
    assert_same_items(&dump.items, &again.items);
    let columns = |d: &SchemaDump| {
        d.tables
            .iter()
            .map(|t| (t.item, t.schema.clone(), t.name.clone(), t.columns.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        columns(&dump),
        columns(&again),
        "table data descriptions differ"
    );
    (dump, target)
}

/// Equality with a readable report: the first differing position, both items in full.
#[track_caller]
fn assert_same_items(expected: &[DdlItem], actual: &[DdlItem]) {
    for (n, (e, a)) in expected.iter().zip(actual).enumerate() {
        assert_eq!(e, a, "items differ at position {n}");
    }
    let extra = if expected.len() > actual.len() {
        &expected[actual.len()..]
    } else {
        &actual[expected.len()..]
    };
    assert_eq!(
        expected.len(),
        actual.len(),
        "item counts differ; the extra items: {extra:#?}"
    );
}

/// The invariants of `SchemaDump::items`: unique ascending ids, sections in order, every
/// dependency (and owning table) before its dependent, never in a later section.
#[track_caller]
fn check_order(items: &[DdlItem]) {
    let mut seen: std::collections::HashMap<u32, Section> = std::collections::HashMap::new();
    let mut last_section = Section::PreData;
    for item in items {
        assert!(
            item.section >= last_section,
            "sections out of order at {item:?}"
        );
        last_section = item.section;
        for dep in item.deps.iter().chain(&item.table) {
            let section = seen.get(dep).unwrap_or_else(|| {
                panic!("item {item:?} depends on {dep}, which is not before it")
            });
            assert!(
                *section <= item.section,
                "{item:?} depends on a later section"
            );
        }
        assert!(
            seen.insert(item.id, item.section).is_none(),
            "duplicate id {}",
            item.id
        );
    }
}

/// The item of `kind` named `name`, panicking if there is not exactly one.
#[track_caller]
fn find<'a>(items: &'a [DdlItem], kind: pgark_archive::ObjectKind, name: &str) -> &'a DdlItem {
    let found: Vec<&DdlItem> = items
        .iter()
        .filter(|i| i.kind == kind && i.name == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {kind:?} {name:?}, found {found:#?}"
    );
    found[0]
}
