//! Schema-qualified names as the catalog gives them (unquoted), quoted only when put into SQL.

use crate::quote;

/// `schema.name` of a catalog object, raw.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct QualName {
    pub schema: String,
    pub name: String,
}

impl QualName {
    pub fn new(schema: String, name: String) -> Self {
        QualName { schema, name }
    }

    /// The quoted, qualified name for SQL.
    pub fn sql(&self) -> String {
        quote::qualified(&self.schema, &self.name)
    }
}

/// Reads a qualified name from two nullable columns; `None` when the schema column is NULL
/// (the catalog uses a LEFT JOIN for optional references such as collations).
pub(crate) fn optional(
    row: &tokio_postgres::Row,
    schema_column: &str,
    name_column: &str,
    what: &str,
) -> Result<Option<QualName>, crate::PgError> {
    let schema: Option<String> = super::rows::get(row, schema_column, what)?;
    let name: Option<String> = super::rows::get(row, name_column, what)?;
    Ok(schema
        .zip(name)
        .map(|(schema, name)| QualName::new(schema, name)))
}
