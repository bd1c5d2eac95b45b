//! User-defined operators (operator classes and families are in `opclasses`).

use tokio_postgres::Client;

use super::address::class;
use super::filter::{USER_NAMESPACE, not_extension_member};
use super::names::QualName;
use super::rows::{get, query};
use crate::PgError;

#[derive(Debug, Clone)]
pub(crate) struct Operator {
    pub oid: u32,
    /// The operator's schema and symbol (`public`, `~<<`).
    pub name: QualName,
    /// `CREATE OPERATOR` options in SQL form.
    pub options: Vec<(String, String)>,
    /// `(left, right)` argument types for messages, `NONE` for a prefix operator's left.
    pub signature: String,
}

/// `OPERATOR(schema.op)` of the operator whose OID is the column `column`, or NULL.
fn operator_ref(column: &str) -> String {
    format!(
        "(SELECT 'OPERATOR(' || pg_catalog.quote_ident(xn.nspname) || '.' || x.oprname || ')' \
         FROM pg_catalog.pg_operator x JOIN pg_catalog.pg_namespace xn ON xn.oid = x.oprnamespace \
         WHERE x.oid = {column})"
    )
}

pub(crate) async fn read_operators(client: &Client) -> Result<Vec<Operator>, PgError> {
    let sql = format!(
        "SELECT o.oid, n.nspname::text AS schema, o.oprname::text AS name, \
         o.oprcode::regproc::text AS function, \
         CASE WHEN o.oprleft <> 0 THEN pg_catalog.format_type(o.oprleft, NULL) END AS leftarg, \
         CASE WHEN o.oprright <> 0 THEN pg_catalog.format_type(o.oprright, NULL) END AS rightarg, \
         {} AS commutator, {} AS negator, \
         NULLIF(o.oprrest::oid, 0)::regproc::text AS restrict_fn, \
         NULLIF(o.oprjoin::oid, 0)::regproc::text AS join_fn, o.oprcanhash, o.oprcanmerge \
         FROM pg_catalog.pg_operator o \
         JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace \
         WHERE o.oprcode::oid <> 0 AND {USER_NAMESPACE} AND {} \
         ORDER BY n.nspname, o.oprname, o.oid",
        operator_ref("o.oprcom"),
        operator_ref("o.oprnegate"),
        not_extension_member(class::PG_OPERATOR, "o.oid")
    );
    let what = "operators";
    let mut operators = Vec::new();
    for row in query(client, what, &sql, &[]).await? {
        let mut options = Vec::new();
        let left: Option<String> = get(&row, "leftarg", what)?;
        let right: Option<String> = get(&row, "rightarg", what)?;
        options.push(("FUNCTION".to_owned(), get(&row, "function", what)?));
        for (option, value) in [("LEFTARG", &left), ("RIGHTARG", &right)] {
            if let Some(value) = value {
                options.push((option.to_owned(), value.clone()));
            }
        }
        for (option, column) in [
            ("COMMUTATOR", "commutator"),
            ("NEGATOR", "negator"),
            ("RESTRICT", "restrict_fn"),
            ("JOIN", "join_fn"),
        ] {
            let value: Option<String> = get(&row, column, what)?;
            if let Some(value) = value {
                options.push((option.to_owned(), value));
            }
        }
        for (option, column) in [("HASHES", "oprcanhash"), ("MERGES", "oprcanmerge")] {
            if get::<bool>(&row, column, what)? {
                options.push((option.to_owned(), String::new()));
            }
        }
        operators.push(Operator {
            oid: get(&row, "oid", what)?,
            name: QualName::new(get(&row, "schema", what)?, get(&row, "name", what)?),
            options,
            signature: format!(
                "({}, {})",
                left.as_deref().unwrap_or("NONE"),
                right.as_deref().unwrap_or("NONE")
            ),
        });
    }
    Ok(operators)
}
