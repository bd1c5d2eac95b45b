//! Partition pruning for `--where` on a partitioned table: which of the backup's partitions can
//! hold matching rows. The target server decides, with its own planner: an empty copy of the
//! backup's partition tree (temporary tables with the backup's partition keys and bounds) is
//! planned with the condition, and the partitions left in the plan are the ones read. Nothing is
//! assumed about the condition's form, so the answer is never narrower than SQL's.

use std::collections::BTreeSet;

use pgark_archive::{Manifest, PartitionedEntry};
use pgark_pg::{Connection, quote};

use crate::EngineError;

/// The backup's leaf partitions, as `(schema, name)`, that may hold rows matching `predicate`;
/// `None` when the server cannot tell (the copy of the tree could not be built in the target,
/// say), and every partition must be read.
pub(super) async fn partitions_to_read<'m>(
    connection: &Connection,
    manifest: &'m Manifest,
    root: &'m PartitionedEntry,
    predicate: &str,
) -> Result<Option<BTreeSet<(&'m str, &'m str)>>, EngineError> {
    let client = connection.client();
    client
        .batch_execute("SAVEPOINT pgark_prune")
        .await
        .map_err(|e| pgark_pg::PgError::query("preparing partition pruning", e))?;
    let (statements, leaves) = shadow_tree(manifest, root);
    let mut outcome = Ok(());
    for statement in &statements {
        outcome = client.batch_execute(statement).await;
        if outcome.is_err() {
            break;
        }
    }
    // The simple protocol returns the plan (type json) as text.
    let plan = match outcome {
        Ok(()) => client
            .simple_query(&format!(
                "EXPLAIN (FORMAT JSON, COSTS OFF) SELECT 1 FROM pg_temp.{} WHERE ({predicate})",
                shadow_name(0)
            ))
            .await
            .map(|messages| {
                messages.iter().find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                    _ => None,
                })
            }),
        Err(e) => Err(e),
    };
    // The copy goes whether or not planning worked.
    client
        .batch_execute("ROLLBACK TO SAVEPOINT pgark_prune; RELEASE SAVEPOINT pgark_prune")
        .await
        .map_err(|e| pgark_pg::PgError::query("ending partition pruning", e))?;
    let table = format!("{}.{}", root.schema, root.name);
    let plan = match plan {
        Ok(Some(plan)) => plan,
        Ok(None) => return Ok(None),
        Err(e) => {
            tracing::info!(
                %table,
                reason = %pgark_pg::ServerMessage(&e),
                "partitions not pruned: every partition is read"
            );
            return Ok(None);
        }
    };
    let Ok(plan) = serde_json::from_str::<serde_json::Value>(&plan) else {
        tracing::info!(%table, "partitions not pruned: the plan did not parse");
        return Ok(None);
    };
    let mut scanned = BTreeSet::new();
    relation_names(&plan, &mut scanned);
    Ok(Some(
        leaves
            .into_iter()
            .filter(|(shadow, _)| scanned.contains(shadow))
            .map(|(_, leaf)| leaf)
            .collect(),
    ))
}

fn shadow_name(n: usize) -> String {
    format!("pgark_prune_{n}")
}

/// The statements creating the empty copy of `root`'s partition tree, and the copy's name for
/// each of the backup's leaf partitions.
#[allow(clippy::type_complexity)]
fn shadow_tree<'m>(
    manifest: &'m Manifest,
    root: &'m PartitionedEntry,
) -> (Vec<String>, Vec<(String, (&'m str, &'m str))>) {
    let columns: Vec<String> = root
        .columns
        .iter()
        .map(|c| format!("{} {}", quote::ident(&c.name), c.type_name))
        .collect();
    let mut statements = vec![format!(
        "CREATE TEMP TABLE {} ({}) PARTITION BY {}",
        shadow_name(0),
        columns.join(", "),
        root.partition_key
    )];
    let mut leaves = Vec::new();
    for (n, node) in manifest.partition_tree(root).into_iter().enumerate() {
        // The root's copy is number 0, each node's is its place in the tree plus one.
        let mut statement = format!(
            "CREATE TEMP TABLE {} PARTITION OF {} {}",
            shadow_name(n + 1),
            shadow_name(node.parent.map_or(0, |p| p + 1)),
            node.partition.bound
        );
        match node.partitioned {
            Some(sub) => statement.push_str(&format!(" PARTITION BY {}", sub.partition_key)),
            None => leaves.push((
                shadow_name(n + 1),
                (node.partition.schema.as_str(), node.partition.name.as_str()),
            )),
        }
        statements.push(statement);
    }
    (statements, leaves)
}

/// Every `"Relation Name"` in an `EXPLAIN (FORMAT JSON)` plan.
fn relation_names(value: &serde_json::Value, names: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("Relation Name", serde_json::Value::String(name)) => {
                        names.insert(name.clone());
                    }
                    _ => relation_names(value, names),
                }
            }
        }
        serde_json::Value::Array(values) => {
            for value in values {
                relation_names(value, names);
            }
        }
        _ => {}
    }
}
