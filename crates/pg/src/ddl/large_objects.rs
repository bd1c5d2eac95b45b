//! Large objects: `lo_create` with the object's own OID (pre-data, as `pg_dump` creates them),
//! so that owners, privileges and comments can follow and columns holding the OIDs still
//! point at them; then their contents as data-section items, one `lo_put` per piece, each
//! piece after the previous one.

use pgark_archive::{ObjectKind, Section};

use super::build::Builder;
use super::graph::NewItem;
use crate::catalog::{ObjAddr, PIECE, class};

pub(super) fn add_large_objects(b: &mut Builder<'_>) {
    for lo in &b.catalog.large_objects {
        let oid = lo.oid;
        let mut previous = b.add(NewItem {
            kind: ObjectKind::LargeObject,
            section: Section::PreData,
            schema: None,
            name: oid.to_string(),
            table: None,
            sql: format!("SELECT pg_catalog.lo_create('{oid}');"),
        });
        b.own_object(ObjAddr::new(class::PG_LARGEOBJECT, oid), previous);
        for (n, piece) in lo.pieces.iter().enumerate() {
            let offset = n as i64 * i64::from(PIECE);
            let idx = b.add(NewItem {
                kind: ObjectKind::LargeObjectData,
                section: Section::Data,
                schema: None,
                name: oid.to_string(),
                table: None,
                sql: format!(
                    "SELECT pg_catalog.lo_put('{oid}', {offset}, \
                     pg_catalog.decode('{}', 'hex'));",
                    hex(piece)
                ),
            });
            b.graph.depend(idx, previous);
            previous = idx;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(super::hex(&[0x00, 0x0a, 0xff, 0x31]), "000aff31");
    }
}
