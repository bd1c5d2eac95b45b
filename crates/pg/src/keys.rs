//! Tables' primary keys, as chunks summarise them (ranges of the leading column, membership
//! filters) so that filtered reads (`cat --where-key`, a surgical restore's `--where`) fetch only
//! the chunks that can hold matching rows; and among them the single-column integer keys that
//! tables can be split by.

use std::collections::HashMap;

use pgark_archive::LookupKey;
use pgark_archive::key_summary::KeyOrder;
use tokio_postgres::Client;

use crate::PgError;

/// Table oid → name of its single-column `smallint`/`integer`/`bigint` primary key column, among
/// the keys [`lookup_keys`] read (tables split by key ranges, and `key_column`).
pub fn integer_keys(keys: &HashMap<u32, LookupKey>) -> HashMap<u32, String> {
    keys.iter()
        .filter_map(|(&oid, key)| match key.columns.as_slice() {
            [column] if key.order == Some(KeyOrder::Integer) => Some((oid, column.clone())),
            _ => None,
        })
        .collect()
}

/// Table oid → its primary key as chunks summarise it: the key's columns, how its leading
/// column's values order as COPY prints them, and whether a membership filter over the whole key
/// is sound. A filter compares printed values, so it is built only when every key column's type
/// prints equal values identically and compares them as their printed bytes (integers, uuid,
/// text types under a deterministic collation, dates and timestamps, booleans, bytea); `numeric`
/// (`1.0 = 1.00`), floats (`-0 = 0`), `citext` and the like are left out.
pub async fn lookup_keys(client: &Client) -> Result<HashMap<u32, LookupKey>, PgError> {
    let rows = client
        .query(
            "SELECT c.conrelid, a.attname::text, t.typname::text, \
                    t.typnamespace = 'pg_catalog'::regnamespace, \
                    COALESCE((SELECT co.collprovider = 'c' OR co.collisdeterministic \
                              FROM pg_catalog.pg_collation co WHERE co.oid = a.attcollation), true) \
             FROM pg_catalog.pg_constraint c \
             CROSS JOIN LATERAL pg_catalog.unnest(c.conkey) WITH ORDINALITY AS k(attnum, n) \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum \
             JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
             WHERE c.contype = 'p' \
             ORDER BY c.conrelid, k.n",
            &[],
        )
        .await
        .map_err(|e| PgError::query("reading the tables' primary keys", e))?;
    let mut keys: HashMap<u32, LookupKey> = HashMap::new();
    for row in &rows {
        let read = |e| PgError::query("reading a primary key", e);
        let oid: u32 = row.try_get(0).map_err(read)?;
        let column: String = row.try_get(1).map_err(read)?;
        let type_name: String = row.try_get(2).map_err(read)?;
        let builtin: bool = row.try_get(3).map_err(read)?;
        let deterministic: bool = row.try_get(4).map_err(read)?;
        let order = if builtin {
            match type_name.as_str() {
                "int2" | "int4" | "int8" => Some(KeyOrder::Integer),
                "uuid" => Some(KeyOrder::Uuid),
                "date" | "timestamp" | "timestamptz" => Some(KeyOrder::Temporal),
                "text" | "varchar" | "bpchar" | "name" if deterministic => Some(KeyOrder::Text),
                _ => None,
            }
        } else {
            None
        };
        let exact = order.is_some() || (builtin && matches!(type_name.as_str(), "bool" | "bytea"));
        match keys.get_mut(&oid) {
            None => {
                keys.insert(
                    oid,
                    LookupKey {
                        columns: vec![column],
                        order,
                        filtered: exact,
                    },
                );
            }
            Some(key) => {
                key.columns.push(column);
                key.filtered &= exact;
            }
        }
    }
    Ok(keys)
}
