//! `CREATE SEQUENCE`, `ALTER SEQUENCE ... OWNED BY` and the `setval` that restores a sequence's
//! state. Identity sequences are created by their column (see `tables`); they get only the
//! `setval`.

use pgark_archive::{ObjectKind, Section};

use super::build::Builder;
use super::graph::NewItem;
use crate::catalog::{ObjAddr, Sequence};
use crate::quote::{ident, literal};

fn is_identity(seq: &Sequence) -> bool {
    seq.owner.as_ref().is_some_and(|o| o.identity)
}

/// `CREATE SEQUENCE` for every sequence not created by an identity column. The sequence does not
/// wait for the table that owns it: the table's default usually calls it, so the `OWNED BY` link
/// is a separate item after both (see [`add_sequence_links`]).
pub(super) fn add_sequences(b: &mut Builder<'_>) {
    for seq in b.catalog.sequences.iter().filter(|s| !is_identity(s)) {
        let idx = b.add(NewItem {
            kind: ObjectKind::Sequence,
            section: Section::PreData,
            schema: Some(seq.name.schema.clone()),
            name: seq.name.name.clone(),
            table: None,
            sql: create_sequence(seq),
        });
        b.own_object(ObjAddr::relation(seq.oid), idx);
    }
}

/// After the tables: `OWNED BY` for owned sequences, and every sequence's state (data section),
/// extensions' configuration sequences included (their extension creates them).
pub(super) fn add_sequence_links(b: &mut Builder<'_>) {
    for seq in b
        .catalog
        .sequences
        .iter()
        .chain(&b.catalog.extension_sequences)
    {
        // An identity sequence belongs to its table's item (see `tables`), an extension's to the
        // extension's; others have their own.
        let Some(seq_item) = b.graph.owner(ObjAddr::relation(seq.oid)) else {
            continue;
        };
        let owner = seq.owner.as_ref().and_then(|o| {
            let table = b.table_items.get(&o.table_oid).copied()?;
            Some((o, table, b.tables.get(&o.table_oid).copied()?))
        });
        if let Some((o, table_item, table)) = owner.filter(|(o, _, _)| !o.identity) {
            let idx = b.add(NewItem {
                kind: ObjectKind::SequenceOwnedBy,
                section: Section::PreData,
                schema: Some(seq.name.schema.clone()),
                name: seq.name.name.clone(),
                table: Some(table_item),
                sql: format!(
                    "ALTER SEQUENCE {} OWNED BY {}.{};",
                    seq.name.sql(),
                    table.name.sql(),
                    ident(&o.column)
                ),
            });
            b.graph.depend(idx, seq_item);
        }
        let idx = b.add(NewItem {
            kind: ObjectKind::SequenceSet,
            section: Section::Data,
            schema: Some(seq.name.schema.clone()),
            name: seq.name.name.clone(),
            table: owner.map(|(_, table_item, _)| table_item),
            sql: set_value(seq),
        });
        b.graph.depend(idx, seq_item);
    }
}

/// The options both `CREATE SEQUENCE` and an identity column take, all explicit so that the
/// target's defaults do not matter.
pub(super) fn sequence_options(seq: &Sequence) -> Vec<String> {
    vec![
        format!("START WITH {}", seq.start),
        format!("INCREMENT BY {}", seq.increment),
        format!("MINVALUE {}", seq.min),
        format!("MAXVALUE {}", seq.max),
        format!("CACHE {}", seq.cache),
        if seq.cycle { "CYCLE" } else { "NO CYCLE" }.to_owned(),
    ]
}

fn create_sequence(seq: &Sequence) -> String {
    let unlogged = if seq.unlogged { "UNLOGGED " } else { "" };
    let mut options = vec![format!("AS {}", seq.type_name)];
    options.extend(sequence_options(seq));
    format!(
        "CREATE {unlogged}SEQUENCE {}\n    {};",
        seq.name.sql(),
        options.join("\n    ")
    )
}

fn set_value(seq: &Sequence) -> String {
    format!(
        "SELECT pg_catalog.setval({}, {}, {});",
        literal(&seq.name.sql()),
        seq.last_value,
        seq.is_called
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::QualName;

    fn sequence() -> Sequence {
        Sequence {
            oid: 1,
            name: QualName::new("app".into(), "Order's id".into()),
            unlogged: false,
            type_name: "integer".into(),
            start: 1,
            increment: 1,
            min: 1,
            max: 2_147_483_647,
            cache: 1,
            cycle: false,
            owner: None,
            last_value: 42,
            is_called: true,
        }
    }

    #[test]
    fn sequences_spell_out_every_option() {
        assert_eq!(
            create_sequence(&sequence()),
            "CREATE SEQUENCE app.\"Order's id\"\n    AS integer\n    START WITH 1\n    \
             INCREMENT BY 1\n    MINVALUE 1\n    MAXVALUE 2147483647\n    CACHE 1\n    NO CYCLE;"
        );
    }

    #[test]
    fn setval_names_the_sequence_as_a_literal() {
        assert_eq!(
            set_value(&sequence()),
            "SELECT pg_catalog.setval('app.\"Order''s id\"', 42, true);"
        );
    }
}
