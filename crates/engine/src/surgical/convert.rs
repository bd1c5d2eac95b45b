//! Converting staged rows to the target's columns: renamed and cast, filtered by the row
//! condition, into a second temporary table the writing statements read from.

use pgark_pg::{Connection, rows};

use super::plan::Plan;
use super::{Conflict, SurgicalOptions};
use crate::{EngineError, session};

/// Fills each plan's rows table from its staging table (then dropped) and counts the rows to
/// restore; a value that does not convert to the target's type fails here, before any write.
pub(super) async fn convert_rows(
    options: &SurgicalOptions,
    connection: &Connection,
    plans: &mut [Plan<'_>],
) -> Result<(), EngineError> {
    for plan in plans {
        let columns: Vec<rows::Conversion<'_>> = plan
            .columns
            .iter()
            .map(|c| rows::Conversion {
                from: &c.backup,
                to: &c.target,
                cast_to: (c.from_type != c.to_type).then_some(c.to_type.as_str()),
            })
            .collect();
        let sql = rows::create_converted(
            &plan.rows,
            &plan.staging,
            &columns,
            plan.condition.as_deref(),
        );
        plan.report.rows = connection.client().execute(&sql, &[]).await.map_err(|e| {
            EngineError::RowsDoNotConvert {
                table: plan.source.display_name(),
                reason: pgark_pg::ServerMessage(&e).to_string(),
            }
        })?;
        session::execute(connection, &rows::drop_table(&plan.staging), || {
            "dropping a staging table".into()
        })
        .await?;
        if options.conflict == Conflict::Upsert && plan.key.is_empty() {
            return Err(EngineError::NoPrimaryKey {
                table: plan.qualified(),
            });
        }
    }
    Ok(())
}
