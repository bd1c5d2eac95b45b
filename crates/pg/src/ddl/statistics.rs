//! `CREATE STATISTICS` (post-data, after the table's data), with its statistics target.

use pgark_archive::{ObjectKind, Section};

use super::build::Builder;
use super::graph::NewItem;
use crate::catalog::{ObjAddr, class};

pub(super) fn add_statistics(b: &mut Builder<'_>) {
    for s in &b.catalog.statistics {
        let Some(&table) = b.table_items.get(&s.table_oid) else {
            // A materialized view's statistics: ordered by its dependencies alone.
            add(b, s, None);
            continue;
        };
        add(b, s, Some(table));
    }
}

fn add(b: &mut Builder<'_>, s: &crate::catalog::Statistics, table: Option<usize>) {
    let mut sql = format!("{};", s.definition);
    if let Some(target) = s.target {
        sql.push_str(&format!(
            "\nALTER STATISTICS {} SET STATISTICS {target};",
            s.name.sql()
        ));
    }
    let idx = b.add(NewItem {
        kind: ObjectKind::Statistics,
        section: Section::PostData,
        schema: Some(s.name.schema.clone()),
        name: s.name.name.clone(),
        table,
        sql,
    });
    b.own_object(ObjAddr::new(class::PG_STATISTIC_EXT, s.oid), idx);
}
